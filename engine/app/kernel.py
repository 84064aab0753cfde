"""Engine: wires venue, strategy, risk, approvals, portfolio and journal.

Data flows one way (venue -> portfolio -> journal -> strategy -> risk ->
approval -> venue) and every step publishes an event. Operator commands
(emergency stop, close all, resume) live in engine.commands and are mixed in.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.activation.approvals import ApprovalGate
from engine.activation.stage_manager import StageManager
from engine.alerts.center import AlertCenter
from engine.alerts.daily_summary_schedule import DailySummaryScheduler
from engine.alerts.notify.dispatcher import AlertDispatcher
from engine.app.activation_commands import ActivationCommands
from engine.app.commands import OperatorCommands
from engine.app.connection import ConnectionHealth
from engine.core.clock import Clock
from engine.core.config import Settings
from engine.core.events import (
    AlertEvent,
    ConnectionEvent,
    EquityEvent,
    EventBus,
    FillEvent,
    MarketEvent,
    OrderEvent,
    PositionEvent,
    RiskEvent,
    StateChanged,
)
from engine.core.model import (
    ZERO,
    AlertLevel,
    Fill,
    Instrument,
    MarketTick,
    Order,
    OrderStatus,
    OrderUpdate,
    Position,
    TradingState,
)
from engine.oms.execution import OrderFlow
from engine.oms.portfolio import Portfolio
from engine.oms.protection import Protection
from engine.oms.reconcile import Reconciler
from engine.persistence.journal import Journal
from engine.risk.breakers import Breakers
from engine.risk.risk_engine import RiskEngine
from engine.strategies.base import Strategy
from engine.venues.base import AuthenticationFailed, Venue

log = logging.getLogger(__name__)

StrategyFactory = Callable[["Engine", list[str]], Strategy]


class Engine(OperatorCommands, OrderFlow, ActivationCommands):
    def __init__(
        self,
        settings: Settings,
        venue: Venue,
        journal: Journal,
        clock: Clock,
        bus: EventBus | None = None,
        strategy_factory: StrategyFactory | None = None,
        symbols: list[str] | None = None,
    ) -> None:
        self.settings = settings
        self.venue = venue
        self.journal = journal
        self.clock = clock
        self.bus = bus or EventBus()
        self.alert_center = AlertCenter.for_engine(self)  # every alert passes through it
        self.symbols = symbols or list(settings.simulator.symbols)
        self.operator = settings.engine.operator
        self._strategy_factory = strategy_factory
        self.strategy: Strategy | None = None
        self.reconciler: Reconciler | None = None
        self.instruments: dict[str, Instrument] = {}
        self.ticks: dict[str, MarketTick] = {}
        self.orders: dict[str, Order] = {}  # working orders by client id
        self._order_meta: dict[str, Order] = {}  # every order this run knows (for tags on fills)
        self._seen_fills: set[str] = set()
        self._applied_qty: dict[str, Decimal] = {}  # filled quantity booked per client id
        self._waiters: dict[str, list[asyncio.Future[Order]]] = {}
        self._inflight: set[asyncio.Task[Any]] = set()
        self._tasks: list[asyncio.Task[Any]] = []
        self._ids = itertools.count(1)
        self._id_prefix = ""
        self.portfolio = Portfolio(settings.starting_cash, day_tz=settings.engine.trading_day_tz)
        self.risk = RiskEngine(settings.risk, self._state_changed)
        self.breakers = Breakers(settings.risk, self.risk, self.alert, self._breaker_close_all)
        self.protection = Protection(self)
        self.stage_manager = StageManager(self)
        self.approval_gate = ApprovalGate(self)
        self.daily_summary = DailySummaryScheduler(self)  # end-of-day file and message
        self.new_positions_today = 0
        self._day_end: datetime | None = None
        self._next_sample: datetime | None = None
        self._sample_s = settings.engine.equity_sample_s
        self.started_at: datetime | None = None
        self.stopped = asyncio.Event()
        self.market_events = 0
        self.connected = False
        self.health = ConnectionHealth(self)  # links up or down; a lost one is a journaled incident
        venue.link_sink = self.health.link
        self.bus.subscribe(self._journal_alert, AlertEvent)
        self.notifier = AlertDispatcher.for_engine(self)  # webhooks, e-mail: queued, sent by its own tasks

    # --- life cycle -----------------------------------------------------------
    async def start(self) -> None:
        """Connect, restore from the journal, warm the strategy up, start the streams."""
        await self.venue.connect()
        self.instruments = await self.venue.instruments()
        self.symbols = [s for s in self.symbols if s in self.instruments]
        self._restore()
        adopt = getattr(self.venue, "adopt_book", None)
        if adopt is not None:  # the in-process simulated market starts empty: give it our book
            holdings = {p.symbol: p.qty for p in self.portfolio.positions()}
            adopt(self.portfolio.cash, holdings, list(self.orders.values()))
        self.started_at = self.clock.now()
        run = int(self.journal.get_state("runs", 0)) + 1  # client ids never repeat across restarts
        self.journal.set_state("runs", run)
        self._id_prefix = f"tc{run:04d}"
        reconciler = self.reconciler = Reconciler.for_engine(self)  # the venue is the truth: repair, or HALT
        await reconciler.on_start()
        if self._strategy_factory is not None:
            self.strategy = self._strategy_factory(self, self.symbols)
            await self._warm_up()
            self.strategy.on_start()
        self.connected = True
        self.bus.publish(
            ConnectionEvent(self.clock.now(), self.venue.name, True, await self.venue.ping_ms(), 0.0)
        )
        self.notifier.start()
        self._tasks = [
            asyncio.create_task(self._pump_market(), name="market"),
            asyncio.create_task(self._pump_orders(), name="orders"),
            asyncio.create_task(self._housekeeping(), name="housekeeping"),
            *self.start_activation(),  # stages and approvals
            *reconciler.tasks(),
            *self.alert_center.tasks(),  # clock-driven alert rules
        ]
        self.audit("engine_start", f"venue {self.venue.name} ({self.venue.mode})", {"symbols": self.symbols})

    def _restore(self) -> None:
        """Rebuild the book from the journal: fills replayed, open orders, the persisted state."""
        j = self.journal
        start_cash = j.get_state("starting_cash")
        if start_cash is None:
            j.set_state("starting_cash", str(self.portfolio.starting_cash))
        else:
            self.portfolio = Portfolio(Decimal(start_cash), day_tz=self.settings.engine.trading_day_tz)
        tags = {o.client_id: o for o in j.orders()}
        for fill in j.fills():
            o = tags.get(fill.client_id)
            self.portfolio.apply_fill(fill, o.tag if o else "", o.strategy if o else "")
            self._seen_fills.add(fill.fill_id)
            self._applied_qty[fill.client_id] = self._applied_qty.get(fill.client_id, ZERO) + fill.qty
        for o in j.orders(open_only=True):
            self.orders[o.client_id] = o
            self._order_meta[o.client_id] = o
        for p in self.portfolio.positions():
            prot = j.get_state(f"protection:{p.symbol}")
            if prot:
                self.protection.restore(p.symbol, prot)
        state = j.get_state("trading_state")
        if state == TradingState.HALTED.value:
            reason = j.get_state("trading_state_reason") or "halted before restart"
            self.risk.state = TradingState.HALTED
            self.risk.state_reason = f"restored: {reason}"
            self.alert(AlertLevel.CRITICAL, "halt_restored", f"Engine starts HALTED: {reason}")

    async def _warm_up(self) -> None:
        assert self.strategy is not None
        for s in self.symbols:
            for tick in await self.venue.history(s, self.settings.strategy.timeframe_s * 60, 1.0):
                self.strategy.on_tick(tick)

    async def run(self, duration_s: float | None = None) -> None:
        """Run until stopped, or until `duration_s` of engine-clock time has passed."""
        if duration_s is not None:
            assert self.started_at is not None
            self._deadline = self.started_at.timestamp() + duration_s
        await self.stopped.wait()

    _deadline: float | None = None

    async def shutdown(self, policy: str | None = None) -> None:
        """Leave the venue as configured (keep, cancel_orders, close_all), then stop."""
        policy = policy or self.settings.engine.shutdown
        self.audit("engine_shutdown", f"shutdown policy {policy}", {"policy": policy})
        try:
            if policy == "cancel_orders" and self.orders:
                await self._cancel_everything("shutdown", "shutdown", deadline_s=10)
            elif policy == "close_all" and (self.orders or self.portfolio.open_count()):
                await self._run_close_all("shutdown", self.operator)
        finally:
            self.stopped.set()
            for t in self._tasks:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks = []
            await self.notifier.aclose()  # queued alerts get a short grace to go out
            self.journal.set_state("trading_state", self.risk.state.value)
            await asyncio.to_thread(self.journal.flush)
            await self.venue.close()

    # --- market data ------------------------------------------------------------
    async def _pump_market(self) -> None:
        try:
            async for batch in self.venue.market_stream(self.symbols):
                self.on_market(batch)
                if self._inflight:
                    await asyncio.sleep(0)  # let submits started by this batch reach the venue
                if self._deadline is not None and self.clock.now().timestamp() >= self._deadline:
                    self.stopped.set()
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._venue_failure("market data stream failed", exc)

    def on_market(self, batch: list[MarketTick]) -> None:
        pf = self.portfolio
        bus = self.bus
        strategy = self.strategy
        breakers = self.breakers
        for tick in batch:
            self.ticks[tick.symbol] = tick
            pf.mark(tick.symbol, tick.last, tick.ts)
            breakers.on_price(tick.symbol, float(tick.last), tick.ts.timestamp())
            bus.publish(MarketEvent(tick.ts, tick))
            if strategy is not None:
                strategy.on_tick(tick)
        self.market_events += len(batch)
        if not batch:
            return
        now = batch[-1].ts
        if self._day_end is None or now >= self._day_end:
            self._roll_day(now)
        breakers.on_equity(pf.day_pnl, pf.day_start_equity, pf.drawdown)
        self.protection.on_market(now)
        if self._next_sample is None or now >= self._next_sample:
            self._sample(now)

    def _roll_day(self, now: datetime) -> None:
        self._day_end = self.portfolio._day_end
        self.new_positions_today = 0

    def _sample(self, now: datetime) -> None:
        from datetime import timedelta

        pf = self.portfolio
        eq = pf.sample_equity(now)
        dd = pf.drawdown
        self._next_sample = now + timedelta(seconds=self._sample_s)
        unreal = pf.unrealized
        self.journal.record_equity(now, eq, pf.cash, unreal, pf.realized, dd)
        self.bus.publish(
            EquityEvent(now, eq, pf.cash, unreal, pf.realized, pf.day_pnl, pf.day_pnl_pct, pf.peak_equity, dd)
        )
        self.breakers.on_clock(self.clock.monotonic())
        last = max((t.ts for t in self.ticks.values()), default=now)
        self.breakers.on_data_age((self.clock.now() - last).total_seconds())
        self.bus.publish(RiskEvent(now, tuple(self.rule_values())))

    async def _housekeeping(self) -> None:
        """Wall-clock checks that must run even when no market data arrives."""
        while True:
            await asyncio.sleep(1.0)
            try:
                now = self.clock.now()
                last = max((t.ts for t in self.ticks.values()), default=self.started_at or now)
                self.breakers.on_data_age((now - last).total_seconds())
                self.breakers.on_clock(self.clock.monotonic())
                self.stage_manager.refresh_limits()  # the size schedule steps up with time
                self.daily_summary.check(now)  # engine-clock time: a fast simulator gets one per day
                ping = await self.venue.ping_ms()
                self.health.on_ping(ping)
                self.bus.publish(
                    ConnectionEvent(now, self.venue.name, self.connected, ping, (now - last).total_seconds())
                )
                self.bus.publish(RiskEvent(now, tuple(self.rule_values())))
            except Exception:
                log.exception("housekeeping failed")

    # --- order updates ------------------------------------------------------------
    async def _pump_orders(self) -> None:
        try:
            async for update in self.venue.order_updates():
                self.on_order_update(update)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._venue_failure("order update stream failed", exc)

    def on_order_update(self, update: OrderUpdate) -> None:
        order = update.order
        known = self._order_meta.get(order.client_id)
        if known is None:
            order = order.evolve(external=True)
            self.alert(
                AlertLevel.WARNING,
                "external_order",
                f"Order {order.client_id} on {order.symbol} was not "
                "placed by this engine; adopted and flagged external",
                key=f"external:{order.client_id}",
            )
        elif known.status.is_terminal and not order.status.is_terminal:
            order = known  # a late, stale update never reopens a finished order
        else:
            order = order.evolve(
                tag=known.tag,
                strategy=known.strategy,
                role=known.role,
                parent_id=known.parent_id,
                reason=order.reason or known.reason,
                ref_price=known.ref_price,
            )
        if update.fill is not None:
            self._apply_fill(update.fill, order)
        self._track(order)

    def _track(self, order: Order) -> None:
        cid = order.client_id
        self._order_meta[cid] = order
        if order.status.is_terminal:
            self.orders.pop(cid, None)
            for fut in self._waiters.pop(cid, []):
                if not fut.done():
                    fut.set_result(order)
        else:
            self.orders[cid] = order
        self.journal.record_order(order)
        self.bus.publish(OrderEvent(order.updated_at or self.clock.now(), order))
        if order.status is OrderStatus.REJECTED:
            self.alert(
                AlertLevel.WARNING,
                "order_rejected",
                f"{order.symbol} {order.side} {order.qty} rejected: {order.reason or 'no reason given'}",
                key=f"rejected:{order.symbol}",
            )
        if order.status.is_terminal:
            booked = self._applied_qty.get(order.client_id, ZERO)
            if order.role == "entry" and order.filled_qty > 0 and booked >= order.filled_qty:
                self.protection.on_entry_done(order)  # only once every fill of the entry is booked
            elif order.role == "exit" and order.filled_qty < order.qty:
                self.protection.rearm(order.symbol)

    def _apply_fill(self, fill: Fill, order: Order) -> None:
        if fill.fill_id in self._seen_fills:
            return  # a fill is never counted twice (replays, reconnects, reconciliation)
        self._seen_fills.add(fill.fill_id)
        self._applied_qty[fill.client_id] = self._applied_qty.get(fill.client_id, ZERO) + fill.qty
        result = self.portfolio.apply_fill(fill, order.tag, order.strategy)
        self.journal.record_fill(fill)
        if result.opened:
            self.new_positions_today += 1
        self.bus.publish(FillEvent(fill.ts, fill, order))
        self.bus.publish(PositionEvent(fill.ts, result.position))
        if result.trade is not None:
            self.journal.record_trade(result.trade)
            self.breakers.on_trade_closed(result.trade.pnl)
        if result.position.qty == 0 or result.opened:
            self.protection.on_position_flat_or_new(fill.symbol, result.position)
        if order.role == "stop_loss":
            self.alert(
                AlertLevel.WARNING,
                "stop_loss_hit",
                f"Stop loss hit on {fill.symbol}: {fill.side} {fill.qty} @ {fill.price}",
                key=f"stop_loss:{fill.symbol}",
            )
        if self.strategy is not None and order.strategy == self.strategy.name:
            self.strategy.on_fill(fill, order)

    def wait_for(self, client_id: str) -> asyncio.Future[Order]:
        fut: asyncio.Future[Order] = asyncio.get_running_loop().create_future()
        order = self._order_meta.get(client_id)
        if order is not None and order.status.is_terminal:
            fut.set_result(order)
        else:
            self._waiters.setdefault(client_id, []).append(fut)
        return fut

    # --- strategy context ---------------------------------------------------------
    def now(self) -> datetime:
        return self.clock.now()

    def position(self, symbol: str) -> Position | None:
        return self.portfolio.position(symbol)

    def has_working_entry(self, symbol: str) -> bool:
        return any(o.symbol == symbol and o.role == "entry" for o in self.orders.values())

    def instrument(self, symbol: str) -> Instrument:
        return self.instruments[symbol]

    # --- alerts, audit, errors ----------------------------------------------------
    def alert(self, level: AlertLevel, code: str, message: str, key: str = "") -> AlertEvent | None:
        """Through the AlertCenter: de-duplicated, given an id, published. None when suppressed."""
        return self.alert_center.raise_alert(level, code, message, key)

    def _journal_alert(self, ev: AlertEvent) -> None:
        self.journal.record_alert(ev.ts, ev.level, ev.code, ev.message, ev.key, ev.alert_id)

    def audit(
        self, action: str, reason: str, details: dict[str, Any] | None = None, operator: str = ""
    ) -> None:
        self.journal.audit(self.clock.now(), operator or self.operator, action, reason, details or {})

    def _state_changed(self, old: TradingState, new: TradingState, reason: str, operator: str) -> None:
        self.journal.set_state("trading_state", new.value)
        self.journal.set_state("trading_state_reason", reason)
        self.audit("state_change", reason, {"from": old.value, "to": new.value}, operator)
        self.bus.publish(StateChanged(self.clock.now(), old, new, reason, operator))
        level = AlertLevel.CRITICAL if new is TradingState.HALTED else AlertLevel.WARNING
        if new is TradingState.ACTIVE:
            level = AlertLevel.INFO
        self.alert(
            level, f"state_{new.value.lower()}", f"Trading {new.value}: {reason}", key=f"state:{new.value}"
        )

    def _venue_failure(self, what: str, exc: Exception) -> None:
        msg = f"{what}: {type(exc).__name__}: {exc}"
        log.warning(msg)
        self.journal.record_incident(self.clock.now(), self.venue.name, "venue_error", msg)
        self.alert(AlertLevel.WARNING, "venue_error", msg, key=f"venue_error:{what}")
        self.breakers.on_venue_error(self.clock.monotonic())
        if isinstance(exc, AuthenticationFailed):
            self.risk.set_state(TradingState.HALTED, f"venue authentication failed: {exc}", "system")

    def _breaker_close_all(self, reason: str) -> None:
        self.close_all(reason, "breaker")

    # --- reads for the UI and the CLI ---------------------------------------------
    def rule_values(self) -> list[Any]:
        from engine.risk.gauges import rule_values

        return rule_values(self)

    def status_line(self) -> str:
        pf = self.portfolio
        prices = "  ".join(f"{s} {t.last}" for s, t in self.ticks.items())
        trades = pf.closed_trades
        wins = sum(1 for t in trades if t.pnl > 0)
        rate = f"{wins / len(trades):.0%}" if trades else "-"
        return (
            f"{self.clock.now():%Y-%m-%d %H:%M:%S} {self.risk.state.value:<8} {prices} | equity {pf.equity:,.2f} "
            f"| positions {pf.open_count()} | unrealized {pf.unrealized:+,.2f} | trades {len(trades)} win {rate}"
        )

