"""Market events per second processed end to end on one core.

Simulator -> matching -> portfolio mark-to-market -> breakers -> strategy ->
events -> journal, on the simulated venue at maximum speed. The reference,
measured in the same run: a plain Python loop dispatching the same number of
events to three handlers that each store the latest value per key (what the
bridge does), so the figure reads as a ratio on a shared, noisy machine.
Prints a JSON object on its last line: {"events_per_s": ..., "ratio_to_plain_dispatch": ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.app.factory import RunOptions, build_engine
from engine.core.config import Settings
from engine.core.paths import AppPaths


async def measure(sim_seconds: float, symbols: int, seed: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as home:
        root = Path(home)
        paths = AppPaths(root / "config", root / "data", root / "logs")
        settings = Settings()
        if symbols > 3:
            settings.simulator.symbols = [*settings.simulator.symbols,
                                          *(f"S{i:03d}/USDT" for i in range(symbols - 3))]
        engine = build_engine(settings, paths, RunOptions(seed=seed, speed="max"))
        await engine.start()
        bus_before = engine.bus.published
        t0 = time.perf_counter()
        await engine.run(sim_seconds)
        wall = time.perf_counter() - t0
        events = engine.market_events
        published = engine.bus.published - bus_before
        fills = len(engine.journal.fills())
        await engine.shutdown("keep")
        t1 = time.perf_counter()
        engine.journal.close()
        journal_drain = time.perf_counter() - t1
    return {
        "events_per_s": round(events / wall),
        "market_events": events,
        "bus_events": published,
        "fills": fills,
        "wall_s": round(wall, 3),
        "journal_drain_s": round(journal_drain, 3),
        "symbols": symbols,
        "sim_seconds": sim_seconds,
    }


def plain_dispatch_per_s(n: int) -> float:
    """Events per second through a bare Python dispatch loop: the floor any event engine pays."""
    latest: dict[str, int] = {}
    counts: dict[str, int] = {}
    seen: list[int] = []
    handlers = [lambda k, v: latest.__setitem__(k, v), lambda k, v: counts.__setitem__(k, counts.get(k, 0) + 1),
                lambda k, v: seen.append(v) if v % 1000 == 0 else None]  # fmt: skip
    keys = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    t0 = time.perf_counter()
    for i in range(n):
        k = keys[i % 3]
        for h in handlers:
            h(k, i)
    return n / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sim-seconds", type=float, default=6 * 3600)
    p.add_argument("--symbols", type=int, default=3)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    result = asyncio.run(measure(args.sim_seconds, args.symbols, args.seed))
    reference = plain_dispatch_per_s(max(100_000, int(result["market_events"])))
    result["plain_dispatch_per_s"] = round(reference)
    result["ratio_to_plain_dispatch"] = round(result["events_per_s"] / reference, 4)
    print(f"{result['market_events']} market events in {result['wall_s']} s "
          f"({result['fills']} fills, {result['bus_events']} bus events)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
