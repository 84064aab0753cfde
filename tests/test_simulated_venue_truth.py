"""The simulator meets the venue contract of the real venues: fills in the place reply, unique ids
across restarts, lookup, capabilities, equity, stop-limit legs, and fees charged as Binance spot does."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

from engine.core.clock import SimClock
from engine.core.model import Instrument, MarketTick, Order, OrderStatus, OrderType, Side
from engine.venues.matching import MatchingEngine
from engine.venues.simulated import SimulatedVenue

SYMBOLS = ["BTC/USDT", "ETH/USDT"]
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
BTC = Instrument("BTC/USDT", "BTC", "USDT", D("0.01"), D("0.00001"), D("0.00001"), D(5))


def run(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(coro_fn(), timeout=30))


def venue(**kw: Any) -> SimulatedVenue:
    return SimulatedVenue(SimClock(), SYMBOLS, seed=42, speed="max", starting_cash=D(100_000), **kw)


def test_a_market_order_reply_carries_its_fills_with_the_streams_ids() -> None:
    async def main() -> None:
        v = venue()
        result = await v.place(Order("m1", "BTC/USDT", Side.BUY, OrderType.MARKET, D("0.01")))
        assert result.order.status is OrderStatus.FILLED and len(result.fills) == 1
        streamed = []
        async for update in v.order_updates():
            streamed.append(update)
            if update.fill is not None:
                break
        assert streamed[-1].fill == result.fills[0]
        assert (await v.lookup(result.order)) == result.order
        assert await v.lookup(Order("never", "BTC/USDT", Side.BUY, OrderType.MARKET, D(1))) is None

    run(main)


def test_fill_and_order_ids_never_repeat_across_restarts() -> None:
    """Two runs with the same seed (a restart into the same journal) must not reuse ids."""

    async def ids(v: SimulatedVenue) -> set[str]:
        result = await v.place(Order("m1", "BTC/USDT", Side.BUY, OrderType.MARKET, D("0.01")))
        return {f.fill_id for f in result.fills} | {result.order.venue_order_id or ""}

    first, second = run(lambda: ids(venue())), run(lambda: ids(venue()))
    assert first and second and not first & second
    same_tag = run(lambda: ids(venue(run_tag="journal-7")))
    assert all(i.startswith("sim-journal-7-") for i in same_tag)


def test_capabilities_and_equity() -> None:
    async def main() -> None:
        v = venue()
        caps = v.capabilities()
        assert caps.stop_types("BTC/USDT") == [OrderType.STOP_MARKET, OrderType.STOP_LIMIT]
        assert caps.fills_in_submit_reply
        assert await v.equity() == D(100_000)
        await v.place(Order("m1", "BTC/USDT", Side.BUY, OrderType.MARKET, D("0.1")))
        tick = v.matching.last_tick("BTC/USDT")
        assert tick is not None
        usdt = (await v.balances())["USDT"].total
        assert await v.equity() == usdt + D("0.1") * tick.last

    run(main)


def test_the_simulator_can_charge_fees_like_binance_spot() -> None:
    async def main() -> None:
        v = venue(fee_model="binance_spot")
        buy = await v.place(Order("b", "BTC/USDT", Side.BUY, OrderType.MARKET, D("0.01")))
        assert buy.fills[0].fee_currency == "BTC" and buy.fills[0].fee_charged == D("0.00001")
        assert (await v.positions())["BTC/USDT"] == D("0.00999")
        sell = await v.place(Order("s", "BTC/USDT", Side.SELL, OrderType.MARKET, D("0.00999")))
        assert sell.fills[0].fee_currency == "USDT"
        assert "BTC/USDT" not in await v.positions()

    run(main)


def tick(bid: str, ask: str, last: str, n: int) -> MarketTick:
    return MarketTick("BTC/USDT", T0 + timedelta(seconds=n), D(bid), D(ask), D(last), D(10))


def test_a_stop_limit_sell_triggers_then_fills_no_lower_than_its_limit() -> None:
    m = MatchingEngine({"BTC/USDT": BTC}, {"USDT": D(0), "BTC": D(1)})
    m.on_tick(tick("60000", "60001", "60000", 0))
    leg = Order("sl", "BTC/USDT", Side.SELL, OrderType.STOP_LIMIT, D("0.5"), price=D("58900"), stop_price=D("59000"))
    assert m.submit(leg, None, T0)[-1].order.status is OrderStatus.OPEN
    assert m.on_tick(tick("59500", "59501", "59500", 1)) == []  # above the stop: nothing
    fills = [u.fill for u in m.on_tick(tick("58950", "58951", "58950", 2)) if u.fill]
    assert fills and all(f.price >= D("58900") for f in fills)
    assert m.order("sl").status is OrderStatus.FILLED  # type: ignore[union-attr]


def test_a_stop_limit_that_gaps_through_its_limit_rests_unfilled() -> None:
    m = MatchingEngine({"BTC/USDT": BTC}, {"USDT": D(0), "BTC": D(1)})
    m.on_tick(tick("60000", "60001", "60000", 0))
    leg = Order("sl", "BTC/USDT", Side.SELL, OrderType.STOP_LIMIT, D("0.5"), price=D("58900"), stop_price=D("59000"))
    m.submit(leg, None, T0)
    assert [u.fill for u in m.on_tick(tick("58000", "58001", "58000", 1)) if u.fill] == []
    assert m.order("sl").status is OrderStatus.OPEN  # type: ignore[union-attr]
    fills = [u.fill for u in m.on_tick(tick("58900", "58901", "58900", 2)) if u.fill]  # back to the limit
    assert fills and fills[0].price == D("58900")
    assert m.order("sl").status is OrderStatus.FILLED and m.balances()["BTC"].locked == 0  # type: ignore[union-attr]


def test_a_stop_limit_buy_locks_at_its_limit_price() -> None:
    m = MatchingEngine({"BTC/USDT": BTC}, {"USDT": D(1000)})
    m.on_tick(tick("60000", "60001", "60000", 0))
    leg = Order("sb", "BTC/USDT", Side.BUY, OrderType.STOP_LIMIT, D("0.01"), price=D("61100"), stop_price=D("61000"))
    assert m.submit(leg, None, T0)[-1].order.status is OrderStatus.OPEN
    assert m.balances()["USDT"].locked > D("611")
    too_big = Order("sb2", "BTC/USDT", Side.BUY, OrderType.STOP_LIMIT, D("1"), price=D("61100"), stop_price=D("61000"))
    assert m.submit(too_big, None, T0)[-1].order.status is OrderStatus.REJECTED


def test_the_simulator_prices_a_fee_asset_it_is_told_or_trades() -> None:
    async def main() -> None:
        v = venue(fee_model="binance_spot", bnb_pays=True, asset_prices={"BNB": D(600)})
        assert await v.asset_prices(["BNB", "XYZ"], "USDT") == {"BNB": D(600)}

    run(main)
