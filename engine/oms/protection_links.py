"""What protection needs from the rest of the engine (narrow Protocols, bound late by the kernel)
and the plan it keeps per position, journaled so a restart guards the same levels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from engine.core.model import MarketTick, Order, OrderIntent, OrderType, Position


class Orders(Protocol):
    """What protection needs of execution and the order book."""

    def new_order(self, intent: OrderIntent, qty: Decimal, role: str, ref_price: Decimal | None = None) -> Order: ...

    def start_submit(self, order: Order, bypass_state: bool = False) -> Any: ...

    def submit_intent(self, intent: OrderIntent, bypass_state: bool = False, role: str = "entry") -> Order | None: ...

    async def cancel_order(self, order: Order) -> Order | None: ...

    def start_cancel(self, order: Order) -> Any: ...


class WorkingOrders(Protocol):
    def working_order(self, client_id: str) -> Order | None: ...

    def working(self, symbol: str | None = None) -> list[Order]: ...


class Holdings(Protocol):
    def position(self, symbol: str) -> Position | None: ...

    def qty(self, symbol: str) -> Decimal: ...

    def set_protection(self, symbol: str, stop_loss: Decimal | None, take_profit: Decimal | None,
                       status: str = ..., price: Decimal | None = ...) -> None: ...  # fmt: skip


class StateStore(Protocol):
    def set_state(self, key: str, value: Any) -> None: ...


AlertFn = Callable[..., Any]


@dataclass(slots=True)
class _Plan:
    stop: str | None
    take_profit: str | None
    hold_until: str | None = None
    stop_order: str | None = None  # client id of the resting stop leg
    exiting: bool = False
    watched: bool = False  # the engine watches the stop level (the venue took no stop order)
    tried: list[str] = field(default_factory=list)  # stop order types the venue refused
    refusals: int = 0  # other refusals of the current leg in a row
    exit_refusals: int = 0  # protective exits refused in a row: each waits longer before the next
    quiet_until: float = 0.0  # monotonic time before which no protective exit is tried again


@dataclass(slots=True)
class Links:
    """Late-bound collaborators: the kernel rebuilds the book and portfolio on start."""

    orders: Callable[[], Orders]
    book: Callable[[], WorkingOrders]
    holdings: Callable[[], Holdings]
    ticks: dict[str, MarketTick]
    stop_types: Callable[[str], list[OrderType]]
    round_price: Callable[[str, Decimal], Decimal]
    round_qty: Callable[[str, Decimal], Decimal]  # down to the lot: what the venue will take
    strategy_name: Callable[[], str]
