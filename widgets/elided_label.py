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
                 mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight) -> None:  # fmt: skip
        super().__init__(parent)
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

    def shown_text(self) -> str:
        """What is painted at the current width (the full text when it fits)."""
        return self.fontMetrics().elidedText(self._full, self._mode, max(0, self.contentsRect().width()))

    def is_elided(self) -> bool:
        return self.shown_text() != self._full

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self.updateGeometry()  # a QSS property change (bold, bigger) changes the width the text needs

    def minimumSizeHint(self) -> QSize:
        fm = self.fontMetrics()
        return QSize(fm.horizontalAdvance("M" * self._min_chars), super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:
        return super().sizeHint()  # QLabel's hint for the full text, style margins included

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        opt = QStyleOption()
        opt.initFrom(self)
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_Widget, opt, painter, self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(self.contentsRect(), int(self.alignment()) | int(Qt.AlignmentFlag.AlignVCenter),
                         self.shown_text())  # fmt: skip
        painter.end()
