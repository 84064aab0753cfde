"""A headless engine in its own process, as a server runs it: started, and waited on until it serves."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from engine.app.control_files import read_endpoint
from engine.core.paths import AppPaths


def env_for(home: Path) -> dict[str, str]:
    env = {**os.environ, "TRADING_CONSOLE_HOME": str(home)}
    env.pop("DISPLAY", None)
    return env


def serve_headless(home: Path, *args: str, stdout: int = subprocess.DEVNULL) -> tuple[subprocess.Popen[str], AppPaths]:
    """`trading-console --headless --speed 20 ARGS`, returned once its endpoint file names this process."""
    proc = subprocess.Popen([sys.executable, "-m", "console", "--headless", "--speed", "20", *args],
                            env=env_for(home), stdout=stdout, stderr=subprocess.PIPE, text=True)  # fmt: skip
    paths = AppPaths(home / "config", home / "data", home / "logs")
    deadline = time.monotonic() + 60
    while (read_endpoint(paths) or {}).get("pid") != proc.pid:  # a killed engine's file may still be there
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the headless engine never served"
        time.sleep(0.1)
    return proc, paths
