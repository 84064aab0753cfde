"""Risk gauges: one 270° arc per risk rule, and a grid panel of them.

Each gauge says its state three ways so colour is never the only carrier: the arc
colour, a big utilisation percentage, and a state word (OK / WARN / LIMIT). The
tooltip explains what the limit means and where it turns amber and red.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QGridLayout, QSizePolicy, QWidget

from engine.core.model import RuleValue
from widgets.theme import current_palette

_EPS = 1e-9  # 0.6 / 1.0 must read as "at warn", whatever the float rounding
_START_DEG = 225.0  # arc starts bottom-left ...
_SWEEP_DEG = 270.0  # ... and runs clockwise to bottom-right

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
        pct = value * 100
        return f"{pct:.2f}%" if 0 < abs(pct) < 1 else f"{pct:.1f}%"
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
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setMinimumSize(130, 120)
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
        """What the gauge prints under the arc, e.g. '1.2% / 5.0%' or '45.3k / 100k USDT'."""
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
        return QSize(180, 165)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        fg = self.palette().color(QPalette.ColorRole.WindowText)
        w, h = self.width(), self.height()
        m = 6.0

        label_font = QFont(self.font())
        label_font.setBold(True)
        label_h = QFontMetricsF(label_font).height() + 4
        p.setFont(label_font)
        p.setPen(fg)
        label = self._rule.label if self._rule else "—"
        elided = p.fontMetrics().elidedText(label, Qt.TextElideMode.ElideRight, int(w - 2 * m))
        p.drawText(
            QRectF(m, m / 2, w - 2 * m, label_h),
            Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
            elided,
        )

        # The arc's open bottom holds the value / limit line, so the square can use the full height.
        side = max(10.0, min(w - 2 * m, h - label_h - m))
        thick = max(6.0, side * 0.09)
        arc = QRectF((w - side) / 2 + thick / 2, label_h + thick / 2, side - thick, side - thick)
        track = QColor(fg)
        track.setAlpha(45)
        p.setPen(QPen(track, thick, Qt.PenStyle.SolidLine, Qt.PenCapStyle.FlatCap))
        p.drawArc(arc, int(_START_DEG * 16), int(-_SWEEP_DEG * 16))

        ratio = rule_ratio(self._rule) if self._rule else 0.0
        colour = self.colour()
        if ratio > 0:
            p.setPen(QPen(colour, thick, Qt.PenStyle.SolidLine, Qt.PenCapStyle.FlatCap))
            p.drawArc(arc, int(_START_DEG * 16), int(-_SWEEP_DEG * min(ratio, 1.0) * 16))
        if self.has_limit() and self._rule is not None:
            self._draw_warn_tick(p, arc, thick, self._rule.warn_at, fg)

        # Centre: big utilisation percentage and the state word under it.
        centre = arc.center()
        big = QFont(self.font())
        big.setPixelSize(max(10, int(side * 0.2)))
        big.setBold(True)
        p.setFont(big)
        p.setPen(fg)
        pct = f"{ratio * 100:.0f}%" if self.has_limit() else "—"
        big_h = p.fontMetrics().height()
        p.drawText(
            QRectF(arc.left(), centre.y() - big_h * 0.75, arc.width(), big_h),
            Qt.AlignmentFlag.AlignCenter,
            pct,
        )
        word = QFont(self.font())
        word.setPixelSize(max(9, int(side * 0.1)))
        word.setBold(True)
        p.setFont(word)
        p.setPen(colour if self.state() != "ok" else fg)
        word_h = p.fontMetrics().height()
        p.drawText(
            QRectF(arc.left(), centre.y() + big_h * 0.25, arc.width(), word_h),
            Qt.AlignmentFlag.AlignCenter,
            self.state_word(),
        )

        # Value / limit, in the arc's open bottom.
        value_font = QFont(self.font())
        value_font.setPixelSize(max(9, int(side * 0.085)))
        p.setFont(value_font)
        p.setPen(fg)
        vh = p.fontMetrics().height()
        text = p.fontMetrics().elidedText(self.value_text(), Qt.TextElideMode.ElideRight, int(w - 2 * m))
        p.drawText(
            QRectF(m, arc.bottom() - vh * 0.6, w - 2 * m, vh),
            Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter,
            text,
        )
        p.end()

    @staticmethod
    def _draw_warn_tick(p: QPainter, arc: QRectF, thick: float, warn_at: float, fg: QColor) -> None:
        """A short mark across the track where amber begins, so the threshold is visible before it is hit."""
        deg = _START_DEG - _SWEEP_DEG * max(0.0, min(1.0, warn_at))
        rad = math.radians(deg)
        c = arc.center()
        r_in, r_out = arc.width() / 2 - thick * 0.7, arc.width() / 2 + thick * 0.7
        dx, dy = math.cos(rad), -math.sin(rad)  # screen y grows downwards
        p.setPen(QPen(fg, 2))
        p.drawLine(
            QPointF(c.x() + dx * r_in, c.y() + dy * r_in), QPointF(c.x() + dx * r_out, c.y() + dy * r_out)
        )


class GaugePanel(QWidget):
    """A grid of gauges keyed by rule name; updates in place, first-seen order."""

    def __init__(self, parent: QWidget | None = None, columns: int = 3) -> None:
        super().__init__(parent)
        self._columns = max(1, columns)
        self._gauges: dict[str, RiskGauge] = {}
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(4, 4, 4, 4)
        self._grid.setSpacing(6)

    def set_rules(self, rules: Sequence[RuleValue]) -> None:
        """Update gauges for known names, add new ones at the end.

        A name missing from `rules` keeps its gauge: the engine sends the full set each time,
        and a gauge vanishing under the operator's eyes would be worse than a stale one.
        """
        for rule in rules:
            gauge = self._gauges.get(rule.name)
            if gauge is None:
                gauge = RiskGauge(rule, self)
                gauge.setObjectName(f"gauge_{rule.name}")
                i = len(self._gauges)
                self._gauges[rule.name] = gauge
                self._grid.addWidget(gauge, i // self._columns, i % self._columns)
            else:
                gauge.set_rule(rule)

    def gauge(self, name: str) -> RiskGauge | None:
        return self._gauges.get(name)

    def names(self) -> list[str]:
        return list(self._gauges)

    def worst_state(self) -> str:
        """The most severe state among the gauges ('ok' when empty), for a summary badge."""
        order = ("ok", "warn", "limit")
        return max((g.state() for g in self._gauges.values()), key=order.index, default="ok")
