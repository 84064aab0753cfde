"""Start-up: the journal read and applied, the venue reached (or HALTED and retried), then trading.

A part of the kernel (engine.app): it sets up what the composition root built.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.core.events import ConnectionEvent
from engine.core.model import AlertLevel, TradingState
from engine.oms.order_book import OrderBook, new_instance_tag
from engine.oms.portfolio import Portfolio
from engine.oms.protection import PLANNED
from engine.oms.reconcile import Reconciler
from engine.venues.base import AuthenticationFailed, VenueError

if TYPE_CHECKING:
    from engine.app.kernel import Engine

CONNECT_ATTEMPTS = 3  # at start, before the engine settles for HALTED and keeps trying
CONNECT_BACKOFF_S = 1.0
CONNECT_RETRY_S = 15.0


class Startup:
    def __init__(self, engine: Engine) -> None:
        self.e = engine

    async def start(self) -> None:
        """Restore from the journal, connect, reconcile, warm the strategy up, start the streams.

        A venue that cannot be reached at start does not crash the engine: it starts HALTED, says
        why, and keeps trying; once the venue answers, the start completes (still HALTED)."""
        self.e._loop = asyncio.get_running_loop()
        self.e.stage_manager.load()
        self._restore(await asyncio.to_thread(self._read_journal))
        self._announce_restored_halt()
        await self._verify_audit_chain()
        self.e.started_at = self.e.clock.now()
        self.e.notifier.start()
        failure = await self._connect(CONNECT_ATTEMPTS)
        if failure is not None:
            self.e.risk.set_state(TradingState.HALTED, f"{self.e.venue.name} unreachable at start: {failure}; retrying",
                                "system")  # fmt: skip
            self.e.alert(AlertLevel.CRITICAL, "venue_unreachable",
                       f"{self.e.venue.name} could not be reached at start ({failure}). Trading is HALTED; "
                       "the engine keeps trying and completes its start when the venue answers.",
                       key="venue_unreachable")  # fmt: skip
            self.e._tasks = [asyncio.create_task(self._connect_later(), name="connect")]
            self.e.audit("engine_start", f"venue {self.e.venue.name} unreachable: {failure}",
                         {"symbols": self.e.symbols})
            return
        await self._start_trading()

    async def _connect(self, attempts: int) -> str | None:
        """Connect and load the instruments; None when it worked, else why it did not."""
        why = ""
        for attempt in range(attempts):
            try:
                await self.e.venue.connect()
                self.e.market.instruments.update(await self.e.venue.instruments())
                return None
            except AuthenticationFailed as exc:
                return f"authentication failed: {exc}"  # a wrong key does not get right by retrying
            except (VenueError, OSError, TimeoutError) as exc:
                why = f"{type(exc).__name__}: {exc}"
                self.e.journal.record_incident(self.e.clock.now(), self.e.venue.name, "connect_failed", why)
                if attempt < attempts - 1:
                    await asyncio.sleep(min(30.0, CONNECT_BACKOFF_S * 2**attempt))
        return why

    async def _connect_later(self) -> None:
        while True:
            await asyncio.sleep(CONNECT_RETRY_S)
            failure = await self._connect(1)
            if failure is None:
                self.e.alert(AlertLevel.WARNING, "venue_reachable",
                           f"{self.e.venue.name} answers again; the engine starts, HALTED until resumed.",
                           key="venue_unreachable")  # fmt: skip
                await self._start_trading()
                return
            if failure.startswith("authentication failed"):
                self.e.alert(AlertLevel.CRITICAL, "venue_unreachable", f"{self.e.venue.name}: {failure}",
                           key="venue_unreachable")  # fmt: skip
                return

    async def _start_trading(self) -> None:
        self.e.symbols = [s for s in self.e.symbols if s in self.e.market.instruments]
        below = {s: max(i.lot_size, i.min_qty) for s, i in self.e.market.instruments.items()}
        self.e.portfolio.dust_below = below
        self.e.journal.set_state("dust_below", {s: str(q) for s, q in below.items()})  # the replay needs them too
        adopt = getattr(self.e.venue, "adopt_book", None)
        if adopt is not None:  # the in-process simulated market starts empty: give it our book
            holdings = {p.symbol: p.qty for p in self.e.portfolio.positions()}
            adopt(self.e.portfolio.cash, holdings, self.e.book.working())
        await self.e.account.load_baseline()  # holdings from before the engine: never a mismatch, never sold
        self.e.reconciler = Reconciler.for_engine(self.e)  # the venue is the truth: repair, or HALT
        report = await self.e.reconciler.on_start()
        await self.e.account.sync_cash(fresh=self.e._fresh_journal)  # cash from the venue, not the config
        if report is None or report.ok:
            self.e.protection.resume()  # legs match the positions as reconciled (a crash may have left one off)
        if self.e._strategy_factory is not None:
            self.e.strategy = self.e._strategy_factory(self.e, self.e.symbols)
            await self._warm_up()
            self.e.strategy.on_start()
        self.e.connected = True
        self.e.bus.publish(
            ConnectionEvent(self.e.clock.now(), self.e.venue.name, True, await self.e.venue.ping_ms(), 0.0)
        )
        self.e.approval_gate.expire_orphans()
        self.e.periodic.schedule()
        self.e._tasks = [
            asyncio.create_task(self.e._pump_market(), name="market"),
            asyncio.create_task(self.e._pump_orders(), name="orders"),
        ]
        if not self.e._simulated_time:
            self.e._tasks.append(asyncio.create_task(self.e.timers.run(), name="timers"))
        self.e.audit("engine_start", f"venue {self.e.venue.name} ({self.e.venue.mode})", {"symbols": self.e.symbols})

    def _read_journal(self) -> dict[str, Any]:
        """Everything start needs from the journal, read off the loop (a long journal takes a while)."""
        j = self.e.journal
        tag = j.get_state("instance_tag")
        if not tag:
            tag = new_instance_tag()
            j.set_state("instance_tag", tag)
        if j.get_state("journal_started_at") is None:
            j.set_state("journal_started_at", self.e.clock.now().isoformat())
        run = int(j.get_state("runs", 0)) + 1
        j.set_state("runs", run)
        fills = j.fills()
        protections = {}
        for symbol in {*self.e.symbols, *(f.symbol for f in fills)}:
            value = j.get_state(f"protection:{symbol}")
            if value:
                protections[symbol] = value
        orders = j.orders()
        saved = j.get_state(PLANNED) or {}  # entries still working: their stop applies when they fill, now or later
        planned = {o.client_id: saved[o.client_id] for o in orders
                   if o.role == "entry" and o.status.is_working and o.client_id in saved}  # fmt: skip
        return {
            "tag": str(tag), "run": run, "starting_cash": j.get_state("starting_cash"),
            "orders": orders, "fills": fills, "protections": protections, "planned": planned,
            "dust_below": j.get_state("dust_below") or {},
        }  # fmt: skip

    def _restore(self, data: dict[str, Any]) -> None:
        """Rebuild the book from what the journal held: fills replayed, orders known, day state, protection."""
        self.e.book = OrderBook(data["tag"], data["run"])
        self.e.execution.book = self.e.book
        if data["starting_cash"] is None:
            self.e.journal.set_state("starting_cash", str(self.e.portfolio.starting_cash))
        else:
            self.e.portfolio = Portfolio(Decimal(data["starting_cash"]), day_tz=self.e.settings.engine.trading_day_tz)
        self.e.portfolio.dust_below = {s: Decimal(v) for s, v in data["dust_below"].items()}
        tags = {o.client_id: o for o in data["orders"]}
        for fill in data["fills"]:
            o = tags.get(fill.client_id)
            self.e.portfolio.apply_fill(fill, o.tag if o else "", o.strategy if o else "")
        self.e.book.restore(data["orders"], data["fills"])
        self.e._fresh_journal = not data["orders"] and not data["fills"]
        self.e.day.restore(self.e.portfolio, self.e.breakers, self.e.clock.now())
        for p in self.e.portfolio.positions():
            prot = data["protections"].get(p.symbol)
            if prot:
                self.e.protection.restore(p.symbol, prot)
        for cid, levels in data["planned"].items():
            self.e.protection.restore_planned(tags[cid], levels)

    async def _verify_audit_chain(self) -> None:
        """A broken audit chain means someone rewrote the record: start HALTED and say where."""
        verdict = await asyncio.to_thread(self.e.journal.verify_chain)
        if not verdict.ok:
            self.e.risk.set_state(TradingState.HALTED, f"audit chain broken: {verdict.message}", "system")
            self.e.alert(AlertLevel.EMERGENCY, "audit_chain_broken",
                       f"The audit trail fails verification ({verdict.message}); trading starts HALTED.",
                       key="audit_chain")  # fmt: skip

    def _announce_restored_halt(self) -> None:
        state = self.e.journal.get_state("trading_state")
        if state == TradingState.HALTED.value:
            reason = self.e.journal.get_state("trading_state_reason") or "halted before restart"
            self.e.risk.state = TradingState.HALTED
            self.e.risk.state_reason = f"restored: {reason}"
            self.e.alert(AlertLevel.CRITICAL, "halt_restored", f"Engine starts HALTED: {reason}")

    async def _warm_up(self) -> None:
        assert self.e.strategy is not None
        for s in self.e.symbols:
            for tick in await self.e.venue.history(s, self.e.settings.strategy.timeframe_s * 60, 1.0):
                self.e.strategy.on_tick(tick)
