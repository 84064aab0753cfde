"""The matching engine's account: free and locked funds per asset, and the locks of working orders.

Funds for resting orders are locked. Protective legs of one entry (same symbol, side and
parent_id, role stop_loss / take_profit) form a one-cancels-other group: they share one lock
that holds what the most demanding leg needs, so a stop and a take-profit can protect the same
coins without locking them twice. A fill pays from its order's lock first, then from free funds.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from engine.core.model import ZERO, Balance, Instrument, Order, OrderType, Side

_OCO_ROLES = frozenset({"stop_loss", "take_profit"})
_PRICED = (OrderType.LIMIT, OrderType.STOP_LIMIT)  # locked at their limit price, stops at the stop
_BUY, _SELL = Side.BUY, Side.SELL


class Lock:
    """Funds held for a set of orders; a plain order is a group of one."""

    __slots__ = ("amount", "asset", "key", "members")

    def __init__(self, asset: str, key: tuple[str, str, str] | None = None) -> None:
        self.asset = asset
        self.amount = ZERO
        self.key = key
        self.members: list[Working] = []


class Working:
    """An order the engine knows, its instrument (None once rejected) and the lock holding its funds."""

    __slots__ = ("inst", "lock", "order")

    def __init__(self, order: Order, inst: Instrument | None, lock: Lock | None) -> None:
        self.order = order
        self.inst = inst
        self.lock = lock


class Funds:
    """Free and locked amounts per asset. `lock_rate` covers the worst fee on a locked buy."""

    __slots__ = ("_groups", "allow_short", "free", "lock_rate", "locked")

    def __init__(self, balances: Mapping[str, Decimal], *, allow_short: bool, lock_rate: Decimal) -> None:
        self.allow_short = allow_short
        self.lock_rate = lock_rate
        self.free: dict[str, Decimal] = dict(balances)
        self.locked: dict[str, Decimal] = dict.fromkeys(self.free, ZERO)
        self._groups: dict[tuple[str, str, str], Lock] = {}

    def balances(self) -> dict[str, Balance]:
        assets = sorted(set(self.free) | set(self.locked))
        return {a: Balance(a, self.free.get(a, ZERO), self.locked.get(a, ZERO)) for a in assets}

    def held(self, asset: str) -> Decimal:
        """Free plus locked: everything the account holds of `asset`."""
        return self.free.get(asset, ZERO) + self.locked.get(asset, ZERO)

    def deposit(self, asset: str, amount: Decimal) -> None:
        self.free[asset] = self.free.get(asset, ZERO) + amount
        self.locked.setdefault(asset, ZERO)

    # -- locks -----------------------------------------------------------------------------------

    def need(self, w: Working) -> Decimal:
        o = w.order
        if not o.status.is_working:
            return ZERO
        if o.side is _SELL:
            return ZERO if self.allow_short else o.remaining
        price = o.price if o.order_type in _PRICED else o.stop_price
        return o.remaining * price * self.lock_rate  # type: ignore[operator]

    def attach(self, w: Working) -> bool:
        """Lock what a new resting order needs (joining its OCO group's lock); False if short of funds."""
        o, inst = w.order, w.inst
        assert inst is not None
        asset = inst.quote if o.side is _BUY else inst.base
        key = (o.symbol, o.side.value, o.parent_id) if o.parent_id and o.role in _OCO_ROLES else None
        lock = self._groups.get(key) if key else None
        if lock is None:
            lock = Lock(asset, key)
        lock.members.append(w)
        w.lock = lock
        if not self.relock(lock, strict=True):
            lock.members.remove(w)
            return False
        if key is not None:
            self._groups[key] = lock
        return True

    def relock(self, lock: Lock, strict: bool = False) -> bool:
        """Hold exactly what the group's most demanding working member needs."""
        target = max((self.need(m) for m in lock.members), default=ZERO)
        delta = target - lock.amount
        free = self.free.get(lock.asset, ZERO)
        if strict and delta > free:
            return False
        self.free[lock.asset] = free - delta
        self.locked[lock.asset] = self.locked.get(lock.asset, ZERO) + delta
        lock.amount = target
        return True

    def release(self, w: Working) -> None:
        """A finished order leaves its lock, which gives back what the remaining members do not need."""
        lock = w.lock
        if lock is None:
            return
        if w in lock.members:
            lock.members.remove(w)
        self.relock(lock)
        if not lock.members and lock.key is not None:
            self._groups.pop(lock.key, None)

    def shortfall(self, w: Working) -> str:
        asset = w.lock.asset if w.lock else "?"
        return f"insufficient funds: need {self.need(w)} {asset}, free {self.free.get(asset, ZERO)}"

    # -- settlement ------------------------------------------------------------------------------

    def settle(self, w: Working, qty: Decimal, notional: Decimal, fee_asset: str, fee_amount: Decimal) -> None:
        """Move one fill's coins: pay from the order's lock first, receive into free, pay the fee."""
        inst = w.inst
        assert inst is not None
        free = self.free
        if w.order.side is _BUY:
            self._spend(w.lock, inst.quote, notional + (fee_amount if fee_asset == inst.quote else ZERO))
            free[inst.base] = free.get(inst.base, ZERO) + qty
        else:
            self._spend(w.lock, inst.base, qty)
            free[inst.quote] = free.get(inst.quote, ZERO) + notional
            if fee_asset == inst.quote:
                free[inst.quote] -= fee_amount
        if fee_asset != inst.quote:
            free[fee_asset] = free.get(fee_asset, ZERO) - fee_amount  # base or BNB
            self.locked.setdefault(fee_asset, ZERO)
        self.locked.setdefault(inst.base, ZERO)
        self.locked.setdefault(inst.quote, ZERO)

    def _spend(self, lock: Lock | None, asset: str, amount: Decimal) -> None:
        """Pay first from the order's lock, then from free funds."""
        if lock is not None and lock.asset == asset and lock.amount > 0:
            used = min(amount, lock.amount)
            lock.amount -= used
            self.locked[asset] -= used
            amount -= used
        self.free[asset] = self.free.get(asset, ZERO) - amount
