"""Risk gauges: one compact bar per risk rule, and a panel of them that reflows with its width.

A gauge is read at a glance as "actual / limit" in the limit's own unit ("Daily loss
0.27% / 5.00%"), never as a share of the limit used. Its state is said three ways so
colour is never the only carrier: the bar colour, the state word (OK / WARN / LIMIT) and
the bar's length against a tick where amber begins. The tooltip gives the share used and
the warn and limit levels.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontInfo, QFontMetrics, QPainter, QPaintEvent, QPalette, QPen, QResizeEvent
from PySide6.QtWidgets import QGridLayout, QSizePolicy, QWidget

from engine.core.model import RuleValue
from widgets.format import fmt_fraction_pct
from widgets.theme import current_palette

_EPS = 1e-9  # 0.6 / 1.0 must read as "at warn", whatever the float rounding
GAUGE_MIN_WIDTH = 170  # the panel puts as many columns side by side as fit this width

STATE_WORDS = {"ok": "OK", "warn": "WARN", "limit": "LIMIT"}


def _plain(v: float, decimals: int = 2, compact: bool = False) -> str:
    a = abs(v)
    if compact and a >= 10_000:
        # a gauge is small: 45.3k / 100k fits where 45,250.50 / 100,000 does not (the tooltip is exact)
        for div, suffix in ((1e3, "k"), (1e6, "M"), (1e9, "B")):
            x = abs(v / div)
            if x < 999.5 or suffix == "B":
                d = 2 if x < 9.995 else 1 if x < 99.95 else 0
                text = f"{v / div:,.{d}f}"
                return (text.rstrip("0").rstrip(".") if "." in text else text) + suffix
    if v == int(v) and a < 1e15:
        return f"{int(v):,}"
    return f"{v:,.{decimals}f}"


def format_rule_value(value: float, unit: str, compact: bool = False) -> str:
    """'%' values are fractions shown as percent; '' plain numbers; '/s' rates; other units appended."""
    if unit == "%":
        return fmt_fraction_pct(value)
    if unit == "/s":
        return f"{_plain(value, 1, compact)}/s"
    if unit == "":
        return _plain(value, 2, compact)
    return f"{_plain(value, 2, compact)} {unit}"


def rule_ratio(rule: RuleValue) -> float:
    """value / limit, not clamped (over the limit shows e.g. 112%); 0 for a rule without a limit."""
    if rule.limit <= 0:
        return 0.0
    return max(0.0, rule.value / rule.limit)


def rule_state(rule: RuleValue) -> str:
    """'ok' below warn_at, 'warn' from warn_at, 'limit' at or over the limit."""
    ratio = rule_ratio(rule)
    if ratio >= 1.0 - _EPS:
        return "limit"
    if ratio >= rule.warn_at - _EPS:
        return "warn"
    return "ok"


class RiskGauge(QWidget):
    def __init__(self, rule: RuleValue | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rule: RuleValue | None = None
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        if rule is not None:
            self.set_rule(rule)

    def set_rule(self, rule: RuleValue) -> None:
        if rule == self._rule:
            return  # same values: skip the repaint (the bridge may resend unchanged rules)
        self._rule = rule
        self.setToolTip(self._tooltip(rule))
        self.setAccessibleName(f"{rule.label}: {self.value_text()}, {STATE_WORDS[self.state()]}")
        self.update()

    def rule(self) -> RuleValue | None:
        return self._rule

    def state(self) -> str:
        """'ok' | 'warn' | 'limit' (a gauge with no rule or no limit is 'ok')."""
        return "ok" if self._rule is None else rule_state(self._rule)

    def has_limit(self) -> bool:
        return self._rule is not None and self._rule.limit > 0

    def value_text(self) -> str:
        """What the gauge prints in big: actual / limit, e.g. '0.27% / 5.00%' or '45.3k / 100k USDT'."""
        r = self._rule
        if r is None:
            return "—"
        unit = r.unit if r.unit in ("%", "/s", "") else ""  # a currency-like unit is said once, at the end
        suffix = "" if unit == r.unit else f" {r.unit}"
        value = format_rule_value(r.value, unit, compact=True)
        if r.limit <= 0:
            return f"{value}{suffix} / no limit"
        return f"{value} / {format_rule_value(r.limit, unit, compact=True)}{suffix}"

    def state_word(self) -> str:
        return STATE_WORDS[self.state()] if self.has_limit() else "OFF"

    def colour(self) -> QColor:
        """Green / amber / red of the active theme (muted grey for a rule without a limit)."""
        pal = current_palette()
        if not self.has_limit():
            return QColor(pal.muted)
        return QColor({"ok": pal.green, "warn": pal.amber, "limit": pal.red}[self.state()])

    @staticmethod
    def _tooltip(rule: RuleValue) -> str:
        desc = html.escape(rule.description) if rule.description else "No description."
        if rule.limit <= 0:
            limit_line = "This rule has no limit set, so it cannot trip."
        else:
            warn = format_rule_value(rule.limit * rule.warn_at, rule.unit)
            limit = format_rule_value(rule.limit, rule.unit)
            limit_line = (
                f"Now {format_rule_value(rule.value, rule.unit)} of a {limit} limit "
                f"({rule_ratio(rule) * 100:.0f}% used).<br>"
                f"WARN (amber) from {warn} ({rule.warn_at * 100:.0f}% of the limit); "
                f"LIMIT (red) at {limit}."
            )
        return f"<b>{html.escape(rule.label)}</b><br>{desc}<br><br>{limit_line}"

    def sizeHint(self) -> QSize:
        fm = QFontMetrics(self.font())
        return QSize(max(GAUGE_MIN_WIDTH, fm.horizontalAdvance("Daily loss limit  WARN") + 16), self._height())

    def minimumSizeHint(self) -> QSize:
        return QSize(GAUGE_MIN_WIDTH - 30, self._height())

    def _fonts(self) -> tuple[QFont, QFont]:
        label = QFont(self.font())
        label.setBold(True)
        big = QFont(self.font())
        big.setBold(True)
        big.setPointSizeF(max(9.0, self.font().pointSizeF() * 1.35))
        return label, big

    def _fit_value(self, p: QPainter, big: QFont, room: float) -> tuple[QFont, str]:
        """Measured with the painter itself: its metrics are the ones the text is drawn with."""
        full = self.value_text()
        r = self._rule
        short = full.removesuffix(f" {r.unit}") if r is not None and r.unit not in ("%", "/s", "") else full
        base = QFontInfo(self.font()).pointSizeF()
        smallest = max(7.0, base * 0.8)
        font = QFont(big)
        for text in dict.fromkeys((full, short)):
            font = QFont(big)
            font.setPointSizeF(QFontInfo(big).pointSizeF())
            p.setFont(font)
            while font.pointSizeF() > smallest and p.fontMetrics().horizontalAdvance(text) > room - 4:
                font.setPointSizeF(font.pointSizeF() - 0.5)
                p.setFont(font)
            if p.fontMetrics().horizontalAdvance(text) <= room - 4:  # elidedText wants a little slack
                return font, text
        return font, short

    def _height(self) -> int:
        label, big = self._fonts()
        return QFontMetrics(label).height() + QFontMetrics(big).height() + 8 + 14

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        fg = self.palette().color(QPalette.ColorRole.WindowText)
        w = self.width()
        m = 6.0
        label_font, big_font = self._fonts()
        colour = self.colour()

        # first line: the rule's name (elided if it must) and the state word, right-aligned
        p.setFont(label_font)
        fm = p.fontMetrics()
        lh = fm.height()
        word = self.state_word()
        word_w = fm.horizontalAdvance(word) + 4
        p.setPen(colour if self.state() != "ok" or not self.has_limit() else fg)
        p.drawText(QRectF(w - m - word_w, 2, word_w, lh), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                   word)  # fmt: skip
        p.setPen(fg)
        label = self._rule.label if self._rule else "—"
        p.drawText(QRectF(m, 2, w - 3 * m - word_w, lh), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   fm.elidedText(label, Qt.TextElideMode.ElideRight, int(w - 3 * m - word_w)))  # fmt: skip

        # second line, big: actual / limit; where the gauge is narrow, a smaller size, then without the
        # currency (it is in the tooltip), and only then cut at the end
        room = w - 2 * m
        big_font, value = self._fit_value(p, big_font, room)
        p.setFont(big_font)
        bh = QFontMetrics(self._fonts()[1]).height()  # the line keeps its height whatever the size
        text = p.fontMetrics().elidedText(value, Qt.TextElideMode.ElideRight, int(room))
        p.drawText(QRectF(m, 2 + lh, w - 2 * m, bh), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)

        # the bar: filled to value / limit, a tick where amber starts
        bar = QRectF(m, 2 + lh + bh + 4, w - 2 * m, 8)
        track = QColor(fg)
        track.setAlpha(45)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(track)
        p.drawRoundedRect(bar, 3, 3)
        ratio = rule_ratio(self._rule) if self._rule else 0.0
        if ratio > 0:
            p.setBrush(colour)
            p.drawRoundedRect(QRectF(bar.left(), bar.top(), bar.width() * min(ratio, 1.0), bar.height()), 3, 3)
        if self.has_limit() and self._rule is not None:
            x = bar.left() + bar.width() * max(0.0, min(1.0, self._rule.warn_at))
            p.setPen(QPen(fg, 2))
            p.drawLine(int(x), int(bar.top() - 2), int(x), int(bar.bottom() + 2))
        p.end()


class GaugePanel(QWidget):
    """Gauges keyed by rule name, first-seen order, in as many columns as the width holds (at most `columns`)."""

    def __init__(self, parent: QWidget | None = None, columns: int = 3) -> None:
        super().__init__(parent)
        self._max_columns = max(1, columns)
        self._columns = 1
        self._gauges: dict[str, RiskGauge] = {}
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(4, 4, 4, 4)
        self._grid.setSpacing(6)
        self._grid.setAlignment(Qt.AlignmentFlag.AlignTop)
        # the grid must not impose its current column count as a minimum width: it reflows instead
        self._grid.setSizeConstraint(QGridLayout.SizeConstraint.SetNoConstraint)

    def set_rules(self, rules: Sequence[RuleValue]) -> None:
        """Update gauges for known names, add new ones at the end.

        A name missing from `rules` keeps its gauge: the engine sends the full set each time,
        and a gauge vanishing under the operator's eyes would be worse than a stale one.
        """
        added = False
        for rule in rules:
            gauge = self._gauges.get(rule.name)
            if gauge is None:
                gauge = RiskGauge(rule, self)
                gauge.setObjectName(f"gauge_{rule.name}")
                self._gauges[rule.name] = gauge
                added = True
            else:
                gauge.set_rule(rule)
        if added:
            self._place(force=True)

    def columns(self) -> int:
        return self._columns

    def _rows_height(self) -> int:
        if not self._gauges:
            return 60
        rows = -(-len(self._gauges) // self._columns)
        gauge_h = next(iter(self._gauges.values())).sizeHint().height()
        m = self._grid.contentsMargins()
        return rows * gauge_h + (rows - 1) * self._grid.verticalSpacing() + m.top() + m.bottom()

    def minimumSizeHint(self) -> QSize:
        # as tall as its rows at the current column count (a scroller around it scrolls), narrow as one gauge
        return QSize(GAUGE_MIN_WIDTH - 20, self._rows_height())

    def sizeHint(self) -> QSize:
        return QSize(self._columns * (GAUGE_MIN_WIDTH + 6), self._rows_height())

    def _fitting_columns(self) -> int:
        width = self.width() - 8
        return max(1, min(self._max_columns, (width + 6) // (GAUGE_MIN_WIDTH + 6)))

    def _place(self, force: bool = False) -> None:
        columns = self._fitting_columns()
        if columns == self._columns and not force:
            return
        self._columns = columns
        for gauge in self._gauges.values():
            self._grid.removeWidget(gauge)
        for i, gauge in enumerate(self._gauges.values()):
            self._grid.addWidget(gauge, i // columns, i % columns)
        for c in range(self._max_columns):
            self._grid.setColumnStretch(c, 1 if c < columns else 0)
        # the height follows the rows; explicit, so a scroller around the panel scrolls instead of squeezing
        self.setMinimumHeight(self._rows_height())
        self.updateGeometry()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._place()

    def gauge(self, name: str) -> RiskGauge | None:
        return self._gauges.get(name)

    def names(self) -> list[str]:
        return list(self._gauges)

    def worst_state(self) -> str:
        """The most severe state among the gauges ('ok' when empty), for a summary badge."""
        order = ("ok", "warn", "limit")
        return max((g.state() for g in self._gauges.values()), key=order.index, default="ok")
