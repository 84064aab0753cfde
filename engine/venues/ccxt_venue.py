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
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from engine.core.clock import Clock
from engine.core.model import Balance, Fill, Instrument, MarketTick, Order, OrderUpdate, VenueMode
from engine.venues import ccxt_convert as cv
from engine.venues.ack_watch import AckWatch
from engine.venues.base import (
    InstrumentCapabilities,
    MalformedReply,
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
from engine.venues.ccxt_setup import CcxtEndpoints, make_exchange, reset_websocket
from engine.venues.unconfirmed import Settled, settle, submit_confirmed

log = logging.getLogger(__name__)
T = TypeVar("T")


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
        ws_timeout_s: float | None = None,
        stream_grace_s: float = 1.0,
        cancel_attempts: int = 3,
        market_silence_s: float = 30.0,
        recv_window_s: float = 10.0,
    ) -> None:
        """timeout_s bounds every REST call; ws_timeout_s (default timeout_s) every websocket connect,
        authentication and subscription (with the first market message); a subscribed market stream
        silent for market_silence_s has failed. An order the REST reply acknowledged but the user
        stream has not reported within stream_grace_s is polled, and the stream counts as failed."""
        self.clock = clock
        self.name = name or exchange_id
        self.mode = mode
        self.exchange_id = exchange_id
        self.symbols = list(symbols or [])
        self.endpoints = endpoints or CcxtEndpoints()
        self.timeout_s, self.poll_interval_s, self.ws_retry_s = timeout_s, poll_interval_s, ws_retry_s
        self.submit_attempts, self.backoff_s = max(1, submit_attempts), backoff_s
        self.ws_timeout_s = ws_timeout_s if ws_timeout_s is not None else timeout_s
        self.stream_grace_s, self.cancel_attempts = stream_grace_s, max(1, cancel_attempts)
        self.market_silence_s = market_silence_s  # a subscribed market stream quiet this long has failed
        self.recv_window_s = recv_window_s  # Binance refuses a signed request older than this when it arrives
        self.stream_mode = {"market": "websocket", "orders": "websocket"}  # or "polling", for the health view
        self._credentials = (api_key, secret)
        self._extra_options = dict(options or {})
        if "recvWindow" in self._extra_options:  # set in the venue's options: the window the venue applies
            self.recv_window_s = float(self._extra_options["recvWindow"]) / 1000
        self._ex: Any = None
        self._instruments: dict[str, Instrument] = {}
        self._orders: dict[str, Order] = {}  # client id -> latest state, for orders we placed or saw
        self._client_of: dict[str, str] = {}  # venue order id -> client id
        self._emitted_fills: set[str] = set()
        self._capabilities: dict[str, InstrumentCapabilities] = {}
        self.acks = AckWatch(stream_grace_s)  # REST-acknowledged orders the user stream still owes
        self._quiet_until = 0.0  # loop time before which a 429's Retry-After forbids any request
        self._ping_ms: float | None = None
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
        self._capabilities = {s: cv.capabilities(markets[s]) for s in wanted}
        if self._credentials[0]:
            await self._call(self._ex.fetch_balance)  # wrong keys fail here, before any order

    def _make_exchange(self) -> Any:
        options = {"recvWindow": int(self.recv_window_s * 1000), **self._extra_options}
        return make_exchange(self.exchange_id, self._credentials, self.mode, self.endpoints, self.timeout_s,
                             options)  # fmt: skip

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
        headers = getattr(self._ex, "last_response_headers", None) or {}
        return cv.map_error(exc, self._credentials, cv.retry_after(headers))

    async def _call(self, fn: Callable[..., Awaitable[T]], *args: Any, **kw: Any) -> T:
        if self._ex is None:
            raise VenueError(f"{self.name} is not connected")
        loop = asyncio.get_running_loop()
        wait = self._quiet_until - loop.time()
        if wait > 0:  # the venue said when to come back: asking earlier gets the key banned
            raise RateLimited(f"{self.name}: rate limited, retry in {wait:.1f} s", retry_after_s=wait)
        what = f"{self.name} {getattr(fn, '__name__', 'call')}"
        try:
            # ccxt's own timeout bounds each HTTP exchange; this is the safety net over the whole call,
            # generous because ccxt's rate limiter may queue it behind others first.
            return await bounded(fn(*args, **kw), self.timeout_s * 2 + 5.0, what)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            err = self._map(exc)
            if isinstance(err, RateLimited):
                self._quiet_until = loop.time() + (err.retry_after_s or 1.0)
            raise err from None  # ccxt's chained exception may carry request details

    async def ws_bounded(self, call: Awaitable[T], what: str) -> T:
        """A websocket step (connect, authenticate, subscribe, first message) bounded by ws_timeout_s."""
        return await bounded(call, self.ws_timeout_s, f"{self.name} {what}")

    async def reset_websocket(self, private: bool) -> None:
        await reset_websocket(self._ex, private, self.name)

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

    async def equity(self) -> Decimal | None:
        """Every balance valued in the traded quote currency at the venue's last prices (unpriced assets: 0)."""
        if not self._instruments:
            return None
        quote = next(iter(self._instruments.values())).quote
        balances = await self.balances()
        markets = self._ex.markets or {}
        priced = [f"{a}/{quote}" for a in balances if a != quote and f"{a}/{quote}" in markets]
        tickers = await self._retrying(self._ex.fetch_tickers, priced) if priced else {}
        total = Decimal(0)
        for asset, bal in balances.items():
            if asset == quote:
                total += bal.total
                continue
            ticker = tickers.get(f"{asset}/{quote}") or {}
            total += bal.total * cv.dec(ticker.get("last") or ticker.get("bid"))
        return total

    async def asset_prices(self, assets: list[str], quote: str) -> dict[str, Decimal]:
        markets = self._ex.markets or {}
        out = {}
        for asset in assets:
            symbol = f"{asset}/{quote}"
            if symbol in markets:
                ticker = await self._retrying(self._ex.fetch_ticker, symbol)
                price = cv.dec(ticker.get("last") or ticker.get("bid"))
                if price > 0:
                    out[asset] = price
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
        # The venue order id names the order whatever client id a reply carries (a cancel's is new).
        cid = self._client_of.get(str(raw.get("id"))) or cv.client_id_of(raw)
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
        return self._remember(raw) if isinstance(raw, dict) and raw.get("id") is not None else None

    # -- orders ----------------------------------------------------------------------------------

    def capabilities(self) -> VenueCapabilities:
        return VenueCapabilities(dict(self._capabilities), fills_in_submit_reply=True)

    async def place(self, order: Order) -> SubmitResult:
        inst = self._instruments.get(order.symbol)
        if inst is None:
            raise OrderRejected(f"{order.symbol} is not traded on {self.name}")
        refusal = unsupported(order, self.capabilities(), self.name)
        if refusal is not None:
            raise refusal  # the symbol does not list it: nothing is sent
        self._orders.setdefault(order.client_id, order)
        kind, price, params = cv.order_request(order)

        async def send() -> SubmitResult | None:
            raw = await self._call(
                self._ex.create_order, order.symbol, kind, order.side.value, float(order.qty), price, params
            )
            if not isinstance(raw, dict) or raw.get("id") is None:
                return None
            acked = self._remember(raw)
            self._expect_stream(acked)
            market_id = self._ex.market(order.symbol)["id"]
            return SubmitResult(acked, cv.reply_fills(raw, acked, inst, market_id, self.clock.now()))

        async def settle_unknown(sent_at: float, faults: list[VenueError]) -> Settled:
            # Binance takes a reused client id once the first order filled: wait out its receive window
            return await settle(lambda: self._lookup(order), sent_at, self.recv_window_s,
                                max(self.poll_interval_s, 0.05), faults)  # fmt: skip

        def found(acked: Order) -> SubmitResult:
            self._expect_stream(acked)
            return SubmitResult(acked)  # its fills come from the stream or the polls

        return await submit_confirmed(self, order, send, settle_unknown, found, self.submit_attempts, self.backoff_s,
                                      duplicate="uplicate order")  # fmt: skip

    def _expect_stream(self, order: Order) -> None:
        self.acks.expect(order.client_id)

    async def cancel(self, order: Order) -> Order:
        """Cancel and confirm (engine.venues.cancel_confirm): an unreadable, lost or timed-out reply is
        settled by reading the order back, and the cancel is sent again while the order still works."""
        params = {"origClientOrderId": order.client_id}

        async def send() -> Order:
            venue_id = order.venue_order_id or (self._orders.get(order.client_id) or order).venue_order_id
            raw = await self._call(self._ex.cancel_order, venue_id, order.symbol, params)
            if isinstance(raw, dict) and raw.get("id") is not None:
                return self._remember(raw)
            raise MalformedReply(f"{self.name}: unreadable cancel reply")

        return await confirm_cancel(self, order, send, lambda: self._lookup(order), self.cancel_attempts,
                                    self.backoff_s)  # fmt: skip

    async def lookup(self, order: Order) -> Order | None:
        return await self._lookup(order)

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
        if self._quiet_until > asyncio.get_running_loop().time():
            return self._ping_ms  # a 429 just came back, so the link is up; a ping now would be refused unsent
        self._ping_ms = await round_trip_ms(self._call(self._ex.fetch_time))
        return self._ping_ms

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

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """A bounded, mapped REST call for the stream loops."""
        return await self._call(fn, *args)

    def overdue_acks(self) -> list[Order]:
        """Orders acknowledged over REST that the user stream has not reported within stream_grace_s."""
        return [self._orders[cid] for cid in self.acks.overdue() if cid in self._orders]

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

    async def fills(self, symbol: str, since: datetime | None) -> list[Fill]:
        return await self._symbol_fills(symbol, since)


__all__ = ["CcxtEndpoints", "CcxtVenue"]
