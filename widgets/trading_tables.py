"""Positions, orders and fills tables, and the helpers that turn engine values into their rows.

Each table takes plain dicts (documented per class; values may be Decimal, float, str, enum
or datetime) and knows nothing of the engine. The helpers ``position_row``/``order_row``/
``fill_row`` turn `engine.core.model` values into those dicts. The table widget itself
(view, proxy, column menu) is `widgets.record_table.RecordTable`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar

from PySide6.QtCore import QModelIndex, QTimer, Signal
from PySide6.QtWidgets import QWidget

from engine.core.model import Fill, Order, OrderStatus, Position
from widgets import format as fmt
from widgets.record_table import Record, RecordTable
from widgets.table_model import Column


def _abs_qty(r: Record) -> object:
    d = fmt.to_decimal(r.get("qty"))
    return None if d is None else abs(d)


def _position_side(r: Record) -> str | None:
    side = r.get("side")
    if side is not None:
        s = str(side).lower()
        return {"buy": "long", "sell": "short"}.get(s, s)
    d = fmt.to_decimal(r.get("qty"))
    return None if d is None or d == 0 else ("long" if d > 0 else "short")


# what really guards a position (engine.core.model.ProtectionStatus values), worst first
_PROTECTION_RANK = {"unprotected": 0, "none": 1, "watched": 2, "venue": 3}
_PROTECTION_COLOUR = {"unprotected": "red", "none": "amber", "watched": "amber", "venue": "green"}


def protection_status(r: Record) -> str:
    """"venue", "watched", "unprotected", "none", or "" when the engine did not say."""
    status = r.get("protection")
    return "" if status is None else str(getattr(status, "value", status)).lower()


def protection_text(r: Record) -> str:
    status, price = protection_status(r), r.get("protection_price")
    if status == "venue":
        return f"stop @ {fmt.fmt_price(price)} at venue"
    if status == "watched":
        return f"watched @ {fmt.fmt_price(price)}"
    if status == "unprotected":
        return "⚠ UNPROTECTED"
    if status == "none":
        return "no stop"
    return fmt.EMPTY


class PositionsTable(RecordTable):
    """Open positions, keyed by symbol.

    Keys: symbol, qty (signed: + long, − short), side (optional: long/short/buy/sell;
    derived from qty when absent), avg_price, last, unrealized_pnl, unrealized_pct
    (percent units), stop_loss (the planned level), take_profit, opened_at (datetime, or
    age in seconds), protection ("venue": a stop order rests at the venue, "watched": the
    engine watches the level and exits at market, "unprotected": a stop was planned and
    nothing holds it, "none": no stop asked for) and protection_price (the level really
    held). An upsert with qty == 0 removes the row (a closed position).
    """

    closeRequested = Signal(str)
    selectedSymbol = Signal(str)

    COLUMNS = (
        Column("symbol", "Symbol", bold=True, tooltip="Instrument", width=110),
        Column("side", "Side", "side", value=_position_side, tooltip="LONG or SHORT", width=70),
        # near the symbol, not past the right edge: on a 1280 or 1366 screen the last columns are off-view
        Column("close", "", button="Close", value=lambda r: True, width=80,
               tooltip="Close this position at market (asks for confirmation)"),
        Column("qty", "Quantity", "qty", value=_abs_qty, tooltip="Position size (absolute)"),
        Column("avg_price", "Avg price", "price", tooltip="Average entry price"),
        Column("last", "Last", "price", tooltip="Last traded / mark price"),
        Column("unrealized_pnl", "Unrealised P&L", "money", signed=True, bold=True,
               tooltip="Profit or loss if closed at the last price (quote currency)"),
        Column("unrealized_pct", "P&L %", "pct", signed=True, tooltip="Unrealised P&L as % of entry cost"),
        Column("protection", "Protection", value=protection_text, bold=True, width=185,
               colour=lambda r: _PROTECTION_COLOUR.get(protection_status(r)),
               sort_value=lambda r: _PROTECTION_RANK.get(protection_status(r), 9),
               tooltip="What really guards the position now: a stop resting at the venue, a level the\n"
                       "engine watches (exits at market), or UNPROTECTED (red: nothing holds the stop)"),
        Column("stop_loss", "Planned stop", "price", default_visible=False,
               tooltip="The stop level the strategy asked for; see Protection for what really holds it"),
        Column("take_profit", "Take profit", "price", tooltip="Take-profit price (— = none)"),
        Column("opened_at", "Age", "age", tooltip="Time since the position was opened"),
    )

    def __init__(self, parent: QWidget | None = None, *, now: Callable[[], datetime] | None = None) -> None:
        super().__init__(self.COLUMNS, "symbol", sort_column="symbol", now=now, parent=parent)
        self.view.selectionModel().currentRowChanged.connect(self._current_changed)
        self._age_timer = QTimer(self)
        self._age_timer.setInterval(1000)
        self._age_timer.timeout.connect(self.model.refresh_ages)
        self._age_timer.start()

    def normalise(self, record: Record) -> Record:
        if "last_price" in record and "last" not in record:
            record = {**record, "last": record["last_price"]}
        return record

    def upsert(self, record: Record) -> None:
        qty = fmt.to_decimal(record.get("qty", 1))
        if qty is not None and qty == 0:
            self.remove(str(record["symbol"]))
        else:
            super().upsert(record)

    def button_tone(self, column: Column) -> str:
        return "red"

    def unprotected_symbols(self) -> list[str]:
        """Positions a planned stop no longer guards (nothing rests at the venue, nothing watches)."""
        return sorted(str(r["symbol"]) for r in self.model.records() if protection_status(r) == "unprotected")

    def button_clicked(self, key: str, column: str) -> None:
        self.closeRequested.emit(key)

    def row_actions(self, key: str) -> list[tuple[str, Callable[[], None]]]:
        return [(f"Close {key} at market…", lambda: self.closeRequested.emit(key))]

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.selectedSymbol.emit(self._key_of(current))


_WORKING = {s.value for s in OrderStatus if s.is_working}
_STATUS_COLOUR = {"filled": "green", "rejected": "red", "canceled": "muted", "expired": "muted"}


def _status(r: Record) -> str:
    return str(r.get("status") or "").lower()


def _upper(value: object) -> str:
    return str(value or "").upper().replace("_", " ")


class OrdersTable(RecordTable):
    """Orders, keyed by client_id.

    Keys: client_id, created_at (datetime), symbol, side, order_type (or "type"), qty,
    filled_qty (or "filled"), price, stop_price (or "stop"), status, role; optional
    venue_order_id, avg_fill_price, strategy, reason. Working orders get a Cancel button.
    """

    cancelRequested = Signal(str)

    COLUMNS = (
        Column("created_at", "Time", "time", tooltip="When the order was created (UTC)", width=80),
        Column("symbol", "Symbol", bold=True, width=100),
        Column("side", "Side", "side", width=60),
        Column("order_type", "Type", value=lambda r: _upper(r.get("order_type"))),
        Column("qty", "Qty", "qty", tooltip="Ordered quantity"),
        Column("filled_qty", "Filled", "qty", tooltip="Quantity filled so far"),
        Column("price", "Price", "price", tooltip="Limit price (— for market orders)"),
        Column("stop_price", "Stop", "price", tooltip="Trigger price of stop orders"),
        Column("status", "Status", value=lambda r: _upper(r.get("status")),
               colour=lambda r: _STATUS_COLOUR.get(_status(r)), bold=True),
        Column("role", "Role", tooltip="entry, stop_loss, take_profit, exit or flatten"),
        Column("client_id", "Client id", tooltip="This engine's order id"),
        Column("venue_order_id", "Venue id", default_visible=False, tooltip="The venue's order id"),
        Column("avg_fill_price", "Avg fill", "price", default_visible=False),
        Column("strategy", "Strategy", default_visible=False),
        Column("cancel", "", button="Cancel", value=lambda r: _status(r) in _WORKING, width=80,
               tooltip="Cancel this order"),
    )

    _ALIASES: ClassVar[dict[str, str]] = {
        "type": "order_type", "filled": "filled_qty", "stop": "stop_price", "time": "created_at"
    }

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(self.COLUMNS, "client_id", sort_column="created_at", descending=True, parent=parent)

    def normalise(self, record: Record) -> Record:
        if any(a in record for a in self._ALIASES):
            record = {self._ALIASES.get(k, k): v for k, v in record.items()}
        return record

    def button_tone(self, column: Column) -> str:
        return "amber"

    def button_clicked(self, key: str, column: str) -> None:
        self.cancelRequested.emit(key)

    def row_actions(self, key: str) -> list[tuple[str, Callable[[], None]]]:
        rec = self.model.get(key) or {}
        if _status(rec) not in _WORKING:
            return []
        return [(f"Cancel order {key}", lambda: self.cancelRequested.emit(key))]


class FillsTable(RecordTable):
    """Executions, keyed by fill_id, newest first, bounded to ``max_rows``.

    Keys: fill_id, ts (datetime), symbol, side, qty, price, fee, liquidity (maker/taker),
    client_id (the order id); optional venue_order_id, fee_currency.
    """

    COLUMNS = (
        Column("ts", "Time", "time", tooltip="Execution time (UTC)", width=80),
        Column("symbol", "Symbol", bold=True, width=100),
        Column("side", "Side", "side", width=60),
        Column("qty", "Qty", "qty"),
        Column("price", "Price", "price"),
        Column("fee", "Fee", "money", tooltip="Fee paid (quote currency unless stated)"),
        Column("liquidity", "Liquidity", value=lambda r: _upper(r.get("liquidity")),
               tooltip="MAKER (added liquidity) or TAKER"),
        Column("client_id", "Order id", tooltip="Client id of the order this fill belongs to"),
        Column("venue_order_id", "Venue order id", default_visible=False),
        Column("fill_id", "Fill id", default_visible=False),
    )

    def __init__(self, parent: QWidget | None = None, *, max_rows: int = 5000) -> None:
        super().__init__(self.COLUMNS, "fill_id", sort_column="ts", descending=True, max_rows=max_rows,
                         parent=parent)


def position_row(p: Position) -> dict[str, Any]:
    return {
        "symbol": p.symbol, "qty": p.qty, "avg_price": p.avg_price, "last": p.last_price,
        "unrealized_pnl": p.unrealized_pnl, "unrealized_pct": p.unrealized_pct,
        "stop_loss": p.stop_loss, "take_profit": p.take_profit, "opened_at": p.opened_at,
        # read with getattr: an engine older than the protection status simply does not say
        "protection": getattr(p, "protection", None), "protection_price": getattr(p, "protection_price", None),
    }


def order_row(o: Order) -> dict[str, Any]:
    return {
        "client_id": o.client_id, "created_at": o.created_at, "symbol": o.symbol, "side": o.side.value,
        "order_type": o.order_type.value, "qty": o.qty, "filled_qty": o.filled_qty, "price": o.price,
        "stop_price": o.stop_price, "status": o.status.value, "role": o.role,
        "venue_order_id": o.venue_order_id, "avg_fill_price": o.avg_fill_price, "strategy": o.strategy,
    }


def fill_row(f: Fill) -> dict[str, Any]:
    return {
        "fill_id": f.fill_id, "ts": f.ts, "symbol": f.symbol, "side": f.side.value, "qty": f.qty,
        "price": f.price, "fee": f.fee, "liquidity": f.liquidity.value, "client_id": f.client_id,
        "venue_order_id": f.venue_order_id, "fee_currency": f.fee_currency,
    }
