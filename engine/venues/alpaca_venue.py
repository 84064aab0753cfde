"""US equities and crypto through alpaca-py: REST in a dedicated thread pool, trade updates on our loop.

alpaca-py is synchronous and sets no request timeout, and retries 429/504 itself
with a blocking sleep. So: every call runs in this venue's own ThreadPoolExecutor,
the requests Session gets a default timeout through a mounted adapter, the future
is also bounded (asyncio.timeout), and the library's own retries are switched
off so rate limits surface to the engine. Submits are idempotent on
client_order_id: when the outcome is unknown the order is looked up by that id
before anything is sent again. alpaca-py is imported in `connect()` only.
Unified symbols are Alpaca's own: "AAPL" (USD) and "BTC/USD".
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlparse

from engine.core.clock import Clock
from engine.core.model import (
    Balance,
    Fill,
    Instrument,
    MarketTick,
    Order,
    OrderType,
    OrderUpdate,
    VenueMode,
)
from engine.venues import alpaca_wire as wire
from engine.venues.ack_watch import AckWatch
from engine.venues.alpaca_setup import endpoint_kind, key_kind, make_clients
from engine.venues.alpaca_wire import AlpacaEnvironment, fill_id
from engine.venues.base import (
    ALL_ORDER_TYPES,
    AuthenticationFailed,
    InstrumentCapabilities,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    SubmitResult,
    TransientVenueError,
    Venue,
    VenueCapabilities,
    VenueError,
    bounded,
    round_trip_ms,
    unsupported,
)
from engine.venues.cancel_confirm import confirm_cancel
from engine.venues.unconfirmed import Settled, submit_confirmed

log = logging.getLogger(__name__)
T = TypeVar("T")


class AlpacaVenue(Venue):
    def __init__(
        self,
        clock: Clock,
        api_key: str,
        secret_key: str,
        *,
        paper: bool = True,
        url_override: str | None = None,
        stream_url: str | None = None,
        data_url: str | None = None,
        symbols: list[str] | None = None,
        timeout_s: float = 10.0,
        poll_interval_s: float = 1.0,
        submit_attempts: int = 3,
        backoff_s: float = 0.25,
        ws_retry_s: float = 5.0,
        workers: int = 4,
        name: str = "alpaca",
        ws_timeout_s: float | None = None,
        cancel_attempts: int = 3,
        stream_grace_s: float = 1.0,
    ) -> None:
        """timeout_s bounds every REST call; ws_timeout_s the trade stream's connect, authentication and
        subscription. An order acknowledged over REST that the stream has not reported within
        stream_grace_s is polled, and the stream counts as down (polling until it is back)."""
        self.clock = clock
        self.name = name
        self.paper = paper
        self.mode = VenueMode.PAPER if paper else VenueMode.LIVE
        self.url_override = url_override
        self.stream_url = stream_url
        self.data_url = data_url
        self.symbols = list(symbols or [])
        self.timeout_s, self.poll_interval_s, self.ws_retry_s = timeout_s, poll_interval_s, ws_retry_s
        self.submit_attempts, self.backoff_s = max(1, submit_attempts), backoff_s
        self.ws_timeout_s = ws_timeout_s if ws_timeout_s is not None else timeout_s
        self.cancel_attempts = max(1, cancel_attempts)
        self.stream_grace_s = stream_grace_s
        self.acks = AckWatch(stream_grace_s)  # REST-acknowledged orders the trade stream still owes
        self._quiet_until = 0.0  # loop time before which a 429's Retry-After forbids any request
        self.stream_mode = {"market": "polling", "orders": "websocket"}  # for the health view
        self._credentials = (api_key, secret_key)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{name}-rest")
        self._trading: Any = None
        self._stock_data: Any = None
        self._crypto_data: Any = None
        self._instruments: dict[str, Instrument] = {}
        self._orders: dict[str, Order] = {}  # client id -> latest state
        self._client_of: dict[str, str] = {}  # venue order id -> client id
        self._emitted_qty: dict[str, Decimal] = {}  # client id -> cumulative qty reported as fills
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return self.url_override or ("https://paper-api.alpaca.markets" if self.paper else "https://api.alpaca.markets")

    def trade_stream_url(self) -> str:
        if self.stream_url:
            return self.stream_url
        parsed = urlparse(self.endpoint)
        scheme = "wss" if parsed.scheme == "https" else "ws"
        return f"{scheme}://{parsed.netloc}/stream"

    def _make_clients(self) -> None:
        key, secret = self._credentials
        self._trading, self._stock_data, self._crypto_data = make_clients(
            key, secret, paper=self.paper, url_override=self.url_override, data_url=self.data_url,
            timeout_s=self.timeout_s)  # fmt: skip

    async def connect(self) -> None:
        host, key = self._endpoint_kind(), self._key_kind()
        if {host, key} == {"paper", "live"}:  # never trade a live account by mistake, nor test against one
            raise AuthenticationFailed(f"{self.name}: a {key} key against the {host} endpoint {self.endpoint}")
        if self._trading is None:
            self._make_clients()
        self._closed = False
        await self._call(self._trading.get_account)  # wrong keys fail here, before any order
        for symbol in self.symbols:
            asset = await self._retrying(self._trading.get_asset, symbol)
            if not isinstance(asset, dict) or not asset.get("tradable", True):
                raise VenueError(f"{self.name}: {symbol} is not tradable")
            self._instruments[symbol] = wire.instrument(symbol, self.name, asset)

    async def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _endpoint_kind(self) -> str:
        return endpoint_kind(self.endpoint)

    def _key_kind(self) -> str:
        return key_kind(self._credentials[0])

    async def environment_check(self) -> AlpacaEnvironment:
        """Paper or live, by endpoint, key prefix and the account itself (fails on a wrong key)."""
        kind, key_kind = self._endpoint_kind(), self._key_kind()
        if self._trading is None:
            self._make_clients()
        account = await self._call(self._trading.get_account)
        account = account if isinstance(account, dict) else {}
        return AlpacaEnvironment(self.endpoint, kind, key_kind, account.get("account_number"), account.get("status"))

    # -- calls and errors ------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def scrub(self, text: str) -> str:
        return wire.scrub(text, self._credentials)

    def map_error(self, exc: BaseException) -> VenueError:
        return wire.map_error(exc, self._credentials)

    async def _call(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        if self._trading is None:
            raise VenueError(f"{self.name} is not connected")
        loop = asyncio.get_running_loop()
        wait = self._quiet_until - loop.time()
        if wait > 0:  # the venue said when to come back
            raise RateLimited(f"{self.name}: rate limited, retry in {wait:.1f} s", retry_after_s=wait)
        future = loop.run_in_executor(self._pool, functools.partial(fn, *args, **kw))
        try:
            # The session timeout bounds each socket wait; this bounds the whole call.
            return await bounded(future, self.timeout_s * 2, f"{self.name} {getattr(fn, '__name__', 'call')}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            err = self.map_error(exc)
            if isinstance(err, RateLimited):
                self._quiet_until = loop.time() + (err.retry_after_s or 1.0)
            raise err from None  # the chained exception may carry request details

    async def _retrying(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Idempotent calls: transient failures retried with backoff; a rate limit is not hammered."""
        for attempt in range(self.submit_attempts):
            try:
                return await self._call(fn, *args, **kw)
            except TransientVenueError as exc:
                if exc.retry_after_s is not None or attempt == self.submit_attempts - 1:
                    raise
                await asyncio.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")

    async def rest(self, method: str, path: str, data: dict[str, Any] | None = None) -> Any:
        """A raw REST call through the trading client, for endpoints alpaca-py does not wrap."""
        return await self._retrying(getattr(self._trading, method), path, data)

    # -- account ---------------------------------------------------------------------------------

    async def instruments(self) -> dict[str, Instrument]:
        return dict(self._instruments)

    async def balances(self) -> dict[str, Balance]:
        """USD cash (what buying power leaves free) and every position as an asset (shares, coins)."""
        account = await self._retrying(self._trading.get_account)
        cash = wire.dec(account.get("cash"))
        buying_power = wire.dec(account.get("buying_power"))
        free = min(cash, buying_power) if buying_power > 0 else cash
        out = {"USD": Balance("USD", free, cash - free)}
        for raw in await self._retrying(self._trading.get_all_positions) or []:
            symbol = self._unified(str(raw.get("symbol", "")))
            asset = symbol.partition("/")[0]
            qty = wire.dec(raw.get("qty"))
            available = wire.dec(raw.get("qty_available")) if raw.get("qty_available") is not None else qty
            if qty:
                out[asset] = Balance(asset, available, qty - available)
        return out

    async def equity(self) -> Decimal | None:
        account = await self._retrying(self._trading.get_account)
        value = account.get("equity") or account.get("portfolio_value")
        return wire.dec(value) if value is not None else None

    def capabilities(self) -> VenueCapabilities:
        """Alpaca: equities take stop and stop-limit orders; crypto takes stop-limit but no plain stop."""
        crypto = InstrumentCapabilities(frozenset({OrderType.MARKET, OrderType.LIMIT, OrderType.STOP_LIMIT}))
        equity = InstrumentCapabilities(ALL_ORDER_TYPES)
        caps = {s: crypto if "/" in s else equity for s in self._instruments}
        return VenueCapabilities(caps, streams=frozenset({"orders"}))

    async def positions(self) -> dict[str, Decimal]:
        raws = await self._retrying(self._trading.get_all_positions)
        out = {}
        for raw in raws or []:
            qty = wire.dec(raw.get("qty"))
            if raw.get("side") == "short" and qty > 0:
                qty = -qty
            if qty != 0:
                out[self._unified(str(raw.get("symbol", "")))] = qty
        return out

    def _unified(self, symbol: str) -> str:
        """Positions name crypto without the slash ("BTCUSD"); orders with it."""
        if symbol in self._instruments or "/" in symbol:
            return symbol
        for known in self._instruments:
            if known.replace("/", "") == symbol:
                return known
        return symbol

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        from alpaca.trading.requests import GetOrdersRequest

        request = GetOrdersRequest(status="open", limit=500, symbols=[symbol] if symbol else None)
        raws = await self._retrying(self._trading.get_orders, request)
        return [self.remember(raw) for raw in raws or []]

    def remember(self, raw: dict[str, Any]) -> Order:
        cid = raw.get("client_order_id") or self._client_of.get(str(raw.get("id")))
        known = self._orders.get(cid) if cid else None
        order = wire.order(raw, self.clock.now(), known)
        self._orders[order.client_id] = order
        if order.venue_order_id:
            self._client_of[order.venue_order_id] = order.client_id
        return order

    async def lookup(self, order: Order) -> Order | None:
        """The venue's view of one of our orders by client id, or None when it never arrived."""
        try:
            raw = await self._retrying(self._trading.get_order_by_client_id, order.client_id)
        except OrderNotFound:
            return None
        return self.remember(raw) if isinstance(raw, dict) and raw.get("id") else None

    # -- orders ----------------------------------------------------------------------------------

    async def place(self, order: Order) -> SubmitResult:
        """Alpaca's order reply carries no executions: fills come from the stream or the polls."""
        return SubmitResult(await self._submit(order))

    async def _submit(self, order: Order) -> Order:
        if self._instruments and order.symbol not in self._instruments:
            raise OrderRejected(f"{order.symbol} is not traded on {self.name}")
        refusal = unsupported(order, self.capabilities(), self.name)
        if refusal is not None:
            raise refusal
        self._orders.setdefault(order.client_id, order)
        request = wire.order_request(order)

        async def send() -> Order | None:
            raw = await self._call(self._trading.submit_order, request)
            return self._expect_stream(self.remember(raw)) if isinstance(raw, dict) and raw.get("id") else None

        async def settle_unknown(_sent_at: float, faults: list[VenueError]) -> Settled:
            # Alpaca refuses a reused client id for good, so sending again after a failed look-up cannot
            # trade twice: the duplicate refusal sends us back to the look-up
            try:
                return Settled(await self.lookup(order), may_resend=True)
            except RateLimited:
                raise
            except TransientVenueError as exc:
                faults.append(exc)
                return Settled(None, may_resend=True)

        return await submit_confirmed(self, order, send, settle_unknown, self._expect_stream, self.submit_attempts,
                                      self.backoff_s, duplicate="duplicate client_order_id")  # fmt: skip

    def _expect_stream(self, order: Order) -> Order:
        self.acks.expect(order.client_id)
        return order

    async def cancel(self, order: Order) -> Order:
        venue_id = order.venue_order_id or (self._orders.get(order.client_id) or order).venue_order_id
        if venue_id is None:
            found = await self.lookup(order)
            if found is None:
                raise OrderNotFound(f"{self.name} has no order {order.client_id}")
            venue_id = found.venue_order_id
        # The cancel's answer (204, 404 unknown, 422 no longer cancelable, a timeout, a lost reply) never
        # settles it alone: the order is read back (engine.venues.cancel_confirm)

        async def send() -> None:
            with contextlib.suppress(OrderNotFound, OrderRejected):
                await self._call(self._trading.cancel_order_by_id, venue_id)

        return await confirm_cancel(self, order, send, lambda: self.lookup(order), self.cancel_attempts,
                                    self.backoff_s)  # fmt: skip

    async def cancel_all(self, symbol: str | None = None) -> int:
        if symbol is not None:
            orders = await self.open_orders(symbol)
            results = await asyncio.gather(*(self.cancel(o) for o in orders), return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException) and not isinstance(result, VenueError):
                    raise result
            return len(orders)
        responses = await self._retrying(self._trading.cancel_orders)
        return sum(1 for r in responses or [] if isinstance(r, dict) and int(r.get("status", 0)) < 300)

    async def close_all(self) -> int:
        """Cancel every open order, then liquidate every position (Alpaca's own close-all)."""
        responses = await self._retrying(self._trading.close_all_positions, cancel_orders=True)
        for response in responses or []:
            body = response.get("body") if isinstance(response, dict) else None
            if isinstance(body, dict) and body.get("client_order_id"):
                self.remember(body)
        return len(responses or [])

    # -- fills -----------------------------------------------------------------------------------

    async def fills_since(self, since: datetime | None, symbols: list[str] | None = None) -> list[Fill]:
        fills: list[Fill] = []
        params: dict[str, Any] = {"direction": "asc", "page_size": 100}
        if since is not None:
            params["after"] = (since - timedelta(microseconds=1)).isoformat()
        while True:
            raws = await self.rest("get", "/account/activities/FILL", dict(params))
            if not isinstance(raws, list):
                raise TransientVenueError(f"{self.name}: unreadable activities")
            for raw in raws:
                fill = await self._activity_fill(raw)
                if (symbols is None or fill.symbol in symbols) and (since is None or fill.ts >= since):
                    fills.append(fill)
            if len(raws) < params["page_size"]:
                return sorted(fills, key=lambda f: f.ts)
            params["page_token"] = raws[-1].get("id")

    async def _activity_fill(self, raw: dict[str, Any]) -> Fill:
        venue_id = str(raw.get("order_id"))
        cid = self._client_of.get(venue_id)
        if cid is None:
            order = self.remember(await self._retrying(self._trading.get_order_by_id, venue_id))
            cid = order.client_id
        symbol = self._unified(str(raw.get("symbol", "")))
        inst = self._instruments.get(symbol)
        fill = wire.activity_fill({**raw, "symbol": symbol}, cid, inst.quote if inst else "USD", self.clock.now())
        cum = wire.dec(raw.get("cum_qty"))
        return fill if not cum else replace(fill, fill_id=fill_id(venue_id, cum))

    async def ping_ms(self) -> float | None:
        return await round_trip_ms(self._call(self._trading.get_clock))

    async def history(self, symbol: str, seconds: float, step_s: float) -> list[MarketTick]:
        """Warm-up from alpaca-py's market-data client: one-minute bars over the window, each as a tick
        at its close (Alpaca has no finer history on the free feed)."""
        from engine.venues.alpaca_stream import bars_history

        return await bars_history(self, symbol, seconds)

    # -- streams ---------------------------------------------------------------------------------

    def market_stream(self, symbols: list[str]) -> AsyncIterator[list[MarketTick]]:
        from engine.venues.alpaca_stream import market_stream

        return market_stream(self, symbols)

    def order_updates(self) -> AsyncIterator[OrderUpdate]:
        from engine.venues.alpaca_stream import order_updates

        return order_updates(self)

    # used by the stream loops ---------------------------------------------------------------------

    @property
    def credentials(self) -> tuple[str, str]:
        return self._credentials

    @property
    def data_clients(self) -> tuple[Any, Any]:
        return self._stock_data, self._crypto_data

    def instrument_of(self, symbol: str) -> Instrument | None:
        return self._instruments.get(symbol)

    def tracked_orders(self) -> dict[str, Order]:
        return self._orders

    def claim_fill(self, client_id: str, cum_qty: Decimal) -> bool:
        """True once per step of an order's cumulative filled qty: websocket and polling may both see it."""
        if cum_qty <= self._emitted_qty.get(client_id, Decimal(0)):
            return False
        self._emitted_qty[client_id] = cum_qty
        return True

    def emitted_qty(self, client_id: str) -> Decimal:
        return self._emitted_qty.get(client_id, Decimal(0))

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._retrying(fn, *args)


__all__ = ["AlpacaEnvironment", "AlpacaVenue", "fill_id"]
