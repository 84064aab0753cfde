"""A restart in the middle of a trading day changes none of the day's limits.

Measured before: same UTC day, today's P&L went from -93.30 to 0.00, the daily-loss gauge to 0%,
"New today" from 1/3 to 0/3 and the peak to the current equity: restarting got round the daily
loss limit and the new-positions-per-day limit.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from engine.app.kernel import Engine
from engine.core.model import OrderIntent, Side
from tests.engine_rig import buy, make_engine, settings_for, started, stop, until


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 90))


def _gauge(e: Engine, name: str) -> float:
    return next(r.value for r in e.rule_values() if r.name == name)


def test_a_restart_mid_day_keeps_the_days_pnl_baseline_new_positions_peak_and_streak(tmp_path: Path) -> None:
    seen: dict[str, object] = {}
    settings = settings_for(max_new_positions_per_day=3, max_consecutive_losses=10)

    async def first() -> None:
        e = await started(make_engine(tmp_path, settings))
        for s in ("BTC/USDT", "ETH/USDT"):
            e.submit_intent(buy(e, s, "5000"))
        await until(lambda: e.portfolio.open_count() == 2 and not e.execution.inflight, what="two positions")
        qty = e.portfolio.qty("ETH/USDT")
        e.submit_intent(OrderIntent("ETH/USDT", Side.SELL, qty, reduce_only=True, reason="take the loss"))
        await until(lambda: e.portfolio.qty("ETH/USDT") == 0, what="a closed trade")
        pf = e.portfolio
        seen.update(day_start=pf.day_start_equity, realized_start=pf.day_realized_start, peak=pf.peak_equity,
                    new=e.new_positions_today, streak=e.breakers.consecutive_losses, day_end=pf.day_end,
                    realized=pf.realized)  # fmt: skip
        assert seen["new"] == 2 and pf.day_start_equity == Decimal(100_000)
        await stop(e)

    async def second() -> None:
        e = await started(make_engine(tmp_path, settings))
        pf = e.portfolio
        assert pf.day_end == seen["day_end"]  # the same trading day
        assert pf.day_start_equity == seen["day_start"]  # today's P&L measured from the day's open, not 0
        assert pf.day_realized_start == seen["realized_start"] and pf.realized == seen["realized"]
        assert pf.peak_equity >= seen["peak"]  # type: ignore[operator]
        assert e.new_positions_today == seen["new"]
        assert e.breakers.consecutive_losses == seen["streak"]
        assert _gauge(e, "new_positions") == 2  # "New today 2/3", not 0/3
        e.submit_intent(buy(e, "SOL/USDT", "2000"))  # the third of three still fits ...
        await until(lambda: e.portfolio.qty("SOL/USDT") > 0, what="the third position")
        assert e.submit_intent(buy(e, "ETH/USDT", "2000")) is None  # ... and a fourth is refused today
        await stop(e)

    run(first())
    run(second())
