"""Alpaca's trade_updates websocket spoken on our own loop, with a REST polling fallback; quotes by polling.

alpaca-py's TradingStream.run() starts its own event loop (impossible under
qasync) and its `_run_forever` retries forever without telling a rejected key
from a dropped line, so the small protocol (authenticate -> authorized, listen ->
trade_updates events) is spoken here with `websockets`. While the socket is down
the open orders are polled over REST; after a reconnect one poll catches up on
what was missed. Fills are reported once per step of an order's cumulative
filled quantity, whichever path sees them first.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.core.model import MarketTick, Order, OrderUpdate
from engine.venues import alpaca_wire as wire
from engine.venues.base import AuthenticationFailed, RateLimited, VenueError, bounded

if TYPE_CHECKING:
    from engine.venues.alpaca_venue import AlpacaVenue

log = logging.getLogger(__name__)


async def _open(venue: AlpacaVenue) -> Any:
    import websockets

    limit = venue.ws_timeout_s
    ws = await bounded(websockets.connect(venue.trade_stream_url(), open_timeout=limit, ping_interval=10),
                       limit + 1, f"{venue.name} trade stream connect")  # fmt: skip
    try:
        key, secret = venue.credentials
        await ws.send(json.dumps({"action": "authenticate", "data": {"key_id": key, "secret_key": secret}}))
        reply = json.loads(await bounded(ws.recv(), limit, f"{venue.name} trade stream authentication"))
        if (reply.get("data") or {}).get("status") != "authorized":
            raise AuthenticationFailed(f"{venue.name}: trade stream refused the key")
        await ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        while True:  # the subscription is confirmed by a `listening` message naming trade_updates
            msg = json.loads(await bounded(ws.recv(), limit, f"{venue.name} trade stream subscription"))
            if isinstance(msg, dict) and msg.get("stream") == "listening":
                if "trade_updates" not in ((msg.get("data") or {}).get("streams") or []):
                    raise VenueError(f"{venue.name}: trade_updates subscription refused")
                return ws
    except BaseException:
        await ws.close()
        raise


def _event_updates(venue: AlpacaVenue, data: dict[str, Any]) -> list[OrderUpdate]:
    raw_order = data.get("order")
    if not isinstance(raw_order, dict) or not raw_order.get("id"):
        return []
    order = venue.remember(raw_order)
    inst = venue.instrument_of(order.symbol)
    fill = wire.update_fill(data, order, inst.quote if inst else "USD", venue.clock.now())
    if fill is not None:
        if not venue.claim_fill(order.client_id, order.filled_qty):
            return []  # polling reported it already
        fill = replace(fill, fill_id=wire.fill_id(order.venue_order_id, order.filled_qty))
    return [OrderUpdate(order, fill)]


async def _poll(venue: AlpacaVenue, seen: dict[str, tuple[str, Decimal]]) -> list[OrderUpdate]:
    """One REST pass over the orders we track that may still change."""
    out: list[OrderUpdate] = []
    for cid, known in list(venue.tracked_orders().items()):
        if known.status.is_terminal and seen.get(cid) == (known.status.value, known.filled_qty):
            continue
        order = await venue.lookup(known)
        if order is None:
            continue
        out.extend(await _missed_fills(venue, order))
        state = (order.status.value, order.filled_qty)
        if seen.get(cid) != state and not (out and out[-1].order.client_id == cid):
            out.append(OrderUpdate(order))
        seen[cid] = state
    return out


async def _missed_fills(venue: AlpacaVenue, order: Order) -> list[OrderUpdate]:
    emitted = venue.emitted_qty(order.client_id)
    if order.filled_qty <= emitted:
        return []
    since = order.created_at
    fills = [f for f in await venue.fills_since(since, [order.symbol]) if f.venue_order_id == order.venue_order_id]
    out = []
    cum = Decimal(0)
    for fill in fills:
        cum += fill.qty
        if venue.claim_fill(order.client_id, cum):
            out.append(OrderUpdate(order, fill))
    return out


async def order_updates(venue: AlpacaVenue) -> AsyncIterator[OrderUpdate]:
    loop = asyncio.get_running_loop()
    seen: dict[str, tuple[str, Decimal]] = {}
    while not venue.closed:
        ws = None
        owed: list[OrderUpdate] = []  # polled because the stream was too slow: out after the link is reported
        try:
            ws = await _open(venue)
            if venue.stream_mode.get("orders") == "polling":
                venue.report_link("orders", True)
            venue.stream_mode["orders"] = "websocket"
            for update in await _poll(venue, seen):  # catch up on anything missed while away
                yield update
            while True:
                try:  # cancelling recv() is safe: a quiet wait lets us check on acknowledged orders
                    async with asyncio.timeout(max(venue.stream_grace_s / 4, 0.05)):  # not wait_for (3.11)
                        message = await ws.recv()
                except TimeoutError:
                    if not venue.acks.overdue():
                        continue
                    owed = await _poll(venue, seen)  # what the stream owes, by REST now
                    raise VenueError(f"trade stream silent {venue.stream_grace_s:g} s after an order's reply") \
                        from None
                try:
                    msg = json.loads(message)
                except ValueError:
                    log.warning("%s: unreadable trade update skipped", venue.name)
                    continue
                if isinstance(msg, dict) and msg.get("stream") == "trade_updates":
                    for update in _event_updates(venue, msg.get("data") or {}):
                        seen[update.order.client_id] = (update.order.status.value, update.order.filled_qty)
                        venue.acks.saw(update.order.client_id)
                        yield update
        except AuthenticationFailed:
            raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # dropped, refused, timed out, silent, unreadable: all mean poll for now
            why = str(exc) if isinstance(exc, VenueError) else type(exc).__name__
        finally:
            if ws is not None:
                await ws.close()
        if venue.closed:
            return
        log.warning("%s: trade stream down (%s); polling", venue.name, venue.scrub(why))
        if venue.stream_mode.get("orders") != "polling":
            venue.report_link("orders", False, f"trade stream down ({why}); polling")
        venue.stream_mode["orders"] = "polling"
        for update in owed:
            yield update
        deadline = loop.time() + venue.ws_retry_s
        while loop.time() < deadline and not venue.closed:
            try:
                for update in await _poll(venue, seen):
                    yield update
            except VenueError as exc:
                log.warning("%s: polling failed: %s", venue.name, venue.scrub(str(exc)))
            venue.acks.forget()
            await asyncio.sleep(venue.poll_interval_s)


async def market_stream(venue: AlpacaVenue, symbols: list[str]) -> AsyncIterator[list[MarketTick]]:
    """Latest quotes polled over REST: one batch per change, at most one tick per symbol."""
    from alpaca.data.requests import CryptoLatestQuoteRequest, StockLatestQuoteRequest

    stock_client, crypto_client = venue.data_clients
    stocks = [s for s in symbols if "/" not in s]
    cryptos = [s for s in symbols if "/" in s]
    last: dict[str, tuple[Any, ...]] = {}
    while not venue.closed:
        quotes: dict[str, Any] = {}
        failed = ""
        try:
            if stocks:
                quotes.update(await venue.call(stock_client.get_stock_latest_quote,
                                               StockLatestQuoteRequest(symbol_or_symbols=stocks)))  # fmt: skip
            if cryptos:
                quotes.update(await venue.call(crypto_client.get_crypto_latest_quote,
                                               CryptoLatestQuoteRequest(symbol_or_symbols=cryptos)))  # fmt: skip
        except RateLimited as exc:
            # the venue asked for a pause (a 429 on any call pauses them all): the link is not lost
            await asyncio.sleep(max(exc.retry_after_s or 0.0, venue.poll_interval_s))
            continue
        except VenueError as exc:
            if isinstance(exc, AuthenticationFailed):
                raise
            log.warning("%s: quotes failed: %s", venue.name, venue.scrub(str(exc)))
            failed = f"quotes failed ({type(exc).__name__})"
        if bool(failed) != (venue.stream_mode.get("market") == "failing"):  # report each change once
            venue.stream_mode["market"] = "failing" if failed else "polling"
            venue.report_link("market", not failed, failed)
        batch = []
        for symbol, q in quotes.items():
            if not isinstance(q, dict):
                continue
            key = (q.get("t"), q.get("bp"), q.get("ap"))
            bid, ask = wire.dec(q.get("bp")), wire.dec(q.get("ap"))
            if last.get(symbol) == key or bid <= 0 or ask <= 0:
                continue
            last[symbol] = key
            now = venue.clock.now()
            batch.append(MarketTick(symbol, wire.ts(q.get("t"), now), bid, ask, (bid + ask) / 2))
        if batch:
            yield batch
        await asyncio.sleep(venue.poll_interval_s)


async def bars_history(venue: AlpacaVenue, symbol: str, seconds: float) -> list[MarketTick]:
    """One-minute bars of the last `seconds` from the market-data client, as ticks at each bar's close."""
    from datetime import timedelta

    from alpaca.data.requests import CryptoBarsRequest, StockBarsRequest
    from alpaca.data.timeframe import TimeFrame

    stock_client, crypto_client = venue.data_clients
    end = venue.clock.now()
    start = end - timedelta(seconds=seconds)
    if "/" in symbol:
        request: Any = CryptoBarsRequest(symbol_or_symbols=symbol, timeframe=TimeFrame.Minute, start=start, end=end)
        raw = await venue.call(crypto_client.get_crypto_bars, request)
    else:
        request = StockBarsRequest(symbol_or_symbols=symbol, timeframe=TimeFrame.Minute, start=start, end=end)
        raw = await venue.call(stock_client.get_stock_bars, request)
    bars = (raw or {}).get(symbol) or [] if isinstance(raw, dict) else []
    out = []
    for bar in bars:
        close = wire.dec(bar.get("c")) if isinstance(bar, dict) else wire.ZERO
        if close <= 0:
            continue
        ts = wire.ts(bar.get("t"), end) + timedelta(minutes=1)  # the close is known when the bar ends
        if ts > end:
            ts = end
        out.append(MarketTick(symbol, ts, close, close, close, wire.dec(bar.get("v"))))
    return sorted(out, key=lambda t: t.ts)
