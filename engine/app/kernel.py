"""The kernel: the composition root. It builds the parts, hands each the narrow collaborators it
needs, and runs the life cycle. Nothing outside `engine.app` imports it.

Data flows one way (venue -> OrderBook -> Portfolio -> journal -> strategy -> risk -> approval ->
Execution -> venue) and every step publishes an event. Operator commands enter through
`OperatorAPI` (engine.app.operator_api), never by reaching into the parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from engine.activation.approvals import ApprovalGate
from engine.activation.stage_manager import StageManager
from engine.alerts.center import AlertCenter, Sources
from engine.alerts.daily_summary_schedule import DailySummaryScheduler
from engine.alerts.notify.dispatcher import AlertDispatcher
from engine.app.account_sync import AccountSync
from engine.app.booking import Booking
from engine.app.commands import BigButtons
from engine.app.connection import ConnectionHealth
from engine.app.day_state import DayState
from engine.app.journal_watch import JournalWatch
from engine.app.operator_api import OperatorAPI
from engine.app.periodic import Periodic
from engine.app.startup import Startup
from engine.core.clock import Clock, SimClock, Timers
from engine.core.config import Settings
from engine.core.events import (
    AlertEvent,
    EquityEvent,
    EventBus,
    MarketEvent,
    RiskEvent,
    StateChanged,
)
from engine.core.model import (
    AlertLevel,
    Fill,
    Instrument,
    MarketTick,
    Order,
    OrderUpdate,
    Position,
    TradingState,
)
from engine.oms.execution import Execution, MarketView
from engine.oms.order_book import OrderBook, new_instance_tag
from engine.oms.portfolio import Portfolio
from engine.oms.protection import Protection
from engine.oms.protection_links import Links
from engine.oms.reconcile import Reconciler
from engine.persistence.journal import Journal
from engine.risk.breakers import Breakers
from engine.risk.reject_breaker import RejectBreaker, halt_with
from engine.risk.risk_engine import RiskEngine
from engine.strategies.base import Strategy
from engine.venues.base import AuthenticationFailed, Venue

log = logging.getLogger(__name__)

StrategyFactory = Callable[[Any, list[str]], Strategy]
DAY_STATE_EVERY = 12  # equity samples between saves of the day's baselines and the clock's high-water mark
ROOM_CHECK_EVERY = 32  # market batches between looks at the journal's backlog (a few rows each)
CLOCK_HIGH_WATER = "clock_high_water"  # the latest engine time journaled: a restart never goes back


class Engine:
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
        self.symbols = symbols or list(settings.simulator.symbols)
        self.operator = settings.engine.operator
        self._strategy_factory = strategy_factory
        self.strategy: Strategy | None = None
        self.reconciler: Reconciler | None = None
        self.market = MarketView({}, {})
        self.book = OrderBook(new_instance_tag(), 0)  # identity is read from the journal on start
        self.portfolio = Portfolio(settings.starting_cash, day_tz=settings.engine.trading_day_tz)
        self.alert_center = AlertCenter(
            self.bus, clock, lambda: self.settings.alerts.rules, journal, self.audit, self._alert_sources()
        )
        self.risk = RiskEngine(settings.risk, self._state_changed)
        self.day = DayState(journal, settings.engine.trading_day_tz)
        self.breakers = Breakers(settings.risk, self.risk, self.alert, self._breaker_close_all)
        self.execution = Execution(
            clock=clock, venue=venue, book=self.book, risk=self.risk, portfolio=lambda: self.portfolio,
            market=self.market, journal=journal, bus=self.bus, apply_update=self.apply_update,
            venue_failure=self.venue_failure, new_positions_today=lambda: self.day.new_positions,
        )  # fmt: skip
        self.reject_breaker = RejectBreaker(
            lambda: self.settings.risk.max_rejections, lambda: self.settings.risk.rejection_window_s,
            clock.monotonic, halt_with(self.risk.set_state), self.alert_center.raise_alert,
        )  # fmt: skip
        self.protection = Protection(
            Links(
                orders=lambda: self.execution, book=lambda: self.book, holdings=lambda: self.portfolio,
                ticks=self.market.ticks, stop_types=self._stop_types, round_price=self._round_price,
                round_qty=self._round_qty,
                strategy_name=lambda: self.strategy.name if self.strategy else "",
            ),
            clock, journal, self.alert_center.raise_alert,
        )  # fmt: skip
        self.execution.protection = self.protection
        self.stage_manager = StageManager(self)
        self.approval_gate = ApprovalGate(self)
        self.execution.approvals = self.approval_gate
        self.buttons = BigButtons(self)
        self.account = AccountSync(self)
        self._fresh_journal = False
        self.api = OperatorAPI(self)
        self.daily_summary = DailySummaryScheduler(self)  # end-of-day file and message
        self.startup = Startup(self)
        self.booking = Booking(self)
        self.periodic = Periodic(self)
        self.execution.on_rejected = self.booking.on_rejected
        self.timers = Timers(clock, self.periodic.failed)
        self._day_end: datetime | None = None
        self._next_sample: datetime | None = None
        self._samples = 0
        self._sample_s = settings.engine.equity_sample_s
        self.started_at: datetime | None = None
        self.stopped = asyncio.Event()
        self.market_events = 0
        self.connected = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._simulated_time = isinstance(clock, SimClock)
        self._max_speed = self._simulated_time and getattr(venue, "speed", None) == "max"
        self.health = ConnectionHealth(self)  # links up or down; a lost one is a journaled incident
        venue.link_sink = self.health.link
        venue.fault_sink = self.venue_failure  # faults the venue got past itself are still faults
        self.bus.subscribe(self._journal_alert, AlertEvent)
        data_dir = journal.path.parent
        self._loop: asyncio.AbstractEventLoop | None = None
        self.journal_watch = JournalWatch(self)  # a journal that cannot write halts trading, loudly
        self.notifier = AlertDispatcher.from_settings(
            settings.alerts, self.bus, self.alert, lambda: _credential_store(data_dir)
        )  # webhooks, e-mail: queued, sent by its own tasks

    # --- views the parts read ---------------------------------------------------------------
    @property
    def instruments(self) -> dict[str, Instrument]:
        return self.market.instruments

    @property
    def ticks(self) -> dict[str, MarketTick]:
        return self.market.ticks

    @property
    def orders(self) -> dict[str, Order]:
        """Working orders by client id (a read-only copy: the OrderBook owns them)."""
        return {o.client_id: o for o in self.book.working()}

    @property
    def new_positions_today(self) -> int:
        return self.day.new_positions

    def _stop_types(self, symbol: str) -> list[Any]:
        return self.venue.capabilities().stop_types(symbol)

    def _round_price(self, symbol: str, price: Decimal) -> Decimal:
        inst = self.market.instruments.get(symbol)
        return inst.round_price(price) if inst is not None else price

    def _round_qty(self, symbol: str, qty: Decimal) -> Decimal:
        inst = self.market.instruments.get(symbol)
        return inst.round_qty(qty) if inst is not None else qty

    def _alert_sources(self) -> Sources:
        def last_tick(symbol: str) -> datetime | None:
            tick = self.market.ticks.get(symbol)
            return tick.ts if tick is not None else None

        return Sources(
            positions=lambda: self.portfolio.positions(),
            symbols=lambda: self.symbols,
            last_tick=last_tick,
            evaluate_stage=lambda: self.stage_manager.evaluate_async(),
            stage_every_s=lambda: self.settings.stages.red_flags.check_every_s,
        )

    # --- life cycle -----------------------------------------------------------------------------
    async def run(self, duration_s: float | None = None) -> None:
        """Run until stopped, or until `duration_s` of engine time has passed.

        Simulated time ends the run from the market pump (time moves only with the market); real time
        ends it by the clock too, so a venue that sends no data (or never connected) cannot keep it going."""
        if duration_s is not None:
            assert self.started_at is not None
            self._deadline = self.started_at.timestamp() + duration_s
            if not self._simulated_time:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopped.wait(), max(0.0, duration_s))
                self.stopped.set()
                return
        await self.stopped.wait()

    _deadline: float | None = None

    async def shutdown(self, policy: str | None = None) -> None:
        """Leave the venue as configured (keep, cancel_orders, close_all), then stop."""
        policy = policy or self.settings.engine.shutdown
        self.audit("engine_shutdown", f"shutdown policy {policy}", {"policy": policy})
        try:
            if policy in ("cancel_orders", "cancel_all_orders") and self.book.working_count():
                # cancel_orders keeps the resting stop legs: a stopped engine leaves no position naked
                # unless the operator chose exactly that (cancel_all_orders)
                await self.buttons.cancel_everything("shutdown", "shutdown", deadline_s=10,
                                                     keep_protection=policy == "cancel_orders")
            elif policy == "close_all" and (self.book.working_count() or self.portfolio.open_count()):
                await self.buttons.run_close_all("shutdown", self.operator)
        finally:
            self.stopped.set()
            running = [*self._tasks, *self._background]  # a spawned reconciliation would outlive the journal
            for t in running:
                t.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            self._tasks = []
            await self.notifier.aclose()  # queued alerts get a short grace to go out
            self.journal.set_state("trading_state", self.risk.state.value)
            self._save_clock()
            self.day.save(self.portfolio, self.breakers)
            await asyncio.to_thread(self.journal.flush)
            await self.venue.close()

    def _save_clock(self) -> None:
        self.journal.set_state(CLOCK_HIGH_WATER, self.clock.now().isoformat())

    # --- market data ----------------------------------------------------------------------------
    async def _pump_market(self) -> None:
        batches = 0
        try:
            async for batch in self.venue.market_stream(self.symbols):
                self.on_market(batch)
                if self.execution.inflight:
                    await asyncio.sleep(0)  # let submits started by this batch reach the venue
                if self._simulated_time:
                    if self.timers.any_due():
                        await self.timers.run_due()  # periodic work at simulated instants: deterministic
                    batches += 1
                    if batches % ROOM_CHECK_EVERY == 0 and not self.journal.has_room:
                        await self.journal.wait_for_room()  # a fast simulator never outruns the journal
                if self._deadline is not None and self.clock.now().timestamp() >= self._deadline:
                    self.stopped.set()
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.venue_failure("market data stream failed", exc)

    def on_market(self, batch: list[MarketTick]) -> None:
        pf = self.portfolio
        bus = self.bus
        strategy = self.strategy
        breakers = self.breakers
        ticks = self.market.ticks
        publish = bus.wants(MarketEvent)
        stamp: datetime | None = None
        t = 0.0
        for tick in batch:
            symbol, last, ts = tick.symbol, tick.last, tick.ts
            ticks[symbol] = tick
            pf.mark(symbol, last, ts)
            if ts is not stamp:  # a batch's ticks usually share one datetime: convert it once
                stamp, t = ts, ts.timestamp()
            breakers.on_price(symbol, float(last), t)
            if publish:
                bus.publish(MarketEvent(ts, tick))
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
        rolled = self._day_end is not None
        self._day_end = self.portfolio.day_end
        if rolled or not self.day.restored_today(now):
            self.day.new_day(now)
        self.day.save(self.portfolio, self.breakers)

    def _sample(self, now: datetime) -> None:
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
        last = max((t.ts for t in self.market.ticks.values()), default=now)
        self.breakers.on_data_age((self.clock.now() - last).total_seconds())
        self.bus.publish(RiskEvent(now, tuple(self.rule_values())))
        self._samples += 1
        if self._samples % DAY_STATE_EVERY == 0:  # opens, closes and resumes save at once; this is the rest
            self._save_clock()
            self.day.save(pf, self.breakers)

    # --- order updates: one path ------------------------------------------------------------------
    async def _pump_orders(self) -> None:
        try:
            async for update in self.venue.order_updates():
                self.on_order_update(update)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.venue_failure("order update stream failed", exc)

    async def start(self) -> None:
        """Restore, connect (or start HALTED and keep trying), reconcile, warm up, stream (engine.app.startup)."""
        await self.startup.start()

    def apply_update(self, update: Order, fills: Sequence[Fill] = ()) -> Order:
        """REST replies, stream updates, polls and reconciliation all land here (engine.app.booking)."""
        return self.booking.apply_update(update, fills)

    def on_order_update(self, update: OrderUpdate) -> Order:
        return self.apply_update(update.order, () if update.fill is None else (update.fill,))

    # --- strategy context (what a strategy may see and do) -----------------------------------------
    def now(self) -> datetime:
        return self.clock.now()

    def position(self, symbol: str) -> Position | None:
        return self.portfolio.position(symbol)

    def has_working_entry(self, symbol: str) -> bool:
        return any(o.role == "entry" for o in self.book.working(symbol))

    def instrument(self, symbol: str) -> Instrument:
        return self.market.instruments[symbol]

    def submit_intent(self, intent: Any, bypass_state: bool = False, role: str = "entry") -> Order | None:
        return self.execution.submit_intent(intent, bypass_state, role)

    # --- commands the OperatorAPI drives (also the breakers' close-all) ---------------------------
    def emergency_stop(self, reason: str = "emergency stop", operator: str = "", pull_stops: bool = False) -> Any:
        return self.buttons.emergency_stop(reason, operator or self.operator, pull_stops=pull_stops)

    def stop_in_progress(self) -> bool:
        return self.buttons.stop_in_progress()

    def close_all(self, reason: str = "close all", operator: str = "") -> Any:
        return self.buttons.close_all(reason, operator or self.operator)

    def close_in_progress(self) -> bool:
        return self.buttons.close_in_progress()

    def preview_close_all(self) -> dict[str, Any]:
        return self.buttons.preview_close_all()

    def resume_refusal(self) -> str | None:
        return self.buttons.resume_refusal()

    def resume(self, operator: str, reason: str) -> tuple[bool, str]:
        return self.buttons.resume(operator, reason)

    async def cancel_order(self, order: Order, operator: str = "") -> Order | None:
        if operator:
            self.audit("cancel_order", f"cancel {order.client_id}", {"symbol": order.symbol}, operator)
        return await self.execution.cancel_order(order)

    def close_position(self, symbol: str, operator: str = "", reason: str = "") -> Order | None:
        return self.buttons.close_position(symbol, operator or self.operator, reason)

    # --- alerts, audit, errors --------------------------------------------------------------------
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

    def venue_failure(self, what: str, exc: Exception, link: str = "") -> None:
        """Every fault is a journal row and counts toward the venue-error breaker; the alert comes once
        per link and kind of fault within the cooldown (retries of one cancel are one alert, not four)."""
        msg = f"{what}: {type(exc).__name__}: {exc}"
        log.warning(msg)
        self.journal.record_incident(self.clock.now(), self.venue.name, "venue_error", msg)
        key = f"venue_error:{link}:{type(exc).__name__}" if link else f"venue_error:{what}"
        self.alert(AlertLevel.WARNING, "venue_error", msg, key=key)
        self.breakers.on_venue_error(self.clock.monotonic())
        if isinstance(exc, AuthenticationFailed):
            self.risk.set_state(TradingState.HALTED, f"venue authentication failed: {exc}", "system")

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _breaker_close_all(self, reason: str) -> None:
        self.buttons.close_all(reason, "breaker")

    # --- reads for the UI and the CLI -------------------------------------------------------------
    def rule_values(self) -> list[Any]:
        from engine.risk.gauges import rule_values

        return rule_values(self)


def _credential_store(data_dir: Any) -> Any:
    from engine.persistence.secrets import CredentialStore  # keyring loads only when a secret is needed

    return CredentialStore(data_dir)

