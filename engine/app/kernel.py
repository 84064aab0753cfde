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
from engine.app.commands import BigButtons
from engine.app.connection import ConnectionHealth
from engine.app.day_state import DayState
from engine.app.operator_api import OperatorAPI
from engine.core.clock import Clock, SimClock, Timers
from engine.core.config import Settings
from engine.core.config_rules import validate_risk_changes
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
from engine.oms.execution import Execution, MarketView
from engine.oms.order_book import OrderBook, new_instance_tag
from engine.oms.portfolio import Portfolio
from engine.oms.protection import Links, Protection
from engine.oms.reconcile import Reconciler
from engine.persistence.journal import Journal
from engine.risk.breakers import Breakers
from engine.risk.reject_breaker import RejectBreaker, halt_with
from engine.risk.risk_engine import RiskEngine
from engine.strategies.base import Strategy
from engine.venues.base import AuthenticationFailed, Venue, VenueError

log = logging.getLogger(__name__)

StrategyFactory = Callable[[Any, list[str]], Strategy]
DAY_STATE_EVERY = 12  # equity samples between saves of the day's baselines and the clock's high-water mark
ROOM_CHECK_EVERY = 32  # market batches between looks at the journal's backlog (a few rows each)
ACCOUNT_EVERY_S = 60.0  # cash and fee-asset marks read back from the venue
CONNECT_ATTEMPTS = 3  # at start, before the engine settles for HALTED and keeps trying
CONNECT_BACKOFF_S = 1.0
CONNECT_RETRY_S = 15.0
MAX_SPEED_EVIDENCE_S = 1800.0  # --speed max: stage evidence at least every 30 simulated minutes
MAX_SPEED_TICK_S = 15.0  # --speed max: the once-a-second checks every 15 simulated seconds
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
        self.execution.on_rejected = self._on_rejected
        self.protection = Protection(
            Links(
                orders=lambda: self.execution, book=lambda: self.book, holdings=lambda: self.portfolio,
                ticks=self.market.ticks, stop_types=self._stop_types, round_price=self._round_price,
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
        self.timers = Timers(clock, self._periodic_failed)
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
        self.bus.subscribe(self._journal_alert, AlertEvent)
        data_dir = journal.path.parent
        self._loop: asyncio.AbstractEventLoop | None = None
        journal.on_failure(self._journal_failing)  # writer thread: hops to the loop
        journal.on_recovery(self._journal_recovered)
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
    async def start(self) -> None:
        """Restore from the journal, connect, reconcile, warm the strategy up, start the streams.

        A venue that cannot be reached at start does not crash the engine: it starts HALTED, says
        why, and keeps trying; once the venue answers, the start completes (still HALTED)."""
        self._loop = asyncio.get_running_loop()
        self.stage_manager.load()
        self._restore(await asyncio.to_thread(self._read_journal))
        self._announce_restored_halt()
        await self._verify_audit_chain()
        self.started_at = self.clock.now()
        self.notifier.start()
        failure = await self._connect(CONNECT_ATTEMPTS)
        if failure is not None:
            self.risk.set_state(TradingState.HALTED, f"{self.venue.name} unreachable at start: {failure}; retrying",
                                "system")  # fmt: skip
            self.alert(AlertLevel.CRITICAL, "venue_unreachable",
                       f"{self.venue.name} could not be reached at start ({failure}). Trading is HALTED; "
                       "the engine keeps trying and completes its start when the venue answers.",
                       key="venue_unreachable")  # fmt: skip
            self._tasks = [asyncio.create_task(self._connect_later(), name="connect")]
            self.audit("engine_start", f"venue {self.venue.name} unreachable: {failure}", {"symbols": self.symbols})
            return
        await self._start_trading()

    async def _connect(self, attempts: int) -> str | None:
        """Connect and load the instruments; None when it worked, else why it did not."""
        why = ""
        for attempt in range(attempts):
            try:
                await self.venue.connect()
                self.market.instruments.update(await self.venue.instruments())
                return None
            except AuthenticationFailed as exc:
                return f"authentication failed: {exc}"  # a wrong key does not get right by retrying
            except (VenueError, OSError, TimeoutError) as exc:
                why = f"{type(exc).__name__}: {exc}"
                self.journal.record_incident(self.clock.now(), self.venue.name, "connect_failed", why)
                if attempt < attempts - 1:
                    await asyncio.sleep(min(30.0, CONNECT_BACKOFF_S * 2**attempt))
        return why

    async def _connect_later(self) -> None:
        while True:
            await asyncio.sleep(CONNECT_RETRY_S)
            failure = await self._connect(1)
            if failure is None:
                self.alert(AlertLevel.WARNING, "venue_reachable",
                           f"{self.venue.name} answers again; the engine starts, HALTED until resumed.",
                           key="venue_unreachable")  # fmt: skip
                await self._start_trading()
                return
            if failure.startswith("authentication failed"):
                self.alert(AlertLevel.CRITICAL, "venue_unreachable", f"{self.venue.name}: {failure}",
                           key="venue_unreachable")  # fmt: skip
                return

    async def _start_trading(self) -> None:
        self.symbols = [s for s in self.symbols if s in self.market.instruments]
        below = {s: max(i.lot_size, i.min_qty) for s, i in self.market.instruments.items()}
        self.portfolio.dust_below = below
        self.journal.set_state("dust_below", {s: str(q) for s, q in below.items()})  # the replay needs them too
        adopt = getattr(self.venue, "adopt_book", None)
        if adopt is not None:  # the in-process simulated market starts empty: give it our book
            holdings = {p.symbol: p.qty for p in self.portfolio.positions()}
            adopt(self.portfolio.cash, holdings, self.book.working())
        await self.account.load_baseline()  # holdings from before the engine: never a mismatch, never sold
        self.reconciler = Reconciler.for_engine(self)  # the venue is the truth: repair, or HALT
        await self.reconciler.on_start()
        await self.account.sync_cash(fresh=self._fresh_journal)  # cash from the venue, not the config
        if self._strategy_factory is not None:
            self.strategy = self._strategy_factory(self, self.symbols)
            await self._warm_up()
            self.strategy.on_start()
        self.connected = True
        self.bus.publish(
            ConnectionEvent(self.clock.now(), self.venue.name, True, await self.venue.ping_ms(), 0.0)
        )
        self.approval_gate.expire_orphans()
        self._schedule_periodic_work()
        self._tasks = [
            asyncio.create_task(self._pump_market(), name="market"),
            asyncio.create_task(self._pump_orders(), name="orders"),
        ]
        if not self._simulated_time:
            self._tasks.append(asyncio.create_task(self.timers.run(), name="timers"))
        self.audit("engine_start", f"venue {self.venue.name} ({self.venue.mode})", {"symbols": self.symbols})

    def _schedule_periodic_work(self) -> None:
        """Every periodic job on the engine clock: a fast simulator runs them on simulated time."""
        t = self.timers
        # As fast as the simulator goes, the once-a-second checks run every 15 simulated seconds: per
        # simulated second they would cost more than the trading they watch (nothing goes stale there).
        second = MAX_SPEED_TICK_S if self._max_speed else 1.0
        t.every("housekeeping", second, self._housekeeping)
        t.every("approvals", second, self.approval_gate.poll)
        t.every("stage_evidence", self._evidence_period, self._stage_evidence)
        t.every("alert_rules", second, self.alert_center.check)
        t.every("protection", second, self.protection.check)
        reconciler = self.reconciler
        if self.account.enabled:
            t.every("account", ACCOUNT_EVERY_S, self.account.periodic)
        if reconciler is not None and reconciler.enabled and reconciler.interval_s and reconciler.interval_s > 0:
            t.every("reconcile", reconciler.interval_s, reconciler.periodic)

    def _read_journal(self) -> dict[str, Any]:
        """Everything start needs from the journal, read off the loop (a long journal takes a while)."""
        j = self.journal
        tag = j.get_state("instance_tag")
        if not tag:
            tag = new_instance_tag()
            j.set_state("instance_tag", tag)
        if j.get_state("journal_started_at") is None:
            j.set_state("journal_started_at", self.clock.now().isoformat())
        run = int(j.get_state("runs", 0)) + 1
        j.set_state("runs", run)
        fills = j.fills()
        protections = {}
        for symbol in {*self.symbols, *(f.symbol for f in fills)}:
            value = j.get_state(f"protection:{symbol}")
            if value:
                protections[symbol] = value
        return {
            "tag": str(tag), "run": run, "starting_cash": j.get_state("starting_cash"),
            "orders": j.orders(), "fills": fills, "protections": protections,
            "dust_below": j.get_state("dust_below") or {},
        }  # fmt: skip

    def _restore(self, data: dict[str, Any]) -> None:
        """Rebuild the book from what the journal held: fills replayed, orders known, day state, protection."""
        self.book = OrderBook(data["tag"], data["run"])
        self.execution.book = self.book
        if data["starting_cash"] is None:
            self.journal.set_state("starting_cash", str(self.portfolio.starting_cash))
        else:
            self.portfolio = Portfolio(Decimal(data["starting_cash"]), day_tz=self.settings.engine.trading_day_tz)
        self.portfolio.dust_below = {s: Decimal(v) for s, v in data["dust_below"].items()}
        tags = {o.client_id: o for o in data["orders"]}
        for fill in data["fills"]:
            o = tags.get(fill.client_id)
            self.portfolio.apply_fill(fill, o.tag if o else "", o.strategy if o else "")
        self.book.restore(data["orders"], data["fills"])
        self._fresh_journal = not data["orders"] and not data["fills"]
        self.day.restore(self.portfolio, self.breakers, self.clock.now())
        for p in self.portfolio.positions():
            prot = data["protections"].get(p.symbol)
            if prot:
                self.protection.restore(p.symbol, prot)

    async def _verify_audit_chain(self) -> None:
        """A broken audit chain means someone rewrote the record: start HALTED and say where."""
        verdict = await asyncio.to_thread(self.journal.verify_chain)
        if not verdict.ok:
            self.risk.set_state(TradingState.HALTED, f"audit chain broken: {verdict.message}", "system")
            self.alert(AlertLevel.EMERGENCY, "audit_chain_broken",
                       f"The audit trail fails verification ({verdict.message}); trading starts HALTED.",
                       key="audit_chain")  # fmt: skip

    def _announce_restored_halt(self) -> None:
        state = self.journal.get_state("trading_state")
        if state == TradingState.HALTED.value:
            reason = self.journal.get_state("trading_state_reason") or "halted before restart"
            self.risk.state = TradingState.HALTED
            self.risk.state_reason = f"restored: {reason}"
            self.alert(AlertLevel.CRITICAL, "halt_restored", f"Engine starts HALTED: {reason}")

    async def _warm_up(self) -> None:
        assert self.strategy is not None
        for s in self.symbols:
            for tick in await self.venue.history(s, self.settings.strategy.timeframe_s * 60, 1.0):
                self.strategy.on_tick(tick)

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
            for t in self._tasks:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
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
        for tick in batch:
            ticks[tick.symbol] = tick
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

    async def _housekeeping(self) -> None:
        """Checks that must run even when no market data arrives (on the engine clock)."""
        now = self.clock.now()
        last = max((t.ts for t in self.market.ticks.values()), default=self.started_at or now)
        self.breakers.on_data_age((now - last).total_seconds())
        self.breakers.on_clock(self.clock.monotonic())
        self.stage_manager.refresh_limits()  # the size schedule steps up with time
        self.daily_summary.check(now)  # engine-clock time: a fast simulator gets one per day
        ping = await self.venue.ping_ms()
        self.health.on_ping(ping)
        self.bus.publish(ConnectionEvent(now, self.venue.name, self.connected, ping, (now - last).total_seconds()))
        self.bus.publish(RiskEvent(now, tuple(self.rule_values())))

    def _evidence_period(self) -> float:
        """The red-flag period; as fast as the simulator goes, at least every 30 simulated minutes
        (each evaluation costs tens of ms of pandas: per simulated minute it would be most of a backtest)."""
        period = self.settings.stages.red_flags.check_every_s
        if self._max_speed:
            return max(period, MAX_SPEED_EVIDENCE_S)
        return period

    async def _stage_evidence(self) -> None:
        """One evaluation of the stage's evidence feeds both the red flags and the criterion alerts.

        As fast as the simulator goes, it runs inline: a thread hop per simulated minute would
        make the run wait on the loop's selector far more than on the work itself."""
        sm = self.stage_manager
        if self._max_speed:
            self.journal.flush()
            ev = sm.evaluate()
        else:
            ev = await sm.evaluate_async()
        sm.apply_red_flags(ev)
        self.alert_center.rules.on_evaluation(ev)

    def _periodic_failed(self, name: str, exc: Exception) -> None:
        self.alert(AlertLevel.WARNING, "periodic_failed", f"periodic job {name} failed: {type(exc).__name__}: {exc}",
                   key=f"periodic:{name}")  # fmt: skip

    # --- order updates: one path ------------------------------------------------------------------
    async def _pump_orders(self) -> None:
        try:
            async for update in self.venue.order_updates():
                self.on_order_update(update)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.venue_failure("order update stream failed", exc)

    def on_order_update(self, update: OrderUpdate) -> Order:
        return self.apply_update(update.order, () if update.fill is None else (update.fill,))

    def apply_update(self, update: Order, fills: Sequence[Fill] = ()) -> Order:
        """REST replies, stream updates, polls and reconciliation all land here; idempotent per fill id."""
        res = self.book.apply(update, fills)
        order = res.order
        if not res.known and order.external:
            self.alert(
                AlertLevel.WARNING,
                "external_order",
                f"Order {order.client_id} on {order.symbol} was not "
                "placed by this engine; adopted and flagged external",
                key=f"external:{order.client_id}",
            )
        for fill in res.new_fills:
            self._book_fill(fill, order)
        if res.changed or res.new_fills:
            self.journal.record_order(order)
            self.bus.publish(OrderEvent(order.updated_at or self.clock.now(), order))
        if res.changed and order.role == "stop_loss":
            self.protection.on_order(order)
        if res.changed and order.status is OrderStatus.REJECTED:
            self.alert(
                AlertLevel.WARNING,
                "order_rejected",
                f"{order.symbol} {order.side} {order.qty} rejected: {order.reason or 'no reason given'}",
                key=f"rejected:{order.symbol}",
            )
            if self.execution.on_rejected is not None:
                self.execution.on_rejected(order)
        if order.status.is_terminal and (res.changed or res.new_fills):
            if order.role == "entry" and order.filled_qty > 0 and self.book.all_fills_booked(order.client_id):
                self.protection.on_entry_done(order)  # only once every fill of the entry is booked
            elif order.role == "exit" and order.filled_qty < order.qty and res.changed:
                if order.status is OrderStatus.REJECTED:
                    self.protection.exit_refused(order.symbol)
                else:
                    self.protection.rearm(order.symbol)
        return order

    def _book_fill(self, fill: Fill, order: Order) -> None:
        fill = self.portfolio.priced(fill)  # a fee charged in BNB is valued at its mark: journaled with both amounts
        self.account.note_fill()
        result = self.portfolio.apply_fill(fill, order.tag, order.strategy)
        self.journal.record_fill(fill)
        if result.opened:
            self.day.count_new_position()
            self.day.save(self.portfolio, self.breakers)  # the day's new-position count survives a crash now
        self.bus.publish(FillEvent(fill.ts, fill, order))
        self.bus.publish(PositionEvent(fill.ts, result.position))
        if result.trade is not None:
            self.journal.record_trade(result.trade)
            self.breakers.on_trade_closed(result.trade.pnl)
            self.day.save(self.portfolio, self.breakers)
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

    def update_risk_limits(self, changes: dict[str, Any], operator: str, reason: str) -> dict[str, Any]:
        """Validate like the config does, then bind at once: the risk checks and the breakers reload."""
        new = validate_risk_changes(self.settings.risk, changes, traded=self.symbols)  # all the config's rules
        self.settings.risk = new
        self.risk.reload(new)
        self.breakers.reload(new)
        applied = {k: getattr(new, k) for k in changes}
        self.audit("update_risk_limits", reason or "risk limits changed",
                   {k: str(v) for k, v in applied.items()}, operator)  # fmt: skip
        self.bus.publish(RiskEvent(self.clock.now(), tuple(self.rule_values())))
        return {k: str(v) for k, v in applied.items()}

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

    def venue_failure(self, what: str, exc: Exception) -> None:
        msg = f"{what}: {type(exc).__name__}: {exc}"
        log.warning(msg)
        self.journal.record_incident(self.clock.now(), self.venue.name, "venue_error", msg)
        self.alert(AlertLevel.WARNING, "venue_error", msg, key=f"venue_error:{what}")
        self.breakers.on_venue_error(self.clock.monotonic())
        if isinstance(exc, AuthenticationFailed):
            self.risk.set_state(TradingState.HALTED, f"venue authentication failed: {exc}", "system")

    def _on_rejected(self, order: Order) -> None:
        """Every refusal counts toward the reject breaker; a refused reducing order means the book and
        the venue may disagree (coins moved by hand): reconcile that, never just retry."""
        self.reject_breaker.on_rejected(order)
        if order.reduce_only and self.reconciler is not None and self.reconciler.enabled:
            self._spawn(self.reconciler.run("rejected_exit"))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- the journal cannot fail silently -----------------------------------------------------------
    def _journal_failing(self, reason: str) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._halt_for_journal, reason)

    def _journal_recovered(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(
                self.alert, AlertLevel.WARNING, "journal_recovered",
                "The journal writes again; every held row was written. Trading stays HALTED until resumed.",
                "journal",
            )  # fmt: skip

    def _halt_for_journal(self, reason: str) -> None:
        """Trading without a record is trading blind: halt (operator commands keep working) and say why."""
        self.risk.set_state(TradingState.HALTED, f"journal cannot write: {reason}", "system")
        self.alert(AlertLevel.EMERGENCY, "journal_failed",
                   f"JOURNAL FAILURE: {reason}. Trading HALTED; nothing is dropped, rows are held in memory "
                   "and written when the disk allows.", key="journal")  # fmt: skip

    def _breaker_close_all(self, reason: str) -> None:
        self.buttons.close_all(reason, "breaker")

    # --- reads for the UI and the CLI -------------------------------------------------------------
    def rule_values(self) -> list[Any]:
        from engine.risk.gauges import rule_values

        return rule_values(self)

    def status_line(self) -> str:
        pf = self.portfolio
        prices = "  ".join(f"{s} {t.last}" for s, t in self.market.ticks.items())
        trades = pf.closed_trades
        wins = sum(1 for t in trades if t.pnl > 0)
        rate = f"{wins / len(trades):.0%}" if trades else "-"
        return (
            f"{self.clock.now():%Y-%m-%d %H:%M:%S} {self.risk.state.value:<8} {prices} | equity {pf.equity:,.2f} "
            f"| positions {pf.open_count()} | unrealised {pf.unrealized:+,.2f} | trades {len(trades)} win {rate}"
        )


def _credential_store(data_dir: Any) -> Any:
    from engine.persistence.secrets import CredentialStore  # keyring loads only when a secret is needed

    return CredentialStore(data_dir)

