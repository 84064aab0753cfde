"""Engine-to-Qt bridge: coalesce the event stream, flush it to the widgets at ~20 Hz.

The engine may publish thousands of market events a second; repainting on each
would freeze the window. Bus handlers therefore only store the latest value per
key (price per symbol, order per client id, position per symbol, latest equity
and risk values), which costs a dict write, and a QTimer pushes the lot to the
widgets. Alerts, state changes and progress are rare and urgent: they leave at
the next turn of the event loop (queued, in order), never inside the engine's call
stack, so no dialog is built and no D-Bus message sent inside `submit_intent` or
`alert()`, and a slow slot never delays the order path.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal

from engine.core.events import (
    AlertAcknowledged,
    AlertEvent,
    ApprovalEvent,
    ConnectionEvent,
    EquityEvent,
    EventBus,
    FillEvent,
    MarketEvent,
    OrderEvent,
    PositionEvent,
    ProgressEvent,
    RiskEvent,
    StageEvent,
    StateChanged,
)
from engine.core.model import Fill, MarketTick, Order, Position

if TYPE_CHECKING:
    from engine.app.console_view import ConsoleEngine as Engine

FLUSH_MS = 50


class EngineBridge(QObject):
    """Subscribes to `bus`; widgets are fed through the ``view`` callbacks of the main window.

    ``view`` is any object with the ``show_*`` methods below (the main window); keeping
    the bridge free of widget classes lets the benchmark and tests observe flushes.
    """

    alertRaised = Signal(object)  # AlertEvent (with an alert_id)
    alertAcknowledged = Signal(object)  # AlertAcknowledged
    stateChanged = Signal(object)  # StateChanged
    progressed = Signal(object)  # ProgressEvent
    stageChanged = Signal(object)  # StageEvent
    approvalChanged = Signal(object)  # ApprovalEvent
    flushed = Signal()

    def __init__(self, bus: EventBus, view: Any, parent: QObject | None = None, flush_ms: int = FLUSH_MS):
        super().__init__(parent)
        self.view = view
        self._prices: dict[str, MarketTick] = {}
        self._price_seen_at: dict[str, float] = {}  # monotonic time of the oldest unflushed tick
        self._orders: dict[str, Order] = {}
        self._positions: dict[str, Position] = {}  # every open position, kept marked to market
        self._dirty_positions: set[str] = set()
        self._fills: list[tuple[Fill, Order]] = []
        self._equity: EquityEvent | None = None
        self._equity_points: list[EquityEvent] = []
        self._daily_pnl: dict[date, float] = {}
        self._daily_dirty = False
        self._risk: RiskEvent | None = None
        self._connection: ConnectionEvent | None = None
        self._alert_ids = itertools.count(1)
        self.latency_probe: Callable[[float], None] | None = None  # seconds, tick received -> model
        self.flushes = 0
        self._unsubscribe = [
            bus.subscribe(self._on_market, MarketEvent),
            bus.subscribe(self._on_order, OrderEvent),
            bus.subscribe(self._on_fill, FillEvent),
            bus.subscribe(self._on_position, PositionEvent),
            bus.subscribe(self._on_equity, EquityEvent),
            bus.subscribe(self._on_risk, RiskEvent),
            bus.subscribe(self._on_connection, ConnectionEvent),
            bus.subscribe(self._on_alert, AlertEvent),
            bus.subscribe(lambda ev: self._later(self.alertAcknowledged, ev), AlertAcknowledged),
            bus.subscribe(lambda ev: self._later(self.stateChanged, ev), StateChanged),
            bus.subscribe(lambda ev: self._later(self.progressed, ev), ProgressEvent),
            bus.subscribe(lambda ev: self._later(self.stageChanged, ev), StageEvent),
            bus.subscribe(lambda ev: self._later(self.approvalChanged, ev), ApprovalEvent),
        ]
        self._urgent: list[tuple[Any, object]] = []
        self._timer = QTimer(self)
        self._timer.setInterval(flush_ms)
        self._timer.timeout.connect(self.flush)
        self._timer.start()

    def seed(self, engine: Engine) -> None:
        """Show what the engine already holds (restored from the journal) before events arrive."""
        for p in engine.portfolio.positions():
            self._positions[p.symbol] = p
            self._dirty_positions.add(p.symbol)
        for o in engine.orders.values():
            self._orders[o.client_id] = o
        self.flush()

    def detach(self) -> None:
        self._timer.stop()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    # ---- bus handlers: store only, no Qt work ------------------------------------------------
    def _on_market(self, ev: MarketEvent) -> None:
        tick = ev.tick
        sym = tick.symbol
        if sym not in self._prices:
            self._price_seen_at[sym] = time.perf_counter()
        self._prices[sym] = tick

    def _on_order(self, ev: OrderEvent) -> None:
        self._orders[ev.order.client_id] = ev.order

    def _on_fill(self, ev: FillEvent) -> None:
        self._fills.append((ev.fill, ev.order))

    def _on_position(self, ev: PositionEvent) -> None:
        p = ev.position
        if p.qty == 0:
            self._positions.pop(p.symbol, None)
        else:
            self._positions[p.symbol] = p
        self._dirty_positions.add(p.symbol)

    def _on_equity(self, ev: EquityEvent) -> None:
        self._equity = ev
        self._equity_points.append(ev)
        self._daily_pnl[ev.ts.date()] = float(ev.day_pnl)
        self._daily_dirty = True

    def _on_risk(self, ev: RiskEvent) -> None:
        self._risk = ev

    def _on_connection(self, ev: ConnectionEvent) -> None:
        self._connection = ev

    def _on_alert(self, ev: AlertEvent) -> None:
        if not ev.alert_id:
            ev = dataclasses.replace(ev, alert_id=f"ui-{next(self._alert_ids)}")
        self._later(self.alertRaised, ev)

    def _later(self, signal: Any, ev: object) -> None:
        """Queue an urgent signal for the next turn of the event loop, keeping the engine's order."""
        if not self._urgent:
            QTimer.singleShot(0, self._emit_urgent)
        self._urgent.append((signal, ev))

    def _emit_urgent(self) -> None:
        pending, self._urgent = self._urgent, []
        for signal, ev in pending:
            signal.emit(ev)

    # ---- the flush -----------------------------------------------------------------------------
    def flush(self) -> None:
        """Push everything that changed since the last flush to the view."""
        view = self.view
        prices, self._prices = self._prices, {}
        seen_at, self._price_seen_at = self._price_seen_at, {}
        if prices:
            for sym, tick in prices.items():
                pos = self._positions.get(sym)
                if pos is not None and pos.last_price != tick.last:
                    self._positions[sym] = dataclasses.replace(pos, last_price=tick.last)
                    self._dirty_positions.add(sym)
            view.show_prices(prices)
        if self._dirty_positions:
            dirty, self._dirty_positions = self._dirty_positions, set()
            view.show_positions({s: self._positions.get(s) for s in dirty})
        if self._orders:
            orders, self._orders = self._orders, {}
            view.show_orders(list(orders.values()))
        if self._fills:
            fills, self._fills = self._fills, []
            view.show_fills(fills)
        if self._equity_points:
            points, self._equity_points = self._equity_points, []
            view.show_equity(points)
        if self._daily_dirty:
            self._daily_dirty = False
            view.show_daily_pnl(sorted(self._daily_pnl.items()))
        if self._risk is not None:
            risk, self._risk = self._risk, None
            view.show_risk(risk.rules)
        if self._connection is not None:
            conn, self._connection = self._connection, None
            view.show_connection(conn)
        self.flushes += 1
        probe = self.latency_probe
        if probe is not None and seen_at:
            done = time.perf_counter()
            for t in seen_at.values():
                probe(done - t)
        self.flushed.emit()

    @property
    def open_positions(self) -> dict[str, Position]:
        return dict(self._positions)
