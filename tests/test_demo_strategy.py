"""The demo strategy: exits that clear their costs, and a default simulated session that trades all day.

One seeded simulated day through the real engine (build_engine, the simulated venue at speed max,
the default settings a newcomer gets), then the journal is read back: every take-profit exit must
have a positive P&L after both fees, and the day's entries must be spread over it rather than
spent in the first minutes. The unit tests below pin the arithmetic of the exits.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from engine.core.config import Settings, StrategyConfig
from engine.core.model import Bar, Fill, Instrument, MarketTick, Order, OrderIntent, OrderType, Position, Side
from engine.strategies.ema_cross import EmaCross, ExitCosts

T0 = datetime(2026, 1, 5, tzinfo=UTC)
SEED = 42  # the default simulator seed of a newcomer's config


# --- the arithmetic, on a context of our own -------------------------------------------------------


class _Context:
    """The StrategyContext a strategy sees, holding what it submitted."""

    def __init__(self) -> None:
        self.clock = T0
        self.intents: list[OrderIntent] = []
        self.refuse = False
        self.inst = Instrument("SOL/USDT", "SOL", "USDT", Decimal("0.01"), Decimal("0.001"))

    def now(self) -> datetime:
        return self.clock

    def position(self, symbol: str) -> Position | None:
        return None

    def has_working_entry(self, symbol: str) -> bool:
        return False

    def instrument(self, symbol: str) -> Instrument:
        return self.inst

    def submit_intent(self, intent: OrderIntent) -> Order | None:
        if self.refuse:
            return None
        self.intents.append(intent)
        return Order("c", intent.symbol, intent.side, OrderType.MARKET, Decimal(1))


def _quote(strategy: EmaCross, bid: str, ask: str) -> None:
    """Two ticks a bar apart: the second closes a bar, and the spread is sampled once a bar."""
    for i in range(2):
        at = T0 + timedelta(seconds=5 * i)
        strategy.on_tick(MarketTick("SOL/USDT", at, Decimal(bid), Decimal(ask), Decimal(ask)))


def test_take_profit_is_three_round_trip_costs_and_the_stop_as_far() -> None:
    ctx = _Context()
    strategy = EmaCross(ctx, ["SOL/USDT"], StrategyConfig(), ExitCosts())
    _quote(strategy, "149.99", "150.01")  # spread 0.02 / 150 = 1.333 bp
    # round trip = 2 x 0.1 % fee + 0.01333 % spread = 0.21333 %; x 3 = 0.64 % of 150 = 0.96
    cost = 2 * 0.001 + 0.02 / 150
    assert strategy.round_trip_cost("SOL/USDT") == pytest.approx(cost)
    target, stop = strategy.exit_distances("SOL/USDT", 150.0, atr=0.01)
    assert target == pytest.approx(3 * cost * 150) and target == pytest.approx(0.96)
    assert stop == pytest.approx(target)  # stop_to_target 1.0; the ATR stop (0.02) is narrower
    # a wide ATR target wins over the cost floor
    assert strategy.exit_distances("SOL/USDT", 150.0, atr=1.0)[0] == pytest.approx(3.0)  # take_profit_mult 3


def test_the_fee_rate_rises_to_what_fills_show() -> None:
    ctx = _Context()
    strategy = EmaCross(ctx, ["SOL/USDT"], StrategyConfig())
    order = Order("c", "SOL/USDT", Side.BUY, OrderType.MARKET, Decimal(10))
    strategy.on_fill(Fill("f", "c", "SOL/USDT", Side.BUY, Decimal(10), Decimal(100), Decimal("1.5"), T0), order)
    assert strategy.fee_rate == pytest.approx(0.0015)  # 1.5 / 1,000
    assert strategy.round_trip_cost("SOL/USDT") == pytest.approx(0.003)


def _cross_up(strategy: EmaCross, start: datetime) -> None:
    """Bars falling then rising from 150: the fast EMA crosses below, then above the slow one."""
    closes = [150 - 0.05 * i for i in range(30)] + [148.5 + 0.3 * i for i in range(8)]
    for i, c in enumerate(closes):
        price = Decimal(repr(round(c, 2)))
        strategy.on_bar(Bar("SOL/USDT", start + timedelta(seconds=5 * i), price, price, price, price, Decimal(1)))
    strategy.on_bar(Bar("SOL/USDT", start + timedelta(seconds=5 * 38), *[Decimal(150)] * 4, Decimal(1)))


def test_entries_are_paced_over_the_day_and_a_refusal_keeps_the_slot() -> None:
    ctx = _Context()
    strategy = EmaCross(ctx, ["SOL/USDT"], StrategyConfig(), ExitCosts(entries_per_day=3))
    _quote(strategy, "149.99", "150.01")
    ctx.refuse = True
    _cross_up(strategy, T0)
    assert ctx.intents == [] and strategy.last_entry_at is None  # refused: no slot used
    ctx.refuse = False
    _cross_up(strategy, T0)
    assert len(ctx.intents) == 1
    intent = ctx.intents[0]
    assert intent.take_profit is not None and intent.stop_loss is not None
    assert intent.max_hold_s == 4 * 3600  # the config's 30 minutes is too short for a 0.64 % target
    ctx.clock = T0 + timedelta(hours=7, minutes=59)
    _cross_up(strategy, ctx.clock)
    assert len(ctx.intents) == 1  # the next slot opens 86,400 / 3 s after the last entry
    ctx.clock = T0 + timedelta(hours=8)
    _cross_up(strategy, ctx.clock)
    assert len(ctx.intents) == 2


def test_nonsense_parameters_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="cost_multiple"):
        ExitCosts(cost_multiple=0.5)
    with pytest.raises(ValueError, match="entries_per_day"):
        ExitCosts(entries_per_day=0)


# --- a seeded simulated day through the engine -------------------------------------------------------


def _run_day(home: Path, seed: int) -> Path:
    from engine.app.factory import RunOptions, build_engine
    from engine.core.paths import AppPaths

    paths = AppPaths(home / "config", home / "data", home / "logs")

    async def day() -> None:
        engine = build_engine(Settings(), paths, RunOptions(seed=seed, speed="max"))
        await engine.start()
        await asyncio.wait_for(engine.run(86_400), 600)
        await engine.shutdown("close_all")
        engine.journal.close()

    asyncio.run(day())
    return paths.journal_file


@pytest.mark.timeout(900)  # a whole simulated day through the engine: about 40 s of CPU
def test_a_seeded_simulated_day_every_take_profit_clears_its_fees(tmp_path: Path) -> None:
    from engine.persistence.journal import Journal

    with Journal(_run_day(tmp_path, SEED)) as journal:
        orders = {o.client_id: o for o in journal.orders()}
        fills = journal.fills()
        trades = journal.trades()
    exit_reason = {
        (f.symbol, f.ts): orders[f.client_id].reason for f in fills if orders[f.client_id].role != "entry"
    }
    take_profits = [t for t in trades if exit_reason.get((t.symbol, t.closed_at), "").startswith("take profit")]
    entries = sorted(f.ts for f in fills if orders[f.client_id].role == "entry")
    assert trades, "the demo traded nothing in a simulated day"
    assert take_profits, "no take profit was reached in the seeded day"
    for t in take_profits:
        assert t.pnl > 0, f"take profit {t.symbol} {t.entry_price} -> {t.exit_price} booked {t.pnl} after fees"
        assert t.fees > 0  # both fees were charged, and the exit still made money
    # through the day: entries in each third of it, never more than the Paper stage's three a day
    thirds = {int((ts - entries[0].replace(hour=0, minute=0, second=0)).total_seconds() // 28_800) for ts in entries}
    assert thirds == {0, 1, 2}, entries
    assert len({o.client_id for o in orders.values() if o.role == "entry"}) <= Settings().risk.max_new_positions_per_day
