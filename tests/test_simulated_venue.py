"""The simulated venue under asyncio: streams, order updates, pacing, faults, warm-up."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from engine.core.clock import SimClock
from engine.core.model import Order, OrderStatus, OrderType, OrderUpdate, Side
from engine.venues.base import OrderNotFound, OrderRejected, TransientVenueError
from engine.venues.simulated import SimulatedVenue

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


def venue(speed: float | str = "max", **kw: Any) -> SimulatedVenue:
    return SimulatedVenue(SimClock(), SYMBOLS, seed=42, speed=speed, starting_cash=D(100_000), **kw)  # type: ignore[arg-type]


def run(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(coro_fn(), timeout=30))


async def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.001)


def buy(cid: str, qty: str = "0.01", kind: OrderType = OrderType.MARKET, **kw: Any) -> Order:
    return Order(cid, "BTC/USDT", Side.BUY, kind, D(qty), **kw)


def test_stream_gives_one_tick_per_symbol_per_step_and_drives_the_clock() -> None:
    async def main() -> None:
        v = venue()
        start = v.clock.now()
        batches = []
        async for batch in v.market_stream(SYMBOLS):
            batches.append(batch)
            if len(batches) == 40:
                break
        assert all(sorted(t.symbol for t in b) == sorted(SYMBOLS) for b in batches)
        assert v.clock.now() == start + timedelta(seconds=0.25 * 40)
        assert [b[0].ts for b in batches] == [start + timedelta(seconds=0.25 * i) for i in range(1, 41)]
        only_eth = []
        async for batch in v.market_stream(["ETH/USDT"]):
            only_eth.append(batch)
            if len(only_eth) == 3:
                break
        assert all([t.symbol for t in b] == ["ETH/USDT"] for b in only_eth)

    run(main)


async def _trade_session(v: SimulatedVenue) -> tuple[list[tuple[int, OrderUpdate]], list[int]]:
    """Place a resting buy below the market and a market buy; stream until the limit fills."""
    seen: list[tuple[int, OrderUpdate]] = []
    step = 0

    async def consume() -> None:
        async for update in v.order_updates():
            seen.append((step, update))

    consumer = asyncio.create_task(consume())
    ack = await v.submit(buy("mkt", "0.02"))
    assert ack.status is OrderStatus.FILLED
    bid = v.matching.last_tick("BTC/USDT").bid  # type: ignore[union-attr]
    ack = await v.submit(buy("lim", "0.05", OrderType.LIMIT, price=bid - D(40)))
    assert ack.status is OrderStatus.OPEN
    fill_steps = []
    async for _batch in v.market_stream(SYMBOLS):
        step += 1
        if any(u.order.client_id == "lim" and u.fill is not None for _, u in seen):
            fill_steps.append(step)
        if v.matching.order("lim").status is OrderStatus.FILLED or step > 40_000:  # type: ignore[union-attr]
            break
    await v.close()
    await asyncio.wait_for(consumer, 5)
    return seen, fill_steps


def test_resting_order_fills_during_the_stream_and_updates_arrive_before_the_next_batch() -> None:
    async def main() -> None:
        v = venue()
        seen, fill_steps = await _trade_session(v)
        lim = [u for _, u in seen if u.order.client_id == "lim"]
        assert lim[0].order.status is OrderStatus.OPEN
        assert lim[-1].order.status is OrderStatus.FILLED
        assert all(u.fill is not None and u.fill.liquidity.value == "maker" for u in lim[1:])
        mkt = [u.order.status for _, u in seen if u.order.client_id == "mkt"]
        assert mkt == [OrderStatus.OPEN, OrderStatus.FILLED]
        # the first fill was produced while making batch k and consumed before batch k+1 was handed out
        first_fill_step = next(s for s, u in seen if u.order.client_id == "lim" and u.fill is not None)
        assert fill_steps[0] == first_fill_step + 1
        positions = await v.positions()
        assert positions["BTC/USDT"] == D("0.07")

    run(main)


def test_same_seed_and_same_actions_give_the_same_run() -> None:
    async def once() -> list[tuple[int, OrderUpdate]]:
        return (await _trade_session(venue(run_tag="same")))[0]  # ids carry the run tag, random by default

    assert run(once) == run(once)


def test_duplicate_submit_returns_the_same_order_without_new_updates() -> None:
    async def main() -> None:
        v = venue()
        first = await v.submit(buy("x"))
        second = await v.submit(buy("x"))
        assert first == second
        assert len(await v.fills_since(None)) == 1
        await v.close()
        updates = [u async for u in v.order_updates()]
        assert [u.order.status for u in updates] == [OrderStatus.OPEN, OrderStatus.FILLED]

    run(main)


def test_cancel_and_cancel_all_release_funds_and_report() -> None:
    async def main() -> None:
        v = venue()
        for i in range(3):
            await v.submit(buy(f"b{i}", "0.1", OrderType.LIMIT, price=D("50000.00")))
        assert (await v.balances())["USDT"].locked > D(15000)
        canceled = await v.cancel(buy("b0"))
        assert canceled.status is OrderStatus.CANCELED
        assert (await v.cancel(buy("b0"))).status is OrderStatus.CANCELED  # finished: not an error
        with pytest.raises(OrderNotFound):
            await v.cancel(buy("never-placed"))
        assert await v.cancel_all("BTC/USDT") == 2
        assert await v.open_orders() == []
        assert (await v.balances())["USDT"].locked == 0

    run(main)


def test_fault_injection_rejects_and_fails_operations() -> None:
    async def main() -> None:
        v = venue()
        v.faults.reject_next_submits(1, "exchange busy")
        rejected = await v.submit(buy("r1"))
        assert rejected.status is OrderStatus.REJECTED and rejected.reason == "exchange busy"
        assert (await v.submit(buy("r1"))).status is OrderStatus.FILLED  # the retry is a new request

        v.faults.fail_next("submit", 2)
        for _ in range(2):
            with pytest.raises(TransientVenueError):
                await v.submit(buy("t1"))
        assert (await v.submit(buy("t1"))).status is OrderStatus.FILLED

        v.faults.fail_next("submit", 1, transient=False)
        with pytest.raises(OrderRejected):
            await v.submit(buy("p1"))

        v.faults.fail_next("submit", 1, after_apply=True)  # the exchange did it, the answer got lost
        with pytest.raises(TransientVenueError):
            await v.submit(buy("lost"))
        assert (await v.submit(buy("lost"))).status is OrderStatus.FILLED
        assert [f.client_id for f in await v.fills_since(None)].count("lost") == 1

        for op in ("cancel_all", "open_orders"):
            v.faults.fail_next(op)
        with pytest.raises(TransientVenueError):
            await v.cancel_all()
        with pytest.raises(TransientVenueError):
            await v.open_orders()
        assert await v.cancel_all() == 0
        with pytest.raises(ValueError):
            v.faults.fail_next("withdraw")

    run(main)


def test_a_broken_stream_raises_transient_and_can_be_reopened() -> None:
    async def main() -> None:
        v = venue()
        v.faults.break_stream()
        with pytest.raises(TransientVenueError):
            async for _ in v.market_stream(SYMBOLS):
                pass
        async for batch in v.market_stream(SYMBOLS):
            assert len(batch) == 3
            break

    run(main)


def test_close_ends_both_streams_cleanly() -> None:
    async def main() -> None:
        v = venue(speed=1.0)
        batches: list[object] = []

        async def market() -> None:
            async for b in v.market_stream(SYMBOLS):
                batches.append(b)

        async def updates() -> None:
            async for _ in v.order_updates():
                pass

        tasks = [asyncio.create_task(market()), asyncio.create_task(updates())]
        await wait_for(lambda: len(batches) >= 1)
        await v.close()
        done, pending = await asyncio.wait(tasks, timeout=2)
        assert not pending and all(t.exception() is None for t in done)

    run(main)


def test_speed_paces_sim_time_against_wall_time() -> None:
    async def main() -> None:
        v = venue(speed=40.0)  # 0.25 s steps -> 160 steps per wall second
        loop = asyncio.get_running_loop()
        t0, n = loop.time(), 0
        async for _ in v.market_stream(SYMBOLS):
            n += 1
            if n == 40:
                break
        assert loop.time() - t0 >= 0.9 * (39 * 0.25 / 40.0)

    run(main)


def test_max_speed_does_not_starve_other_tasks() -> None:
    async def main() -> None:
        v = venue()
        beats = 0

        async def heartbeat() -> None:
            nonlocal beats
            while True:
                beats += 1
                await asyncio.sleep(0)

        hb = asyncio.create_task(heartbeat())
        n = 0
        async for _ in v.market_stream(SYMBOLS):
            n += 1
            if n == 500:
                break
        hb.cancel()
        assert beats >= 500 // 50 - 1  # the stream yields to the loop every 50 steps

    run(main)


def test_history_warms_up_before_the_start_and_joins_the_live_path() -> None:
    async def main() -> None:
        v = venue(latency_ms=12.5)
        start = v.clock.now()
        hist = await v.history("BTC/USDT", 3600, 5.0)
        assert 720 <= len(hist) <= 721
        assert hist[0].ts >= start - timedelta(seconds=3600) and hist[-1].ts <= start
        assert all(b.ts > a.ts for a, b in itertools.pairwise(hist))
        n = 0
        async for batch in v.market_stream(SYMBOLS):
            n += 1
            if n == 1:
                live = next(t for t in batch if t.symbol == "BTC/USDT")
                assert abs(live.mid / hist[-1].mid - 1) < D("0.002")
            if n == 400:
                break
        later = await v.history("BTC/USDT", 3600, 5.0)
        now = v.clock.now()
        assert later[0].ts >= now - timedelta(seconds=3600) and later[-1].ts > now - timedelta(seconds=6)
        assert all(b.ts - a.ts >= timedelta(seconds=5) for a, b in itertools.pairwise(later))
        assert later[0] in hist  # the pre-run part is the same warm-up as before
        assert await v.ping_ms() == 12.5

    run(main)
