"""The market simulator: deterministic, plausible prices, regimes a strategy can trade."""

from __future__ import annotations

import itertools
import math
import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from engine.core.model import MarketTick
from engine.venues.market_sim import MarketSimulator

T0 = datetime(2026, 1, 5, tzinfo=UTC)
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


def run(sim: MarketSimulator, steps: int) -> list[list[MarketTick]]:
    return [sim.step(T0 + timedelta(seconds=i * sim.dt)) for i in range(steps)]


@pytest.fixture(scope="module")
def day() -> dict[str, object]:
    """Twelve simulated hours at one-second steps, with the regime and vol state seen at each step."""
    sim = MarketSimulator(SYMBOLS, seed=7, tick_interval_s=1.0)
    ticks: dict[str, list[MarketTick]] = defaultdict(list)
    regimes: dict[str, list[str]] = defaultdict(list)
    vol_states: list[str] = []
    for i in range(12 * 3600):
        for t in sim.step(T0 + timedelta(seconds=i)):
            ticks[t.symbol].append(t)
            regimes[t.symbol].append(sim.regime(t.symbol))
        vol_states.append(sim.vol_state)
    return {"sim": sim, "ticks": ticks, "regimes": regimes, "vol_states": vol_states}


def test_same_seed_gives_identical_ticks_and_another_seed_does_not() -> None:
    a = run(MarketSimulator(SYMBOLS, seed=1), 2000)
    b = run(MarketSimulator(SYMBOLS, seed=1), 2000)
    c = run(MarketSimulator(SYMBOLS, seed=2), 2000)
    assert a == b
    assert a != c


def test_a_symbol_path_does_not_depend_on_the_other_symbols() -> None:
    alone = [batch[0] for batch in run(MarketSimulator(["ETH/USDT"], seed=3), 500)]
    together = [batch[1] for batch in run(MarketSimulator(["BTC/USDT", "ETH/USDT"], seed=3), 500)]
    assert alone == together


def test_known_instruments_have_realistic_specs_and_start_prices() -> None:
    sim = MarketSimulator(SYMBOLS, seed=1)
    inst = sim.instruments()
    assert inst["BTC/USDT"].tick_size == D("0.01") and inst["BTC/USDT"].lot_size == D("0.00001")
    assert inst["BTC/USDT"].min_notional == D(5)
    assert inst["ETH/USDT"].lot_size == D("0.0001") and inst["SOL/USDT"].lot_size == D("0.001")
    first = {t.symbol: t for t in sim.step(T0)}
    assert 55000 < first["BTC/USDT"].bid < 65000
    assert 2700 < first["ETH/USDT"].bid < 3300
    assert 130 < first["SOL/USDT"].bid < 170


def test_any_other_symbol_gets_a_deterministic_synthetic_spec() -> None:
    many = [f"S{i:03d}/USDT" for i in range(100)]
    sim = MarketSimulator(many, seed=5)
    assert sim.instruments() == MarketSimulator(many, seed=9).instruments()
    for t in sim.step(T0):
        spec = sim.instruments()[t.symbol]
        assert t.bid > 0 and t.ask > t.bid
        assert (t.bid / spec.tick_size) % 1 == 0
        assert spec.min_notional / t.ask > spec.lot_size  # the minimum notional is reachable
    with pytest.raises(ValueError):
        MarketSimulator(["AAPL"], seed=1)


def test_prices_stay_positive_on_grid_with_a_positive_spread(day: dict) -> None:
    inst = day["sim"].instruments()
    for symbol, ticks in day["ticks"].items():
        spec = inst[symbol]
        assert all(0 < t.bid < t.ask for t in ticks)
        assert all(t.last in (t.bid, t.ask) and t.volume >= 0 for t in ticks)
        assert all((t.ask / spec.tick_size) % 1 == 0 for t in ticks[:2000])
        assert sum(1 for t in ticks if t.volume > 0) > 0.8 * len(ticks)
        mids = [float(t.mid) for t in ticks]
        assert 0.7 < mids[-1] / mids[0] < 1.3  # half a day does not move a price by a third


def test_hourly_volatility_is_in_a_tradeable_band(day: dict) -> None:
    for symbol, ticks in day["ticks"].items():
        mids = [float(t.mid) for t in ticks]
        hourly = []
        for h in range(12):
            seg = mids[h * 3600 : (h + 1) * 3600]
            rets = [math.log(b / a) for a, b in itertools.pairwise(seg)]
            hourly.append(statistics.pstdev(rets) * math.sqrt(3600))
        assert 0.002 < statistics.median(hourly) < 0.02, (symbol, hourly)
        assert max(hourly) > 1.3 * min(hourly), "volatility should cluster, not be constant"


def test_trend_and_range_regimes_exist_and_move_prices_their_way(day: dict) -> None:
    for symbol, ticks in day["ticks"].items():
        regimes = day["regimes"][symbol]
        assert set(regimes) == {"range", "up", "down"}
        drift: dict[str, list[float]] = defaultdict(list)
        for prev, cur, regime in zip(ticks, ticks[1:], regimes[1:], strict=False):
            drift[regime].append(math.log(cur.mid / prev.mid))
        assert statistics.fmean(drift["up"]) > statistics.fmean(drift["down"]), symbol


def test_spread_and_volume_grow_in_volatile_periods(day: dict) -> None:
    states = day["vol_states"]
    assert {"calm", "storm"} <= set(states)
    for ticks in day["ticks"].values():
        by_state: dict[str, list[MarketTick]] = defaultdict(list)
        for t, s in zip(ticks, states, strict=True):
            by_state[s].append(t)

        def spread_bps(ts: list[MarketTick]) -> float:
            return statistics.fmean(float((t.ask - t.bid) / t.mid) * 1e4 for t in ts)

        def volume(ts: list[MarketTick]) -> float:
            return statistics.fmean(float(t.volume) for t in ts)

        assert spread_bps(by_state["storm"]) > spread_bps(by_state["calm"])
        assert volume(by_state["storm"]) > volume(by_state["calm"])


def test_history_ends_just_before_the_start_near_the_start_price() -> None:
    sim = MarketSimulator(SYMBOLS, seed=11)
    hist = sim.history("ETH/USDT", 720, end=T0, step_s=5.0)
    assert len(hist) == 720
    assert hist[-1].ts == T0 - timedelta(seconds=5) and hist[0].ts == T0 - timedelta(seconds=3600)
    assert all(b.ts - a.ts == timedelta(seconds=5) for a, b in itertools.pairwise(hist))
    assert abs(float(hist[-1].mid) / sim.start_price("ETH/USDT") - 1) < 0.005
    longer = MarketSimulator(SYMBOLS, seed=11).history("ETH/USDT", 1000, end=T0, step_s=5.0)
    assert longer[-720:] == hist  # asking for more only reaches further back
    first_live = {t.symbol: t for t in sim.step(T0)}["ETH/USDT"]
    assert abs(float(first_live.mid / hist[-1].mid) - 1) < 0.005
