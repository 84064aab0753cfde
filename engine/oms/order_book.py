"""OrderBook: the only owner of orders, fills and working quantities.

Every source of order news (a REST reply, a stream update, a poll, a
reconciliation) goes through `apply`, which is idempotent per venue trade id:
a fill seen twice is booked once, a finished order never reopens, and a reply
that names an order by a new client id (Binance cancel replies) or only by its
venue id is matched to the order it belongs to.

It also answers the question every reducing order must ask before it is
sized: how much of this position is already on its way out? Working reducing
orders count with their unfilled rest, and fills the venue has reported
(filled_qty) but whose trades have not been booked yet count too, so a flatten
can never overshoot however late the fills arrive.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from engine.core.model import ZERO, Fill, Order, OrderStatus, Side

# Roles whose orders shrink a position when they fill (a stop leg only once triggered: it is not counted).
REDUCING_ROLES = frozenset({"exit", "flatten"})
_OWN = re.compile(r"^tc-(?P<tag>[a-z0-9]{6})-\d+-\d+$")
_LEGACY_OWN = re.compile(r"^tc\d{4}-\d+$")  # ids of journals written before instance tags


def new_instance_tag() -> str:
    """Six lowercase letters and digits: unique per journal, so two installs never share client ids."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(6))


@dataclass(frozen=True, slots=True)
class Applied:
    """What one `apply` changed: the order as now known, and the fills booked for the first time."""

    order: Order
    new_fills: tuple[Fill, ...]
    known: bool  # False: an order the engine never placed (external)
    changed: bool  # the order's status, filled quantity or venue id moved


class OrderBook:
    def __init__(self, instance_tag: str, run: int) -> None:
        self.instance_tag = instance_tag
        self.run = run
        self._n = 0
        self._orders: dict[str, Order] = {}  # every order this engine knows, by client id
        self._working: dict[str, Order] = {}
        self._by_venue_id: dict[str, str] = {}
        self._seen_fills: set[str] = set()
        self._booked: dict[str, Decimal] = {}  # booked fill quantity per client id
        self._waiters: dict[str, list[asyncio.Future[Order]]] = {}
        self._legacy_ids: set[str] = set()  # own ids from before instance tags, known from the journal

    # --- identity -----------------------------------------------------------------------------
    def next_client_id(self) -> str:
        self._n += 1
        return f"tc-{self.instance_tag}-{self.run}-{self._n}"

    def is_own(self, client_id: str) -> bool:
        m = _OWN.match(client_id)
        if m is not None:
            return m.group("tag") == self.instance_tag
        return client_id in self._legacy_ids

    def resolve(self, order: Order) -> str | None:
        """The client id this engine knows the order by, or None when it does not know it."""
        if order.client_id in self._orders:
            return order.client_id
        if order.venue_order_id and order.venue_order_id in self._by_venue_id:
            return self._by_venue_id[order.venue_order_id]
        orig = order.orig_client_id
        if orig and orig in self._orders:
            return orig
        return None

    # --- restore ----------------------------------------------------------------------------------
    def restore(self, orders: Iterable[Order], fills: Iterable[Fill]) -> None:
        """The journal's orders and fills, before anything else is applied."""
        for o in orders:
            self._remember(o)
            if _LEGACY_OWN.match(o.client_id):
                self._legacy_ids.add(o.client_id)
        for f in fills:
            self._seen_fills.add(f.fill_id)
            self._booked[f.client_id] = self._booked.get(f.client_id, ZERO) + f.qty

    # --- the one path ------------------------------------------------------------------------------
    def register(self, order: Order) -> None:
        """An order this engine is about to submit."""
        self._remember(order)

    def claim(self, order: Order, reason: str) -> Order:
        """An own order (our id) whose journal row was lost: known again, not external."""
        claimed = order.evolve(reason=order.reason or reason)
        self._remember(claimed)
        return claimed

    def apply(self, update: Order, fills: Iterable[Fill] = ()) -> Applied:
        cid = self.resolve(update)
        known = cid is not None
        if cid is None:
            order = update.evolve(external=not self.is_own(update.client_id))
            cid = order.client_id
            previous = None
        else:
            previous = self._orders[cid]
            order = self._merge(previous, update)
        new = tuple(f for f in fills if self._book(f.evolve(client_id=cid) if f.client_id != cid else f))
        booked = tuple(f.evolve(client_id=cid) if f.client_id != cid else f for f in new)
        if booked and order.filled_qty < self._booked.get(cid, ZERO):
            order = order.evolve(filled_qty=self._booked[cid])  # a fill arrived ahead of its order update
        changed = previous is None or (previous.status, previous.filled_qty, previous.venue_order_id) != (
            order.status,
            order.filled_qty,
            order.venue_order_id,
        )
        self._remember(order)
        if order.status.is_terminal:
            for fut in self._waiters.pop(cid, []):
                if not fut.done():
                    fut.set_result(order)
        return Applied(order, booked, known, changed)

    def _book(self, fill: Fill) -> bool:
        if fill.fill_id in self._seen_fills:
            return False
        self._seen_fills.add(fill.fill_id)
        self._booked[fill.client_id] = self._booked.get(fill.client_id, ZERO) + fill.qty
        return True

    @staticmethod
    def _merge(known: Order, update: Order) -> Order:
        if known.status.is_terminal and not update.status.is_terminal:
            return known  # a late, stale update never reopens a finished order
        if known.status.is_terminal and update.status.is_terminal and update.filled_qty < known.filled_qty:
            return known
        filled = max(known.filled_qty, update.filled_qty)
        return update.evolve(
            client_id=known.client_id,
            tag=known.tag,
            strategy=known.strategy,
            role=known.role,
            parent_id=known.parent_id,
            reason=update.reason or known.reason,
            ref_price=known.ref_price,
            external=known.external,
            reduce_only=known.reduce_only,
            filled_qty=filled,
            venue_order_id=update.venue_order_id or known.venue_order_id,
            created_at=known.created_at or update.created_at,
        )

    def _remember(self, order: Order) -> None:
        cid = order.client_id
        self._orders[cid] = order
        if order.venue_order_id:
            self._by_venue_id[order.venue_order_id] = cid
        if order.status.is_terminal:
            self._working.pop(cid, None)
        else:
            self._working[cid] = order

    # --- reads -----------------------------------------------------------------------------------
    def get(self, client_id: str) -> Order | None:
        return self._orders.get(client_id)

    def all_orders(self) -> list[Order]:
        """Every order this engine knows, finished ones included."""
        return list(self._orders.values())

    def working_order(self, client_id: str) -> Order | None:
        return self._working.get(client_id)

    def working(self, symbol: str | None = None) -> list[Order]:
        if symbol is None:
            return list(self._working.values())
        return [o for o in self._working.values() if o.symbol == symbol]

    def working_count(self) -> int:
        return len(self._working)

    def has_fill(self, fill_id: str) -> bool:
        return fill_id in self._seen_fills

    def booked_qty(self, client_id: str) -> Decimal:
        return self._booked.get(client_id, ZERO)

    def unbooked_qty(self, client_id: str) -> Decimal:
        """Filled at the venue (as it last said) but not booked here yet: a fill on its way."""
        order = self._orders.get(client_id)
        if order is None:
            return ZERO
        return max(ZERO, order.filled_qty - self._booked.get(client_id, ZERO))

    def all_fills_booked(self, client_id: str) -> bool:
        return self.unbooked_qty(client_id) == 0

    def pending_reduction(self, symbol: str, side: Side) -> Decimal:
        """Quantity of `symbol` already on its way out on `side`: working reducing orders' unfilled rest
        plus fills the venue reported that are not booked yet (of any reducing order, finished or not)."""
        total = ZERO
        for order in self._orders.values():
            if order.symbol != symbol or order.side is not side or order.external:
                continue
            if not (order.reduce_only or order.role in REDUCING_ROLES):
                continue
            if order.order_type.value.startswith("stop"):
                continue  # a resting stop leg reduces only if triggered; it is the protection, not an exit
            if not order.status.is_terminal:
                total += max(ZERO, order.qty - order.filled_qty)
            total += self.unbooked_qty(order.client_id)
        return total

    def wait_for(self, client_id: str) -> asyncio.Future[Order]:
        """Resolves with the order once it is finished (it may be finished already)."""
        fut: asyncio.Future[Order] = asyncio.get_running_loop().create_future()
        order = self._orders.get(client_id)
        if order is not None and order.status.is_terminal:
            fut.set_result(order)
        else:
            self._waiters.setdefault(client_id, []).append(fut)
        return fut

    def finished_locally(self, order: Order, status: OrderStatus, reason: str, now: object) -> Order:
        """An order that ends without a venue answer (refused before sending, confirmed gone)."""
        done = order.evolve(status=status, reason=reason, updated_at=now)
        return self.apply(done).order
