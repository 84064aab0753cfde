"""UI under load: 5,000 market events/s across 100 symbols for 10 s, offscreen.

The events are published on the engine's bus (as the engine would), the bridge
coalesces them and the window shows them: 100 open positions marked to market
in the positions table, the selected symbol on the price chart, the top bar.

- stall: how late an asyncio task that wakes every 10 ms actually wakes (timer
  drift of the shared Qt/asyncio loop): stall_p50_ms, stall_p99_ms.
- latency: from a market event's publish to the widget model update that shows
  it (measured per symbol from its oldest unflushed tick): latency_p99_ms.

The last line is a JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q / 100 * len(s)))]


async def drive(rate: int, symbols: int, seconds: float) -> dict[str, float]:
    from PySide6.QtCore import QSettings

    from console.app import build_window
    from engine.app.factory import RunOptions, build_engine
    from engine.core.config import Settings
    from engine.core.events import MarketEvent, PositionEvent
    from engine.core.model import MarketTick, Position
    from engine.core.paths import app_paths

    home = Path(tempfile.mkdtemp(prefix="tc-uiload-"))
    os.environ["TRADING_CONSOLE_HOME"] = str(home)
    engine = build_engine(Settings(), app_paths(), RunOptions(seed=1, speed=1.0, with_strategy=False))
    store = QSettings(str(home / "layout.ini"), QSettings.Format.IniFormat)
    window, bridge = build_window(engine, store)
    window.show()
    latencies: list[float] = []
    bridge.latency_probe = latencies.append
    bus = engine.bus
    names = [f"SYM{i:03d}/USDT" for i in range(symbols)]
    prices = [100.0 + i for i in range(symbols)]
    now = datetime.now(UTC)
    for i, sym in enumerate(names):  # every symbol held, so every tick reaches the positions table
        bus.publish(PositionEvent(now, Position(sym, Decimal("1.5"), Decimal(str(prices[i])), Decimal(str(prices[i])),
                                                opened_at=now)))
    window.select_symbol(names[0])

    stalls: list[float] = []
    running = True

    async def heartbeat() -> None:
        loop = asyncio.get_running_loop()
        while running:
            t = loop.time()
            await asyncio.sleep(0.010)
            stalls.append(max(0.0, (loop.time() - t - 0.010) * 1000))

    beat = asyncio.create_task(heartbeat())
    await asyncio.sleep(0.5)  # let the first layout and paint settle
    stalls.clear()
    latencies.clear()
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = 0
    step = 0.010
    k = 0
    while (elapsed := loop.time() - start) < seconds:
        due = int(elapsed * rate) - sent  # catch up if we were late, never burst beyond the rate
        ts = datetime.now(UTC)
        for _ in range(due):
            i = k % symbols
            k += 1
            prices[i] *= 1.0 + ((k * 7919) % 21 - 10) * 1e-5
            p = Decimal(f"{prices[i]:.2f}")
            bus.publish(MarketEvent(ts, MarketTick(names[i], ts, p - Decimal("0.01"), p + Decimal("0.01"), p)))
        sent += max(0, due)
        await asyncio.sleep(step)
    took = loop.time() - start
    await asyncio.sleep(0.2)  # the last flush
    running = False
    await beat
    bridge.detach()
    engine.journal.close()
    window.finish_close()
    return {
        "events": sent,
        "events_per_s": round(sent / took, 1),
        "symbols": symbols,
        "seconds": round(took, 2),
        "flushes": bridge.flushes,
        "stall_p50_ms": round(pct(stalls, 50), 2),
        "stall_p99_ms": round(pct(stalls, 99), 2),
        "stall_max_ms": round(max(stalls, default=float("nan")), 2),
        "latency_p50_ms": round(pct(latencies, 50) * 1000, 2),
        "latency_p99_ms": round(pct(latencies, 99) * 1000, 2),
        "positions_rows": window.positions.row_count(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rate", type=int, default=5000, help="market events per second")
    p.add_argument("--symbols", type=int, default=100)
    p.add_argument("--seconds", type=float, default=10.0)
    args = p.parse_args()
    import qasync

    from console.app import make_app
    from widgets.theme import apply_theme

    app = make_app()
    apply_theme(app, "dark")
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with loop:
        result = loop.run_until_complete(drive(args.rate, args.symbols, args.seconds))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
