"""Intents become orders: risk check, the last gate before the venue, acknowledgements.

The final state check sits in the submit task right before the venue call,
with no await in between, so an emergency stop that lands while an intent
waits (for approval, for a protective leg to be released) stops it there.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING

from engine.core.events import IntentDenied
from engine.core.model import Order, OrderIntent, OrderStatus, OrderType, OrderUpdate, TradingState
from engine.risk.risk_engine import CheckInput
from engine.venues.base import OrderRejected, VenueError

if TYPE_CHECKING:
    from engine.app.kernel import Engine


class OrderFlow:
    """Mixed into Engine."""

    # --- intents -> orders --------------------------------------------------------
    def submit_intent(
        self, intent: OrderIntent, bypass_state: bool = False, role: str = "entry"
    ) -> Order | None:
        """Risk-check synchronously; on approval, start the submit. Returns the order or None if denied."""
        inst = self.instruments.get(intent.symbol)
        if inst is None:
            self._deny(intent, "unknown_symbol", f"{intent.symbol} is not traded on {self.venue.name}")
            return None
        tick = self.ticks.get(intent.symbol)
        pf = self.portfolio
        decision = self.risk.check(
            CheckInput(
                intent=intent,
                instrument=inst,
                bid=tick.bid if tick else None,
                ask=tick.ask if tick else None,
                last=tick.last if tick else None,
                equity=pf.equity,
                cash=pf.cash,
                position_qty=pf.qty(intent.symbol),
                open_positions=pf.open_count(),
                new_positions_today=self.new_positions_today,
                now=self.clock.monotonic(),
                bypass_state=bypass_state,
                exposure=pf.gross_exposure,
                position_symbols=pf.open_symbols(),
            )
        )
        if not decision.approved:
            self._deny(intent, decision.code, decision.message)
            return None
        if role == "entry" and intent.reduce_only:
            role = "exit"
        # a human approves first when the policy says so: nothing is submitted yet
        if not bypass_state and self.approval_gate.needs_approval(intent, decision.qty, decision.price, role):
            self.approval_gate.request(intent, decision.qty, role, decision)
            return None
        ref = decision.price if intent.order_type is OrderType.MARKET else None
        order = self.new_order(intent, decision.qty, role, ref)
        if role == "entry" and (intent.stop_loss or intent.take_profit or intent.max_hold_s):
            self.protection.plan(order.client_id, intent)
        self.start_submit(order, bypass_state=bypass_state)
        return order

    def new_order(
        self: Engine, intent: OrderIntent, qty: Decimal, role: str, ref_price: Decimal | None = None
    ) -> Order:
        return Order(
            client_id=f"{self._id_prefix}-{next(self._ids)}",
            symbol=intent.symbol,
            side=intent.side,
            order_type=intent.order_type,
            qty=qty,
            price=intent.price,
            stop_price=intent.stop_price,
            created_at=self.clock.now(),
            updated_at=self.clock.now(),
            reduce_only=intent.reduce_only,
            tag=intent.tag,
            strategy=intent.strategy,
            role=role,
            reason=intent.reason,
            ref_price=ref_price,
        )

    def start_submit(self: Engine, order: Order, bypass_state: bool = False) -> asyncio.Task[Order | None]:
        self._order_meta[order.client_id] = order
        self.orders[order.client_id] = order
        self.journal.record_order(order)
        task = asyncio.get_running_loop().create_task(self._submit(order, bypass_state))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return task

    async def _submit(self: Engine, order: Order, bypass_state: bool) -> Order | None:
        # The last gate: a halt that came while this order waited must stop it here.
        if self.risk.state is TradingState.HALTED and not bypass_state:
            self._finish_locally(order, OrderStatus.CANCELED, "halted before it reached the venue")
            return None
        if self.risk.state is TradingState.REDUCING and not bypass_state and order.role == "entry":
            self._finish_locally(order, OrderStatus.CANCELED, "state became REDUCING before submission")
            return None
        if order.role in ("exit", "flatten"):
            await self.protection.release(order.symbol)  # the stop leg locks what the exit sells
            if self.risk.state is TradingState.HALTED and not bypass_state:
                self._finish_locally(order, OrderStatus.CANCELED, "halted before it reached the venue")
                return None
        try:
            ack = await self.venue.submit(order)
        except OrderRejected as exc:
            self._finish_locally(order, OrderStatus.REJECTED, str(exc))
            return None
        except VenueError as exc:
            self._venue_failure(f"submit {order.symbol} {order.side} failed", exc)
            self._finish_locally(order, OrderStatus.REJECTED, str(exc))
            return None
        current = self._order_meta.get(order.client_id)
        if current is not None and (current.status.is_terminal or current.filled_qty > ack.filled_qty):
            return current  # the update stream was faster than the acknowledgement
        self.on_order_update(OrderUpdate(ack))
        return ack

    def _finish_locally(self: Engine, order: Order, status: OrderStatus, reason: str) -> None:
        done = order.evolve(status=status, reason=reason, updated_at=self.clock.now())
        self._track(done)

    def _deny(self: Engine, intent: OrderIntent, code: str, message: str) -> None:
        now = self.clock.now()
        self.journal.record_denial(now, intent, code, message)
        self.bus.publish(IntentDenied(now, intent, code, message))

