"""The top bar: where am I trading, is it real money, am I connected, may I trade, how am I doing.

Every state is spelled out in text (and a shape: ▶ ■ ▼ ▲ ⚠ ✖); colours come
from the theme's QSS through dynamic properties and only reinforce the text.
"""

from __future__ import annotations

from decimal import Decimal

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from widgets import format as fmt
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

        self.venue_label = QLabel("—")
        self.venue_label.setProperty("role", "info")
        self.mode_pill = QLabel()
        self.mode_pill.setObjectName("modePill")
        venue_row = QHBoxLayout()
        venue_row.setSpacing(8)
        venue_row.addWidget(self.venue_label)
        venue_row.addWidget(self.mode_pill)
        venue_row.addStretch(1)
        venue_widget = QWidget()
        venue_widget.setLayout(venue_row)
        venue_row.setContentsMargins(0, 0, 0, 0)

        self.stage_label = QLabel("—")
        self.stage_label.setProperty("role", "info")
        self.stage_label.setToolTip("Activation stage of the bot (promoted stage by stage with evidence)")
        self.connection_label = QLabel()
        self.connection_label.setObjectName("connection")

        self.badge = StateBadge()
        self.reason_label = QLabel()
        self.reason_label.setProperty("role", "caption")
        self.reason_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.reason_label.setMaximumWidth(320)
        self.reason_label.setVisible(False)

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

        grid = QGridLayout(self)
        grid.setContentsMargins(10, 6, 10, 6)
        grid.setHorizontalSpacing(14)
        grid.addWidget(_block("VENUE · MODE", venue_widget), 0, 0)
        grid.addWidget(_block("STAGE", self.stage_label), 0, 1)
        grid.addWidget(_block("CONNECTION", self.connection_label), 0, 2)
        grid.setColumnStretch(3, 1)
        state_box = QWidget()
        sl = QVBoxLayout(state_box)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.setSpacing(2)
        sl.addWidget(self.badge)
        sl.addWidget(self.reason_label)
        grid.addWidget(state_box, 0, 4)
        grid.addWidget(_block("EQUITY", self.equity_label, align=right), 0, 5)
        grid.addWidget(_block("TODAY'S P&L", self.pnl_label, align=right), 0, 6)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

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
        self.reason_label.setText(reason)
        self.reason_label.setToolTip(reason)
        self.reason_label.setVisible(bool(reason))

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
