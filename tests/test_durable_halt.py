"""The halt is on disk when emergency_stop() returns: SIGKILL 0 ms later, every restart is HALTED.

Before, the halt went through the journal's writer queue: killed right after the command
returned, the engine restarted ACTIVE 4 times in 4.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

from engine.core.model import TradingState
from tests.engine_rig import make_engine, started, stop

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 20


def _kill_after_halt(home: Path) -> int:
    child = subprocess.run([sys.executable, "-m", "tests.children.halt_then_die", str(home)], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    return child.returncode


def test_sigkill_the_instant_emergency_stop_returns_restarts_halted_every_time(tmp_path: Path) -> None:
    for i in range(ROUNDS):
        home = tmp_path / f"round{i}"
        home.mkdir()
        assert _kill_after_halt(home) == -signal.SIGKILL

        async def restart(h: Path = home) -> tuple[TradingState, str]:
            e = await started(make_engine(h))
            try:
                return e.risk.state, e.risk.state_reason
            finally:
                await stop(e)

        state, reason = asyncio.run(restart())
        assert state is TradingState.HALTED, f"round {i}: restarted {state.value}"
        assert "kill test" in reason
