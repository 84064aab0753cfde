"""Execution: intents become orders. The risk check, the last gate before the venue, cancels.

The final state check sits in the submit task right before the venue call,
with no await in between, so an emergency stop that lands while an intent
waits (for approval, for a protective leg to be released, for a retry) stops
it there. Reducing orders are sized against the position minus what is
already on its way out (`OrderBook.pending_reduction`), so however late the
venue's fills arrive, no exit, flatten or close ever overshoots.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from engine.core.clock import Clock
from engine.core.events import EventBus, IntentDenied
from engine.core.model import (
    ZERO,
    Fill,
    Instrument,
    MarketTick,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    Side,
    TradingState,
)
from engine.oms.order_book import OrderBook
from engine.oms.portfolio import Portfolio
from engine.risk.risk_engine import CheckInput, RiskEngine
from engine.venues.base import OrderNotFound, OrderRejected, OrderTypeUnsupported, RateLimited, Venue, VenueError

RETRY_DELAYS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
RATE_LIMIT_WAITS = 2  # a protective or reducing order waits out this many 429s before it is given up
UNSUPPORTED_TYPE = "order type not supported"  # reason prefix: the protection chain steps down on it
REDUCING_ROLES = ("exit", "flatten", "stop_loss")


class VenueFailure(Protocol):
    def __call__(self, what: str, exc: Exception, link: str = "") -> None: ...


class DenialRecorder(Protocol):
    def record_denial(self, ts: Any, intent: OrderIntent, code: str, message: str) -> None: ...

    def record_order(self, order: Order) -> None: ...


class ApprovalPolicy(Protocol):
    def needs_approval(self, intent: OrderIntent, qty: Decimal, price: Decimal | None, role: str) -> bool: ...

    def request(self, intent: OrderIntent, qty: Decimal, role: str, decision: Any) -> Any: ...


class ProtectionPlanner(Protocol):
    def plan(self, entry_client_id: str, intent: OrderIntent) -> None: ...

    async def release(self, symbol: str) -> None: ...


@dataclass(slots=True)
class MarketView:
    """What the engine knows of the market: instruments and the latest tick per symbol."""

    instruments: dict[str, Instrument]
    ticks: dict[str, MarketTick]


class Execution:
    def __init__(
        self,
        *,
        clock: Clock,
        venue: Venue,
        book: OrderBook,
        risk: RiskEngine,
        portfolio: Callable[[], Portfolio],
        market: MarketView,
        journal: DenialRecorder,
        bus: EventBus,
        apply_update: Callable[[Order, Sequence[Fill]], Order],
        venue_failure: VenueFailure,
        new_positions_today: Callable[[], int],
    ) -> None:
        self.clock = clock
        self.venue = venue
        self.book = book
        self.risk = risk
        self._portfolio = portfolio
        self.market = market
        self.journal = journal
        self.bus = bus
        self._apply = apply_update
        self._venue_failure = venue_failure
        self._new_today = new_positions_today
        self.approvals: ApprovalPolicy | None = None
        self.protection: ProtectionPlanner | None = None
        self.inflight: set[asyncio.Task[Any]] = set()
        self.on_rejected: Callable[[Order], None] | None = None  # the reject breaker listens here

    # --- sizing of reducing orders -----------------------------------------------------------------
    def reducible(self, symbol: str, side: Side) -> Decimal:
        """How much an order on `side` may still take off the position without overshooting."""
        pos = self._portfolio().qty(symbol)
        if pos == 0 or (pos > 0) == (side is Side.BUY):
            return ZERO  # flat, or this side would add to the position
        return max(ZERO, abs(pos) - self.book.pending_reduction(symbol, side))

    # --- intents -> orders -------------------------------------------------------------------------
    def submit_intent(
        self, intent: OrderIntent, bypass_state: bool = False, role: str = "entry"
    ) -> Order | None:
        """Risk-check synchronously; on approval, start the submit. Returns the order or None if denied."""
        inst = self.market.instruments.get(intent.symbol)
        if inst is None:
            self.deny(intent, "unknown_symbol", f"{intent.symbol} is not traded on {self.venue.name}")
            return None
        if role == "entry" and intent.reduce_only:
            role = "exit"
        if intent.reduce_only:
            room = inst.round_qty(self.reducible(intent.symbol, intent.side))
            if room <= 0:
                self.deny(intent, "already_reducing", "the position is already being closed by working orders")
                return None
            if intent.qty is None or intent.qty > room:
                intent = _with_qty(intent, room)
        tick = self.market.ticks.get(intent.symbol)
        pf = self._portfolio()
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
                new_positions_today=self._new_today(),
                now=self.clock.monotonic(),
                bypass_state=bypass_state,
                exposure=pf.gross_exposure,
                position_symbols=pf.open_symbols(),
            )
        )
        if not decision.approved:
            self.deny(intent, decision.code, decision.message)
            return None
        # a human approves first when the policy says so: nothing is submitted yet
        approvals = self.approvals
        if not bypass_state and approvals is not None and approvals.needs_approval(
            intent, decision.qty, decision.price, role
        ):
            approvals.request(intent, decision.qty, role, decision)
            return None
        ref = decision.price if intent.order_type is OrderType.MARKET else None
        order = self.new_order(intent, decision.qty, role, ref)
        if role == "entry" and self.protection is not None and (
            intent.stop_loss or intent.take_profit or intent.max_hold_s
        ):
            self.protection.plan(order.client_id, intent)
        self.start_submit(order, bypass_state=bypass_state)
        return order

    def new_order(self, intent: OrderIntent, qty: Decimal, role: str, ref_price: Decimal | None = None) -> Order:
        now = self.clock.now()
        return Order(
            client_id=self.book.next_client_id(),
            symbol=intent.symbol,
            side=intent.side,
            order_type=intent.order_type,
            qty=qty,
            price=intent.price,
            stop_price=intent.stop_price,
            created_at=now,
            updated_at=now,
            reduce_only=intent.reduce_only,
            tag=intent.tag,
            strategy=intent.strategy,
            role=role,
            reason=intent.reason,
            ref_price=ref_price,
        )

    def start_submit(self, order: Order, bypass_state: bool = False) -> asyncio.Task[Order | None]:
        self.book.register(order)
        self.journal.record_order(order)
        task = asyncio.get_running_loop().create_task(self._submit(order, bypass_state))
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)
        return task

    def _gate(self, order: Order, bypass_state: bool) -> str | None:
        """Why the order must not reach the venue now, or None. Re-checked after every await."""
        state = self.risk.state
        protective = order.reduce_only and order.role in REDUCING_ROLES
        if state is TradingState.HALTED and not bypass_state and not protective:
            return "halted before it reached the venue"
        if state is TradingState.REDUCING and not bypass_state and order.role == "entry":
            return "state became REDUCING before submission"
        return None

    async def _submit(self, order: Order, bypass_state: bool) -> Order | None:
        refusal = self._gate(order, bypass_state)
        if refusal is not None:
            self.finish_locally(order, OrderStatus.CANCELED, refusal)
            return None
        if order.role in ("exit", "flatten") and self.protection is not None:
            await self.protection.release(order.symbol)  # the stop leg locks what the exit sells
            refusal = self._gate(order, bypass_state)
            if refusal is not None:
                self.finish_locally(order, OrderStatus.CANCELED, refusal)
                return None
        for waits in range(RATE_LIMIT_WAITS + 1):
            if not await self._pace(order, bypass_state):
                return None
            self.risk.note_sent(self.clock.monotonic())
            try:
                return await self._place(order)
            except RateLimited as exc:
                # an entry's moment has passed; a stop leg, an exit or a flatten must still get through
                if order.role == "entry" or waits == RATE_LIMIT_WAITS:
                    self._venue_failure(f"submit {order.symbol} {order.side} failed", exc, "submit")
                    self.finish_locally(order, OrderStatus.REJECTED, str(exc))
                    return None
                self._venue_failure(f"submit {order.symbol} {order.side} waits out a rate limit", exc, "submit")
                await asyncio.sleep(exc.retry_after_s or 1.0)
                refusal = self._gate(order, bypass_state)
                if refusal is not None:
                    self.finish_locally(order, OrderStatus.CANCELED, refusal)
                    return None
        return None

    async def _place(self, order: Order) -> Order | None:
        """One placement; a refusal or a fault finishes the order here, a 429 goes to the caller."""
        try:
            reply = await self.venue.place(order)
        except RateLimited:
            raise
        except OrderTypeUnsupported as exc:
            self.finish_locally(order, OrderStatus.REJECTED, f"{UNSUPPORTED_TYPE}: {exc}")
            return None
        except OrderRejected as exc:
            self.finish_locally(order, OrderStatus.REJECTED, str(exc))
            return None
        except VenueError as exc:
            self._venue_failure(f"submit {order.symbol} {order.side} failed", exc, "submit")
            self.finish_locally(order, OrderStatus.REJECTED, str(exc))
            return None
        ack, fills = _split_reply(reply)
        return self._apply(ack, fills)  # a reply that carries fills books them; the stream dedupes

    async def _pace(self, order: Order, bypass_state: bool) -> bool:
        """Every order passes the order-rate limit, stop legs and flattens too: they wait for a slot
        rather than storm the venue. After each wait the state gate is asked again."""
        while (wait := self.risk.wait_for_rate(self.clock.monotonic())) > 0:
            await asyncio.sleep(min(wait, 0.25))
            refusal = self._gate(order, bypass_state)
            if refusal is not None:
                self.finish_locally(order, OrderStatus.CANCELED, refusal)
                return False
        return True

    def finish_locally(self, order: Order, status: OrderStatus, reason: str) -> Order:
        done = order.evolve(status=status, reason=reason, updated_at=self.clock.now())
        return self._apply(done, ())

    def deny(self, intent: OrderIntent, code: str, message: str) -> None:
        now = self.clock.now()
        self.journal.record_denial(now, intent, code, message)
        self.bus.publish(IntentDenied(now, intent, code, message))

    # --- cancels -------------------------------------------------------------------------------------
    def start_cancel(self, order: Order) -> asyncio.Task[Order | None]:
        return asyncio.get_running_loop().create_task(self.cancel_order(order))

    async def cancel_order(self, order: Order) -> Order | None:
        """Cancel one order, retrying while the outcome is unknown; the answer goes through the book."""
        if order.status is OrderStatus.PENDING:  # its submit is on the way: cancel what lands, not before
            order = await self._acknowledged(order)
            if order.status.is_terminal:
                return order
        told_s = 0.0  # how long a rate limit said to stay away
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS_S[:3])):
            if max(delay, told_s):
                await asyncio.sleep(max(delay, told_s))
            try:
                done = await self.venue.cancel(order)
            except OrderNotFound:
                done = await self.read_back(order) or order.evolve(
                    status=OrderStatus.CANCELED, reason="not found at the venue"
                )
            except VenueError as exc:
                self._venue_failure(f"cancel {order.client_id} (attempt {attempt + 1})", exc, "cancel")
                looked = await self.read_back(order)
                if looked is not None and looked.status.is_terminal:
                    return self._apply(looked, ())
                if not exc.retryable and looked is None:
                    return None
                # retrying inside a 429's Retry-After only meets the same refusal: the cancel was lost
                told_s = getattr(exc, "retry_after_s", None) or 0.0
                continue
            return self._apply(done, ())
        return None

    async def _acknowledged(self, order: Order, timeout_s: float = 10.0) -> Order:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        current = self.book.get(order.client_id) or order
        while current.status is OrderStatus.PENDING and loop.time() < deadline:
            await asyncio.sleep(0.02)
            current = self.book.get(order.client_id) or current
        return current

    async def read_back(self, order: Order) -> Order | None:
        """The venue's own view of an order whose cancel answer was lost or unclear."""
        lookup = getattr(self.venue, "lookup", None)
        if lookup is None:
            return None
        try:
            looked: Order | None = await lookup(order)
        except VenueError:
            return None
        return looked


def _with_qty(intent: OrderIntent, qty: Decimal) -> OrderIntent:
    from dataclasses import replace

    return replace(intent, qty=qty)


def _split_reply(reply: Any) -> tuple[Order, Sequence[Fill]]:
    """A venue's submit answer: an Order, or an (order, fills) pair when the reply carried trades."""
    if isinstance(reply, Order):
        return reply, tuple(getattr(reply, "fills", ()) or ())
    order = getattr(reply, "order", None)
    if isinstance(order, Order):
        return order, tuple(getattr(reply, "fills", ()) or ())
    raise TypeError(f"unexpected submit reply {type(reply).__name__}")
