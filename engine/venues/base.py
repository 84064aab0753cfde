"""The one venue interface: simulated, ccxt and Alpaca all implement it.

Errors cross this boundary as the VenueError family so the engine can decide:
retry (transient), deny the intent (rejected), or halt (authentication).
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from decimal import Decimal

from engine.core.model import Balance, Fill, Instrument, MarketTick, Order, OrderUpdate, VenueMode


class VenueError(Exception):
    """Base of everything a venue can say went wrong. Messages never carry secrets."""

    retryable = False


class TransientVenueError(VenueError):
    """Network trouble, timeouts, 5xx, rate limits: try again later."""

    retryable = True

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class OrderRejected(VenueError):
    """The venue refused the order (insufficient funds, invalid size...)."""


class AuthenticationFailed(VenueError):
    """Keys wrong, revoked or for another environment: the engine halts."""


class OrderNotFound(VenueError):
    pass


async def round_trip_ms(call: Awaitable[object]) -> float | None:
    """How long one venue call took, in ms; None when it failed (for ping_ms)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        await call
    except VenueError:
        return None
    return (loop.time() - started) * 1000


class Venue(abc.ABC):
    name: str = "venue"
    mode: VenueMode = VenueMode.SIMULATED
    link_sink: Callable[[str, bool, str], None] | None = None  # set by the engine: (link, up, why)

    def report_link(self, link: str, up: bool, message: str = "") -> None:
        """A stream went down (fell back to polling) or came back; the engine journals and shows it."""
        if self.link_sink is not None:
            self.link_sink(link, up, message)

    @abc.abstractmethod
    async def connect(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def instruments(self) -> dict[str, Instrument]: ...

    @abc.abstractmethod
    async def balances(self) -> dict[str, Balance]: ...

    @abc.abstractmethod
    async def positions(self) -> dict[str, Decimal]:
        """Signed quantity held per symbol, as the venue sees it."""

    @abc.abstractmethod
    async def open_orders(self, symbol: str | None = None) -> list[Order]: ...

    @abc.abstractmethod
    async def submit(self, order: Order) -> Order:
        """Place an order; idempotent on order.client_id. Returns the acknowledged order."""

    @abc.abstractmethod
    async def cancel(self, order: Order) -> Order:
        """Cancel one order; returns its final state. Cancelling a finished order is not an error."""

    @abc.abstractmethod
    async def cancel_all(self, symbol: str | None = None) -> int:
        """Cancel every open order (of one symbol); returns how many were cancelled."""

    @abc.abstractmethod
    async def fills_since(self, since: datetime | None, symbols: list[str] | None = None) -> list[Fill]: ...

    @abc.abstractmethod
    def market_stream(self, symbols: list[str]) -> AsyncIterator[list[MarketTick]]:
        """Batches of ticks; a batch holds at most one tick per symbol."""

    @abc.abstractmethod
    def order_updates(self) -> AsyncIterator[OrderUpdate]: ...

    async def ping_ms(self) -> float | None:
        """Round-trip latency to the venue, when it can be measured."""
        return None

    async def history(self, symbol: str, seconds: float, step_s: float) -> list[MarketTick]:
        """Recent ticks before now, to warm indicators up; empty when the venue has none."""
        return []
