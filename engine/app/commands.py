"""Operator commands: emergency stop, close all, resume, cancel, close one position.

`emergency_stop` and `close_all` are plain methods, not coroutines: the state
is HALTED when the call returns (no await in between), and the slow part,
talking to the venue, runs as a task whose progress is published as events.
Every command is written to the audit log with who, when and why.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.core.events import ProgressEvent
from engine.core.model import ZERO, AlertLevel, Order, OrderIntent, OrderStatus, Side, TradingState
from engine.venues.base import OrderNotFound, VenueError

if TYPE_CHECKING:
    from engine.app.kernel import Engine

log = logging.getLogger(__name__)

RETRY_DELAYS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)


class OperatorCommands:
    """Mixed into Engine; kept apart so the big buttons read as one unit."""

    _stop_task: asyncio.Task[Any] | None = None
    _close_task: asyncio.Task[Any] | None = None

    # --- emergency stop ---------------------------------------------------------
    def emergency_stop(
        self: Engine, reason: str = "emergency stop", operator: str = ""
    ) -> asyncio.Task[bool]:
        """HALT now, synchronously; then cancel every open order. Returns the cancelling task."""
        operator = operator or self.operator
        self.risk.set_state(TradingState.HALTED, reason, operator)
        self.audit("emergency_stop", reason, {"open_orders": len(self.orders)}, operator)
        self.alert(AlertLevel.EMERGENCY, "emergency_stop", f"EMERGENCY STOP by {operator}: {reason}")
        task = asyncio.get_running_loop().create_task(self._cancel_everything("emergency_stop", reason))
        self._stop_task = task
        return task

    async def _cancel_everything(self: Engine, operation: str, reason: str, deadline_s: float = 30.0) -> bool:
        """Cancel on every symbol concurrently, retrying until the venue reports none open."""
        self.journal.set_state("trading_state", self.risk.state.value)
        flushed = asyncio.get_running_loop().run_in_executor(None, self.journal.flush)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        # orders already on their way to the venue must land before we can cancel them
        if self._inflight:
            await asyncio.wait(list(self._inflight), timeout=max(0.1, deadline - loop.time()))
        total = max(len(self.orders), 1)
        open_at_start = len(self.orders)
        self.bus.publish(
            ProgressEvent(self.clock.now(), operation, f"cancelling {len(self.orders)} open orders", 0, total)
        )
        attempt = 0
        ok = False
        # First round: cancel where we know orders rest, without listing first (a venue-wide listing
        # is the most expensive call on Binance and its rate-limit cost would delay the cancels).
        # Every later round starts from the venue's own list, which also catches unknown orders.
        known_first = bool(self.orders)
        while True:
            venue_open: list[Order] | None = None
            if known_first:
                symbols = sorted({o.symbol for o in self.orders.values()})
            else:
                try:
                    venue_open = await self.venue.open_orders()
                except VenueError as exc:
                    self._venue_failure("listing open orders", exc)
                if venue_open is not None and not venue_open:
                    ok = True
                    break
                if loop.time() >= deadline:
                    break
                symbols = (
                    sorted({o.symbol for o in venue_open})
                    if venue_open
                    else sorted({o.symbol for o in self.orders.values()})
                )
            results = await asyncio.gather(
                *(self.venue.cancel_all(s) for s in symbols), return_exceptions=True
            )
            for sym, res in zip(symbols, results, strict=True):
                if isinstance(res, BaseException):
                    self._venue_failure(f"cancel-all on {sym}", res)  # type: ignore[arg-type]
            remaining = len(self.orders)
            self.bus.publish(
                ProgressEvent(
                    self.clock.now(),
                    operation,
                    f"{remaining} orders still open",
                    max(0, total - remaining),
                    total,
                )
            )
            if not known_first and not venue_open and remaining == 0:
                ok = True
                break
            if not known_first:
                await asyncio.sleep(RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)] if attempt else 0)
            known_first = False
            attempt += 1
        if ok:
            self._drop_local_orders("cancelled by " + operation)
        await flushed
        msg = (
            "all orders cancelled; venue confirms none open"
            if ok
            else "orders may still be open at the venue"
        )
        outcome = {"phase": "cancel", "orders": open_at_start, "still_open": len(self.orders)}
        self.bus.publish(  # the AlertCenter's rules turn this into the "finished" / "incomplete" alert
            ProgressEvent(self.clock.now(), operation, msg, total if ok else 0, total, True, ok, outcome)
        )
        self.audit(f"{operation}_done", msg, {"ok": ok, "attempts": attempt + 1})
        return ok

    def _drop_local_orders(self: Engine, reason: str) -> None:
        """The venue confirmed nothing is open: finish what we still think is working."""
        for order in list(self.orders.values()):
            if order.status is not OrderStatus.PENDING or order.venue_order_id:
                self._finish_locally(order, OrderStatus.CANCELED, reason)

    # --- close all --------------------------------------------------------------
    def preview_close_all(self: Engine) -> dict[str, Any]:
        """What close-all would do and the estimated realised P&L, for the confirmation dialog."""
        rows = []
        total = ZERO
        taker = Decimal(repr(self.settings.simulator.taker_fee))
        for p in self.portfolio.positions():
            tick = self.ticks.get(p.symbol)
            exit_price = (tick.bid if p.qty > 0 else tick.ask) if tick else p.last_price
            pnl = (exit_price - p.avg_price) * p.qty - abs(p.qty) * exit_price * taker
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
        return {"positions": rows, "estimated_pnl": total, "open_orders": len(self.orders)}

    def close_all(
        self: Engine, reason: str = "close all", operator: str = ""
    ) -> asyncio.Task[dict[str, Any]]:
        operator = operator or self.operator
        self.risk.set_state(TradingState.HALTED, reason, operator)
        self.audit("close_all", reason, self.preview_close_all(), operator)
        self.alert(AlertLevel.EMERGENCY, "close_all", f"CLOSE ALL by {operator}: {reason}")
        if self._close_task is not None and not self._close_task.done():
            return self._close_task
        task = asyncio.get_running_loop().create_task(self._run_close_all(reason, operator))
        self._close_task = task
        return task

    async def _run_close_all(
        self: Engine, reason: str, operator: str, deadline_s: float = 60.0
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        await self._cancel_everything("close_all", reason, deadline_s=min(30.0, deadline_s))
        start_realized = self.portfolio.realized
        targets = {p.symbol: p.qty for p in self.portfolio.positions()}
        total = len(targets)
        failures: dict[str, str] = {}
        attempt = 0
        while True:
            open_now = {p.symbol: p.qty for p in self.portfolio.positions()}
            self.bus.publish(
                ProgressEvent(
                    self.clock.now(),
                    "close_all",
                    f"{len(open_now)} positions to flatten",
                    total - len(open_now),
                    total,
                )
            )
            if not open_now or loop.time() >= deadline:
                break
            orders = []
            for symbol, qty in open_now.items():
                side = Side.SELL if qty > 0 else Side.BUY
                intent = OrderIntent(
                    symbol=symbol,
                    side=side,
                    qty=abs(qty),
                    reduce_only=True,
                    reason=f"close all: {reason}",
                    tag="close_all",
                )
                order = self.submit_intent(intent, bypass_state=True, role="flatten")
                if order is None:
                    failures[symbol] = "refused by the pre-trade checks (see denials)"
                else:
                    orders.append(order)
            if orders:
                done = await asyncio.wait(
                    [self.wait_for(o.client_id) for o in orders], timeout=max(0.1, deadline - loop.time())
                )
                for fut in done[0]:
                    o = fut.result()
                    if o.status is OrderStatus.REJECTED:
                        failures[o.symbol] = o.reason or "rejected"
                    elif self.portfolio.qty(o.symbol) == 0:
                        failures.pop(o.symbol, None)
            elif failures:
                break
            attempt += 1
            await asyncio.sleep(RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)])
        left = {p.symbol: str(p.qty) for p in self.portfolio.positions()}
        summary = {
            "positions_closed": total - len(left),
            "positions_left": left,
            "realized_pnl": str(self.portfolio.realized - start_realized),
            "failures": {s: m for s, m in failures.items() if s in left},
            "ok": not left,
        }
        msg = (
            f"flat: {summary['positions_closed']} positions closed, realised P&L {summary['realized_pnl']}"
            if not left
            else f"NOT flat: {len(left)} positions left ({', '.join(left)})"
        )
        self.bus.publish(
            ProgressEvent(
                self.clock.now(), "close_all", msg, total - len(left), total, True, not left, summary
            )
        )
        self.audit("close_all_done", msg, summary, operator)  # the AlertCenter alerts on the ProgressEvent
        return summary

    # --- resume -------------------------------------------------------------------
    def resume_refusal(self: Engine) -> str | None:
        """Why a resume would be refused right now, or None when it is allowed."""
        if self.risk.state is not TradingState.HALTED and self.risk.state is not TradingState.REDUCING:
            return "trading is not halted"
        holding = self.breakers.holding()
        if holding:
            return "breaker condition still holds: " + "; ".join(holding)
        if self._close_task is not None and not self._close_task.done():
            return "close all is still in progress"
        return None

    def resume(self: Engine, operator: str, reason: str) -> tuple[bool, str]:
        refusal = self.resume_refusal()
        if not reason.strip():
            refusal = refusal or "a reason is required to resume"
        if refusal is not None:
            self.audit("resume_refused", reason, {"refusal": refusal}, operator)
            return False, refusal
        self.breakers.acknowledge_streak()
        self.risk.set_state(TradingState.ACTIVE, f"resumed: {reason}", operator)
        self.audit("resume", reason, {}, operator)
        return True, "trading resumed"

    # --- single orders and positions ---------------------------------------------------
    def start_cancel(self: Engine, order: Order) -> asyncio.Task[Order | None]:
        return asyncio.get_running_loop().create_task(self.cancel_order(order))

    async def cancel_order(self: Engine, order: Order, operator: str = "") -> Order | None:
        if operator:
            self.audit("cancel_order", f"cancel {order.client_id}", {"symbol": order.symbol}, operator)
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS_S[:3])):
            if delay:
                await asyncio.sleep(delay)
            try:
                done = await self.venue.cancel(order)
            except OrderNotFound:
                done = order.evolve(status=OrderStatus.CANCELED, reason="not found at the venue")
            except VenueError as exc:
                self._venue_failure(f"cancel {order.client_id} (attempt {attempt + 1})", exc)
                if not exc.retryable:
                    return None
                continue
            self.on_order_update_if_newer(done)
            return done
        return None

    def on_order_update_if_newer(self: Engine, order: Order) -> None:
        from engine.core.model import OrderUpdate

        current = self._order_meta.get(order.client_id)
        if current is not None and current.status.is_terminal:
            return
        self.on_order_update(OrderUpdate(order))

    def close_position(self: Engine, symbol: str, operator: str = "", reason: str = "") -> Order | None:
        operator = operator or self.operator
        qty = self.portfolio.qty(symbol)
        if not qty:
            return None
        self.audit(
            "close_position", reason or f"close {symbol}", {"symbol": symbol, "qty": str(qty)}, operator
        )
        side = Side.SELL if qty > 0 else Side.BUY
        return self.submit_intent(
            OrderIntent(
                symbol=symbol,
                side=side,
                qty=abs(qty),
                reduce_only=True,
                reason=reason or f"closed by {operator}",
                tag="manual_close",
            )
        )
