"""The ccxt venue's two streams: websockets first, REST polling while they fail.

A websocket error switches a stream to polling at once (the data keeps coming)
and the websocket is tried again after `ws_retry_s`, backing off while it keeps
failing. Order updates catch up by polling once the websocket is back, and an
order whose filled quantity runs ahead of the fills reported so far (ccxt keeps
only the latest state per order between two reads) gets its trades fetched, so
no fill is lost; fill ids are emitted once whichever path saw them first.
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
from engine.venues.base import AuthenticationFailed, VenueError

if TYPE_CHECKING:
    from engine.venues.ccxt_venue import CcxtVenue

log = logging.getLogger(__name__)
_MAX_BACKOFF = 8  # times ws_retry_s


class _Fallback:
    """When the websocket may be tried again after failures."""

    def __init__(self, venue: CcxtVenue, stream: str) -> None:
        self.venue, self.stream = venue, stream
        self.failures = 0
        self.until = 0.0

    def polling(self) -> bool:
        active = asyncio.get_running_loop().time() < self.until
        self.venue.stream_mode[self.stream] = "polling" if active else "websocket"
        return active

    def failed(self, exc: BaseException) -> VenueError:
        err = self.venue.map_error(exc)
        if isinstance(err, AuthenticationFailed):
            raise err
        self.failures += 1
        wait = self.venue.ws_retry_s * min(2 ** (self.failures - 1), _MAX_BACKOFF)
        self.until = asyncio.get_running_loop().time() + wait
        log.warning("%s %s websocket failed (%s); polling for %.1fs", self.venue.name, self.stream, err, wait)
        if self.failures == 1:
            self.venue.report_link(self.stream, False, f"websocket failed ({err}); polling")
        return err

    def ok(self) -> None:
        if self.failures:
            self.venue.report_link(self.stream, True)
        self.failures = 0


def _stamp(ticker: dict[str, Any]) -> tuple[Any, ...]:
    return ticker.get("timestamp"), ticker.get("bid"), ticker.get("ask"), ticker.get("last")


async def market_stream(venue: CcxtVenue, symbols: list[str]) -> AsyncIterator[list[MarketTick]]:
    ex = venue.exchange
    volumes: dict[str, Decimal] = {}
    fallback = _Fallback(venue, "market")
    wanted = set(symbols)
    seen: dict[str, tuple[Any, ...]] = {}

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

    while not venue.closed:
        if fallback.polling():
            try:
                ticks = batch(await ex.fetch_tickers(symbols))
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
            raw = await ex.watch_tickers(symbols, {"name": "ticker"})  # full tickers: bid, ask and last
            fallback.ok()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
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

    async def poll() -> list[OrderUpdate]:
        tracked = venue.tracked_orders()
        out: list[OrderUpdate] = []
        symbols = venue.traded_symbols() | {o.symbol for o in tracked.values() if o.status.is_working}
        for symbol in sorted(symbols):
            for fill in await venue.fills(symbol, cursor.get(symbol, started)):
                order = tracked.get(fill.client_id)
                if order is not None and not venue.already_emitted(fill.fill_id):
                    out.append(emit_fill(OrderUpdate(order, fill)))
        seen = set()
        for raw in await ex.fetch_open_orders():
            before = tracked.get(str(raw.get("clientOrderId")))
            order = venue.remember(raw)
            seen.add(order.client_id)
            if before is None or (before.status, before.filled_qty) != (order.status, order.filled_qty):
                out.append(OrderUpdate(order))
        for cid, before in list(tracked.items()):
            if before.status.is_working and cid not in seen and before.venue_order_id is not None:
                order = await venue.lookup(before)
                if order is not None and (before.status, before.filled_qty) != (order.status, order.filled_qty):
                    out.extend(await missing_fills(order))
                    out.append(OrderUpdate(order))
        return out

    while not venue.closed:
        if fallback.polling():
            try:
                for update in await poll():
                    yield update
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                err = venue.map_error(exc)
                if isinstance(err, AuthenticationFailed):
                    raise err from None
                log.warning("%s: polling orders failed: %s", venue.name, err)
            await asyncio.sleep(venue.poll_interval_s)
            catch_up = True
            continue
        try:
            if catch_up:
                authenticate = getattr(ex, "authenticate", None)
                if authenticate is not None:
                    await authenticate()  # subscribed first, so nothing falls between the poll and the stream
                    fallback.ok()  # the venue acknowledged the subscription: the link is back
                for update in await poll():
                    yield update
                catch_up = False
            raws = await ex.watch_orders()
            fallback.ok()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            fallback.failed(exc)
            continue
        for raw in raws:
            order = venue.remember(raw)
            fill = cv.execution_fill(raw.get("info") or {}, order, venue.instrument_of(order.symbol), venue.clock.now())
            yield emit_fill(OrderUpdate(order, fill))
            try:
                for update in await missing_fills(order):
                    yield update
            except VenueError as err:
                log.warning("%s: fetching fills of %s failed: %s", venue.name, order.client_id, err)
                catch_up = True
