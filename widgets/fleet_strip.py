"""The fleet strip: one card per attached engine, the total, and STOP ALL.

Given values, it calls nothing. Each card shows the engine's name, trading state, equity,
day P&L and unacknowledged alerts; a lost link or a silent engine turns the card red with
the time its data went stale, so old figures are never mistaken for live ones. Under each
card, the fate of the last STOP ALL on that engine: pending, acknowledged, or failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

STATE_COLOURS = {"ACTIVE": "#2e9d5b", "REDUCING": "#d08a1c", "HALTED": "#d23c3c"}
STALE_COLOUR = "#8a8f98"


@dataclass(frozen=True)
class FleetRow:
    key: str
    name: str
    state: str  # ACTIVE / REDUCING / HALTED / UNKNOWN
    equity: Decimal | None
    day_pnl: Decimal | None
    alerts: int
    live: bool  # the link is up and the engine is speaking
    stale_since: str = ""  # HH:MM:SS of the last message, when not live
    link_note: str = ""  # why not live: "disconnected", "refused", "silent 20 s"
    ack: str = ""  # "", "pending", "acknowledged", "failed: why"


def _money(value: Decimal | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+,.2f}" if signed else f"{value:,.2f}"


class EngineCard(QFrame):
    openRequested = Signal(str)

    def __init__(self, key: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.key = key
        self.setObjectName("fleetCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumWidth(230)
        self.name_label = QLabel()
        self.name_label.setStyleSheet("font-weight: 600;")
        self.state_label = QLabel()
        self.state_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.figures_label = QLabel()
        self.link_label = QLabel()
        self.link_label.setWordWrap(True)
        self.ack_label = QLabel()
        self.ack_label.setWordWrap(True)
        self.open_button = QPushButton("Open window")
        self.open_button.setAutoDefault(False)
        self.open_button.clicked.connect(lambda: self.openRequested.emit(self.key))
        top = QHBoxLayout()
        top.addWidget(self.name_label, 1)
        top.addWidget(self.state_label)
        v = QVBoxLayout(self)
        v.setContentsMargins(8, 6, 8, 6)
        v.setSpacing(3)
        v.addLayout(top)
        v.addWidget(self.figures_label)
        v.addWidget(self.link_label)
        v.addWidget(self.ack_label)
        v.addWidget(self.open_button)

    def show_row(self, row: FleetRow) -> None:
        self.name_label.setText(row.name)
        colour = STATE_COLOURS.get(row.state, STALE_COLOUR) if row.live else STALE_COLOUR
        self.state_label.setText(f" {row.state} " if row.live else f" {row.state}? ")
        self.state_label.setStyleSheet(f"background: {colour}; color: white; font-weight: 700; border-radius: 3px;")
        pnl_colour = "#2e9d5b" if (row.day_pnl or 0) >= 0 else "#d23c3c"
        self.figures_label.setText(
            f"equity <b>{_money(row.equity)}</b> · day <span style='color:{pnl_colour}'>{_money(row.day_pnl, True)}"
            f"</span> · alerts <b>{row.alerts}</b>"
        )
        if row.live:
            self.link_label.setText("● live")
            self.link_label.setStyleSheet("color: #2e9d5b;")
            self.setStyleSheet("")
        else:
            self.link_label.setText(f"⚠ {row.link_note.upper() or 'DISCONNECTED'} — data stale since {row.stale_since}")
            self.link_label.setStyleSheet("color: #d23c3c; font-weight: 700;")
            self.setStyleSheet("#fleetCard { border: 2px solid #d23c3c; }")
        self.ack_label.setVisible(bool(row.ack))
        if row.ack:
            done = row.ack == "acknowledged"
            mark = "✔" if done else ("…" if row.ack == "pending" else "✖")
            self.ack_label.setText(f"{mark} STOP ALL {row.ack}")
            colour = "#2e9d5b" if done else ("#d08a1c" if row.ack == "pending" else "#d23c3c")
            self.ack_label.setStyleSheet(f"color: {colour}; font-weight: 600;")

    @property
    def text(self) -> str:
        """Everything the card says, for tests and accessibility."""
        labels = (self.name_label, self.state_label, self.figures_label, self.link_label, self.ack_label)
        return " | ".join(lbl.text() for lbl in labels if lbl.text())


class FleetStrip(QWidget):
    stopAllRequested = Signal()
    openRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cards: dict[str, EngineCard] = {}
        self._cards_box = QHBoxLayout()
        self._cards_box.setContentsMargins(0, 0, 0, 0)
        self._cards_box.addStretch(1)
        holder = QWidget()
        holder.setLayout(self._cards_box)
        scroll = QScrollArea()
        scroll.setWidget(holder)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.total_label = QLabel()
        self.total_label.setObjectName("fleetTotal")
        self.total_label.setTextFormat(Qt.TextFormat.RichText)
        self.stop_all_button = QPushButton("■  STOP ALL")
        self.stop_all_button.setObjectName("emergencyButton")  # the theme's emergency red
        self.stop_all_button.setMinimumSize(170, 72)
        self.stop_all_button.setToolTip("EMERGENCY STOP on every attached engine at once; no confirmation.\n"
                                        "Each engine's acknowledgement (or failure) shows on its card.")  # fmt: skip
        self.stop_all_button.setAutoDefault(False)
        self.stop_all_button.clicked.connect(self.stopAllRequested.emit)
        side = QVBoxLayout()
        side.addWidget(self.total_label)
        side.addWidget(self.stop_all_button)
        side.addStretch(1)
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 6, 6, 6)
        row.addWidget(scroll, 1)
        row.addLayout(side)
        self.set_rows([])

    def set_rows(self, rows: list[FleetRow]) -> None:
        keys = [r.key for r in rows]
        for key in list(self.cards):
            if key not in keys:
                card = self.cards.pop(key)
                self._cards_box.removeWidget(card)
                card.deleteLater()
        for row in rows:
            card = self.cards.get(row.key)
            if card is None:
                card = self.cards[row.key] = EngineCard(row.key)
                card.openRequested.connect(self.openRequested.emit)
                self._cards_box.insertWidget(self._cards_box.count() - 1, card)
            card.show_row(row)
        self._show_total(rows)

    def _show_total(self, rows: list[FleetRow]) -> None:
        equity = sum((r.equity for r in rows if r.equity is not None), Decimal(0))
        pnl = sum((r.day_pnl for r in rows if r.day_pnl is not None), Decimal(0))
        alerts = sum(r.alerts for r in rows)
        stale = sum(1 for r in rows if not r.live)
        halted = sum(1 for r in rows if r.state == "HALTED")
        colour = "#2e9d5b" if pnl >= 0 else "#d23c3c"
        note = f"<br><span style='color:#d23c3c'><b>{stale} not live: total incomplete</b></span>" if stale else ""
        self.total_label.setText(
            f"<b>TOTAL</b> · {len(rows)} engine{'s' if len(rows) != 1 else ''}, {halted} halted<br>"
            f"equity <b>{_money(equity)}</b><br>day <span style='color:{colour}'><b>{_money(pnl, True)}</b></span>"
            f" · alerts <b>{alerts}</b>{note}"
        )
