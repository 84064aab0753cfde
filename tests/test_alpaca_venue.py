"""The Alpaca venue driving real alpaca-py against the Alpaca fake on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import pytest

from engine.core.clock import SystemClock
from engine.core.model import Order, OrderStatus, OrderType, OrderUpdate, Side
from engine.venues.alpaca_venue import AlpacaVenue
from engine.venues.base import AuthenticationFailed, OrderRejected, RateLimited, TransientVenueError
from tests.fakes.alpaca import FakeAlpaca
from tests.fakes.faults import Fault, FaultKind
from tests.fakes.harness import guard_loopback, run, wait_for

KEY = "PKFAKEKEY0001"
SECRET = "alpaca-s3cret-that-must-never-leak-77ab"
SYMBOLS = ["AAPL", "MSFT", "BTC/USD"]
ORDERS = "/v2/orders"


@pytest.fixture(autouse=True)
def only_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any name lookup but 127.0.0.1 / localhost fails the test: nothing may reach alpaca.markets."""
    guard_loopback(monkeypatch, ("127.0.0.1", "localhost"))


@contextlib.asynccontextmanager
async def rig(key: str = KEY, secret: str = SECRET, connect: bool = True,
              **kw: Any) -> AsyncIterator[tuple[FakeAlpaca, AlpacaVenue]]:  # fmt: skip
    async with FakeAlpaca(api_key=KEY, secret_key=SECRET, symbols=SYMBOLS) as fake:
        options: dict[str, Any] = {"timeout_s": 0.5, "poll_interval_s": 0.05, "backoff_s": 0.01, "ws_retry_s": 0.3}
        options.update(kw)
        venue = AlpacaVenue(SystemClock(), key, secret, url_override=fake.url, data_url=fake.url,
                            symbols=SYMBOLS, **options)  # fmt: skip
        try:
            if connect:
                await venue.connect()
            yield fake, venue
        finally:
            await venue.close()


@contextlib.asynccontextmanager
async def collecting(venue: AlpacaVenue) -> AsyncIterator[list[OrderUpdate]]:
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


def limit_buy(cid: str, qty: str = "10", price: str = "190", symbol: str = "AAPL") -> Order:
    return Order(cid, symbol, Side.BUY, OrderType.LIMIT, D(qty), price=D(price))


def market(cid: str, side: Side, qty: str, symbol: str = "AAPL") -> Order:
    return Order(cid, symbol, side, OrderType.MARKET, D(qty))


def fills_of(updates: list[OrderUpdate], cid: str) -> list[D]:
    return [u.fill.qty for u in updates if u.fill is not None and u.order.client_id == cid]


def test_order_whole_life_submit_partial_fill_fill_and_cancel() -> None:
    async def body() -> None:
        async with rig() as (fake, venue), collecting(venue) as updates:
            await wait_for(lambda: venue.stream_mode["orders"] == "websocket" and fake._ws, what="stream up")
            ack = await venue.submit(limit_buy("life-1"))
            assert ack.status is OrderStatus.OPEN and ack.venue_order_id
            assert [o.client_id for o in await venue.open_orders()] == ["life-1"]
            fake.push_tick("AAPL", D("189.90"), D("189.95"), volume=D(16))  # 25% of 16 = 4 shares
            await wait_for(lambda: fills_of(updates, "life-1") == [D(4)], what="partial fill")
            assert updates[-1].order.status is OrderStatus.PARTIALLY_FILLED
            fake.push_tick("AAPL", D("189.90"), D("189.95"), volume=D(100))
            await wait_for(lambda: fills_of(updates, "life-1") == [D(4), D(6)], what="fill")
            assert updates[-1].order.status is OrderStatus.FILLED
            assert (await venue.positions()) == {"AAPL": D(10)}
            fills = await venue.fills_since(None)
            assert [f.qty for f in fills] == [D(4), D(6)]
            assert {f.fill_id for f in fills} == {u.fill.fill_id for u in updates if u.fill}  # same ids both ways

            second = await venue.submit(limit_buy("life-2", price="150"))
            canceled = await venue.cancel(second)
            assert canceled.status is OrderStatus.CANCELED
            await wait_for(lambda: any(u.order.client_id == "life-2" and u.order.status is OrderStatus.CANCELED
                                       for u in updates), what="cancel event")  # fmt: skip
            assert (await venue.cancel(second)).status is OrderStatus.CANCELED  # finished: not an error
            assert await venue.open_orders() == []

    run(body)


def test_cancel_all_and_close_all_reach_no_open_orders_and_flat() -> None:
    async def body() -> None:
        async with rig() as (fake, venue):
            await venue.submit(market("buy-aapl", Side.BUY, "5"))
            await venue.submit(market("buy-btc", Side.BUY, "0.01", "BTC/USD"))
            for n in range(4):
                await venue.submit(limit_buy(f"rest-{n}", price=str(150 + n)))
            assert await venue.cancel_all() == 4
            assert fake.open_orders() == [] and await venue.open_orders() == []
            for n in range(3):
                await venue.submit(limit_buy(f"again-{n}", price=str(150 + n), symbol="MSFT"))
            assert set(await venue.positions()) == {"AAPL", "BTC/USD"}  # "BTCUSD" mapped back
            await venue.close_all()
            assert fake.open_orders() == [] and fake.positions() == {}
            assert await venue.positions() == {} and await venue.open_orders() == []

    run(body)


def test_cancel_all_per_symbol_leaves_other_symbols() -> None:
    async def body() -> None:
        async with rig() as (fake, venue):
            await venue.submit(limit_buy("a-1"))
            await venue.submit(limit_buy("m-1", symbol="MSFT"))
            assert await venue.cancel_all("AAPL") == 1
            assert [o.client_id for o in fake.open_orders()] == ["m-1"]

    run(body)


def test_timeout_then_lookup_submits_only_once() -> None:
    async def body() -> None:
        async with rig() as (fake, venue):
            fake.faults.add(ORDERS, Fault(FaultKind.DELAY, delay_s=1.2), method="POST")
            ack = await venue.submit(limit_buy("slow-1"))
            assert ack.client_id == "slow-1" and ack.status is OrderStatus.OPEN
            await wait_for(lambda: fake.submit_attempts["slow-1"] >= 2, timeout=3, what="delayed request handled")
            assert fake.placed["slow-1"] == 1
            assert len(fake.open_orders()) == 1

    run(body)


def test_ack_lost_is_found_by_client_order_id_not_resent() -> None:
    async def body() -> None:
        async with rig() as (fake, venue):
            fake.faults.add(ORDERS, Fault(FaultKind.ACK_LOST), method="POST")
            ack = await venue.submit(limit_buy("lost-1"))
            assert ack.status is OrderStatus.OPEN and ack.venue_order_id
            assert fake.submit_attempts["lost-1"] == 1 and fake.placed["lost-1"] == 1
            fake.faults.add(ORDERS, Fault(FaultKind.ACK_LOST, status=504), method="POST")
            ack = await venue.submit(limit_buy("lost-2"))
            assert fake.submit_attempts["lost-2"] == 1 and ack.client_id == "lost-2"

    run(body)


def test_rate_limit_raises_transient_with_retry_after_and_places_nothing() -> None:
    async def body() -> None:
        async with rig() as (fake, venue):
            fake.faults.add(ORDERS, Fault(FaultKind.RATE_LIMIT, retry_after_s=1, body='{"message":"rate limit"}'),
                            method="POST")  # fmt: skip
            with pytest.raises(RateLimited) as info:
                await venue.submit(limit_buy("rl-1"))
            assert info.value.retry_after_s == 1 and info.value.retryable
            assert fake.placed["rl-1"] == 0 and fake.submit_attempts["rl-1"] == 0
            sent = len(fake.requests)
            with pytest.raises(RateLimited) as again:  # within Retry-After nothing is sent at all
                await venue.submit(limit_buy("rl-1"))
            assert len(fake.requests) == sent
            await asyncio.sleep(again.value.retry_after_s)  # type: ignore[arg-type]  # as the venue asked
            assert (await venue.submit(limit_buy("rl-1"))).status is OrderStatus.OPEN  # converges once cleared

    run(body)


@pytest.mark.parametrize("kind", [FaultKind.SERVER_ERROR, FaultKind.MALFORMED])
def test_5xx_and_malformed_answers_are_retried_without_double_orders(kind: FaultKind) -> None:
    async def body() -> None:
        async with rig() as (fake, venue):
            fake.faults.add(ORDERS, Fault(kind), method="POST")
            ack = await venue.submit(limit_buy("f-1"))
            assert ack.status is OrderStatus.OPEN
            assert fake.placed["f-1"] == 1
            fake.faults.add("/v2/positions", Fault(kind), method="GET")
            assert await venue.positions() == {}  # idempotent reads retried

    run(body)


def test_persistent_5xx_surfaces_as_transient() -> None:
    async def body() -> None:
        async with rig(submit_attempts=2) as (fake, venue):
            fake.faults.add("/v2/account", Fault(FaultKind.SERVER_ERROR, status=500), n=5)
            with pytest.raises(TransientVenueError):
                await venue.balances()

    run(body)


def test_insufficient_buying_power_is_rejected_with_the_message() -> None:
    async def body() -> None:
        async with rig() as (_fake, venue):
            with pytest.raises(OrderRejected, match="insufficient buying power"):
                await venue.submit(limit_buy("big-1", qty="100000"))
            with pytest.raises(OrderRejected, match="insufficient qty"):
                await venue.submit(market("sell-1", Side.SELL, "5"))

    run(body)


def test_dropped_websocket_falls_back_to_polling_and_reconnects_without_losing_fills() -> None:
    async def body() -> None:
        async with rig() as (fake, venue), collecting(venue) as updates:
            await wait_for(lambda: bool(fake._ws), what="stream up")
            await venue.submit(limit_buy("drop-1"))
            fake.refuse_websockets(100)
            await fake.drop_websockets()
            await wait_for(lambda: venue.stream_mode["orders"] == "polling", what="polling")
            fake.push_tick("AAPL", D("189.90"), D("189.95"), volume=D(16))
            await wait_for(lambda: fills_of(updates, "drop-1") == [D(4)], what="fill seen by polling")
            fake.refuse_websockets(0)
            await wait_for(lambda: venue.stream_mode["orders"] == "websocket" and bool(fake._ws), what="reconnect")
            fake.push_tick("AAPL", D("189.90"), D("189.95"), volume=D(100))
            await wait_for(lambda: fills_of(updates, "drop-1") == [D(4), D(6)], what="fill after reconnect")
            await asyncio.sleep(0.2)  # let any duplicate reports arrive (there must be none)
            assert fills_of(updates, "drop-1") == [D(4), D(6)]

    run(body)


def test_malformed_stream_message_is_skipped() -> None:
    async def body() -> None:
        async with rig() as (fake, venue), collecting(venue) as updates:
            await wait_for(lambda: bool(fake._ws), what="stream up")
            await fake.send_garbage()
            await venue.submit(market("m-1", Side.BUY, "1"))
            await wait_for(lambda: fills_of(updates, "m-1") == [D(1)], what="fill after garbage")

    run(body)


def test_wrong_key_fails_authentication_and_never_leaks_the_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-secret-value-9911"

    async def body() -> None:
        async with rig(secret=wrong, connect=False) as (_fake, venue):
            with pytest.raises(AuthenticationFailed) as info:
                await venue.connect()
            assert wrong not in str(info.value) and wrong not in repr(info.value.__cause__)
            with pytest.raises(AuthenticationFailed):
                async for _ in venue.order_updates():
                    pass

    run(body)
    assert wrong not in caplog.text and SECRET not in caplog.text


def test_secret_absent_from_errors_and_logs_during_faults(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def body() -> None:
        async with rig(submit_attempts=1) as (fake, venue):
            fake.faults.add(ORDERS, Fault(FaultKind.SERVER_ERROR, body=f"echo {SECRET}"), n=3, method="POST")
            with pytest.raises(TransientVenueError) as info:
                await venue.submit(limit_buy("s-1"))
            assert SECRET not in str(info.value)

    run(body)
    assert SECRET not in caplog.text


def test_market_stream_polls_latest_quotes() -> None:
    async def body() -> None:
        async with rig() as (fake, venue):
            stream = venue.market_stream(["AAPL", "BTC/USD"])
            first = await anext(stream)
            assert {t.symbol for t in first} == {"AAPL", "BTC/USD"}
            fake.push_tick("AAPL", D("201.00"), D("201.10"))
            second = await anext(stream)
            assert [(t.symbol, t.bid) for t in second] == [("AAPL", D("201.00"))]
            await stream.aclose()

    run(body)


def test_environment_check_paper_vs_live() -> None:
    async def body() -> None:
        async with rig() as (_fake, venue):
            env = await venue.environment_check()
            assert env.endpoint_kind == "custom" and env.key_kind == "paper" and env.is_paper
            assert env.account_number == "PA0000FAKE"
        live = AlpacaVenue(SystemClock(), "AKLIVEKEY", "x", paper=False)
        assert live.endpoint == "https://api.alpaca.markets"
        paper = AlpacaVenue(SystemClock(), "AKLIVEKEY", "x", paper=True)
        assert paper.endpoint == "https://paper-api.alpaca.markets"
        assert paper.trade_stream_url() == "wss://paper-api.alpaca.markets/stream"
        await live.close()
        await paper.close()

    run(body)


def test_environment_kinds_and_consistency() -> None:
    from engine.venues.alpaca_venue import AlpacaEnvironment

    mixed = AlpacaEnvironment("https://paper-api.alpaca.markets", "paper", "live")
    assert not mixed.consistent and not mixed.is_paper
    assert AlpacaEnvironment("https://api.alpaca.markets", "live", "live").consistent


def test_alpaca_is_imported_lazily() -> None:
    import subprocess
    import sys

    code = "import sys, engine.venues.alpaca_venue; print('alpaca' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
