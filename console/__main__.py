"""`trading-console`: the window, the headless engine, and the journal commands."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from engine.config import ConfigError, load_settings
from engine.paths import app_paths


def _speed(value: str) -> float | str:
    if value == "max":
        return "max"
    try:
        f = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number or 'max'") from None
    if f <= 0:
        raise argparse.ArgumentTypeError("speed must be greater than 0")
    return f


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trading-console", description=__doc__)
    p.add_argument("--headless", action="store_true", help="run the engine without a window")
    p.add_argument("--duration", type=float, help="stop after this many seconds of engine time")
    p.add_argument("--speed", type=_speed, help="simulation speed: a factor of real time, or 'max'")
    p.add_argument("--seed", type=int, help="seed of the simulated market")
    p.add_argument("--smoke-test", action="store_true", help="build the window, run 2 s, exit 0")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command")
    rep = sub.add_parser("report", help="print the performance metrics from the journal")
    rep.add_argument("--section", choices=["trades", "drawdown", "all"], default="all")
    rep.add_argument("--json", action="store_true", help="one JSON object")
    aud = sub.add_parser("audit", help="the tamper-evident audit log")
    aud.add_argument("action", choices=["verify", "show"])
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    paths = app_paths()
    if args.command == "report":
        from console.cli import report

        return report(paths, args.section, args.json)
    if args.command == "audit":
        from console.cli import audit

        return audit(paths, args.action)
    try:
        settings = load_settings(paths.config_file)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    from engine.factory import RunOptions

    opts = RunOptions(seed=args.seed, speed=args.speed)
    if not args.headless:
        if _has_display() or args.smoke_test:
            try:
                from console.app import run_gui
            except ImportError:
                print("the window is not available in this build yet; running headless", file=sys.stderr)
            else:
                return run_gui(settings, paths, opts, smoke_test=args.smoke_test)
        else:
            print("no display available: running headless (set DISPLAY or WAYLAND_DISPLAY for the window)",
                  file=sys.stderr)
    from engine.headless import main_headless

    return main_headless(settings, paths, opts, args.duration)


def _has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                or os.environ.get("QT_QPA_PLATFORM") == "offscreen")


if __name__ == "__main__":
    sys.exit(main())
