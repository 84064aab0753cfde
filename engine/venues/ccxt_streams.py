"""The ccxt venue's two streams: websockets first, REST polling while they fail.

A websocket error switches a stream to polling at once (the data keeps coming)
and the websocket is tried again after `ws_retry_s`, backing off while it keeps
failing. Order updates catch up by polling once the websocket is back, and an
order whose filled quantity runs ahead of the fills reported so far (ccxt keeps
only the latest state per order between two reads) gets its trades fetched, so
no fill is lost; fill ids are emitted once whichever path saw them first.

Every websocket step is bounded (VenueTimeout): connecting, authenticating and
subscribing the user stream (a socket that does not speak Binance's ws-api never
answers), and a market stream's silence. A timed-out websocket client is dropped
so ccxt cannot go on waiting on it. An order the REST reply acknowledged and the
user stream has not reported within `stream_grace_s` is polled at once and the
stream counts as failed (slow): fills then come from polling within a second.
Each link (market, orders) reports its own fall and recovery.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.core.model import ZERO, MarketTick, Order, OrderUpdate
from engine.venues import ccxt_convert as cv
from engine.venues.base import AuthenticationFailed, VenueError, VenueTimeout, bounded

if TYPE_CHECKING:
    from engine.venues.ccxt_venue import CcxtVenue

log = logging.getLogger(__name__)
_MAX_BACKOFF = 8  # times ws_retry_s
_SINGLE_TICKERS = 8  # up to this many symbols, polled tickers are read one by one
SWEEP_S = 10.0  # while polling: how often every symbol's trades and the open-order list are read


class StreamSilent(VenueTimeout):
    """Subscribed, yet the stream did not report what the REST replies already said."""


class _Fallback:
    """When the websocket may be tried again after failures."""

    def __init__(self, venue: CcxtVenue, stream: str) -> None:
        self.venue, self.stream = venue, stream
        self.failures = 0
        self.until = 0.0
        self.needs_message = False  # failed for silence: only a delivered message proves it back

    def polling(self) -> bool:
        active = asyncio.get_running_loop().time() < self.until
        self.venue.stream_mode[self.stream] = "polling" if active else "websocket"
        return active

    def failed(self, exc: BaseException) -> VenueError:
        err = self.venue.map_error(exc)
        if isinstance(err, AuthenticationFailed):
            raise err
        self.failures += 1
        self.needs_message = self.needs_message or isinstance(err, StreamSilent)
        wait = self.venue.ws_retry_s * min(2 ** (self.failures - 1), _MAX_BACKOFF)
        self.until = asyncio.get_running_loop().time() + wait
        log.warning("%s %s websocket failed (%s); polling for %.1fs", self.venue.name, self.stream, err, wait)
        if self.failures == 1:
            self.venue.report_link(self.stream, False, f"websocket failed ({err}); polling")
        return err

    def ok(self, delivered: bool = True) -> None:
        if self.needs_message and not delivered:
            return
        if self.failures:
            self.venue.report_link(self.stream, True)
        self.failures = 0
        self.needs_message = False


def _stamp(ticker: dict[str, Any]) -> tuple[Any, ...]:
    return ticker.get("timestamp"), ticker.get("bid"), ticker.get("ask"), ticker.get("last")


async def market_stream(venue: CcxtVenue, symbols: list[str]) -> AsyncIterator[list[MarketTick]]:
    ex = venue.exchange
    volumes: dict[str, Decimal] = {}
    fallback = _Fallback(venue, "market")
    wanted = set(symbols)
    seen: dict[str, tuple[Any, ...]] = {}
    subscribed = False

    def batch(tickers: dict[str, Any]) -> list[MarketTick]:
        out = {}
        for raw in tickers.values():
            sym = raw.get("symbol")
            if sym not in symbols:
                continue
            total = cv.dec(raw.get("baseVolume"))
            prev = volumes.get(sym)
            volumes[sym] = total
            tick = cv.tick(raw, venue.clock.now(), max(total - prev, ZERO) if prev is not None else ZERO)
            if tick is not None:
                out[sym] = tick
        return list(out.values())

    async def poll_tickers() -> dict[str, Any]:
        """A few symbols one by one (Binance weighs a ticker 2, the multi-symbol list 80)."""
        if len(symbols) > _SINGLE_TICKERS:
            return dict(await venue.call(ex.fetch_tickers, symbols))
        return {s: await venue.call(ex.fetch_ticker, s) for s in symbols}

    while not venue.closed:
        if fallback.polling():
            try:
                ticks = batch(await poll_tickers())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                err = venue.map_error(exc)
                if isinstance(err, AuthenticationFailed):
                    raise err from None
                log.warning("%s: polling tickers failed: %s", venue.name, err)
                ticks = []
            if ticks:
                yield ticks
            await asyncio.sleep(venue.poll_interval_s)
            continue
        try:
            # full tickers: bid, ask and last; Binance sends them every second, so silence is a failure
            # The first watch connects and subscribes (ws_timeout_s); later ones wait for data, and
            # Binance sends every ticker each second, so a long silence is a failure too.
            limit = venue.ws_timeout_s if fallback.failures or not subscribed else venue.market_silence_s
            raw = await bounded(ex.watch_tickers(symbols, {"name": "ticker"}), limit, f"{venue.name} market stream")
            subscribed = True
            fallback.ok()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            subscribed = False
            if isinstance(exc, VenueTimeout):
                await venue.reset_websocket(private=False)
            fallback.failed(exc)
            continue
        # watch_tickers returns only the message that woke it; the others that arrived meanwhile
        # are in ccxt's cache, so take every symbol whose ticker changed since we last looked.
        cached = getattr(ex, "tickers", None) or {}
        fresh = {s: t for s, t in cached.items() if s in wanted and _stamp(t) != seen.get(s)}
        fresh.update(raw)
        for s, t in fresh.items():
            seen[s] = _stamp(t)
        ticks = batch(fresh)
        if ticks:
            yield ticks


async def order_updates(venue: CcxtVenue) -> AsyncIterator[OrderUpdate]:
    ex = venue.exchange
    fallback = _Fallback(venue, "orders")
    cursor: dict[str, datetime] = {}
    started = venue.clock.now() - timedelta(seconds=60)
    booked: dict[str, Decimal] = {}  # client id -> quantity of the fills emitted
    catch_up = False

    def emit_fill(update: OrderUpdate) -> OrderUpdate:
        fill = update.fill
        if fill is not None and not venue.first_time(fill):
            return OrderUpdate(update.order)
        if fill is not None:
            booked[fill.client_id] = booked.get(fill.client_id, ZERO) + fill.qty
            cursor[fill.symbol] = max(cursor.get(fill.symbol, fill.ts), fill.ts)
        return update

    async def missing_fills(order: Order) -> list[OrderUpdate]:
        if order.filled_qty <= booked.get(order.client_id, ZERO):
            return []
        since = (order.created_at or started) - timedelta(seconds=1)
        fills = [f for f in await venue.fills(order.symbol, since) if f.client_id == order.client_id]
        return [emit_fill(OrderUpdate(order, f)) for f in fills if not venue.already_emitted(f.fill_id)]

    last_sweep = asyncio.get_running_loop().time()  # the reconcile at start saw the rest

    async def poll(full: bool = False) -> list[OrderUpdate]:
        """One REST pass. Every time: our working orders one by one (cheap: Binance weighs an order
        read 4, its open-order list 80) and the trades of any order filled beyond what was emitted.
        Every SWEEP_S, or when catching up: every symbol's trades and the open orders, for what we
        do not track (orders placed by hand)."""
        nonlocal last_sweep
        tracked = venue.tracked_orders()
        out: list[OrderUpdate] = []
        for cid, before in list(tracked.items()):
            if before.status.is_working and before.venue_order_id is not None:
                order = await venue.lookup(before)
                if order is None:
                    continue
                if (before.status, before.filled_qty) != (order.status, order.filled_qty):
                    out.extend(await missing_fills(order))
                    out.append(OrderUpdate(order))
                    continue
            else:
                order = before
            if order.filled_qty > booked.get(cid, ZERO):
                out.extend(await missing_fills(order))
        now = asyncio.get_running_loop().time()
        if not full and now - last_sweep < SWEEP_S:
            return out
        last_sweep = now
        symbols = venue.traded_symbols() | {o.symbol for o in tracked.values() if o.status.is_working}
        for symbol in sorted(symbols):
            for fill in await venue.fills(symbol, cursor.get(symbol, started)):
                order = tracked.get(fill.client_id)
                if order is not None and not venue.already_emitted(fill.fill_id):
                    out.append(emit_fill(OrderUpdate(order, fill)))
        for raw in await venue.call(ex.fetch_open_orders):
            before = tracked.get(str(raw.get("clientOrderId")))
            order = venue.remember(raw)
            if before is None or (before.status, before.filled_qty) != (order.status, order.filled_qty):
                out.append(OrderUpdate(order))
        return out

    async def overdue() -> list[OrderUpdate]:
        """Orders the REST reply acknowledged and the stream has not reported in time: polled now."""
        out: list[OrderUpdate] = []
        for order in venue.overdue_acks():
            found = await venue.lookup(order)
            if found is None:
                continue
            out.extend(await missing_fills(found))
            out.append(OrderUpdate(found))
        return out

    queue: asyncio.Queue[Any] = asyncio.Queue()
    pump: asyncio.Task[None] | None = None

    async def pump_orders() -> None:
        """watch_orders in its own task, so the loop can notice a silent stream while it waits."""
        try:
            while True:
                queue.put_nowait(await ex.watch_orders())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            queue.put_nowait(exc)

    async def stop_pump() -> None:
        nonlocal pump
        if pump is not None:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            pump = None
        while not queue.empty():
            queue.get_nowait()

    try:
        while not venue.closed:
            if fallback.polling():
                await stop_pump()
                try:
                    for update in await poll():
                        venue.acks.saw(update.order.client_id)
                        yield update
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    err = venue.map_error(exc)
                    if isinstance(err, AuthenticationFailed):
                        raise err from None
                    log.warning("%s: polling orders failed: %s", venue.name, err)
                venue.acks.forget()
                await asyncio.sleep(venue.poll_interval_s)
                catch_up = True
                continue
            try:
                if pump is None:
                    authenticate = getattr(ex, "authenticate", None)
                    if authenticate is not None:
                        # connect + subscribe; a socket that does not speak ws-api never answers
                        await venue.ws_bounded(authenticate(), "user stream subscription")
                        fallback.ok(delivered=False)  # the venue acknowledged the subscription
                    if catch_up:
                        for update in await poll(full=True):  # subscribed first, so nothing falls in between
                            venue.acks.saw(update.order.client_id)
                            yield update
                        catch_up = False
                    pump = asyncio.get_running_loop().create_task(pump_orders())
                try:  # asyncio.timeout: wait_for (3.11) may swallow our own cancellation
                    async with asyncio.timeout(max(venue.stream_grace_s / 4, 0.05)):
                        item = await queue.get()
                except TimeoutError:
                    item = None
                if item is None:
                    late = await overdue()
                    if not late:
                        continue
                    # The link is reported down before the polled updates go out: health first, then fills.
                    await stop_pump()
                    await venue.reset_websocket(private=True)
                    fallback.failed(StreamSilent(f"user stream silent {venue.stream_grace_s:g} s after a reply"))
                    for update in late:
                        yield update
                    continue
                if isinstance(item, BaseException):
                    raise item
                raws = item
                fallback.ok()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await stop_pump()
                if isinstance(exc, VenueTimeout):
                    await venue.reset_websocket(private=True)
                fallback.failed(exc)
                continue
            for raw in raws:
                order = venue.remember(raw)
                venue.acks.saw(order.client_id)
                inst = venue.instrument_of(order.symbol)
                fill = cv.execution_fill(raw.get("info") or {}, order, inst, venue.clock.now())
                yield emit_fill(OrderUpdate(order, fill))
                try:
                    for update in await missing_fills(order):
                        yield update
                except VenueError as err:
                    log.warning("%s: fetching fills of %s failed: %s", venue.name, order.client_id, err)
                    catch_up = True
    finally:
        await stop_pump()
