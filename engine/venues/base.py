"""The one venue interface: simulated, ccxt and Alpaca all implement it.

Errors cross this boundary as the VenueError family so the engine can decide:
retry (transient), deny the intent (rejected), or halt (authentication).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from engine.core.model import Balance, Fill, Instrument, MarketTick, Order, OrderType, OrderUpdate, VenueMode

T = TypeVar("T")


class VenueError(Exception):
    """Base of everything a venue can say went wrong. Messages never carry secrets."""

    retryable = False


class TransientVenueError(VenueError):
    """Network trouble, timeouts, 5xx, rate limits: try again later."""

    retryable = True

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class VenueTimeout(TransientVenueError):
    """A call (REST, websocket connect, authentication, subscription) got no answer in time.

    For a submit or cancel the outcome is unknown: the venue may have acted.
    """


class RateLimited(TransientVenueError):
    """429 / 418: nothing was done; send nothing to this venue before retry_after_s has passed."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message, retry_after_s if retry_after_s is not None else 1.0)


class VenueUnavailable(TransientVenueError):
    """5xx, connection refused or dropped (an acknowledgement lost on the way back included)."""


class MalformedReply(TransientVenueError):
    """The venue answered something that cannot be read; the outcome of the call is unknown."""


class OrderRejected(VenueError):
    """The venue refused the order (insufficient funds, invalid size...)."""


class OrderTypeUnsupported(OrderRejected):
    """The instrument does not list this order type (e.g. a Binance symbol without STOP_LOSS).

    Distinct so the protection chain can fall back (stop-market -> stop-limit -> engine watch).
    """

    def __init__(self, message: str, order_type: OrderType | None = None) -> None:
        super().__init__(message)
        self.order_type = order_type


class AuthenticationFailed(VenueError):
    """Keys wrong, revoked or for another environment: the engine halts."""


class OrderNotFound(VenueError):
    pass


async def bounded(call: Awaitable[T], timeout_s: float, what: str) -> T:
    """Await a venue call for at most timeout_s; past that it is cancelled and VenueTimeout raised.

    asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation of the caller that
    arrives as the call completes, and a stream loop that misses its cancellation never ends.
    """
    try:
        async with asyncio.timeout(timeout_s):
            return await call
    except TimeoutError:
        raise VenueTimeout(f"{what}: no answer within {timeout_s:g} s") from None


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """A placed order as acknowledged, and the fills its reply already carried (Binance FULL `fills`).

    Fill ids are the venue's trade ids: the stream and the polls report the same
    fills again under the same ids, so the consumer books each id once.
    """

    order: Order
    fills: tuple[Fill, ...] = ()


@dataclass(frozen=True, slots=True)
class InstrumentCapabilities:
    """What one instrument accepts, as the venue lists it (Binance: exchangeInfo `orderTypes`)."""

    order_types: frozenset[OrderType] = frozenset({OrderType.MARKET, OrderType.LIMIT})

    @property
    def stop_market(self) -> bool:
        return OrderType.STOP_MARKET in self.order_types

    @property
    def stop_limit(self) -> bool:
        return OrderType.STOP_LIMIT in self.order_types


@dataclass(frozen=True, slots=True)
class VenueCapabilities:
    instruments: dict[str, InstrumentCapabilities] = field(default_factory=dict)
    streams: frozenset[str] = frozenset({"market", "orders"})
    fills_in_submit_reply: bool = False

    def of(self, symbol: str) -> InstrumentCapabilities:
        return self.instruments.get(symbol, InstrumentCapabilities())

    def supports(self, symbol: str, order_type: OrderType) -> bool:
        return order_type in self.of(symbol).order_types

    def stop_types(self, symbol: str) -> list[OrderType]:
        """The stop order types the instrument takes, preferred first (the protection chain's order)."""
        caps = self.of(symbol)
        return [t for t in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT) if t in caps.order_types]


ALL_ORDER_TYPES = frozenset(OrderType)


def unsupported(order: Order, caps: VenueCapabilities, venue: str) -> OrderTypeUnsupported | None:
    """The refusal for an order type the instrument does not list, or None."""
    if caps.instruments and order.symbol in caps.instruments and not caps.supports(order.symbol, order.order_type):
        listed = sorted(t.value for t in caps.of(order.symbol).order_types)
        return OrderTypeUnsupported(
            f"{venue}: {order.order_type.value} orders are not supported for {order.symbol} (listed: {listed})",
            order.order_type,
        )
    return None


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
    fault_sink: Callable[[str, Exception, str], None] | None = None  # set by the engine: (what, error, link)

    def report_link(self, link: str, up: bool, message: str = "") -> None:
        """A stream went down (fell back to polling) or came back; the engine journals and shows it."""
        if self.link_sink is not None:
            self.link_sink(link, up, message)

    def report_fault(self, link: str, what: str, error: VenueError) -> None:
        """A fault the venue absorbed itself (a submit found by its client id, a cancel read back): the
        caller never sees it, so the engine is told here and journals and alerts it like any venue error.
        A fault the venue raises is the caller's to report, not this."""
        if self.fault_sink is not None:
            self.fault_sink(what, error, link)

    @contextlib.contextmanager
    def absorbing(self, link: str, what: str) -> Iterator[list[VenueError]]:
        """Collects the faults a call gets past (by a retry, a look-up, a read-back) and reports them
        when it ends; the error it raises in the end, if any, is left to its caller to report."""
        faults: list[VenueError] = []
        try:
            yield faults
        except BaseException as exc:
            faults = [f for f in faults if f is not exc]
            raise
        finally:
            for fault in faults:
                self.report_fault(link, what, fault)

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

    async def submit(self, order: Order) -> Order:
        """Place an order; idempotent on order.client_id. Returns the acknowledged order."""
        return (await self.place(order)).order

    @abc.abstractmethod
    async def place(self, order: Order) -> SubmitResult:
        """Place an order (idempotent on client_id): the acknowledged order and the fills its reply carried."""

    @abc.abstractmethod
    async def lookup(self, order: Order) -> Order | None:
        """The venue's current view of one of our orders (by client id), or None when it never arrived."""

    def capabilities(self) -> VenueCapabilities:
        """Order types per instrument (stop-market, stop-limit), streams; known after connect()."""
        return VenueCapabilities()

    async def equity(self) -> Decimal | None:
        """The account's value in its quote currency (cash plus holdings at their marks), when known."""
        return None

    async def asset_prices(self, assets: list[str], quote: str) -> dict[str, Decimal]:
        """Quote-currency prices of assets that are not traded symbols here (a fee asset such as BNB),
        for Portfolio.mark_asset; the ones the venue cannot price are left out."""
        return {}

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
