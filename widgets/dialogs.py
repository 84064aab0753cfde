"""Confirmation dialogs for the deliberate operator acts: close everything, resume trading, and
pulling the resting stops on an emergency stop.

Show them with ``show_nonmodal`` (or ``.open()``) and listen to ``accepted``/``finished``:
``exec()`` starts a nested event loop that breaks qasync. They are not modal, so EMERGENCY
STOP behind them stays clickable, and each carries its own EMERGENCY STOP button
(``emergencyStop``) for when it covers the main one. Cancel is the default button of the
close-all and pull-stops dialogs, so a stray Enter never flattens the book or strips protection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from widgets import format as fmt
from widgets import theme

STOP_BUTTON_TEXT = "■  EMERGENCY STOP"
STOP_BUTTON_TIP = (
    "Halt trading now, from inside this dialog (also F12 or Ctrl+Shift+X).\n"
    "Resting stop-loss legs stay at the venue."
)


# red in both themes, but dialog-sized: the main button's 17 pt style would not fit a dialog's row
DIALOG_STOP_QSS = (
    "QPushButton { background: #c62828; color: #ffffff; font-size: 11pt; font-weight: bold;"
    " border: 2px solid #ff8a80; border-radius: 6px; padding: 6px 14px; }"
    " QPushButton:hover { background: #e53935; } QPushButton:pressed { background: #8e0000; }"
)


def style_stop_button(button: QPushButton) -> None:
    button.setObjectName("dialogEmergencyButton")
    button.setStyleSheet(DIALOG_STOP_QSS)
    button.setMinimumHeight(36)
    button.setAutoDefault(False)
    button.setDefault(False)
    button.setToolTip(STOP_BUTTON_TIP)
    button.setAccessibleName("Emergency stop")


def emergency_stop_button(parent: QWidget | None = None) -> QPushButton:
    """The red stop button a dialog carries; never a default button."""
    button = QPushButton(STOP_BUTTON_TEXT, parent)
    style_stop_button(button)
    return button


def show_nonmodal(dialog: QDialog) -> None:
    """Show without blocking any other window: the big buttons behind it must stay clickable."""
    dialog.setWindowModality(Qt.WindowModality.NonModal)
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()


def _tone(value: object) -> str:
    d = fmt.to_decimal(value)
    return "flat" if d is None or round(d, 2) == 0 else ("pos" if d > 0 else "neg")


def _side_text(p: Mapping[str, Any]) -> str:
    side = p.get("side")
    if side is None:
        d = fmt.to_decimal(p.get("qty"))
        side = "long" if d is None or d >= 0 else "short"
    s = str(side).lower()
    return {"buy": "LONG", "sell": "SHORT"}.get(s, s.upper())


class CloseAllDialog(QDialog):
    """Lists the positions to flatten and the estimated realised P&L; Cancel is the default."""

    emergencyStop = Signal()
    HEADERS = ("Symbol", "Side", "Quantity", "Last", "Unrealised P&L")

    def __init__(
        self,
        positions: Sequence[Mapping[str, Any]],
        estimated_pnl: Decimal | float | None,
        open_orders: int,
        parent: QWidget | None = None,
        *,
        currency: str = "",
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Close all positions?")
        self.setModal(False)  # EMERGENCY STOP behind it stays reachable
        n = len(positions)
        plural = "s" if n != 1 else ""
        orders = f"cancel {open_orders} open order{'s' if open_orders != 1 else ''}"
        question = f"Close {n} position{plural} at market and {orders}?"
        headline = QLabel(question if n else f"No open positions. {orders.capitalize()}?")
        headline.setObjectName("dialogHeadline")
        headline.setWordWrap(True)

        self.table = QTableWidget(n, len(self.HEADERS))
        self.table.setHorizontalHeaderLabels(list(self.HEADERS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        pal = theme.current_palette()
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for row, p in enumerate(positions):
            qty = fmt.to_decimal(p.get("qty"))
            pnl = p.get("unrealized_pnl")
            cells = (
                (str(p.get("symbol", "")), None),
                (_side_text(p), None),
                (fmt.fmt_qty(abs(qty) if qty is not None else None), right),
                (fmt.fmt_price(p.get("last", p.get("last_price"))), right),
                (fmt.fmt_money(pnl, signed=True), right),
            )
            for col, (text, align) in enumerate(cells):
                item = QTableWidgetItem(text)
                if align is not None:
                    item.setTextAlignment(align)
                self.table.setItem(row, col, item)
            tone = _tone(pnl)
            if tone != "flat":
                colour = pal.green if tone == "pos" else pal.red
                self.table.item(row, 4).setForeground(QColor(colour))
        self.table.setVisible(n > 0)

        pnl_caption = QLabel("ESTIMATED REALISED P&L (at last prices)")
        pnl_caption.setProperty("role", "caption")
        pnl_text = fmt.fmt_money(estimated_pnl, signed=True, currency=currency)
        self.pnl_label = QLabel(f"{fmt.arrow(estimated_pnl)} {pnl_text}".strip())
        self.pnl_label.setProperty("role", "figure")
        self.pnl_label.setProperty("tone", _tone(estimated_pnl))
        note = QLabel(
            "⚠ Market orders may fill at worse prices than shown. Trading will be HALTED afterwards."
        )
        note.setObjectName("warningNote")
        note.setWordWrap(True)

        self.close_button = QPushButton("Close all positions")
        self.close_button.setProperty("destructive", "true")
        self.close_button.setAutoDefault(False)
        self.close_button.setDefault(False)
        self.close_button.setToolTip("Flatten everything listed above at market now")
        self.close_button.clicked.connect(self.accept)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAutoDefault(True)
        self.cancel_button.setDefault(True)
        self.cancel_button.clicked.connect(self.reject)
        self.stop_button = emergency_stop_button()
        self.stop_button.clicked.connect(self.emergencyStop.emit)

        buttons = QHBoxLayout()
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(headline)
        layout.addWidget(self.table)
        layout.addWidget(pnl_caption)
        layout.addWidget(self.pnl_label)
        layout.addWidget(note)
        layout.addLayout(buttons)
        self.resize(560, self.sizeHint().height())
        self.cancel_button.setFocus()

    def showEvent(self, event: QShowEvent) -> None:
        # every row visible without an empty band below (sizes are final only once styled);
        # scroll only for a long book
        t = self.table
        height = t.horizontalHeader().height() + t.verticalHeader().length() + 2 * t.frameWidth() + 2
        t.setFixedHeight(min(300, height))
        super().showEvent(event)


class ResumeDialog(QDialog):
    """Asks why trading resumes (required); shows a breaker's refusal and then refuses to proceed."""

    emergencyStop = Signal()

    def __init__(self, refusal: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Resume trading")
        self.setModal(False)
        headline = QLabel("Trading is HALTED. Resume and let orders flow again?")
        headline.setObjectName("dialogHeadline")
        headline.setWordWrap(True)
        prompt = QLabel("Reason (required; written to the audit log):")
        self.reason_edit = QLineEdit()
        self.reason_edit.setPlaceholderText("e.g. venue outage over, checked open orders")
        self.reason_edit.setMaxLength(500)
        self.refusal_label = QLabel()
        self.refusal_label.setObjectName("refusal")
        self.refusal_label.setWordWrap(True)

        self.ok_button = QPushButton("▶ Resume trading")
        self.ok_button.setDefault(True)
        self.ok_button.clicked.connect(self.accept)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAutoDefault(False)
        self.cancel_button.clicked.connect(self.reject)
        self.stop_button = emergency_stop_button()
        self.stop_button.clicked.connect(self.emergencyStop.emit)
        buttons = QHBoxLayout()
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        buttons.addWidget(self.ok_button)
        buttons.addWidget(self.cancel_button)

        layout = QVBoxLayout(self)
        layout.addWidget(headline)
        layout.addWidget(self.refusal_label)
        layout.addWidget(prompt)
        layout.addWidget(self.reason_edit)
        layout.addLayout(buttons)
        self.reason_edit.textChanged.connect(self._update)
        self._refusal: str | None = None
        self.set_refusal(refusal)
        self.resize(480, self.sizeHint().height())
        self.reason_edit.setFocus()

    def reason(self) -> str:
        return self.reason_edit.text().strip()

    @property
    def refusal(self) -> str | None:
        return self._refusal

    def set_refusal(self, refusal: str | None) -> None:
        """A breaker still holds (or no longer does): refuse or allow resuming."""
        self._refusal = refusal or None
        self.refusal_label.setText(f"✖ Resume refused: {refusal}" if refusal else "")
        self.refusal_label.setVisible(bool(refusal))
        self._update()

    def can_resume(self) -> bool:
        return self._refusal is None and bool(self.reason())

    def _update(self) -> None:
        ok = self.can_resume()
        self.ok_button.setEnabled(ok)
        if self._refusal:
            tip = "Resume is refused while the condition above holds."
        elif not ok:
            tip = "Enter a reason first."
        else:
            tip = "Set the trading state back to ACTIVE."
        self.ok_button.setToolTip(tip)

    def accept(self) -> None:
        if self.can_resume():  # Enter in the field must not bypass the rules
            super().accept()


class PullStopsDialog(QDialog):
    """The separate confirmation for an emergency stop that also cancels the resting stop legs.

    The act strips protection, so it takes a ticked box and a deliberate click; Cancel is the
    default and Enter never confirms.
    """

    def __init__(self, positions: int, stop_legs: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Emergency stop and pull resting stops?")
        self.setModal(False)
        headline = QLabel("Halt trading AND cancel the resting stop-loss legs?")
        headline.setObjectName("dialogHeadline")
        headline.setWordWrap(True)
        legs = f"{stop_legs} resting stop-loss leg{'s' if stop_legs != 1 else ''}"
        held = f"{positions} open position{'s' if positions != 1 else ''}"
        self.text_label = QLabel(
            f"An ordinary EMERGENCY STOP keeps the {legs} at the venue. This one cancels them too: "
            f"the {held} then have NO protection at the venue, and the engine does not watch them "
            "once it is closed."
        )
        self.text_label.setWordWrap(True)
        self.text_label.setObjectName("warningNote")
        self.understood = QCheckBox(f"I understand: the {held} will be unprotected")
        self.confirm_button = QPushButton("Stop and pull the stops")
        self.confirm_button.setProperty("destructive", "true")
        self.confirm_button.setAutoDefault(False)
        self.confirm_button.setDefault(False)
        self.confirm_button.setEnabled(False)
        self.confirm_button.clicked.connect(self.accept)
        self.cancel_button = QPushButton("Cancel (keep the stops)")
        self.cancel_button.setAutoDefault(True)
        self.cancel_button.setDefault(True)
        self.cancel_button.clicked.connect(self.reject)
        self.understood.toggled.connect(self.confirm_button.setEnabled)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.confirm_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(headline)
        layout.addWidget(self.text_label)
        layout.addWidget(self.understood)
        layout.addLayout(buttons)
        self.resize(500, self.sizeHint().height())
        self.cancel_button.setFocus()

    def accept(self) -> None:
        if self.understood.isChecked():  # Enter or a stray accept() must not bypass the tick
            super().accept()
