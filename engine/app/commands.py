"""The big buttons: emergency stop, close all, resume, close one position.

`emergency_stop` and `close_all` are plain methods, not coroutines: the state is
HALTED, and written to disk, when the call returns (no await in between); the
slow part, talking to the venue, runs as a task whose progress is published as
events. Emergency stop keeps the resting stop-loss legs: a halted engine must
not leave its positions naked. Close all sizes each flatten against what is
still open minus what is already on its way out, and sends another only after
the venue's fills are booked and the position is still there.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.core.events import ProgressEvent
from engine.core.model import ZERO, AlertLevel, Order, OrderIntent, OrderStatus, Side, TradingState
from engine.oms.execution import RETRY_DELAYS_S
from engine.persistence.errors import JournalWriteError
from engine.venues.base import VenueError

if TYPE_CHECKING:
    from engine.app.kernel import Engine

log = logging.getLogger(__name__)

FILLS_GRACE_S = 3.0  # how long a finished flatten's fills may lag before the venue is asked
GIVE_UP_AFTER = 3  # the same symbol refused this many times in a row: stop and say why, never a storm


class BigButtons:
    def __init__(self, engine: Engine) -> None:
        self.e = engine
        self._stop_task: asyncio.Task[bool] | None = None
        self._close_task: asyncio.Task[dict[str, Any]] | None = None
        self.last_halt_durable = True
        self._cancelled_whole: set[str] = set()

    # --- emergency stop ---------------------------------------------------------------------
    def stop_in_progress(self) -> bool:
        return self._stop_task is not None and not self._stop_task.done()

    def emergency_stop(self, reason: str, operator: str, pull_stops: bool = False) -> asyncio.Task[bool]:
        """HALT now, durably; then cancel working orders (resting stop legs stay unless pull_stops)."""
        e = self.e
        e.risk.set_state(TradingState.HALTED, reason, operator)
        self._persist_halt(reason, operator, "emergency_stop", {"pull_stops": pull_stops})
        e.alert(AlertLevel.EMERGENCY, "emergency_stop", f"EMERGENCY STOP by {operator}: {reason}")
        if self.stop_in_progress():
            assert self._stop_task is not None
            return self._stop_task  # pressed again: one cancel loop is enough
        task = asyncio.get_running_loop().create_task(
            self.cancel_everything("emergency_stop", reason, keep_protection=not pull_stops)
        )
        self._stop_task = task
        return task

    def _persist_halt(self, reason: str, operator: str, action: str, details: dict[str, Any]) -> bool:
        """The halt and its audit row are on disk before the command returns (not via the writer queue).

        On a full or read-only disk the halt still holds in memory and the stop still runs; the
        operator is told at once that a restart would not know of it."""
        e = self.e
        details = {**details, "open_orders": e.book.working_count()}
        try:
            e.journal.write_state_now("trading_state", TradingState.HALTED.value)
            e.journal.write_state_now("trading_state_reason", reason)
            e.journal.audit_now(e.clock.now(), operator, action, reason, details)
        except JournalWriteError as exc:
            self.last_halt_durable = False
            e.alert(AlertLevel.EMERGENCY, "halt_not_durable",
                    f"HALTED, but the halt is NOT on disk ({exc}): a restart now would not know of it. "
                    "Free disk space; the journal retries.", key="halt_not_durable")  # fmt: skip
            return False
        self.last_halt_durable = True
        return True

    def _protective(self, order: Order) -> bool:
        return order.role == "stop_loss" and order.reduce_only

    def _to_cancel(self, keep_protection: bool) -> list[Order]:
        return [o for o in self.e.book.working() if not (keep_protection and self._protective(o))]

    async def cancel_everything(
        self, operation: str, reason: str, deadline_s: float = 30.0, keep_protection: bool = True
    ) -> bool:
        """Cancel working orders on every symbol concurrently until the venue confirms; keep stop legs."""
        e = self.e
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        # orders already on their way to the venue must land before we can cancel them
        if e.execution.inflight:
            await asyncio.wait(list(e.execution.inflight), timeout=max(0.1, deadline - loop.time()))
        targets = self._to_cancel(keep_protection)
        total = max(len(targets), 1)
        kept = e.book.working_count() - len(targets)
        self._progress(operation, f"cancelling {len(targets)} working orders ({kept} stop legs kept)", 0, total)
        attempt = 0
        ok = False
        while True:
            pending = self._to_cancel(keep_protection)
            # after a round: ask the venue when the book shows nothing left, or when venue-wide cancels
            # (answered with a count only) left the book to be settled from the venue's own list
            if attempt > 0 and (not pending or self._cancelled_whole):
                if await self._venue_confirms(keep_protection) and not self._to_cancel(keep_protection):
                    ok = True
                    break
                pending = self._to_cancel(keep_protection)
            if loop.time() >= deadline:
                break
            if pending:
                await self._cancel_round(pending, keep_protection)
            remaining = len(self._to_cancel(keep_protection))
            self._progress(operation, f"{remaining} orders still open", max(0, total - remaining), total)
            if attempt:
                await asyncio.sleep(RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)])
            attempt += 1
        left = len(self._to_cancel(keep_protection))
        msg = (
            f"working orders cancelled (venue confirms none open); {kept} resting stop legs kept"
            if ok
            else f"{left} orders may still be open at the venue"
        )
        outcome = {"phase": "cancel", "orders": len(targets), "still_open": left, "stops_kept": kept}
        e.bus.publish(  # the AlertCenter's rules turn this into the "finished" / "incomplete" alert
            ProgressEvent(e.clock.now(), operation, msg, total if ok else 0, total, True, ok, outcome)
        )
        e.audit(f"{operation}_done", msg, {"ok": ok, "attempts": attempt, **outcome})
        return ok

    async def _cancel_round(self, pending: list[Order], keep_protection: bool) -> None:
        """One venue-wide cancel per symbol where nothing must stay (one request, not one per order: 200
        single cancels ran into the venue's rate limit and took 2 s); order by order where a stop leg rests."""
        e = self.e
        keep = {o.symbol for o in e.book.working() if keep_protection and self._protective(o)}
        whole = sorted({o.symbol for o in pending} - keep)
        singles = [o for o in pending if o.symbol in keep]
        calls = [e.venue.cancel_all(s) for s in whole] + [e.execution.cancel_order(o) for o in singles]
        results = await asyncio.gather(*calls, return_exceptions=True)
        for what, res in zip([*whole, *(o.client_id for o in singles)], results, strict=True):
            if isinstance(res, BaseException):
                e.venue_failure(f"cancel {what}", res)  # type: ignore[arg-type]
        self._cancelled_whole.update(whole)  # the venue-wide cancels answer with a count: the listing settles them

    def _settle_unlisted(self, listed: set[str]) -> None:
        e = self.e
        symbols, self._cancelled_whole = self._cancelled_whole, set()
        now = e.clock.now()
        for order in e.book.working():
            if order.symbol in symbols and order.client_id not in listed and order.status is not OrderStatus.PENDING:
                # not listed after a venue-wide cancel: gone. A fill that raced it still arrives (stream, poll,
                # reconciliation) and a fill outranks the cancel in the book.
                e.apply_update(order.evolve(status=OrderStatus.CANCELED, reason="cancelled (venue-wide)",
                                            updated_at=now), ())  # fmt: skip

    async def _venue_confirms(self, keep_protection: bool) -> bool:
        """The venue's own list: nothing but our kept stop legs open. Unknown orders are adopted (and cancelled
        next round when they are not protection)."""
        e = self.e
        try:
            venue_open = await e.venue.open_orders()
        except VenueError as exc:
            e.venue_failure("listing open orders", exc)
            return False
        self._settle_unlisted({o.client_id for o in venue_open})
        stray = False
        for o in venue_open:
            known = e.book.get(e.book.resolve(o) or o.client_id)
            if known is None or not known.status.is_working:
                e.apply_update(o, ())
            current = e.book.get(e.book.resolve(o) or o.client_id)
            if current is not None and not (keep_protection and self._protective(current)):
                stray = True
        return not stray

    # --- close all ------------------------------------------------------------------------------
    def close_in_progress(self) -> bool:
        return self._close_task is not None and not self._close_task.done()

    def stop_close_all(self, reason: str, operator: str) -> bool:
        """The operator stops a close-all that cannot finish (the venue keeps refusing): it ends, HALTED,
        with what is left said; orders it already sent are not recalled. False when none runs."""
        if not self.close_in_progress():
            return False
        assert self._close_task is not None
        self._close_task.cancel()
        e = self.e
        left = {p.symbol: str(p.qty) for p in e.portfolio.positions()}
        msg = f"close all stopped by {operator}: {len(left)} positions left ({', '.join(left) or 'none'})"
        e.bus.publish(ProgressEvent(e.clock.now(), "close_all", msg, 0, max(1, len(left)), True, False,
                                    {"positions_left": left, "stopped_by": operator}))  # fmt: skip
        e.audit("close_all_stopped", reason or msg, {"positions_left": left}, operator)
        return True

    def preview_close_all(self) -> dict[str, Any]:
        """What close-all would do and the estimated realised P&L, for the confirmation dialog."""
        e = self.e
        rows = []
        total = ZERO
        taker = Decimal(repr(e.settings.simulator.taker_fee))
        for p in e.portfolio.positions():
            tick = e.market.ticks.get(p.symbol)
            exit_price = (tick.bid if p.qty > 0 else tick.ask) if tick else p.last_price
            # net of both fees: the entry fee paid so far (p.fees) and the estimated exit fee
            pnl = (exit_price - p.avg_price) * p.qty - abs(p.qty) * exit_price * taker - p.fees
            total += pnl
            rows.append(
                {
                    "symbol": p.symbol,
                    "side": "long" if p.qty > 0 else "short",
                    "qty": abs(p.qty),
                    "avg_price": p.avg_price,
                    "last": p.last_price,
                    "exit_price": exit_price,
                    "unrealized_pnl": p.unrealized_pnl,
                    "estimated_pnl": pnl,
                }
            )
        return {"positions": rows, "estimated_pnl": total, "open_orders": e.book.working_count()}

    def close_all(self, reason: str, operator: str) -> asyncio.Task[dict[str, Any]]:
        e = self.e
        e.risk.set_state(TradingState.HALTED, reason, operator)
        self._persist_halt(reason, operator, "close_all", {"positions": e.portfolio.open_count()})
        e.alert(AlertLevel.EMERGENCY, "close_all", f"CLOSE ALL by {operator}: {reason}")
        if self._close_task is not None and not self._close_task.done():
            return self._close_task
        task = asyncio.get_running_loop().create_task(self.run_close_all(reason, operator))
        self._close_task = task
        return task

    async def run_close_all(self, reason: str, operator: str, deadline_s: float = 60.0) -> dict[str, Any]:
        e = self.e
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        await self.cancel_everything("close_all", reason, deadline_s=min(30.0, deadline_s), keep_protection=True)
        trades_before = len(e.portfolio.closed_trades)
        total = e.portfolio.open_count()
        failures: dict[str, str] = {}
        refusals: dict[str, int] = {}
        attempt = 0
        while True:
            open_now = {p.symbol: p.qty for p in e.portfolio.positions() if refusals.get(p.symbol, 0) < GIVE_UP_AFTER}
            self._progress("close_all", f"{len(open_now)} positions to flatten", total - len(open_now), total,
                           {"failures": dict(failures)})  # fmt: skip
            if not open_now or loop.time() >= deadline:
                break
            sent = self._send_flattens(open_now, reason, failures)
            if sent:
                await self._settle(sent, deadline, failures)
                for o in sent:
                    done = e.book.get(o.client_id)
                    refused = done is not None and done.status is OrderStatus.REJECTED
                    refusals[o.symbol] = refusals.get(o.symbol, 0) + 1 if refused else 0
                if any(n == GIVE_UP_AFTER for n in refusals.values()):
                    await self._ask_venue(open_now)  # a refusal often means the book and the venue disagree
            elif not self._anything_on_its_way(open_now):
                if failures:
                    break  # nothing could be sent and nothing is working: say why instead of spinning
                await self._ask_venue(open_now)
            attempt += 1
            await asyncio.sleep(RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)])
        return self._finish_close_all(total, trades_before, failures, operator)

    def _send_flattens(self, open_now: dict[str, Decimal], reason: str, failures: dict[str, str]) -> list[Order]:
        e = self.e
        sent = []
        for symbol, qty in open_now.items():
            side = Side.SELL if qty > 0 else Side.BUY
            if e.execution.reducible(symbol, side) <= 0:
                continue  # already on its way out: never a second flatten for the same quantity
            intent = OrderIntent(symbol=symbol, side=side, qty=abs(qty), reduce_only=True,
                                 reason=f"close all: {reason}", tag="close_all")  # fmt: skip
            order = e.execution.submit_intent(intent, bypass_state=True, role="flatten")
            if order is None:
                failures[symbol] = "refused by the pre-trade checks (see denials)"
            else:
                sent.append(order)
        return sent

    async def _settle(self, sent: list[Order], deadline: float, failures: dict[str, str]) -> None:
        """Wait until each flatten is finished and its fills are booked (asking the venue if they lag)."""
        e = self.e
        loop = asyncio.get_running_loop()
        waits = [e.book.wait_for(o.client_id) for o in sent]
        await asyncio.wait(waits, timeout=max(0.1, deadline - loop.time()))
        lag_until = loop.time() + FILLS_GRACE_S
        while loop.time() < min(lag_until, deadline):
            if all(e.book.all_fills_booked(o.client_id) for o in sent):
                break
            await asyncio.sleep(0.05)
        for o in sent:
            done = e.book.get(o.client_id)
            if done is None:
                continue
            if done.status is OrderStatus.REJECTED:
                failures[o.symbol] = done.reason or "rejected by the venue"
            elif done.status.is_terminal and e.portfolio.qty(o.symbol) == 0:
                failures.pop(o.symbol, None)
        if any(not e.book.all_fills_booked(o.client_id) for o in sent):
            await self._ask_venue({o.symbol: e.portfolio.qty(o.symbol) for o in sent})

    def _anything_on_its_way(self, open_now: dict[str, Decimal]) -> bool:
        e = self.e
        return any(
            e.book.pending_reduction(s, Side.SELL if q > 0 else Side.BUY) > 0 for s, q in open_now.items()
        )

    async def _ask_venue(self, open_now: dict[str, Decimal]) -> None:
        """Fills lag: reconcile so the book agrees with the venue before anything is sent again."""
        reconciler = self.e.reconciler
        if reconciler is not None and reconciler.enabled:
            await reconciler.run("close_all")

    def _finish_close_all(
        self, total: int, trades_before: int, failures: dict[str, str], operator: str
    ) -> dict[str, Any]:
        e = self.e
        left = {p.symbol: str(p.qty) for p in e.portfolio.positions()}
        # the round trips close-all ended, net of both fees: the figure the report shows for them
        realized = sum((t.pnl for t in e.portfolio.closed_trades[trades_before:]), ZERO)
        summary = {
            "positions_closed": total - len(left),
            "positions_left": left,
            "realized_pnl": str(realized.quantize(Decimal("0.01"))),
            "failures": {s: m for s, m in failures.items() if s in left},
            "ok": not left,
        }
        msg = (
            f"flat: {summary['positions_closed']} positions closed, realised P&L {summary['realized_pnl']}"
            if not left
            else f"NOT flat: {len(left)} positions left ({', '.join(left)})"
            + "".join(f"; {s}: {m}" for s, m in summary["failures"].items())
        )
        e.bus.publish(
            ProgressEvent(e.clock.now(), "close_all", msg, total - len(left), total, True, not left, summary)
        )
        e.audit("close_all_done", msg, summary, operator)  # the AlertCenter alerts on the ProgressEvent
        return summary

    def _progress(self, operation: str, msg: str, done: int, total: int, details: Any = None) -> None:
        e = self.e
        e.bus.publish(ProgressEvent(e.clock.now(), operation, msg, done, total, details=details or {}))

    # --- resume -----------------------------------------------------------------------------------
    def resume_refusal(self) -> str | None:
        """Why a resume would be refused right now, or None when it is allowed."""
        e = self.e
        if e.risk.state is not TradingState.HALTED and e.risk.state is not TradingState.REDUCING:
            return "trading is not halted"
        holding = e.breakers.holding()
        if holding:
            return "breaker condition still holds: " + "; ".join(holding)
        if self.close_in_progress():
            return "close all is still in progress"
        return None

    def resume(self, operator: str, reason: str) -> tuple[bool, str]:
        e = self.e
        refusal = self.resume_refusal()
        if not reason.strip():
            refusal = refusal or "a reason is required to resume"
        if refusal is not None:
            e.audit("resume_refused", reason, {"refusal": refusal}, operator)
            return False, refusal
        e.breakers.acknowledge_streak()
        e.risk.set_state(TradingState.ACTIVE, f"resumed: {reason}", operator)
        e.audit("resume", reason, {}, operator)
        e.day.save(e.portfolio, e.breakers)
        return True, "trading resumed"

    # --- one position -------------------------------------------------------------------------------
    def close_position(self, symbol: str, operator: str, reason: str = "") -> Order | None:
        e = self.e
        qty = e.portfolio.qty(symbol)
        if not qty:
            return None
        e.audit("close_position", reason or f"close {symbol}", {"symbol": symbol, "qty": str(qty)}, operator)
        side = Side.SELL if qty > 0 else Side.BUY
        intent = OrderIntent(symbol=symbol, side=side, qty=abs(qty), reduce_only=True,
                             reason=reason or f"closed by {operator}", tag="manual_close")  # fmt: skip
        return e.execution.submit_intent(intent)
