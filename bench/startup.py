"""Start-up time: process start to the first painted window, via `trading-console --smoke-test`.

From source by default (``python -m console``); ``--bundle`` times the PyInstaller bundle
``dist/trading-console/trading-console`` (or the executable given) the same way.

The child prints ``FIRST-PAINT <epoch>`` when the window is first painted; the
figure is that moment minus the moment just before the process was spawned.
Runs offscreen unless a display is set. The last line is a JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUNDLE_EXE = ROOT / "dist" / "trading-console" / "trading-console"


def one_run(command: list[str]) -> float:
    env = dict(os.environ)
    env["TRADING_CONSOLE_HOME"] = tempfile.mkdtemp(prefix="tc-startup-")
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    t0 = time.time()
    proc = subprocess.Popen(
        [*command, "--smoke-test"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    painted: float | None = None
    ok = False
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("FIRST-PAINT") and painted is None:
            painted = float(line.split()[1])
        elif line.strip() == "SMOKE-TEST OK":
            ok = True
    rc = proc.wait(timeout=60)
    if painted is None or not ok or rc != 0:
        raise SystemExit(f"smoke test failed: rc={rc} painted={painted} ok={ok}")
    return painted - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--bundle", nargs="?", const=str(BUNDLE_EXE), metavar="EXE",
                   help=f"time the built bundle (default {BUNDLE_EXE.relative_to(ROOT)}) instead of the source tree")
    args = p.parse_args()
    if args.bundle:
        exe = Path(args.bundle).resolve()
        if not exe.is_file():
            raise SystemExit(f"{exe} does not exist: run make installer first")
        command = [str(exe)]
    else:
        command = [sys.executable, "-m", "console"]
    runs = [one_run(command) for _ in range(args.runs)]
    for i, r in enumerate(runs, 1):
        print(f"run {i}: first paint after {r:.3f} s")
    mode = "bundle" if args.bundle else "source"
    print(json.dumps({"wall_s": round(statistics.median(runs), 3), "runs": [round(r, 3) for r in runs], "mode": mode}))


if __name__ == "__main__":
    main()
