"""A full disk while trading, through the whole engine on a real 2 MiB tmpfs (root only).

Measured before: the engine made 1,124 trades, the journal kept 63, no alert, no halt, exit 0.
Now: the journal's first failed write halts trading with an EMERGENCY alert (what the window and
the alert channels show); the rows are held in memory; once space is freed every fill the venue
made is in the journal.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.core.events import AlertEvent
from engine.core.model import AlertLevel, TradingState
from tests.engine_rig import buy, make_engine, started, stop, until


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small filesystem needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_while_trading_halts_says_so_and_loses_no_fill(tiny_disk: Path) -> None:
    async def scenario() -> None:
        e = await started(make_engine(tiny_disk))
        alerts: list[AlertEvent] = []
        e.bus.subscribe(alerts.append, AlertEvent)
        ballast = tiny_disk / "other-files"
        free = shutil.disk_usage(tiny_disk).free
        ballast.write_bytes(b"\0" * max(0, free - 96 * 1024))  # the rest of the disk is someone else's
        symbols = e.symbols
        i = 0
        while e.risk.state is not TradingState.HALTED and i < 3000:
            e.submit_intent(buy(e, symbols[i % 3], "200"))
            i += 1
            if i % 20 == 0:
                await asyncio.sleep(0.01)  # the fills come back, the journal writes, until it cannot
        await until(lambda: e.risk.state is TradingState.HALTED, timeout=30, what="the halt")
        assert "journal cannot write" in e.risk.state_reason
        [failed] = [a for a in alerts if a.code == "journal_failed"]
        assert failed.level is AlertLevel.EMERGENCY
        await until(lambda: not e.execution.inflight, what="the last submits")
        ballast.unlink()  # the operator frees space
        await until(lambda: e.journal.healthy and e.journal.flush(), timeout=30, what="the journal to catch up")
        venue_fills = {f.fill_id for f in await e.venue.fills_since(None)}
        journal_fills = {f.fill_id for f in e.journal.fills()}
        assert venue_fills and venue_fills <= journal_fills  # every fill the venue made is on disk
        assert e.risk.state is TradingState.HALTED  # recovery does not resume by itself
        await stop(e)

    asyncio.run(asyncio.wait_for(scenario(), 120))
