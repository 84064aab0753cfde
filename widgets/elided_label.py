"""A one-line label that gives way first: it shrinks to a few characters and elides, never clips.

Used for the less important parts of a fixed bar (venue name, connection details, the halt
reason's details line) so the parts that must stay whole (state badge, equity, P&L, the big
buttons) keep their width on a small screen. The full text is always on hover.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QStyle, QStyleOption, QWidget


class ElidedLabel(QLabel):
    def __init__(self, text: str = "", parent: QWidget | None = None, *, min_chars: int = 6,
                 mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight, max_lines: int = 1) -> None:  # fmt: skip
        super().__init__(parent)
        self._max_lines = max(1, max_lines)  # above 1: wraps at words, elides only the last line's end
        self._full = ""
        self._tip_from_text = ""
        self._min_chars = min_chars
        self._mode = mode
        # Preferred: asks for its full text, accepts down to min_chars (then elides)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:
        self._full = text
        super().setText(text)
        if self.toolTip() in ("", self._tip_from_text):  # an explicit tooltip stays
            self.setToolTip(text)
            self._tip_from_text = text
        self.updateGeometry()

    def full_text(self) -> str:
        return self._full

    def shown_lines(self) -> list[str]:
        """The lines painted at the current width (the full text when it fits)."""
        fm, width = self.fontMetrics(), max(0, self.contentsRect().width())
        if self._max_lines == 1:
            return [fm.elidedText(self._full, self._mode, width)]
        lines: list[str] = []
        words = self._full.split(" ")
        while words and len(lines) < self._max_lines - 1:
            line = words.pop(0)
            while words and fm.horizontalAdvance(f"{line} {words[0]}") <= width:
                line += " " + words.pop(0)
            lines.append(line)
        if words:
            lines.append(fm.elidedText(" ".join(words), Qt.TextElideMode.ElideRight, width))
        return lines

    def shown_text(self) -> str:
        return " ".join(self.shown_lines())

    def is_elided(self) -> bool:
        return self.shown_text() != self._full

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self.updateGeometry()  # a QSS property change (bold, bigger) changes the width the text needs

    def _height(self) -> int:
        m = self.contentsMargins()
        return self.fontMetrics().lineSpacing() * self._max_lines + m.top() + m.bottom() + 2

    def minimumSizeHint(self) -> QSize:
        fm = self.fontMetrics()
        height = self._height() if self._max_lines > 1 else super().minimumSizeHint().height()
        return QSize(fm.horizontalAdvance("M" * self._min_chars), height)

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()  # QLabel's hint for the full text, style margins included
        return hint if self._max_lines == 1 else QSize(hint.width(), self._height())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        opt = QStyleOption()
        opt.initFrom(self)
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_Widget, opt, painter, self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        flags = int(self.alignment()) | int(Qt.AlignmentFlag.AlignVCenter if self._max_lines == 1 else
                                            Qt.AlignmentFlag.AlignTop)  # fmt: skip
        painter.drawText(self.contentsRect(), flags, "\n".join(self.shown_lines()))
        painter.end()
