"""The Binance venue against the fake, for venue-level tests: the venue with fast timeouts, its link
reports, and the orders the tests send."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

from engine.core.clock import SystemClock
from engine.core.model import Order, OrderType, Side
from engine.venues.ccxt_venue import CcxtEndpoints, CcxtVenue
from tests.fakes.binance import FakeBinance

KEY, SECRET = "k3y-for-the-fake", "s3cret-for-the-fake"
SYMBOLS = ["BTC/USDT", "ETH/USDT"]
ORDER_PATH = "/api/v3/order"
FAST = {"timeout_s": 0.4, "ws_timeout_s": 0.4, "poll_interval_s": 0.05, "backoff_s": 0.01, "ws_retry_s": 5.0,
        "stream_grace_s": 0.3, "recv_window_s": 1.0}  # fmt: skip




@contextlib.asynccontextmanager
async def rig(fake_kw: dict[str, Any] | None = None, endpoints: dict[str, str] | None = None,
              **kw: Any) -> AsyncIterator[tuple[FakeBinance, CcxtVenue, list[tuple[str, bool, str]]]]:  # fmt: skip
    async with FakeBinance(api_key=KEY, api_secret=SECRET, symbols=SYMBOLS, **(fake_kw or {})) as fake:
        urls = {"rest_public": fake.rest_url, "ws_public": fake.ws_url, "ws_private": fake.ws_api_url,
                **(endpoints or {})}  # fmt: skip
        venue = CcxtVenue(SystemClock(), KEY, SECRET, symbols=SYMBOLS, endpoints=CcxtEndpoints(**urls),
                          **{**FAST, **kw})  # fmt: skip
        links: list[tuple[str, bool, str]] = []
        venue.link_sink = lambda link, up, why: links.append((link, up, why))
        try:
            yield fake, venue, links
        finally:
            await venue.close()


@contextlib.asynccontextmanager
async def collecting(stream: AsyncIterator[Any]) -> AsyncIterator[list[Any]]:
    items: list[Any] = []

    async def pump() -> None:
        async for item in stream:
            items.append(item)

    task = asyncio.create_task(pump())
    try:
        yield items
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def market(cid: str, side: Side = Side.BUY, qty: str = "0.01", symbol: str = "BTC/USDT") -> Order:
    return Order(cid, symbol, side, OrderType.MARKET, D(qty))


def resting(fake: FakeBinance, cid: str, symbol: str = "BTC/USDT", qty: str = "0.01") -> Order:
    tick = fake.matching.last_tick(symbol)
    assert tick is not None
    return Order(cid, symbol, Side.BUY, OrderType.LIMIT, D(qty), price=tick.bid - D(100))


def down(links: list[tuple[str, bool, str]], link: str) -> bool:
    return any(name == link and not up for name, up, _ in links)

