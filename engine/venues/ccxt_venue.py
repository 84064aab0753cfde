"""Crypto exchanges through ccxt (Binance spot first): REST via async_support, streams via ccxt.pro.

One ccxt exchange object per account (this venue), used for REST and websockets
alike, so ccxt's rate limiter sees every request. ccxt is imported in `connect()`,
never at module import. Submits are idempotent: every order carries its client
id, and when a submit's outcome is unknown (timeout, 5xx, dropped or unreadable
answer) the order is looked up by that id before anything is sent again; the
exchange refuses a second order with the same id anyway. Streams use websockets
and fall back to polling REST while the websockets fail, catching up on what
they missed when they come back. Credentials never reach logs or messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from engine.core.clock import Clock
from engine.core.model import Balance, Fill, Instrument, MarketTick, Order, OrderType, OrderUpdate, VenueMode
from engine.venues import ccxt_convert as cv
from engine.venues.base import (
    OrderNotFound,
    OrderRejected,
    TransientVenueError,
    Venue,
    VenueError,
    round_trip_ms,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CcxtEndpoints:
    """Where to talk to: a testnet, a proxy or a compatible local server. None keeps ccxt's default."""

    rest_public: str | None = None  # e.g. https://api.binance.com/api/v3
    rest_private: str | None = None  # defaults to rest_public
    ws_public: str | None = None  # market streams, e.g. wss://stream.binance.com:9443/ws
    ws_private: str | None = None  # user data (Binance's websocket API), e.g. wss://ws-api.binance.com/ws-api/v3


class CcxtVenue(Venue):
    def __init__(
        self,
        clock: Clock,
        api_key: str,
        secret: str,
        *,
        exchange_id: str = "binance",
        symbols: list[str] | None = None,
        mode: VenueMode = VenueMode.LIVE,
        endpoints: CcxtEndpoints | None = None,
        timeout_s: float = 10.0,
        poll_interval_s: float = 1.0,
        submit_attempts: int = 3,
        backoff_s: float = 0.25,
        ws_retry_s: float = 5.0,
        name: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.clock = clock
        self.name = name or exchange_id
        self.mode = mode
        self.exchange_id = exchange_id
        self.symbols = list(symbols or [])
        self.endpoints = endpoints or CcxtEndpoints()
        self.timeout_s, self.poll_interval_s, self.ws_retry_s = timeout_s, poll_interval_s, ws_retry_s
        self.submit_attempts, self.backoff_s = max(1, submit_attempts), backoff_s
        self.stream_mode = {"market": "websocket", "orders": "websocket"}  # or "polling", for the health view
        self._credentials = (api_key, secret)
        self._extra_options = dict(options or {})
        self._ex: Any = None
        self._instruments: dict[str, Instrument] = {}
        self._orders: dict[str, Order] = {}  # client id -> latest state, for orders we placed or saw
        self._client_of: dict[str, str] = {}  # venue order id -> client id
        self._emitted_fills: set[str] = set()
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------------

    async def connect(self) -> None:
        if self._ex is None:
            self._ex = self._make_exchange()
        self._closed = False
        markets = await self._call(self._ex.load_markets)
        wanted = self.symbols or [s for s, m in markets.items() if m.get("spot")]
        missing = [s for s in wanted if s not in markets]
        if missing:
            raise VenueError(f"{self.name} does not list {missing}")
        self._instruments = {s: cv.instrument(markets[s], self.name) for s in wanted}
        if self._credentials[0]:
            await self._call(self._ex.fetch_balance)  # wrong keys fail here, before any order

    def _make_exchange(self) -> Any:
        import ccxt.pro as ccxtpro  # lazily: only this venue needs ccxt

        api_key, secret = self._credentials
        options = {
            "defaultType": "spot",
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,  # a private sapi call we do not need
            "fetchMargins": False,  # margin pair lists live on sapi
            "warnOnFetchOpenOrdersWithoutSymbol": False,
            **self._extra_options,
        }
        ex = getattr(ccxtpro, self.exchange_id)(
            {"apiKey": api_key, "secret": secret, "enableRateLimit": True, "timeout": int(self.timeout_s * 1000),
             "options": options}
        )  # fmt: skip
        if self.mode is VenueMode.TESTNET:
            ex.set_sandbox_mode(True)
        self._point_at(ex, self.endpoints)
        return ex

    @staticmethod
    def _point_at(ex: Any, ep: CcxtEndpoints) -> None:
        """Override ccxt's URLs; every other REST/ws URL goes to the same place so nothing strays elsewhere."""
        api = ex.urls["api"]
        if ep.rest_public or ep.rest_private:
            public = ep.rest_public or ep.rest_private
            for key, value in list(api.items()):
                if isinstance(value, str):
                    api[key] = (ep.rest_private or public) if "rivate" in key else public
        ws = api.get("ws")
        if isinstance(ws, dict) and (ep.ws_public or ep.ws_private):
            for key, value in list(ws.items()):
                if isinstance(value, str) and ep.ws_public:
                    ws[key] = ep.ws_public
                elif isinstance(value, dict) and ep.ws_private:
                    ws[key] = dict.fromkeys(value, ep.ws_private)

    async def close(self) -> None:
        self._closed = True
        if self._ex is not None:
            try:
                await self._ex.close()
            except Exception as exc:  # closing a half-dead connection must not fail shutdown
                log.warning("%s: close failed: %s", self.name, self._scrub(str(exc)))

    # -- calls and errors ------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        return cv.scrub(text, self._credentials)

    def _map(self, exc: BaseException) -> VenueError:
        retry_after = None
        headers = getattr(self._ex, "last_response_headers", None) or {}
        for key, value in headers.items():
            if key.lower() == "retry-after":
                try:
                    retry_after = float(value)
                except ValueError:
                    retry_after = None
        return cv.map_error(exc, self._credentials, retry_after)

    async def _call(self, fn: Callable[..., Awaitable[T]], *args: Any, **kw: Any) -> T:
        if self._ex is None:
            raise VenueError(f"{self.name} is not connected")
        try:
            return await fn(*args, **kw)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise self._map(exc) from None  # ccxt's chained exception may carry request details

    async def _retrying(self, fn: Callable[..., Awaitable[T]], *args: Any, **kw: Any) -> T:
        """Idempotent calls: transient failures retried with backoff; a rate limit is not hammered."""
        for attempt in range(self.submit_attempts):
            try:
                return await self._call(fn, *args, **kw)
            except TransientVenueError as exc:
                if exc.retry_after_s is not None or attempt == self.submit_attempts - 1:
                    raise
                await asyncio.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")

    # -- account ---------------------------------------------------------------------------------

    async def instruments(self) -> dict[str, Instrument]:
        return dict(self._instruments)

    async def balances(self) -> dict[str, Balance]:
        raw = await self._retrying(self._ex.fetch_balance)
        free, used = raw.get("free") or {}, raw.get("used") or {}
        out = {}
        for asset in set(free) | set(used):
            bal = Balance(asset, cv.dec(free.get(asset)), cv.dec(used.get(asset)))
            if bal.total != 0:
                out[asset] = bal
        return out

    async def positions(self) -> dict[str, Decimal]:
        """Spot holdings of each traded symbol's base asset."""
        balances = await self.balances()
        out = {}
        for symbol, inst in self._instruments.items():
            held = balances.get(inst.base)
            if held is not None and held.total != 0:
                out[symbol] = held.total
        return out

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        raws = await self._retrying(self._ex.fetch_open_orders, symbol)
        return [self._remember(raw) for raw in raws]

    def _remember(self, raw: dict[str, Any]) -> Order:
        cid = raw.get("clientOrderId") or (self._client_of.get(str(raw.get("id"))))
        known = self._orders.get(cid) if cid else None
        order = cv.order(raw, self.clock.now(), known)
        self._orders[order.client_id] = order
        if order.venue_order_id:
            self._client_of[order.venue_order_id] = order.client_id
        return order

    async def _lookup(self, order: Order) -> Order | None:
        """The venue's view of one of our orders by client id, or None when it never arrived."""
        try:
            raw = await self._call(self._ex.fetch_order, None, order.symbol, {"origClientOrderId": order.client_id})
        except OrderNotFound:
            return None
        return self._remember(raw) if raw and raw.get("id") is not None else None

    # -- orders ----------------------------------------------------------------------------------

    async def submit(self, order: Order) -> Order:
        inst = self._instruments.get(order.symbol)
        if inst is None:
            raise OrderRejected(f"{order.symbol} is not traded on {self.name}")
        self._orders.setdefault(order.client_id, order)
        kind, price, params = "market", None, {"clientOrderId": order.client_id}
        if order.order_type is OrderType.LIMIT:
            kind, price = "limit", float(order.price)  # type: ignore[arg-type]
        elif order.order_type is OrderType.STOP_MARKET:
            params["triggerPrice"] = float(order.stop_price)  # type: ignore[arg-type]
        last_error: VenueError | None = None
        for attempt in range(self.submit_attempts):
            if attempt:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                raw = await self._call(
                    self._ex.create_order, order.symbol, kind, order.side.value, float(order.qty), price, params
                )
                if isinstance(raw, dict) and raw.get("id") is not None:
                    return self._remember(raw)
                last_error = TransientVenueError(f"{self.name}: unreadable acknowledgement")
            except OrderRejected as exc:
                if "uplicate order" not in str(exc):
                    raise
                last_error = exc  # an earlier attempt did arrive: find it below
            except TransientVenueError as exc:
                if exc.retry_after_s is not None:
                    raise  # rate limited: nothing was placed; the caller waits as told
                last_error = exc
            # The outcome is unknown: ask the venue before sending anything again.
            log.warning("%s: submit %s unconfirmed (%s); looking it up", self.name, order.client_id, last_error)
            found = await self._lookup(order)
            if found is not None:
                return found
        assert last_error is not None
        raise last_error

    async def cancel(self, order: Order) -> Order:
        params = {"origClientOrderId": order.client_id}
        try:
            raw = await self._retrying(self._ex.cancel_order, order.venue_order_id, order.symbol, params)
            if isinstance(raw, dict) and raw.get("id") is not None:
                return self._remember(raw)
        except OrderNotFound:
            pass  # already finished (or never placed): report what the venue knows
        found = await self._lookup(order)
        if found is None:
            raise OrderNotFound(f"{self.name} has no order {order.client_id}")
        return found

    async def cancel_all(self, symbol: str | None = None) -> int:
        if symbol is None:
            # One cheap DELETE per symbol, all at once: listing every open order first costs Binance
            # 40 weight (ccxt then throttles for most of a second), which an emergency stop cannot afford.
            symbols = set(self._instruments) | {o.symbol for o in self._orders.values() if o.status.is_working}
            counts = await asyncio.gather(*(self.cancel_all(s) for s in sorted(symbols)))
            return sum(counts)
        try:
            raws = await self._retrying(self._ex.cancel_all_orders, symbol)
        except OrderNotFound:
            return 0  # Binance answers "unknown order" when none are open
        for raw in raws or []:
            if isinstance(raw, dict) and raw.get("id") is not None:
                self._remember(raw)
        return len(raws or [])

    # -- fills -----------------------------------------------------------------------------------

    async def fills_since(self, since: datetime | None, symbols: list[str] | None = None) -> list[Fill]:
        out: list[Fill] = []
        for symbol in symbols or list(self._instruments):
            out.extend(await self._symbol_fills(symbol, since))
        return sorted(out, key=lambda f: f.ts)

    async def _symbol_fills(self, symbol: str, since: datetime | None, page: int = 1000) -> list[Fill]:
        market_id = self._ex.market(symbol)["id"]
        params: dict[str, Any] = {}
        since_ms = None if since is None else int(since.timestamp() * 1000)
        fills: list[Fill] = []
        while True:
            raws = await self._retrying(self._ex.fetch_my_trades, symbol, since_ms, page, params)
            for raw in raws:
                cid = await self._client_id_for(symbol, str(raw.get("order")))
                fills.append(cv.trade_fill(raw, market_id, cid, self._instruments.get(symbol), self.clock.now()))
            if len(raws) < page:
                return fills
            since_ms, params = None, {"fromId": int(raws[-1]["id"]) + 1}  # page on by trade id

    async def _client_id_for(self, symbol: str, venue_order_id: str) -> str:
        """Trades name the venue's order id only; the client id comes from memory or from the order."""
        cid = self._client_of.get(venue_order_id)
        if cid is None:
            raw = await self._retrying(self._ex.fetch_order, venue_order_id, symbol)
            cid = self._remember(raw).client_id
        return cid

    async def ping_ms(self) -> float | None:
        return await round_trip_ms(self._call(self._ex.fetch_time))

    # -- streams ---------------------------------------------------------------------------------

    def market_stream(self, symbols: list[str]) -> AsyncIterator[list[MarketTick]]:
        from engine.venues.ccxt_streams import market_stream

        return market_stream(self, symbols)

    def order_updates(self) -> AsyncIterator[OrderUpdate]:
        from engine.venues.ccxt_streams import order_updates

        return order_updates(self)

    # used by the stream loops ---------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def exchange(self) -> Any:
        return self._ex

    def instrument_of(self, symbol: str) -> Instrument | None:
        return self._instruments.get(symbol)

    def remember(self, raw: dict[str, Any]) -> Order:
        return self._remember(raw)

    def tracked_orders(self) -> dict[str, Order]:
        return self._orders

    def first_time(self, fill: Fill) -> bool:
        """True once per fill id: the websocket and the polling fallback may both report a fill."""
        if fill.fill_id in self._emitted_fills:
            return False
        self._emitted_fills.add(fill.fill_id)
        return True

    def already_emitted(self, fill_id: str) -> bool:
        return fill_id in self._emitted_fills

    def traded_symbols(self) -> set[str]:
        return set(self._instruments)

    def map_error(self, exc: BaseException) -> VenueError:
        return self._map(exc)

    async def lookup(self, order: Order) -> Order | None:
        return await self._lookup(order)

    async def fills(self, symbol: str, since: datetime | None) -> list[Fill]:
        return await self._symbol_fills(symbol, since)


__all__ = ["CcxtEndpoints", "CcxtVenue"]
