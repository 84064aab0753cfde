"""The ccxt venue driving real ccxt against the Binance spot fake on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import pytest

from engine.core.clock import SystemClock
from engine.core.model import MarketTick, Order, OrderStatus, OrderType, OrderUpdate, Side, VenueMode
from engine.venues.base import AuthenticationFailed, OrderRejected, RateLimited, TransientVenueError
from engine.venues.ccxt_venue import CcxtEndpoints, CcxtVenue
from tests.fakes.binance import FakeBinance
from tests.fakes.harness import guard_loopback, run, wait_for

KEY = "k3y-for-the-fake"
SECRET = "s3cret-that-must-never-leak-9f2c"
SYMBOLS = ["BTC/USDT", "ETH/USDT"]
ORDER_PATH = "/api/v3/order"


@pytest.fixture(autouse=True)
def only_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any name lookup but 127.0.0.1 fails the test: nothing may reach binance.com."""
    guard_loopback(monkeypatch)


@contextlib.asynccontextmanager
async def rig(
    key: str = KEY, secret: str = SECRET, symbols: list[str] = SYMBOLS, **kw: Any
) -> AsyncIterator[tuple[FakeBinance, CcxtVenue]]:
    async with FakeBinance(api_key=KEY, api_secret=SECRET, symbols=symbols) as fake:
        options: dict[str, Any] = {"timeout_s": 1.0, "poll_interval_s": 0.05, "backoff_s": 0.01, "ws_retry_s": 0.3,
                                   "recv_window_s": 2.0}  # fmt: skip
        options.update(kw)
        endpoints = CcxtEndpoints(rest_public=fake.rest_url, ws_public=fake.ws_url, ws_private=fake.ws_api_url)
        venue = CcxtVenue(SystemClock(), key, secret, symbols=symbols, endpoints=endpoints, **options)
        try:
            yield fake, venue
        finally:
            await venue.close()


@contextlib.asynccontextmanager
async def collecting(venue: CcxtVenue) -> AsyncIterator[list[OrderUpdate]]:
    updates: list[OrderUpdate] = []

    async def pump() -> None:
        async for update in venue.order_updates():
            updates.append(update)

    task = asyncio.create_task(pump())
    try:
        yield updates
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def limit_buy(fake: FakeBinance, cid: str, qty: str = "0.01", below: str = "100", symbol: str = "BTC/USDT") -> Order:
    tick = fake.matching.last_tick(symbol)
    assert tick is not None
    return Order(cid, symbol, Side.BUY, OrderType.LIMIT, D(qty), price=tick.bid - D(below))


def local_urls(value: Any) -> bool:
    if isinstance(value, dict):
        return all(local_urls(v) for v in value.values())
    return not isinstance(value, str) or "127.0.0.1" in value


def test_markets_become_instruments_and_every_url_is_local() -> None:
    async def main() -> None:
        async with rig() as (fake, venue):
            await venue.connect()
            insts = await venue.instruments()
            btc = insts["BTC/USDT"]
            assert (btc.tick_size, btc.lot_size, btc.min_notional) == (D("0.01"), D("0.00001"), D("5"))
            assert btc.base == "BTC" and btc.quote == "USDT"
            assert local_urls(venue.exchange.urls["api"])
            assert ("GET", "/api/v3/exchangeInfo") in fake.requests
            assert (await venue.balances())["USDT"].free == D(100_000)
            ping = await venue.ping_ms()
            assert ping is not None and ping >= 0

    run(main)


def test_an_orders_whole_life_submit_partial_fill_fill_and_cancel() -> None:
    async def main() -> None:
        async with rig() as (fake, venue):
            await venue.connect()
            async with collecting(venue) as updates:
                await wait_for(lambda: fake.websocket_count == 1, what="user stream subscribed")
                order = limit_buy(fake, "life-1")
                acked = await venue.submit(order)
                assert acked.status is OrderStatus.OPEN and acked.venue_order_id
                assert [o.client_id for o in await venue.open_orders("BTC/USDT")] == ["life-1"]
                fake.push_tick("BTC/USDT", order.price - D("0.5"), order.price, volume=D("0.02"))  # fills 0.005
                await wait_for(lambda: any(u.fill for u in updates), what="partial fill")
                partial = next(u for u in updates if u.fill)
                assert partial.order.status is OrderStatus.PARTIALLY_FILLED
                assert partial.fill is not None and partial.fill.qty == D("0.005")
                assert partial.fill.price == order.price
                fake.push_tick("BTC/USDT", order.price - D("0.5"), order.price, volume=D("0.04"))
                await wait_for(lambda: updates[-1].order.status is OrderStatus.FILLED, what="filled")
                stream_fills = [u.fill for u in updates if u.fill]
                assert sum(f.qty for f in stream_fills) == D("0.01")

                other = await venue.submit(limit_buy(fake, "life-2"))
                canceled = await venue.cancel(other)
                assert canceled.status is OrderStatus.CANCELED
                await wait_for(lambda: updates[-1].order.client_id == "life-2" and updates[-1].order.status
                               is OrderStatus.CANCELED, what="cancel update")  # fmt: skip
                again = await venue.cancel(other)  # cancelling a finished order is not an error
                assert again.status is OrderStatus.CANCELED
            fills = await venue.fills_since(None)
            assert {f.fill_id for f in fills} == {f.fill_id for f in stream_fills}
            assert all(f.client_id == "life-1" for f in fills)
            assert (await venue.positions())["BTC/USDT"] == D("0.01")
            assert await venue.open_orders() == []

    run(main)


def test_cancel_all_reaches_no_open_orders_across_symbols() -> None:
    async def main() -> None:
        async with rig() as (fake, venue):
            await venue.connect()
            for i in range(3):
                await venue.submit(limit_buy(fake, f"btc-{i}"))
            for i in range(2):
                await venue.submit(limit_buy(fake, f"eth-{i}", qty="0.1", symbol="ETH/USDT", below="10"))
            assert len(await venue.open_orders()) == 5
            assert await venue.cancel_all("ETH/USDT") == 2
            assert await venue.cancel_all() == 3
            assert await venue.open_orders() == []
            assert fake.matching.open_orders() == []
            assert await venue.cancel_all() == 0

    run(main)


def test_a_timed_out_submit_is_looked_up_and_never_placed_twice() -> None:
    async def main() -> None:
        async with rig(timeout_s=0.5) as (fake, venue):
            await venue.connect()
            fake.fail_next(ORDER_PATH, "delay", method="POST", delay_s=1.0)
            acked = await venue.submit(limit_buy(fake, "slow-1"))
            assert acked.status is OrderStatus.OPEN  # found once the held request landed
            assert fake.submit_attempts["slow-1"] == 1  # never sent again while the first could still arrive
            assert fake.placed["slow-1"] == 1
            assert [o.client_id for o in await venue.open_orders()] == ["slow-1"]

    run(main)


def test_rate_limit_gives_a_transient_error_with_retry_after_and_places_nothing() -> None:
    async def main() -> None:
        async with rig() as (fake, venue):
            await venue.connect()
            fake.fail_next(ORDER_PATH, "rate_limit", method="POST", retry_after_s=1)
            with pytest.raises(RateLimited) as info:
                await venue.submit(limit_buy(fake, "rl-1"))
            assert info.value.retry_after_s == 1 and info.value.retryable
            assert fake.placed["rl-1"] == 0
            sent = len(fake.requests)
            with pytest.raises(RateLimited) as again:  # inside the Retry-After window nothing is sent at all
                await venue.submit(limit_buy(fake, "rl-1"))
            assert len(fake.requests) == sent and 0 < again.value.retry_after_s <= 1  # type: ignore[operator]
            await asyncio.sleep(again.value.retry_after_s)  # type: ignore[arg-type]  # as the venue asked
            assert (await venue.submit(limit_buy(fake, "rl-1"))).status is OrderStatus.OPEN
            assert fake.placed["rl-1"] == 1

    run(main)


def test_server_errors_are_retried_and_reported_when_they_persist() -> None:
    async def main() -> None:
        async with rig() as (fake, venue):
            await venue.connect()
            fake.fail_next(ORDER_PATH, "server_error", method="POST", status=503)
            assert (await venue.submit(limit_buy(fake, "5xx-1"))).status is OrderStatus.OPEN
            assert fake.placed["5xx-1"] == 1
            fake.fail_next("/api/v3/account", "server_error", n=2, status=502)
            assert "USDT" in await venue.balances()
            fake.fail_next("/api/v3/account", "server_error", n=10, status=500)
            with pytest.raises(TransientVenueError):
                await venue.balances()
            fake.faults.clear()
            assert "USDT" in await venue.balances()

    run(main)


def test_malformed_json_is_survived_without_double_submission() -> None:
    async def main() -> None:
        async with rig() as (fake, venue):
            await venue.connect()
            fake.fail_next(ORDER_PATH, "malformed", method="POST")
            acked = await venue.submit(limit_buy(fake, "bad-json-1"))
            assert acked.status is OrderStatus.OPEN and fake.placed["bad-json-1"] == 1
            fake.fail_next("/api/v3/openOrders", "malformed", method="GET")
            assert [o.client_id for o in await venue.open_orders()] == ["bad-json-1"]

    run(main)


@pytest.mark.parametrize("status", [None, 504], ids=["connection-dropped", "gateway-timeout"])
def test_a_lost_acknowledgement_finds_the_order_by_client_id(status: int | None) -> None:
    async def main() -> None:
        async with rig() as (fake, venue):
            await venue.connect()
            fake.fail_next(ORDER_PATH, "ack_lost", method="POST", status=status)
            acked = await venue.submit(limit_buy(fake, "lost-1"))
            assert acked.status is OrderStatus.OPEN and acked.venue_order_id == str(fake.order_id("lost-1"))
            assert fake.submit_attempts["lost-1"] == 1  # found by client id: never sent again
            assert fake.placed["lost-1"] == 1

    run(main)


def test_market_stream_survives_dropped_websockets_and_falls_back_to_polling() -> None:
    async def main() -> None:
        async with rig() as (fake, venue):
            await venue.connect()
            fake.start_ticking(0.05)
            batches: list[list[MarketTick]] = []
            modes: set[str] = set()

            async def pump() -> None:
                async for batch in venue.market_stream(SYMBOLS):
                    batches.append(batch)
                    modes.add(venue.stream_mode["market"])

            task = asyncio.create_task(pump())
            try:
                await wait_for(lambda: len(batches) >= 3, what="websocket ticks")
                assert modes == {"websocket"}
                fake.refuse_websockets(3)
                fake.drop_websockets()
                seen = len(batches)
                await wait_for(lambda: "polling" in modes and len(batches) >= seen + 3, what="polled ticks")
                assert any(path == "/api/v3/ticker/24hr" for _, path in fake.requests)
                await wait_for(lambda: venue.stream_mode["market"] == "websocket" and fake.websocket_count > 0,
                               timeout=10, what="websocket back")  # fmt: skip
                seen = len(batches)
                await wait_for(lambda: len(batches) >= seen + 3, what="ticks after reconnect")
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for batch in batches:
                assert len({t.symbol for t in batch}) == len(batch)
                assert all(t.bid <= t.ask for t in batch)

    run(main)


def test_every_symbols_ticker_arrives_when_many_are_watched() -> None:
    """Binance sends one message per symbol; a burst of twelve must give twelve ticks, not one."""
    many = [f"{c}{c}X/USDT" for c in "ABCDEFGHIJKL"]

    async def main() -> None:
        async with rig(symbols=many) as (fake, venue):
            await venue.connect()
            seen: set[str] = set()

            async def pump() -> None:
                async for batch in venue.market_stream(many):
                    seen.update(t.symbol for t in batch)

            task = asyncio.create_task(pump())
            try:
                await wait_for(lambda: fake.websocket_count > 0 and len(seen) >= 1, what="subscribed")
                seen.clear()
                fake.step()  # one burst: a ticker message for each of the twelve symbols
                await wait_for(lambda: seen == set(many), what=f"all twelve tickers, saw {sorted(seen)}")
                assert venue.stream_mode["market"] == "websocket"
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    run(main)


def test_order_updates_keep_coming_while_the_user_stream_is_down() -> None:
    async def main() -> None:
        async with rig() as (fake, venue):
            await venue.connect()
            async with collecting(venue) as updates:
                await wait_for(lambda: fake.websocket_count == 1, what="user stream subscribed")
                order = limit_buy(fake, "down-1")
                await venue.submit(order)
                fake.refuse_websockets(2)
                fake.drop_websockets()
                fake.push_tick("BTC/USDT", order.price - D("0.5"), order.price, volume=D("1"))
                await wait_for(lambda: any(u.order.status is OrderStatus.FILLED for u in updates),
                               what="fill seen while polling")  # fmt: skip
                assert venue.stream_mode["orders"] == "polling"
                fills = [u.fill for u in updates if u.fill]
                assert len(fills) == 1 and fills[0].qty == D("0.01")
                await wait_for(lambda: fake.websocket_count == 1, timeout=10, what="user stream back")
                second = limit_buy(fake, "down-2")
                await venue.submit(second)
                fake.push_tick("BTC/USDT", second.price - D("0.5"), second.price, volume=D("1"))
                await wait_for(lambda: any(u.order.client_id == "down-2" and u.fill for u in updates),
                               what="fill over the websocket again")  # fmt: skip
                ids = [u.fill.fill_id for u in updates if u.fill]
                assert len(ids) == len(set(ids)) == 2  # no fill reported twice

    run(main)


def test_business_rejections_carry_the_venues_message() -> None:
    async def main() -> None:
        async with rig() as (fake, venue):
            await venue.connect()
            huge = Order("poor-1", "BTC/USDT", Side.BUY, OrderType.MARKET, D("50"))
            with pytest.raises(OrderRejected, match="insufficient balance"):
                await venue.submit(huge)
            odd = Order("odd-1", "BTC/USDT", Side.BUY, OrderType.LIMIT, D("0.000001"), price=D("1000"))
            with pytest.raises(OrderRejected):
                await venue.submit(odd)
            assert not fake.placed

    run(main)


@pytest.mark.parametrize(("key", "secret"), [("wrong-key", SECRET), (KEY, "wrong-secret-77")])
def test_wrong_credentials_fail_authentication(key: str, secret: str) -> None:
    async def main() -> None:
        async with rig(key=key, secret=secret) as (_, venue):
            with pytest.raises(AuthenticationFailed) as info:
                await venue.connect()
            assert secret not in str(info.value)

    run(main)


def test_the_secret_never_appears_in_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []

    async def main() -> None:
        async with rig(timeout_s=0.5) as (fake, venue):
            await venue.connect()
            fake.fail_next(ORDER_PATH, "delay", method="POST", delay_s=1.0)
            await venue.submit(limit_buy(fake, "sec-1"))
            for kind in ("rate_limit", "server_error", "malformed"):
                fake.fail_next(ORDER_PATH, kind, n=5, method="POST")
                try:
                    await venue.submit(limit_buy(fake, f"sec-{kind}"))
                except Exception as exc:
                    messages.append(repr(exc))
                fake.faults.clear()
            try:
                await venue.submit(Order("sec-x", "BTC/USDT", Side.BUY, OrderType.MARKET, D("50")))
            except Exception as exc:
                messages.append(repr(exc))
        async with rig(secret="another-secret-that-is-wrong") as (_, venue):
            try:
                await venue.connect()
            except Exception as exc:
                messages.append(repr(exc))

    run(main)
    assert len(messages) >= 3
    assert all(SECRET not in m and "another-secret-that-is-wrong" not in m for m in messages)
    assert SECRET not in caplog.text and "another-secret-that-is-wrong" not in caplog.text


def test_testnet_uses_sandbox_urls_unless_endpoints_are_given() -> None:
    venue = CcxtVenue(SystemClock(), KEY, SECRET, mode=VenueMode.TESTNET)
    ex = venue._make_exchange()
    assert "testnet" in ex.urls["api"]["public"] and "testnet" in ex.urls["api"]["ws"]["spot"]
    local = CcxtVenue(SystemClock(), KEY, SECRET, mode=VenueMode.TESTNET,
                      endpoints=CcxtEndpoints("http://127.0.0.1:9/api/v3", None, "ws://127.0.0.1:9/ws"))  # fmt: skip
    assert local_urls(local._make_exchange().urls["api"]["private"])
