"""Reconciliation: make the engine's book agree with what the venue says, on start and periodically.

The journal is the engine's memory, the venue is the truth. After a crash (or a
dropped stream) they can disagree: fills the engine never heard of, orders
someone placed by hand, orders cancelled while the engine was down, holdings
that moved. Everything found goes through the engine's normal order-update path
(`OrderBook.apply` through the kernel's `apply_update`), which books a fill once per fill id and adopts
unknown orders as external, so a fill reconciled twice is still counted once.
What cannot be repaired (holdings that differ) is raised as an alert and a
journal incident. If the venue cannot answer, the engine starts HALTED.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from engine.core.model import ZERO, AlertLevel, Fill, Order, OrderStatus, OrderType, TradingState

if TYPE_CHECKING:
    from engine.ports import ReconcileHost

log = logging.getLogger(__name__)
T = TypeVar("T")



@dataclass(frozen=True, slots=True)
class PositionMismatch:
    symbol: str
    engine_qty: Decimal
    venue_qty: Decimal

    @property
    def difference(self) -> Decimal:
        return self.venue_qty - self.engine_qty


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """The outcome of one reconciliation, for the UI and the journal."""

    ok: bool
    ts: datetime
    trigger: str = "start"  # start | periodic | manual
    applied_fills: tuple[str, ...] = ()  # fill ids booked by reconciliation
    adopted_orders: tuple[str, ...] = ()  # client ids of venue orders the engine did not know
    resolved_orders: tuple[str, ...] = ()  # client ids of journal orders the venue no longer lists
    mismatches: tuple[PositionMismatch, ...] = ()
    error: str = ""

    @property
    def clean(self) -> bool:
        """Nothing had to be repaired and nothing disagrees."""
        return self.ok and not (self.applied_fills or self.adopted_orders or self.resolved_orders or self.mismatches)

    def summary(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "ts": self.ts.isoformat(),
            "trigger": self.trigger,
            "applied_fills": list(self.applied_fills),
            "adopted_orders": list(self.adopted_orders),
            "resolved_orders": list(self.resolved_orders),
            "mismatches": [
                {"symbol": m.symbol, "engine_qty": str(m.engine_qty), "venue_qty": str(m.venue_qty)}
                for m in self.mismatches
            ],
            "error": self.error,
        }


class ReconcileFailed(Exception):
    pass


@dataclass
class _Pass:
    """What one reconciliation found and did."""

    applied: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)


class Reconciler:
    def __init__(
        self,
        engine: ReconcileHost,
        interval_s: float | None = 60.0,
        attempts: int = 3,
        backoff_s: float = 0.5,
        overlap_s: float = 60.0,
    ) -> None:
        self.engine = engine
        self.interval_s = interval_s  # None or <= 0: only on start
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.overlap = timedelta(seconds=overlap_s)
        self.last_report: ReconcileReport | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def for_engine(cls, engine: ReconcileHost) -> Reconciler:
        """Options from the typed [venues.<venue>] section: reconcile_interval_s, _attempts, _backoff_s, _overlap_s."""
        conf = engine.settings.venues.of(engine.settings.engine.venue)
        if conf is None:
            return cls(engine)
        return cls(engine, interval_s=conf.reconcile_interval_s, attempts=conf.reconcile_attempts,
                   backoff_s=conf.reconcile_backoff_s, overlap_s=conf.reconcile_overlap_s)  # fmt: skip

    @property
    def enabled(self) -> bool:
        # The in-process simulated market adopts the engine's book on start: it agrees by construction.
        return getattr(self.engine.venue, "adopt_book", None) is None

    # --- entry points ---------------------------------------------------------------------
    async def on_start(self) -> ReconcileReport | None:
        """Reconcile before the streams start; when the venue cannot answer, start HALTED and say why."""
        if not self.enabled:
            return None
        report = await self.run("start")
        if not report.ok:
            self.engine.risk.set_state(
                TradingState.HALTED, f"reconciliation on start failed: {report.error}", "system"
            )
        await asyncio.to_thread(self.engine.journal.flush)  # what start repaired is durable before trading
        return report

    async def periodic(self) -> None:
        """Run on the engine clock's timer (the kernel schedules it every interval_s)."""
        await self.run("periodic")

    async def run(self, trigger: str = "manual") -> ReconcileReport:
        async with self._lock:
            e = self.engine
            found = _Pass()
            try:
                mismatches = await self._reconcile(found, trigger)
                report = self._report(True, trigger, found, mismatches)
            except ReconcileFailed as exc:
                report = self._report(False, trigger, found, [], str(exc))
            self.last_report = report
            self._publish(report)
            e.journal.set_state("last_reconcile", report.summary())
            return report

    # --- the work --------------------------------------------------------------------------
    async def _reconcile(self, found: _Pass, trigger: str) -> list[PositionMismatch]:
        e = self.engine
        # Open orders first, fills second: an order that fills in between is then missing from the
        # list but its fill is in the second answer.
        venue_open = {o.client_id: o for o in await self._call("open orders", e.venue.open_orders)}
        await self._apply_missing_fills(found, venue_open)
        self._adopt_and_update(found, venue_open)
        refetch = await self._resolve_vanished(found, venue_open, skip_pending=trigger != "start")
        if refetch:
            await self._apply_missing_fills(found, venue_open)
        mismatches = await self._compare_positions()
        if mismatches:  # a fill racing the two reads looks like a mismatch: look once more
            await self._apply_missing_fills(found, venue_open)
            mismatches = await self._compare_positions()
        return mismatches

    async def _apply_missing_fills(self, found: _Pass, venue_open: dict[str, Order]) -> None:
        e = self.engine
        await asyncio.to_thread(e.journal.flush)
        last = e.journal.last_fill_ts()
        if last is None:  # a fresh journal: fills from before it began belong to no order of ours
            started = e.journal.get_state("journal_started_at")
            since = datetime.fromisoformat(started) if started else None
        else:
            since = last - self.overlap
        fills = await self._call("fills", e.venue.fills_since, since)
        missing = [f for f in sorted(fills, key=lambda f: f.ts) if not e.book.has_fill(f.fill_id)]
        if since is not None:
            missing = [f for f in missing if f.ts >= since]
        states: dict[str, Order] = {}
        for fill in missing:
            order = states.get(fill.client_id)
            if order is None:
                order = await self._order_for_fill(fill, venue_open)
                states[fill.client_id] = order
            self._claim_if_ours(order)
            e.apply_update(order, (fill,))
            found.applied.append(fill.fill_id)
        if missing:
            log.info("reconciliation booked %d missed fills", len(missing))

    async def _order_for_fill(self, fill: Fill, venue_open: dict[str, Order]) -> Order:
        """The venue's current view of the order a missed fill belongs to."""
        if fill.client_id in venue_open:
            return venue_open[fill.client_id]
        known = self.engine.book.get(fill.client_id)
        looked = await self._lookup(known) if known is not None else None
        if looked is not None:
            return looked
        if known is not None:
            return known
        # An order we never saw and the venue cannot describe: what its fill tells us.
        return Order(
            fill.client_id, fill.symbol, fill.side, OrderType.MARKET, fill.qty, status=OrderStatus.FILLED,
            filled_qty=fill.qty, avg_fill_price=fill.price, venue_order_id=fill.venue_order_id,
            created_at=fill.ts, updated_at=fill.ts,
        )  # fmt: skip

    def _adopt_and_update(self, found: _Pass, venue_open: dict[str, Order]) -> None:
        e = self.engine
        for cid, order in venue_open.items():
            known = e.book.get(e.book.resolve(order) or cid)
            if known is None:
                if not self._claim_if_ours(order):
                    found.adopted.append(cid)
                e.apply_update(order, ())  # unknown: adopted, flagged external, alerted
            elif (known.status, known.filled_qty, known.venue_order_id) != (
                order.status,
                order.filled_qty,
                order.venue_order_id,
            ):
                e.apply_update(order, ())

    def _claim_if_ours(self, order: Order) -> bool:
        """An order with this engine's id whose journal row was lost in a crash is ours, not external."""
        e = self.engine
        if e.book.resolve(order) is not None or not e.book.is_own(order.client_id):
            return False
        e.book.claim(order, "recovered by reconciliation")
        e.journal.record_incident(
            e.clock.now(), e.venue.name, "reconcile_recovered_order",
            f"order {order.client_id} on {order.symbol} was placed by an earlier run; journal row restored",
        )  # fmt: skip
        return True

    async def _resolve_vanished(self, found: _Pass, venue_open: dict[str, Order], skip_pending: bool) -> bool:
        """Journal orders the venue no longer lists: ask it what became of them. True if fills may be missing."""
        e = self.engine
        refetch = False
        for order in e.book.working():
            cid = order.client_id
            if cid in venue_open or order.status.is_terminal:
                continue
            if skip_pending and order.status is OrderStatus.PENDING:
                continue  # its submit may be on the way right now
            looked = await self._lookup(order)
            booked = e.book.booked_qty(cid)
            if looked is None:
                status = OrderStatus.FILLED if booked >= order.qty else OrderStatus.CANCELED
                reason = "the venue does not know it" if order.status is OrderStatus.PENDING else (
                    "no longer open at the venue"
                )
                looked = order.evolve(status=status, reason=f"reconciled: {reason}", updated_at=e.clock.now())
            elif not looked.status.is_terminal:
                continue  # still working (the open list was older than this answer)
            if looked.filled_qty > booked:
                refetch = True
            e.apply_update(looked, ())
            found.resolved.append(cid)
        return refetch

    async def _lookup(self, order: Order) -> Order | None:
        lookup: Callable[[Order], Awaitable[Order | None]] | None = getattr(self.engine.venue, "lookup", None)
        if lookup is None:
            return None
        return await self._call(f"order {order.client_id}", lookup, order)

    async def _compare_positions(self) -> list[PositionMismatch]:
        e = self.engine
        held = await self._call("positions", e.venue.positions)
        out = []
        for symbol in e.symbols:
            pos = e.portfolio.position(symbol)
            mine = pos.qty if pos is not None else ZERO
            theirs = held.get(symbol, ZERO) - e.account.baseline_for(symbol)  # holdings from before the engine
            if mine != theirs:
                out.append(PositionMismatch(symbol, mine, theirs))
        return out

    async def _call(self, what: str, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """A venue read with retries; after the last failure reconciliation cannot complete."""
        err: Exception | None = None
        for attempt in range(self.attempts):
            try:
                return await fn(*args)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                err = exc
                if attempt < self.attempts - 1:
                    await asyncio.sleep(self.backoff_s * 2**attempt)
        raise ReconcileFailed(f"{what}: {type(err).__name__}: {err}")

    # --- telling the operator ------------------------------------------------------------------
    def _report(
        self, ok: bool, trigger: str, found: _Pass, mismatches: list[PositionMismatch], error: str = ""
    ) -> ReconcileReport:
        return ReconcileReport(
            ok, self.engine.clock.now(), trigger, tuple(found.applied), tuple(found.adopted),
            tuple(found.resolved), tuple(mismatches), error,
        )  # fmt: skip

    def _publish(self, r: ReconcileReport) -> None:
        e = self.engine
        now, venue = e.clock.now(), e.venue.name
        if not r.ok:
            msg = f"Reconciliation with {venue} could not complete: {r.error}"
            e.journal.record_incident(now, venue, "reconcile_failed", msg)
            e.alert(AlertLevel.CRITICAL, "reconcile_failed", msg, key="reconcile_failed")
        for m in r.mismatches:
            msg = (
                f"Position mismatch on {m.symbol}: engine holds {m.engine_qty}, "
                f"{venue} reports {m.venue_qty} (difference {m.difference:+})"
            )
            e.journal.record_incident(now, venue, "position_mismatch", msg)
            e.alert(AlertLevel.WARNING, "position_mismatch", msg, key=f"position_mismatch:{m.symbol}")
        if r.applied_fills or r.resolved_orders:
            e.alert(
                AlertLevel.INFO,
                "reconciled",
                f"Reconciled with {venue}: {len(r.applied_fills)} missed fills booked, "
                f"{len(r.resolved_orders)} orders resolved, {len(r.adopted_orders)} adopted",
                key="reconciled",
            )
        if not r.clean:
            e.audit("reconcile", f"reconciliation ({r.trigger})", r.summary(), "system")

