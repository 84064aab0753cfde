"""The top bar: where am I trading, is it real money, am I connected, may I trade, how am I doing.

Every state is spelled out in text (and a shape: ▶ ■ ▼ ▲ ⚠ ✖); colours come
from the theme's QSS through dynamic properties and only reinforce the text.
"""

from __future__ import annotations

from decimal import Decimal

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from widgets import format as fmt
from widgets.elided_label import ElidedLabel
from widgets.theme import repolish

STATE_TEXT = {"ACTIVE": "▶ ACTIVE", "REDUCING": "▼ REDUCING", "HALTED": "■ HALTED"}
STATE_HELP = {
    "ACTIVE": "Orders flow normally.",
    "REDUCING": "Only orders that shrink a position are allowed.",
    "HALTED": "No new orders. Cancels still pass. Resume is a deliberate operator act.",
}
MODE_TEXT = {"simulated": "SIMULATED", "paper": "PAPER", "testnet": "TESTNET", "live": "LIVE — REAL MONEY"}
MODE_HELP = {
    "simulated": "In-process simulated market: no real orders, no real money.",
    "paper": "Paper trading account at the venue: real market data, no real money.",
    "testnet": "Exchange test network: test funds, no real money.",
    "live": "LIVE account: orders use REAL MONEY.",
}


def _set_prop(widget: QWidget, name: str, value: str) -> None:
    if widget.property(name) != value:
        widget.setProperty(name, value)
        repolish(widget)


def _caption(text: str) -> QLabel:
    label = QLabel(text)
    label.setProperty("role", "caption")
    return label


def _block(caption: str, *widgets: QWidget, align: Qt.AlignmentFlag = Qt.AlignmentFlag.AlignLeft) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(6, 0, 6, 0)
    layout.setSpacing(1)
    cap = _caption(caption)
    cap.setAlignment(align)
    layout.addWidget(cap)
    for w in widgets:
        layout.addWidget(w)
    return box


class StateBadge(QLabel):
    """ACTIVE (green) / REDUCING (amber) / HALTED (red) as big text in a coloured box."""

    stateChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("stateBadge")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._state = ""
        self._reason = ""
        self.set_state("UNKNOWN")

    def sizeHint(self) -> QSize:
        # as wide as the widest state word in this font, so a state change never moves the bar
        fm = self.fontMetrics()
        margins = self.contentsMargins()
        widest = max(fm.horizontalAdvance(t) for t in (*STATE_TEXT.values(), "? UNKNOWN"))
        return QSize(widest + margins.left() + margins.right() + 8, super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    @property
    def state(self) -> str:
        return self._state

    @property
    def reason(self) -> str:
        return self._reason

    def set_state(self, state: str, reason: str = "") -> None:
        state = str(state).upper()
        self.setText(STATE_TEXT.get(state, f"? {state}"))
        help_text = STATE_HELP.get(state, "Trading state not known yet.")
        self.setToolTip(f"Trading state: {state}\n{help_text}" + (f"\nReason: {reason}" if reason else ""))
        self.setAccessibleName(f"Trading state {state}")
        self._reason = reason
        _set_prop(self, "state", state)
        if state != self._state:
            self._state = state
            self.stateChanged.emit(state)


class TopBar(QWidget):
    """Venue and mode, stage, connection health, trading state, equity, today's P&L."""

    def __init__(self, parent: QWidget | None = None, *, currency: str = "") -> None:
        super().__init__(parent)
        self.setObjectName("topBar")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.currency = currency
        self.stale_after_s = 5.0  # data older than this turns the connection amber
        self.dead_after_s = 30.0  # ... and red
        self.slow_latency_ms = 1000.0

        self.venue_label = ElidedLabel("—", min_chars=4)
        self.venue_label.setProperty("role", "info")
        self.mode_pill = QLabel()  # never elided: LIVE — REAL MONEY must be read whole
        self.mode_pill.setObjectName("modePill")
        venue_row = QHBoxLayout()
        venue_row.setSpacing(8)
        venue_row.addWidget(self.venue_label)
        venue_row.addWidget(self.mode_pill)
        venue_row.addStretch(1)
        venue_widget = QWidget()
        venue_widget.setLayout(venue_row)
        venue_row.setContentsMargins(0, 0, 0, 0)

        self.stage_label = ElidedLabel("—", min_chars=5)
        self.stage_label.setProperty("role", "info")
        self.stage_label.setToolTip("Activation stage of the bot (promoted stage by stage with evidence)")
        self.connection_label = ElidedLabel(min_chars=8)
        self.connection_label.setObjectName("connection")

        self.badge = StateBadge()
        # the details line: why the state is what it is, in full on hover, elided only at the end
        self.reason_label = ElidedLabel(min_chars=10, max_lines=2)
        self.reason_label.setObjectName("stateReason")
        self.reason_label.setProperty("role", "details")
        self.reason_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.reason_caption = QLabel()
        self.reason_caption.setProperty("role", "caption")
        self.details_line = QWidget()
        details = QHBoxLayout(self.details_line)
        details.setContentsMargins(0, 0, 0, 0)
        details.setSpacing(6)
        details.addWidget(self.reason_caption, 0, Qt.AlignmentFlag.AlignTop)
        details.addWidget(self.reason_label, 1)
        self.details_line.setVisible(False)

        right = Qt.AlignmentFlag.AlignRight
        self.equity_label = QLabel("—")
        self.equity_label.setProperty("role", "figure")
        self.equity_label.setProperty("tone", "flat")
        self.equity_label.setAlignment(right | Qt.AlignmentFlag.AlignVCenter)
        self.equity_label.setToolTip("Account equity: cash plus the marked value of open positions")
        self.pnl_label = QLabel("—")
        self.pnl_label.setProperty("role", "figure")
        self.pnl_label.setProperty("tone", "flat")
        self.pnl_label.setAlignment(right | Qt.AlignmentFlag.AlignVCenter)
        self.pnl_label.setToolTip("Today's profit or loss (UTC day), realised plus unrealised")
        for figure in (self.badge, self.equity_label, self.pnl_label):  # these never shrink below their text
            figure.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Preferred)

        # Three lines, so the bar needs the width of the widest one only (it must fit beside the big
        # buttons at 1280 px): what I may do and how I stand, big; where and how connected, small; why.
        figures = QHBoxLayout()
        figures.setContentsMargins(0, 0, 0, 0)
        figures.setSpacing(14)
        figures.addWidget(self.badge, 0, Qt.AlignmentFlag.AlignVCenter)
        figures.addStretch(1)
        figures.addWidget(_block("EQUITY", self.equity_label, align=right), 0)
        figures.addWidget(_block("TODAY'S P&L", self.pnl_label, align=right), 0)
        where = QHBoxLayout()
        where.setContentsMargins(0, 0, 0, 0)
        where.setSpacing(14)
        self.venue_block = _block("VENUE · MODE", venue_widget)
        self.stage_block = _block("STAGE", self.stage_label)
        self.connection_block = _block("CONNECTION", self.connection_label)
        where.addWidget(self.venue_block, 3)
        where.addWidget(self.stage_block, 2)
        where.addWidget(self.connection_block, 4)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(10, 6, 10, 6)
        outer.setSpacing(4)
        outer.addLayout(figures)
        outer.addLayout(where)
        outer.addWidget(self.details_line)
        outer.addStretch(1)
        # fills the command strip's height (as tall as the big buttons beside it), content at the top
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

        self.set_venue("—", "simulated")
        self.set_connection(False)

    # ---- setters ------------------------------------------------------------------------------
    def set_venue(self, name: str, mode: str) -> None:
        mode = str(mode).lower()
        self.venue_label.setText(name)
        self.mode_pill.setText(MODE_TEXT.get(mode, mode.upper()))
        self.mode_pill.setToolTip(MODE_HELP.get(mode, f"Mode: {mode}"))
        _set_prop(self.mode_pill, "mode", mode)

    @property
    def mode(self) -> str:
        return str(self.mode_pill.property("mode"))

    def set_stage(self, stage: str) -> None:
        self.stage_label.setText(stage or "—")

    def set_connection(
        self, connected: bool, latency_ms: float | None = None, data_age_s: float | None = None
    ) -> None:
        lat = fmt.fmt_latency(latency_ms) if latency_ms is not None else ""
        age = f"data {fmt.fmt_seconds(data_age_s)}" if data_age_s is not None else ""
        if not connected:
            health, text = "down", "✖ DISCONNECTED"
        elif data_age_s is not None and data_age_s >= self.dead_after_s:
            health, text = "down", f"✖ NO DATA · {age}"
        elif (data_age_s is not None and data_age_s >= self.stale_after_s) or (
            latency_ms is not None and latency_ms >= self.slow_latency_ms
        ):
            health, text = "stale", " · ".join(p for p in ("⚠ STALE", age, lat) if p)
        else:
            health, text = "ok", " · ".join(p for p in ("● CONNECTED", lat, age) if p)
        self.connection_label.setText(text)
        self.connection_label.setToolTip(
            f"Venue connection: {'connected' if connected else 'disconnected'}\n"
            f"Round-trip latency: {lat or 'unknown'}\nAge of the newest market data: "
            f"{fmt.fmt_seconds(data_age_s) if data_age_s is not None else 'unknown'}\n"
            f"Amber after {self.stale_after_s:g} s without data, red after {self.dead_after_s:g} s."
        )
        _set_prop(self.connection_label, "health", health)

    @property
    def connection_health(self) -> str:
        return str(self.connection_label.property("health"))

    def set_state(self, state: str, reason: str = "") -> None:
        self.badge.set_state(state, reason)
        state = self.badge.state
        self.reason_caption.setText(f"WHY {state}:")
        self.reason_label.setText(reason)
        self.details_line.setVisible(bool(reason))
        _set_prop(self.reason_label, "state", state)

    def minimum_width(self) -> int:
        """The width under which the parts that must stay whole (badge, equity, P&L) would be cut."""
        return self.minimumSizeHint().width()

    def set_equity(self, equity: Decimal | float | None) -> None:
        self.equity_label.setText(fmt.fmt_money(equity, currency=self.currency))

    def set_day_pnl(self, money: Decimal | float | None, pct: Decimal | float | None) -> None:
        d = fmt.to_decimal(money)
        tone = "flat" if d is None or round(d, 2) == 0 else ("pos" if d > 0 else "neg")
        arrow = fmt.arrow(round(d, 2)) if d is not None else ""
        text = fmt.fmt_money(money, signed=True, currency=self.currency)
        if pct is not None:
            text += f"  ({fmt.fmt_pct(pct)})"
        self.pnl_label.setText(f"{arrow} {text}".strip())
        _set_prop(self.pnl_label, "tone", tone)
