"""The approval dialog (one request, with a countdown) and the panel listing every pending request.

Both are given plain values: the request's ``details`` dict as the approval gate builds it
(symbol, side, qty, price, notional, equity_share, stop_loss, reason, checks_passed, ...)
and the seconds left. Buttons only emit signals; the dialog closes when the console calls
``mark_resolved`` (the engine decided, possibly refusing), or by itself when its countdown
reaches zero. No button is a default: a stray Enter must neither approve nor reject.
Open the dialog with ``.open()``, never ``exec()`` (a nested loop breaks qasync).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDoubleSpinBox,
    QFormLayout,
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
from widgets.dialogs import emergency_stop_button

WARN_S = 60.0  # the countdown turns amber below a minute, red below URGENT_S
URGENT_S = 10.0


def _dec(value: object) -> Decimal | None:
    try:
        return None if value in (None, "") else Decimal(str(value))
    except InvalidOperation:
        return None


def _decimals(qty: Decimal) -> int:
    exp = qty.normalize().as_tuple().exponent
    return min(8, max(0, -exp)) if isinstance(exp, int) else 8


def countdown_text(seconds: float) -> str:
    s = max(0, int(seconds + 0.999))  # 0.2 s left still reads 0:01, never a premature 0:00
    return f"{s // 60}:{s % 60:02d}" if s < 3600 else f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def countdown_colour(seconds: float) -> str:
    pal = theme.current_palette()
    return pal.red if seconds < URGENT_S else pal.amber if seconds < WARN_S else pal.text


def side_colour(side: str) -> str:
    pal = theme.current_palette()
    return pal.green if side.lower() == "buy" else pal.red


class ApprovalDialog(QDialog):
    """One pending request. ``approved(id, qty)`` carries None for the full quantity, else a Decimal."""

    approved = Signal(str, object)
    # shadows QDialog.rejected on purpose (the API asked for it): Esc/close still only hide the dialog
    rejected = Signal(str, str)
    expired = Signal(str)
    emergencyStop = Signal()  # its own stop button: the dialog may cover the main one for 30 minutes

    def __init__(self, details: Mapping[str, Any], deadline_s: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.details = dict(details)
        self.request_id = str(details.get("request_id", ""))
        self.status = "pending"
        self._deadline = time.monotonic() + max(0.0, deadline_s)
        self.qty = _dec(details.get("qty")) or Decimal(0)
        side = str(details.get("side", "")).upper()
        symbol = str(details.get("symbol", ""))
        self.setWindowTitle(f"Approval needed — {side} {symbol}")
        self.setModal(False)  # the operator may still reach EMERGENCY STOP behind it

        headline = QLabel(
            f"<span style='color:{side_colour(side)}'>{side}</span> {fmt.fmt_qty(self.qty)} {symbol}"
        )
        headline.setObjectName("dialogHeadline")
        headline.setTextFormat(Qt.TextFormat.RichText)
        self.countdown_label = QLabel()
        self.countdown_label.setObjectName("approvalCountdown")
        self.countdown_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        expires = QLabel("EXPIRES IN")
        expires.setProperty("role", "caption")
        expires.setAlignment(Qt.AlignmentFlag.AlignRight)
        clock = QVBoxLayout()
        clock.setSpacing(0)
        clock.addWidget(expires)
        clock.addWidget(self.countdown_label)
        top = QHBoxLayout()
        top.addWidget(headline, 1)
        top.addLayout(clock)

        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.fields: dict[str, QLabel] = {}
        for key, label, text in self._rows():
            value = QLabel(text)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setWordWrap(key == "reason")
            self.fields[key] = value
            form.addRow(f"{label}:", value)
        self.fields["side"].setStyleSheet(f"color: {side_colour(side)}; font-weight: bold;")

        checks = [str(c) for c in details.get("checks_passed") or []]
        checks_caption = QLabel(f"RISK CHECKS PASSED ({len(checks)})")
        checks_caption.setProperty("role", "caption")
        self.checks_label = QLabel("\n".join(f"✔ {c.replace('_', ' ')}" for c in checks) or "none listed")
        self.checks_label.setStyleSheet(f"color: {theme.current_palette().green};")

        self.qty_spin = QDoubleSpinBox()
        decimals = _decimals(self.qty)
        step = 10.0**-decimals
        self.qty_spin.setDecimals(decimals)
        self.qty_spin.setRange(step, max(step, float(self.qty)))  # (0, qty]: reduce, never raise
        self.qty_spin.setSingleStep(max(step, float(self.qty) / 10))
        self.qty_spin.setValue(float(self.qty))
        self.qty_spin.setToolTip("Approve a smaller quantity; it can never exceed the request")
        self.reason_edit = QLineEdit()
        self.reason_edit.setPlaceholderText("Reason for rejecting (optional, audited)")
        self.message_label = QLabel()
        self.message_label.setObjectName("refusal")
        self.message_label.setWordWrap(True)
        self.message_label.hide()

        self.approve_button = QPushButton(f"✔ Approve {fmt.fmt_qty(self.qty)}")
        self.approve_button.setObjectName("approveButton")
        self.approve_button.setStyleSheet(
            f"QPushButton {{ font-weight: bold; border: 2px solid {theme.current_palette().green}; }}"
        )
        self.reduced_button = QPushButton("Approve reduced quantity")
        self.reject_button = QPushButton("✖ Reject")
        self.reject_button.setProperty("destructive", "true")
        for b in (self.approve_button, self.reduced_button, self.reject_button):
            b.setAutoDefault(False)
            b.setDefault(False)
        self.approve_button.clicked.connect(lambda: self.approved.emit(self.request_id, None))
        self.reduced_button.clicked.connect(self._approve_reduced)
        self.reject_button.clicked.connect(
            lambda: self.rejected.emit(self.request_id, self.reason_edit.text().strip())
        )
        reduce_row = QHBoxLayout()
        reduce_row.addWidget(QLabel("Reduced quantity:"))
        reduce_row.addWidget(self.qty_spin, 1)
        reduce_row.addWidget(self.reduced_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.reject_button)
        buttons.addStretch(1)
        buttons.addWidget(self.approve_button)
        self.stop_button = emergency_stop_button()
        self.stop_button.clicked.connect(self.emergencyStop.emit)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(form)
        layout.addWidget(checks_caption)
        layout.addWidget(self.checks_label)
        layout.addLayout(reduce_row)
        layout.addWidget(self.reason_edit)
        layout.addWidget(self.message_label)
        layout.addLayout(buttons)
        layout.addWidget(self.stop_button)
        self.timer = QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self.tick)
        self.tick()
        self.resize(520, self.sizeHint().height())

    def _rows(self) -> list[tuple[str, str, str]]:
        d = self.details
        price = _dec(d.get("price"))
        stop = _dec(d.get("stop_loss"))
        share = d.get("equity_share")
        stop_text = fmt.fmt_price(stop)
        if stop is not None and price:
            stop_text += f"  ({fmt.fmt_pct((stop - price) / price * 100, signed=True)} from price)"
        share_text = fmt.EMPTY if share is None else f"{float(share) * 100:.2f} % of equity"
        if share is not None and d.get("equity"):
            share_text += f" ({fmt.fmt_money(d.get('equity'))})"
        strategy = " / ".join(str(x) for x in (d.get("strategy"), d.get("tag")) if x)
        return [
            ("symbol", "Symbol", str(d.get("symbol", fmt.EMPTY))),
            ("side", "Side", str(d.get("side", "")).upper()),
            ("qty", "Quantity", f"{fmt.fmt_qty(self.qty)} ({d.get('order_type', 'market')})"),
            ("price", "Price", fmt.fmt_price(price) if price is not None else "market"),
            ("notional", "Notional", fmt.fmt_money(d.get("notional"))),
            ("equity_share", "Share of equity", share_text),
            ("stop_loss", "Stop loss", stop_text),
            ("take_profit", "Take profit", fmt.fmt_price(_dec(d.get("take_profit")))),
            ("stage", "Stage", str(d.get("stage") or fmt.EMPTY).replace("_", " ")),
            ("strategy", "Strategy", strategy or fmt.EMPTY),
            ("reason", "Strategy's reason", str(d.get("reason") or fmt.EMPTY)),
        ]

    # --- state ------------------------------------------------------------------------------
    def seconds_left(self) -> float:
        return max(0.0, self._deadline - time.monotonic())

    def tick(self) -> None:
        left = self.seconds_left()
        self.countdown_label.setText(countdown_text(left))
        self.countdown_label.setStyleSheet(
            f"color: {countdown_colour(left)}; font-size: 20pt; font-weight: bold;"
        )
        self.countdown_label.setToolTip("Time left to decide; at zero the request is rejected, never approved")
        if left <= 0 and self.status == "pending":
            self.expired.emit(self.request_id)
            self.mark_resolved("expired")

    def show_message(self, text: str) -> None:
        """The engine refused a decision (quantity too small, halted, ...): say why, stay open."""
        self.message_label.setText(f"✖ {text}")
        self.message_label.setVisible(bool(text))

    def mark_resolved(self, status: str) -> None:
        """Decided here or elsewhere, or expired: stop counting and close."""
        self.status = status
        self.timer.stop()
        for b in (self.approve_button, self.reduced_button, self.reject_button):
            b.setEnabled(False)
        self.countdown_label.setText(status.upper())
        self.done(QDialog.DialogCode.Accepted if status == "approved" else QDialog.DialogCode.Rejected)

    def reduced_qty(self) -> Decimal:
        return Decimal(f"{self.qty_spin.value():.{self.qty_spin.decimals()}f}")

    def _approve_reduced(self) -> None:
        self.approved.emit(self.request_id, min(self.reduced_qty(), self.qty))

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self.status == "pending":
            self.timer.start()


class ApprovalsPanel(QWidget):
    """Every pending request with its countdown; double-click (or Enter) on a row asks to open it."""

    requestSelected = Signal(str)
    HEADERS = ("Expires in", "Side", "Symbol", "Quantity", "Notional", "Share", "Reason")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._deadlines: dict[str, float] = {}
        self.table = QTableWidget(0, len(self.HEADERS))
        self.table.setHorizontalHeaderLabels(list(self.HEADERS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.itemActivated.connect(lambda item: self._select(item.row()))
        self.table.cellDoubleClicked.connect(lambda row, _col: self._select(row))
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.empty_label = QLabel("No approvals pending.")
        self.empty_label.setProperty("role", "info")
        self.message_label = QLabel()
        self.message_label.setObjectName("refusal")
        self.message_label.setWordWrap(True)
        self.message_label.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.message_label)
        self.timer = QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self.tick)
        self.timer.start()
        self._refresh_empty()

    def ids(self) -> list[str]:
        return [self.table.item(r, 0).data(Qt.ItemDataRole.UserRole) for r in range(self.table.rowCount())]

    def row_count(self) -> int:
        return self.table.rowCount()

    def _row_of(self, request_id: str) -> int | None:
        ids = self.ids()
        return ids.index(request_id) if request_id in ids else None

    def upsert(self, request_id: str, details: Mapping[str, Any], deadline_s: float) -> None:
        self._deadlines[request_id] = time.monotonic() + max(0.0, deadline_s)
        row = self._row_of(request_id)
        if row is None:
            row = self.table.rowCount()
            self.table.insertRow(row)
        side = str(details.get("side", "")).upper()
        share = details.get("equity_share")
        cells = (
            countdown_text(deadline_s),
            side,
            str(details.get("symbol", "")),
            fmt.fmt_qty(details.get("qty")),
            fmt.fmt_money(details.get("notional")),
            fmt.EMPTY if share is None else f"{float(share) * 100:.2f} %",
            str(details.get("reason") or ""),
        )
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for col, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if col in (0, 3, 4, 5):
                item.setTextAlignment(right)
            self.table.setItem(row, col, item)
        self.table.item(row, 0).setData(Qt.ItemDataRole.UserRole, request_id)
        self.table.item(row, 1).setForeground(QColor(side_colour(side)))
        self._refresh_empty()
        self.tick()

    def remove(self, request_id: str) -> None:
        self._deadlines.pop(request_id, None)
        row = self._row_of(request_id)
        if row is not None:
            self.table.removeRow(row)
        self._refresh_empty()

    def countdown(self, request_id: str) -> str:
        row = self._row_of(request_id)
        return "" if row is None else self.table.item(row, 0).text()

    def set_message(self, text: str) -> None:
        self.message_label.setText(f"✖ {text}" if text else "")
        self.message_label.setVisible(bool(text))

    def tick(self) -> None:
        now = time.monotonic()
        for row, rid in enumerate(self.ids()):
            left = max(0.0, self._deadlines.get(rid, now) - now)
            item = self.table.item(row, 0)
            item.setText(countdown_text(left))
            item.setForeground(QColor(countdown_colour(left)))

    def _select(self, row: int) -> None:
        item = self.table.item(row, 0)
        if item is not None:
            self.requestSelected.emit(str(item.data(Qt.ItemDataRole.UserRole)))

    def _selection_changed(self) -> None:
        rows = {i.row() for i in self.table.selectedItems()}
        if len(rows) == 1:
            self._select(rows.pop())

    def _refresh_empty(self) -> None:
        self.empty_label.setVisible(self.table.rowCount() == 0)
