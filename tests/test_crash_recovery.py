"""Crash test: a headless engine trading on the Binance fake is SIGKILLed at random moments and restarted.

The fake runs on this test's event loop; the engine is a real `python -m console --headless`
subprocess with real ccxt. After every restart (reconciliation on start), the journal
must agree with the venue exactly: the same fills (by id and quantity: none lost, none
twice), the same open orders, and positions equal to the sums of the fills.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import sys
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from engine.persistence.journal_schema import WORKING_STATUSES
from tests.fakes import binance_wire as wire
from tests.fakes.binance import FakeBinance

KEY = "crash-key"
SECRET = "crash-secret-5e6f"
SYMBOLS = ["BTC/USDT", "ETH/USDT"]
ROOT = Path(__file__).resolve().parents[1]


def write_config(home: Path, fake: FakeBinance) -> None:
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "config.toml").write_text(
        f"""
[engine]
venue = "binance"
shutdown = "keep"
equity_sample_s = 1.0

[risk]
max_orders_per_second = 1000
max_slippage = 0.05
max_new_positions_per_day = 100000
max_concurrent_positions = 10
daily_loss_limit = 0.5
max_drawdown = 0.5
max_consecutive_losses = 100000
max_volatility = 1000.0
venue_error_burst = 1000

[simulator]
symbols = {SYMBOLS!r}

[strategy]
timeframe_s = 0.1
fast = 2
slow = 3
atr_period = 2
atr_stop_mult = 0.5
take_profit_mult = 0.5
max_hold_s = 0.6
cost_multiple = 1.0  # churn: this test wants many fills between kills, not a strategy worth running
min_hold_s = 0.0

[stages]
initial = "testnet"  # binance testnet: the Paper stage runs only the simulated venue

[venues.binance]
mode = "testnet"
rest_public = "{fake.rest_url}"
rest_private = "{fake.rest_url}"
ws_public = "{fake.ws_url}"
ws_private = "{fake.ws_api_url}"
timeout_s = 2.0
poll_interval_s = 0.1
backoff_s = 0.02
ws_retry_s = 0.3
reconcile_interval_s = 0
reconcile_backoff_s = 0.05
reconcile_overlap_s = 2.0
"""
    )


def engine_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        TRADING_CONSOLE_HOME=str(home),
        TRADING_CONSOLE_BINANCE_API_KEY=KEY,
        TRADING_CONSOLE_BINANCE_API_SECRET=SECRET,
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",  # never the developer's keyring
        PYTHONPATH=str(ROOT),
        QT_QPA_PLATFORM="offscreen",
    )
    return env


class HeadlessEngine:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 20.0) -> None:
        """Start and wait for the line printed once start() (and so reconciliation) is done."""
        self.lines = []
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "console", "--headless", cwd=str(ROOT), env=engine_env(self.home),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())
        await until(lambda: any(ln.startswith("trading-console headless:") for ln in self.lines) or self.exited,
                    timeout, "engine started", self.output)  # fmt: skip
        assert not self.exited, self.output()

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip())

    @property
    def exited(self) -> bool:
        return self.proc is None or self.proc.returncode is not None

    def output(self) -> str:
        return "\n".join(self.lines[-40:])

    async def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        await asyncio.wait_for(self.proc.wait(), 20)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 5)


async def until(cond: Callable[[], bool], timeout: float, what: str, detail: Callable[[], str] = str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{detail()}")
        await asyncio.sleep(0.02)


# --- the two views --------------------------------------------------------------------------------


def venue_view(fake: FakeBinance) -> dict[str, Any]:
    matched = {f.fill_id for f in fake.matching.fills_since(None)}
    assert {f.fill_id for _, f in fake._trades} == matched  # every match reached the wire as a trade
    fills = {f"{wire.market_id(f.symbol)}-{tid}": f.qty for tid, f in fake._trades}
    return {
        "fills": fills,
        "open_orders": sorted(o.client_id for o in fake.matching.open_orders()),
        "positions": {s: q for s, q in fake.matching.positions().items() if q},
    }


def journal_view(db: Path) -> dict[str, Any]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        fills: dict[str, D] = {}
        positions: dict[str, D] = defaultdict(D)
        for fid, symbol, side, qty in conn.execute("SELECT fill_id, symbol, side, qty FROM fills"):
            assert fid not in fills
            fills[fid] = D(qty)
            positions[symbol] += D(qty) if side == "buy" else -D(qty)
        marks = ",".join("?" for _ in WORKING_STATUSES)
        open_ids = [r[0] for r in conn.execute(f"SELECT client_id FROM orders WHERE status IN ({marks})",
                                                WORKING_STATUSES)]  # fmt: skip
    finally:
        conn.close()
    return {"fills": fills, "open_orders": sorted(open_ids), "positions": {s: q for s, q in positions.items() if q}}


def describe(fake: FakeBinance, db: Path) -> str:
    v, j = venue_view(fake), journal_view(db)
    lost = sorted(set(v["fills"]) - set(j["fills"]))
    extra = sorted(set(j["fills"]) - set(v["fills"]))
    return (f"fills lost {lost}, unknown {extra}; open venue {v['open_orders']} journal {j['open_orders']}; "
            f"positions venue {v['positions']} journal {j['positions']}")  # fmt: skip


async def crash_rounds(home: Path, rounds: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    db = home / "data" / "journal.sqlite"
    async with FakeBinance(api_key=KEY, api_secret=SECRET, symbols=SYMBOLS, seed=seed) as fake:
        write_config(home, fake)
        engine = HeadlessEngine(home)
        await engine.start()
        try:
            for _ in range(rounds):
                fake.start_ticking(0.02)
                await asyncio.sleep(rng.uniform(0.05, 0.8))  # a random moment, not a synchronisation
                await engine.kill()
                fake.stop_ticking()  # the venue stands still so the two views can be compared exactly
                await engine.start()
                await until(lambda: db.exists() and journal_view(db) == venue_view(fake), 10,
                            "journal to match the venue", lambda: describe(fake, db))  # fmt: skip
        finally:
            await engine.kill(signal.SIGTERM)
        view = venue_view(fake)
        return {"fills": len(view["fills"]), "orders": len(fake._order_ids), "open": len(view["open_orders"])}


def test_sigkill_at_random_moments_loses_no_fill_and_counts_none_twice(tmp_path: Path) -> None:
    totals = asyncio.run(crash_rounds(tmp_path, rounds=20, seed=11))
    assert totals["fills"] > 5 and totals["orders"] > 5, totals  # it really traded between the kills


@pytest.mark.slow
def test_many_more_crash_rounds(tmp_path: Path) -> None:
    totals = asyncio.run(crash_rounds(tmp_path, rounds=100, seed=23))
    assert totals["fills"] > 20, totals
