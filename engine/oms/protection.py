"""Protective legs the engine manages for each position: stop loss, take profit, time exit.

The stop loss rests at the venue as a stop-market order, so protection
survives a crash of this process. The take profit and the time exit are
watched by the engine and fire a market exit; whichever leg acts first
cancels the other (one-cancels-other), because on a spot venue two resting
sell orders would lock the same coins twice.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.core.model import Order, OrderIntent, OrderType, Position, Side

if TYPE_CHECKING:
    from engine.app.kernel import Engine


@dataclass(slots=True)
class _Plan:
    stop: str | None
    take_profit: str | None
    hold_until: str | None = None
    stop_order: str | None = None  # client id of the resting stop leg
    exiting: bool = False


class Protection:
    def __init__(self, engine: Engine) -> None:
        self.e = engine
        self._planned: dict[str, OrderIntent] = {}  # entry client id -> intent
        self._plans: dict[str, _Plan] = {}  # symbol -> active protection

    def plan(self, entry_client_id: str, intent: OrderIntent) -> None:
        self._planned[entry_client_id] = intent

    def restore(self, symbol: str, data: dict[str, Any]) -> None:
        self._plans[symbol] = _Plan(**data)
        self._push_levels(symbol)

    def plan_for(self, symbol: str) -> _Plan | None:
        return self._plans.get(symbol)

    def on_entry_done(self, entry: Order) -> None:
        intent = self._planned.pop(entry.client_id, None)
        pos = self.e.portfolio.position(entry.symbol)
        if intent is None or pos is None:
            return
        hold = None
        if intent.max_hold_s:
            hold = (self.e.clock.now() + timedelta(seconds=intent.max_hold_s)).isoformat()
        plan = _Plan(
            stop=str(intent.stop_loss) if intent.stop_loss is not None else None,
            take_profit=str(intent.take_profit) if intent.take_profit is not None else None,
            hold_until=hold,
        )
        self._plans[entry.symbol] = plan
        self._arm_stop(entry.symbol, pos)
        self._save(entry.symbol)

    def _arm_stop(self, symbol: str, pos: Position) -> None:
        plan = self._plans.get(symbol)
        if plan is None or plan.stop is None or plan.exiting:
            return
        side = Side.SELL if pos.qty > 0 else Side.BUY
        intent = OrderIntent(
            symbol=symbol,
            side=side,
            qty=abs(pos.qty),
            order_type=OrderType.STOP_MARKET,
            stop_price=Decimal(plan.stop),
            reduce_only=True,
            reason="protective stop loss",
            tag="stop_loss",
        )
        order = self.e.new_order(intent, abs(pos.qty), "stop_loss")
        plan.stop_order = order.client_id
        self.e.start_submit(order)
        self._push_levels(symbol)

    def rearm(self, symbol: str) -> None:
        """An exit failed and the position is still open: put the stop back."""
        plan = self._plans.get(symbol)
        pos = self.e.portfolio.position(symbol)
        if plan is None or pos is None:
            return
        plan.exiting = False
        if plan.stop_order is None or plan.stop_order not in self.e.orders:
            self._arm_stop(symbol, pos)

    def on_position_flat_or_new(self, symbol: str, pos: Position) -> None:
        if pos.qty != 0:
            return
        plan = self._plans.pop(symbol, None)
        self.e.portfolio.set_protection(symbol, None, None)
        self.e.journal.set_state(f"protection:{symbol}", None)
        if plan is not None and plan.stop_order and plan.stop_order in self.e.orders:
            self.e.start_cancel(self.e.orders[plan.stop_order])

    async def release(self, symbol: str) -> None:
        """Cancel the symbol's resting stop leg (and wait) so an exit can use the coins it locks."""
        plan = self._plans.get(symbol)
        if plan is None:
            return
        plan.exiting = True
        stop_id, plan.stop_order = plan.stop_order, None
        order = self.e.orders.get(stop_id) if stop_id else None
        if order is not None:
            await self.e.cancel_order(order)

    def on_market(self, now: datetime) -> None:
        if not self._plans:
            return
        for symbol, plan in self._plans.items():
            if plan.exiting:
                continue
            tick = self.e.ticks.get(symbol)
            pos_qty = self.e.portfolio.qty(symbol)
            if tick is None or not pos_qty:
                continue
            why = None
            if plan.take_profit is not None:
                tp = Decimal(plan.take_profit)
                if (pos_qty > 0 and tick.bid >= tp) or (pos_qty < 0 and tick.ask <= tp):
                    why = f"take profit {tp} reached"
            if why is None and plan.hold_until is not None and now >= datetime.fromisoformat(plan.hold_until):
                why = "maximum holding time reached"
            if why is not None:
                plan.exiting = True
                side = Side.SELL if pos_qty > 0 else Side.BUY
                asyncio.get_running_loop().call_soon(self._exit, symbol, side, abs(pos_qty), why)

    def _exit(self, symbol: str, side: Side, qty: Decimal, why: str) -> None:
        order = self.e.submit_intent(
            OrderIntent(
                symbol=symbol,
                side=side,
                qty=qty,
                reduce_only=True,
                reason=why,
                tag="protective_exit",
                strategy=self.e.strategy.name if self.e.strategy else "",
            )
        )
        if order is None:
            self.rearm(symbol)

    def _push_levels(self, symbol: str) -> None:
        plan = self._plans.get(symbol)
        if plan is None:
            return
        self.e.portfolio.set_protection(
            symbol,
            Decimal(plan.stop) if plan.stop else None,
            Decimal(plan.take_profit) if plan.take_profit else None,
        )

    def _save(self, symbol: str) -> None:
        plan = self._plans.get(symbol)
        self.e.journal.set_state(f"protection:{symbol}", asdict(plan) if plan else None)
