"""Venue truth on Alpaca (real alpaca-py against the fake on 127.0.0.1): timeouts on every call,
the trade stream's fallback, typed faults, confirmed cancels, refused stop types, stop-limit legs,
account balances with holdings, and warm-up bars from the market-data client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import pytest

from engine.core.clock import SystemClock
from engine.core.model import Order, OrderStatus, OrderType, OrderUpdate, Side
from engine.venues.account import baseline_from_balances
from engine.venues.alpaca_venue import AlpacaVenue
from engine.venues.base import MalformedReply, OrderTypeUnsupported, VenueError, VenueTimeout, VenueUnavailable
from tests.fakes.alpaca import FakeAlpaca
from tests.fakes.blackhole import BlackHole
from tests.fakes.faults import Fault, FaultKind
from tests.fakes.harness import guard_loopback, run, wait_for

KEY, SECRET = "PKFAKEKEY0002", "alpaca-fake-secret"
SYMBOLS = ["AAPL", "MSFT", "BTC/USD"]
ORDERS = "/v2/orders"
FAST = {"timeout_s": 0.4, "ws_timeout_s": 0.4, "poll_interval_s": 0.05, "backoff_s": 0.01, "ws_retry_s": 5.0}


@pytest.fixture(autouse=True)
def only_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    guard_loopback(monkeypatch, ("127.0.0.1", "localhost"))


@contextlib.asynccontextmanager
async def rig(fake_kw: dict[str, Any] | None = None, stream_url: str | None = None, connect: bool = True,
              **kw: Any) -> AsyncIterator[tuple[FakeAlpaca, AlpacaVenue, list[tuple[str, bool, str]]]]:  # fmt: skip
    async with FakeAlpaca(api_key=KEY, secret_key=SECRET, symbols=SYMBOLS, **(fake_kw or {})) as fake:
        venue = AlpacaVenue(SystemClock(), KEY, SECRET, url_override=fake.url, data_url=fake.url,
                            stream_url=stream_url, symbols=SYMBOLS, **{**FAST, **kw})  # fmt: skip
        links: list[tuple[str, bool, str]] = []
        venue.link_sink = lambda link, up, why: links.append((link, up, why))
        try:
            if connect:
                await venue.connect()
            yield fake, venue, links
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


def limit_buy(cid: str, qty: str = "1", price: str = "190", symbol: str = "AAPL") -> Order:
    return Order(cid, symbol, Side.BUY, OrderType.LIMIT, D(qty), price=D(price))


def down(links: list[tuple[str, bool, str]], link: str) -> bool:
    return any(name == link and not up for name, up, _ in links)


def test_a_rest_call_that_never_answers_raises_a_retryable_timeout() -> None:
    async def main() -> None:
        async with rig() as (fake, venue, _):
            fake.faults.add("/v2/account", Fault(
                FaultKind.DELAY, delay_s=2), n=10)  # fmt: skip
            with pytest.raises(VenueTimeout) as info:
                await venue.balances()
            assert info.value.retryable and isinstance(info.value, VenueError)

    run(main)


@pytest.mark.parametrize("where", ["connect", "authentication", "subscription"])
def test_a_trade_stream_that_never_answers_falls_back_to_polling(where: str) -> None:
    async def main() -> None:
        mode = {"connect": "normal", "authentication": "silent", "subscription": "no_listen"}[where]
        async with BlackHole() as hole:
            stream_url = hole.ws_url + "/stream" if where == "connect" else None
            async with rig({"stream_mode": mode}, stream_url=stream_url) as (fake, venue, links), \
                    collecting(venue) as updates:  # fmt: skip
                await wait_for(lambda: down(links, "orders"), 5.0, "orders link reported down")
                assert where in next(why for name, up, why in links if name == "orders" and not up)
                assert venue.stream_mode["orders"] == "polling"
                order = await venue.submit(limit_buy("poll-1"))
                fake.push_tick("AAPL", D("189.5"), order.price, volume=D(100))  # type: ignore[arg-type]
                await wait_for(lambda: any(u.fill for u in updates), 5.0, "the fill by polling")

    run(main)


@pytest.mark.parametrize(("fault", "error"), [
    ({"kind": "delay", "delay_s": 2}, VenueTimeout),
    ({"kind": "server_error", "status": 503}, VenueUnavailable),
    ({"kind": "malformed", "body": "{\"id\": "}, MalformedReply),
])  # fmt: skip
def test_a_submit_fault_that_persists_ends_as_its_typed_retryable_error(fault: dict[str, Any],
                                                                        error: type[VenueError]) -> None:  # fmt: skip
    async def main() -> None:
        async with rig() as (fake, venue, _):
            fake.faults.add(ORDERS, Fault(
                FaultKind(fault.pop("kind")), **fault), n=10,
                method="POST")  # fmt: skip
            with pytest.raises(error) as info:
                await venue.submit(limit_buy("f-1"))
            assert info.value.retryable
            assert fake.placed["f-1"] == 0

    run(main)


@pytest.mark.parametrize("fault", [{"kind": "delay", "delay_s": 1.0}, {"kind": "ack_lost"},
                                   {"kind": "server_error", "status": 502}])  # fmt: skip
def test_an_unconfirmed_cancel_is_settled_by_reading_the_order_back(fault: dict[str, Any]) -> None:
    async def main() -> None:
        async with rig() as (fake, venue, _):
            order = await venue.submit(limit_buy("c-1"))
            kind = FaultKind(fault.pop("kind"))
            fake.faults.add(f"{ORDERS}/{order.venue_order_id}", Fault(kind, **fault), method="DELETE")
            canceled = await venue.cancel(order)
            assert canceled.client_id == "c-1" and canceled.status is OrderStatus.CANCELED
            assert fake.matching.order("c-1").status is OrderStatus.CANCELED  # type: ignore[union-attr]

    run(main)


def test_a_refused_stop_type_is_distinct_and_stop_limit_legs_work() -> None:
    async def main() -> None:
        async with rig({"refused_types": {"stop"}, "holdings": {"AAPL": D(5)}}) as (fake, venue, _):
            leg = Order("sl-1", "AAPL", Side.SELL, OrderType.STOP_MARKET, D(5), stop_price=D(180))
            with pytest.raises(OrderTypeUnsupported):
                await venue.submit(leg)
            limit_leg = Order("sl-2", "AAPL", Side.SELL, OrderType.STOP_LIMIT, D(5), price=D(179), stop_price=D(180))
            acked = await venue.submit(limit_leg)
            assert acked.status is OrderStatus.OPEN and acked.order_type is OrderType.STOP_LIMIT
            fake.push_tick("AAPL", D("179.50"), D("179.60"))
            found = await venue.lookup(limit_leg)
            assert found is not None and found.status is OrderStatus.FILLED
            caps = venue.capabilities()
            assert caps.stop_types("AAPL") == [OrderType.STOP_MARKET, OrderType.STOP_LIMIT]
            assert caps.stop_types("BTC/USD") == [OrderType.STOP_LIMIT]  # Alpaca crypto has no plain stop
            with pytest.raises(OrderTypeUnsupported):  # refused before anything is sent
                await venue.submit(Order("sl-3", "BTC/USD", Side.SELL, OrderType.STOP_MARKET, D("0.01"),
                                         stop_price=D(50000)))  # fmt: skip
            assert fake.submit_attempts["sl-3"] == 0

    run(main)


def test_a_small_account_with_shares_held_before_gives_balances_equity_and_a_baseline() -> None:
    async def main() -> None:
        async with rig({"cash": D(1000), "holdings": {"AAPL": D(3)}}) as (fake, venue, _):
            balances = await venue.balances()
            assert balances["USD"].total == 1000 and balances["AAPL"].total == 3
            price = fake.matching.last_tick("AAPL").last  # type: ignore[union-attr]
            assert await venue.equity() == 1000 + 3 * price
            baseline = baseline_from_balances(balances, "USD")
            assert baseline.by_symbol(await venue.instruments()) == {"AAPL": D(3)}

    run(main)


def test_history_warms_up_from_the_market_data_clients_bars() -> None:
    async def main() -> None:
        async with rig() as (fake, venue, _):
            ticks = await venue.history("AAPL", 30 * 60, 60)
            assert 29 <= len(ticks) <= 31 and fake.bar_requests == 1
            assert all(t.symbol == "AAPL" and t.last > 0 for t in ticks)
            assert [t.ts for t in ticks] == sorted(t.ts for t in ticks)
            crypto = await venue.history("BTC/USD", 10 * 60, 60)
            assert crypto and crypto[-1].last > 1000

    run(main)


def test_the_real_like_fake_is_a_small_account_refusing_stops() -> None:
    async def main() -> None:
        async with FakeAlpaca.real_like(api_key=KEY, secret_key=SECRET, symbols=SYMBOLS) as fake:
            venue = AlpacaVenue(SystemClock(), KEY, SECRET, url_override=fake.url, data_url=fake.url,
                                symbols=SYMBOLS, **FAST)  # fmt: skip
            try:
                await venue.connect()
                balances = await venue.balances()
                assert balances["USD"].total == 1000 and balances["AAPL"].total == 5
                with pytest.raises(OrderTypeUnsupported):
                    await venue.submit(Order("s", "AAPL", Side.SELL, OrderType.STOP_MARKET, D(5), stop_price=D(150)))
            finally:
                await venue.close()

    run(main)


def test_a_slow_trade_stream_does_not_delay_fills_past_the_grace() -> None:
    async def main() -> None:
        async with rig({"stream_delay_s": 30.0}, stream_grace_s=0.3) as (fake, venue, links), \
                collecting(venue) as updates:  # fmt: skip
            await wait_for(lambda: bool(fake._ws), what="trade stream listening")
            await venue.submit(Order("m-1", "AAPL", Side.BUY, OrderType.MARKET, D(1)))
            await wait_for(lambda: any(u.fill for u in updates), 5.0, "the fill well before the stream's")
            # the fill may come from the poll that follows the stream's opening (the client can still be
            # subscribing when the fake counts its socket): the silent stream is reported down either way
            await wait_for(lambda: down(links, "orders"), 5.0, "the silent stream reported down")

    run(main)


def test_a_rate_limit_on_quotes_pauses_them_without_reporting_the_market_link_lost() -> None:
    """A 429 asks for a pause; the quotes resume after it and no 'market link lost' (a connection incident
    the stage criteria count) is reported for a venue that is answering."""

    async def main() -> None:
        async with rig() as (fake, venue, links):
            fake.fail_next("/v2/stocks/quotes/latest", "rate_limit", retry_after_s=1)
            batches: list[object] = []

            async def pump() -> None:
                async for batch in venue.market_stream(SYMBOLS):
                    batches.append(batch)

            task = asyncio.create_task(pump())
            try:
                await wait_for(lambda: bool(batches), 5.0, "quotes after the pause")
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            assert fake.faults.injected == [("GET", "/v2/stocks/quotes/latest", "rate_limit")]
            assert not down(links, "market"), links

    run(main)
