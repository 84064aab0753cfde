"""How runs end: a headless --speed max run prints a final summary; a screenshot is taken at its time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXE = [sys.executable, "-m", "console"]


def test_headless_speed_max_run_ends_with_a_final_summary(tmp_path: Path) -> None:
    env = {**os.environ, "TRADING_CONSOLE_HOME": str(tmp_path)}
    env.pop("DISPLAY", None)
    r = subprocess.run([*EXE, "--headless", "--speed", "max", "--duration", "3600", "--seed", "7"], env=env,
                       capture_output=True, text=True, timeout=240)  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "=== final summary ===" in out
    summary = out[out.index("=== final summary ===") :]
    for heading in ("Total return", "Max drawdown", "Fill rate"):  # the report's own figures, after the run
        assert heading in summary
