"""The one path every order update takes: the OrderBook decides what is new, the rest follows.

REST replies, stream updates, polls and reconciliation all land in `apply_update`; a fill is booked
once per trade id into the portfolio and the journal, then protection, the breakers, the day state
and the strategy hear of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.core.events import FillEvent, OrderEvent, PositionEvent
from engine.core.model import AlertLevel, Fill, Order, OrderStatus
from engine.oms.execution import UNSUPPORTED_TYPE

if TYPE_CHECKING:
    from engine.app.kernel import Engine


class Booking:
    def __init__(self, engine: Engine) -> None:
        self.e = engine

    def apply_update(self, update: Order, fills: Sequence[Fill] = ()) -> Order:
        """REST replies, stream updates, polls and reconciliation all land here; idempotent per fill id."""
        res = self.e.book.apply(update, fills)
        order = res.order
        if not res.known and order.external:
            self.e.alert(
                AlertLevel.WARNING,
                "external_order",
                f"Order {order.client_id} on {order.symbol} was not "
                "placed by this engine; adopted and flagged external",
                key=f"external:{order.client_id}",
            )
        for fill in res.new_fills:
            self._book_fill(fill, order)
        if res.changed or res.new_fills:
            self.e.journal.record_order(order)
            self.e.bus.publish(OrderEvent(order.updated_at or self.e.clock.now(), order))
        if res.changed and order.role == "stop_loss":
            self.e.protection.on_order(order)
        stepped_down = order.role == "stop_loss" and order.reason.startswith(UNSUPPORTED_TYPE)
        if res.changed and order.status is OrderStatus.REJECTED and not stepped_down:
            # a stop type the venue does not take is the protection chain stepping down (its own
            # stop_fallback warning says so), not a refusal storm nor a book that disagrees
            self.e.alert(
                AlertLevel.WARNING,
                "order_rejected",
                f"{order.symbol} {order.side} {order.qty} rejected: {order.reason or 'no reason given'}",
                key=f"rejected:{order.symbol}",
            )
            if self.e.execution.on_rejected is not None:
                self.e.execution.on_rejected(order)
        if order.status.is_terminal and (res.changed or res.new_fills):
            if order.role == "entry" and order.filled_qty > 0 and self.e.book.all_fills_booked(order.client_id):
                self.e.protection.on_entry_done(order)  # only once every fill of the entry is booked
            elif order.role == "entry" and order.filled_qty == 0:
                self.e.protection.forget(order.client_id)  # never filled: its levels guard nothing
            elif order.role == "exit" and order.filled_qty < order.qty and res.changed:
                if order.status is OrderStatus.REJECTED:
                    self.e.protection.exit_refused(order.symbol)
                else:
                    self.e.protection.rearm(order.symbol)
            elif order.role == "exit" and self.e.portfolio.qty(order.symbol) and self.e.book.all_fills_booked(
                order.client_id
            ):
                # a partial exit (an operator's "sell some") filled: the rest of the position keeps its stop
                self.e.protection.rearm(order.symbol)
        return order

    def _book_fill(self, fill: Fill, order: Order) -> None:
        fill = self.e.portfolio.priced(fill)  # a fee charged in BNB is valued at its mark: journaled with both amounts
        self.e.account.note_fill()
        result = self.e.portfolio.apply_fill(fill, order.tag, order.strategy)
        self.e.journal.record_fill(fill)
        if result.opened:
            self.e.day.count_new_position()
            self.e.day.save(self.e.portfolio, self.e.breakers)  # the day's new-position count survives a crash now
        self.e.bus.publish(FillEvent(fill.ts, fill, order))
        self.e.bus.publish(PositionEvent(fill.ts, result.position))
        if result.trade is not None:
            self.e.journal.record_trade(result.trade)
            self.e.breakers.on_trade_closed(result.trade.pnl)
            self.e.day.save(self.e.portfolio, self.e.breakers)
        if result.position.qty == 0 or result.opened:
            self.e.protection.on_position_flat_or_new(fill.symbol, result.position)
        if order.role == "stop_loss":
            self.e.alert(
                AlertLevel.WARNING,
                "stop_loss_hit",
                f"Stop loss hit on {fill.symbol}: {fill.side} {fill.qty} @ {fill.price}",
                key=f"stop_loss:{fill.symbol}",
            )
        if self.e.strategy is not None and order.strategy == self.e.strategy.name:
            self.e.strategy.on_fill(fill, order)

    def on_rejected(self, order: Order) -> None:
        """Every refusal counts toward the reject breaker; a refused reducing order means the book and
        the venue may disagree (coins moved by hand): reconcile that, never just retry."""
        self.e.reject_breaker.on_rejected(order)
        if order.reduce_only and self.e.reconciler is not None and self.e.reconciler.enabled:
            self.e.spawn(self.e.reconciler.run("rejected_exit"))
