"""`trading-console`: the window, the headless engine, and the journal commands."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from engine.core.config import ConfigError, load_settings
from engine.core.paths import app_paths


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


class _PrintVersion(argparse.Action):
    """--version reads the package metadata only when asked (reading it costs ~15 ms at every start)."""

    def __call__(self, parser: argparse.ArgumentParser, *_args: object) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("trading-console")
        except PackageNotFoundError:  # a source tree that was never pip-installed
            found = "unknown"
        parser.exit(message=f"{parser.prog} {found}\n")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trading-console", description=__doc__)
    p.add_argument("--headless", action="store_true", help="run the engine without a window")
    p.add_argument("--duration", type=float, help="stop after this many seconds of engine time")
    p.add_argument("--speed", type=_speed, help="simulation speed: a factor of real time, or 'max'")
    p.add_argument("--seed", type=int, help="seed of the simulated market")
    p.add_argument("--smoke-test", action="store_true", help="build the window, run 2 s, exit 0")
    p.add_argument("--screenshot", metavar="PNG", help="save a picture of the window, then exit")
    p.add_argument("--screenshot-after", type=float, default=20.0, metavar="SECONDS")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--new-journal", action="store_true",
                   help="archive the current journal (into data/archive/) and start a new one: the explicit way "
                        "past a missing or damaged journal")  # fmt: skip
    p.add_argument("--version", action=_PrintVersion, nargs=0, help="print the version and exit")
    from console import control_cli  # status, halt, close-all, resume, watch, certs; --attach; the control server

    control_cli.add_top_level_options(p)
    sub = p.add_subparsers(dest="command")
    control_cli.add_commands(sub)
    rep = sub.add_parser("report", help="print the performance metrics from the journal")
    rep.add_argument("--section", choices=["trades", "drawdown", "all"], default="all")
    rep.add_argument("--json", action="store_true", help="one JSON object")
    summ = sub.add_parser("summary", help="the daily summary of a trading day, from the journal")
    summ.add_argument("--day", metavar="YYYY-MM-DD", help="the trading day (default: the journal's latest)")
    summ.add_argument("--json", action="store_true", help="one JSON object")
    aud = sub.add_parser("audit", help="the tamper-evident audit log")
    aud.add_argument("action", choices=["verify", "show"])
    stg = sub.add_parser("stage", help="the activation stage and the evidence for promotion")
    stg.add_argument("--json", action="store_true", help="one JSON object")
    apr = sub.add_parser("approvals", help="orders waiting for a human, for a headless engine")
    apr_sub = apr.add_subparsers(dest="approvals_action", required=True)
    apr_list = apr_sub.add_parser("list", help="pending requests")
    apr_list.add_argument("--json", action="store_true")
    control_cli.add_connection_options(apr_list, with_operator=False)
    for name in ("approve", "reject"):
        act = apr_sub.add_parser(name, help=f"{name} a pending request")
        act.add_argument("request_id")
        act.add_argument("--operator", default="", help="who decides (default: the login name)")
        act.add_argument("--wait", type=float, default=5.0, help="seconds to wait for the engine to apply it")
        control_cli.add_connection_options(act, with_operator=False)
        if name == "approve":
            act.add_argument("--qty", help="approve a smaller quantity (never a larger one)")
        else:
            act.add_argument("--reason", default="", help="why")
    sec = sub.add_parser("secrets", help="webhook URLs and SMTP passwords in the keyring, by name")
    sec_sub = sec.add_subparsers(dest="secrets_action", required=True)
    for name, text in (("set", "store a secret, read from a hidden prompt (or stdin)"), ("delete", "remove one")):
        sec_sub.add_parser(name, help=text).add_argument("name", help="the name the config refers to")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from engine.core.logfiles import setup_logging
    from engine.persistence.secrets import disable_core_dumps

    disable_core_dumps()  # before any key is read: a crash must not write it to a core file
    paths = app_paths()
    if args.command is None:  # the window or the engine: stderr and a rotating 0600 file, both redacted
        log_file = setup_logging(paths.log_file, verbose=args.verbose)
        logging.getLogger(__name__).info("trading-console starting; log file %s", log_file)
    else:  # a short command: its output is the answer, stderr is enough
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    from console import control_cli

    if args.command in control_cli.COMMANDS:
        return control_cli.run(args, paths)
    if args.command == "report":
        from console.cli import report

        return report(paths, args.section, args.json)
    if args.command == "summary":
        from console.cli import summary

        return summary(paths, args.day, args.json)
    if args.command == "audit":
        from console.cli import audit

        return audit(paths, args.action)
    if args.command == "stage":
        from console.cli import stage

        return stage(paths, args.json)
    if args.command == "secrets":
        from console.cli import secrets

        return secrets(paths, args.secrets_action, args.name)
    if args.command == "approvals":
        from console.cli import approvals

        served = control_cli.approvals(args, paths)  # through the running engine when one serves
        if served is not None:
            return served
        act = args.approvals_action
        if act == "list":
            return approvals(paths, "list", as_json=args.json)
        return approvals(
            paths,
            act,
            args.request_id,
            qty=getattr(args, "qty", None),
            reason=getattr(args, "reason", ""),
            operator=args.operator,
            wait_s=args.wait,
        )
    try:
        settings = load_settings(paths.config_file)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    from engine.app.factory import RunOptions

    opts = RunOptions(seed=args.seed, speed=args.speed, new_journal=args.new_journal)
    if args.attach:
        from console.fleet import run_fleet_gui

        return run_fleet_gui(args, paths, settings)
    if not args.headless:
        if _has_display() or args.smoke_test:
            try:
                from console.app import run_gui
            except ImportError:
                print("the window is not available in this build yet; running headless", file=sys.stderr)
            else:
                return run_gui(settings, paths, opts, smoke_test=args.smoke_test, screenshot=args.screenshot,
                               screenshot_after_s=args.screenshot_after if args.screenshot else None)
        else:
            print(
                "no display available: running headless (set DISPLAY or WAYLAND_DISPLAY for the window)",
                file=sys.stderr,
            )
    from engine.app.headless import main_headless

    control = control_cli.control_options_from(args, settings.control)
    code = main_headless(settings, paths, opts, args.duration, control=control)
    if code == 0 and paths.journal_file.exists():  # what the run did, once it has ended
        from console.cli import report

        print("\n=== final summary ===", flush=True)
        report(paths, "all", False)
    return code


def _has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(
        os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
        or os.environ.get("QT_QPA_PLATFORM") == "offscreen"
    )


if __name__ == "__main__":
    sys.exit(main())
