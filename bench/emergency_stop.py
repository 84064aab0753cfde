"""Emergency stop and close-all on the simulated venue, or through ccxt against the Binance fake.

halt_ms: from the call to HALTED; no_open_orders_ms: to the venue reporting
none of 200 open orders across 20 symbols; close_all_ms: 50 positions to flat.
--clicks N: N stop/resume cycles through the OperatorAPI: click_to_halted (the state
changes) and click_to_durable (the command returns, the halt committed with
synchronous=FULL), median and p99, beside a bare SQLite synchronous=FULL commit on
the same disk measured in the same run. Prints a JSON object on its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.core.model import TradingState
from tests.engine_rig import buy, make_engine, settings_for, started, stop, until


async def measure(home: Path) -> dict[str, float]:
    symbols = [f"S{i:02d}/USDT" for i in range(50)]
    settings = settings_for(cash_reserve=0.0, max_position_notional=0.5)
    e = await started(make_engine(home, settings=settings, symbols=symbols, speed=1.0))
    for s in symbols[:20]:
        for k in range(10):
            e.submit_intent(buy(e, s, "300", limit_below=f"0.00{k + 1}"))
    await until(lambda: e.book.working_count() == 200 and not e.execution.inflight, what="200 resting orders",
                timeout=30)
    t0 = time.perf_counter()
    task = e.emergency_stop("benchmark")
    halt_ms = (time.perf_counter() - t0) * 1000
    assert e.risk.state is TradingState.HALTED
    ok = await task
    no_open_ms = (time.perf_counter() - t0) * 1000
    assert ok and await e.venue.open_orders() == []

    e.resume("bench", "open positions for close-all")
    for s in symbols:
        e.submit_intent(buy(e, s, "1000"))
    await until(lambda: e.portfolio.open_count() == 50 and not e.execution.inflight, what="50 positions", timeout=30)
    await until(lambda: not e.execution.inflight and e.book.working_count() >= 50, what="stop legs resting", timeout=30)
    t1 = time.perf_counter()
    summary = await e.close_all("benchmark")
    close_ms = (time.perf_counter() - t1) * 1000
    assert summary["ok"], summary
    await stop(e)
    return {"halt_ms": round(halt_ms, 4), "no_open_orders_ms": round(no_open_ms, 2),
            "close_all_ms": round(close_ms, 2), "open_orders": 200, "symbols": 20, "positions": 50}


async def measure_ccxt(home: Path) -> dict[str, float]:
    """The same emergency stop through real ccxt and HTTP against the Binance fake on 127.0.0.1."""
    from engine.app.kernel import Engine
    from engine.core.clock import SystemClock
    from engine.persistence.journal import Journal
    from engine.venues.ccxt_venue import CcxtEndpoints, CcxtVenue
    from tests.fakes.binance import FakeBinance

    symbols = [f"{chr(65 + i)}{chr(65 + i)}X/USDT" for i in range(20)]  # letters only, like real assets
    # the fake steps its market every wall second, far livelier than a real one: no volatility breaker here
    settings = settings_for(cash_reserve=0.0, max_position_notional=0.5, max_volatility=10.0)
    async with FakeBinance(api_key="bench-key", api_secret="bench-secret", symbols=symbols) as fake:
        endpoints = CcxtEndpoints(rest_public=fake.rest_url, ws_public=fake.ws_url, ws_private=fake.ws_api_url)
        venue = CcxtVenue(SystemClock(), "bench-key", "bench-secret", symbols=symbols, endpoints=endpoints)
        e = Engine(settings, venue, Journal(home / "journal.sqlite"), SystemClock(), symbols=symbols)
        await e.start()
        try:
            return await _stop_through_ccxt(e, fake, symbols)
        finally:
            await stop(e)


async def _stop_through_ccxt(e: Any, fake: Any, symbols: list[str]) -> dict[str, Any]:
    fake.start_ticking(0.1)
    await until(lambda: len(e.ticks) == len(symbols), what=f"first ticks {sorted(e.ticks)}", timeout=30)
    fake.start_ticking(1.0)  # prices keep moving (data stays fresh); the limits sit 0.4-4% below
    for s in symbols:
        for k in range(10):
            e.submit_intent(buy(e, s, "300", limit_below=f"{0.004 * (k + 1):.3f}"))  # 0.4-4% below
    await until(lambda: e.book.working_count() == 200 and not e.execution.inflight
                and len(fake.matching.open_orders()) == 200, what="200 resting orders", timeout=120)  # fmt: skip
    t0 = time.perf_counter()
    task = e.emergency_stop("benchmark")
    halt_ms = (time.perf_counter() - t0) * 1000
    assert e.risk.state is TradingState.HALTED
    ok = await task
    no_open_ms = (time.perf_counter() - t0) * 1000
    assert ok and fake.matching.open_orders() == []
    return {"venue": "ccxt", "halt_ms": round(halt_ms, 4), "no_open_orders_ms": round(no_open_ms, 2),
        "open_orders": 200, "symbols": 20}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def _bare_commit_ms(home: Path, n: int) -> list[float]:
    """The reference: one row committed with synchronous=FULL, as the halt is, without the engine."""
    import sqlite3

    conn = sqlite3.connect(home / "reference.sqlite", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT)")
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT OR REPLACE INTO t VALUES ('trading_state', ?)", (f"HALTED {i}",))
        conn.execute("COMMIT")
        out.append((time.perf_counter() - t0) * 1000)
    conn.close()
    return out


async def measure_clicks(home: Path, n: int) -> dict[str, Any]:
    from engine.core.events import StateChanged

    e = await started(make_engine(home, speed=1.0))
    halted_at: list[float] = []
    e.bus.subscribe(lambda ev: halted_at.append(time.perf_counter()) if ev.new is TradingState.HALTED else None,
                    StateChanged)  # fmt: skip
    to_halted, to_durable = [], []
    for i in range(n):
        t0 = time.perf_counter()
        result = e.api.emergency_stop(f"bench {i}", "bench")
        t1 = time.perf_counter()
        assert result.ok and result.details["durable"] and e.risk.state is TradingState.HALTED
        to_halted.append((halted_at[-1] - t0) * 1000)
        to_durable.append((t1 - t0) * 1000)
        await asyncio.sleep(0)
        await until(lambda: not e.stop_in_progress(), what="the cancel round, before the next click")
        assert e.api.resume("next click", "bench").ok
    await stop(e)
    ref = _bare_commit_ms(home, n)
    return {"clicks": n,
            "click_to_halted_ms": {"median": _pct(to_halted, 0.5), "p99": _pct(to_halted, 0.99)},
            "click_to_durable_ms": {"median": _pct(to_durable, 0.5), "p99": _pct(to_durable, 0.99)},
            "reference_sqlite_full_commit_ms": {"median": _pct(ref, 0.5), "p99": _pct(ref, 0.99)}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--venue", choices=["simulated", "ccxt"], default="simulated")
    p.add_argument("--clicks", type=int, default=0, help="measure N stop/resume cycles instead")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as home:
        if args.clicks:
            result = asyncio.run(measure_clicks(Path(home), args.clicks))
            print(f"click->HALTED median {result['click_to_halted_ms']['median']} ms, "
                  f"click->durable median {result['click_to_durable_ms']['median']} ms "
                  f"(bare FULL commit {result['reference_sqlite_full_commit_ms']['median']} ms)")
        elif args.venue == "ccxt":
            result = asyncio.run(measure_ccxt(Path(home)))
            print(f"ccxt/Binance fake: HALTED after {result['halt_ms']} ms; "
                  f"no open orders after {result['no_open_orders_ms']} ms")
        else:
            result = asyncio.run(measure(Path(home)))
            print(f"HALTED after {result['halt_ms']} ms; no open orders after {result['no_open_orders_ms']} ms; "
                  f"50 positions flat after {result['close_all_ms']} ms")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
