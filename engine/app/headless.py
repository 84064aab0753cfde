"""Run the engine without a window: status lines on stdout, clean shutdown on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time

from engine.app.control_setup import ControlOptions, ControlServerError, start_control
from engine.app.factory import CredentialsMissing, RunOptions, build_engine
from engine.app.kernel import Engine
from engine.app.snapshot import status_line
from engine.core.config import ConfigError, Settings
from engine.core.paths import AppPaths
from engine.persistence.errors import JournalError

# Exit codes of a headless run (journal errors carry their own, 20-28; see engine/persistence/errors.py)
EXIT_CONFIG = 2
EXIT_CREDENTIALS = 10
EXIT_JOURNAL_LOST = 29


async def run_headless(
    settings: Settings,
    paths: AppPaths,
    opts: RunOptions,
    duration_s: float | None,
    status_every_s: float = 5.0,
    control: ControlOptions | None = None,
) -> int:
    try:
        engine = build_engine(settings, paths, opts)
    except ConfigError as exc:  # a venue mode the stage refuses, a missing venue section: one line, no traceback
        print(f"configuration error: {exc}", file=sys.stderr, flush=True)
        return EXIT_CONFIG
    except JournalError as exc:  # missing, empty, damaged, read-only or full journal: each its own code
        print(f"journal error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except CredentialsMissing as exc:
        print(f"credentials: {exc}", file=sys.stderr, flush=True)
        return EXIT_CREDENTIALS
    try:  # serve before touching the venue: a bad bind is reported before anything trades
        served = await start_control(engine, paths, control or ControlOptions())
    except ControlServerError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        engine.journal.close()
        return 2
    loop = asyncio.get_running_loop()
    stop_reason: list[str] = []

    def on_signal(name: str) -> None:
        stop_reason.append(name)
        engine.stopped.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal, sig.name)
    try:
        await engine.start()
    except BaseException:
        await served.stop()  # no endpoint file left pointing at an engine that never ran
        raise
    why = f" ({engine.risk.state_reason})" if engine.risk.state_reason else ""
    print(
        f"trading-console headless: {engine.venue.name} ({engine.venue.mode}), state {engine.risk.state.value}{why}, "
        f"journal {paths.journal_file}",
        flush=True,
    )
    if served.server is not None:
        print(f"control API on {served.server.url} (`trading-console status`, `halt`, `--attach`)", flush=True)
    status = asyncio.create_task(_print_status(engine, status_every_s))
    try:
        await engine.run(duration_s)
    finally:
        status.cancel()
        if stop_reason:
            print(f"received {stop_reason[0]}: shutting down ({settings.engine.shutdown})", flush=True)
        await served.stop()
        await engine.shutdown()
        print(status_line(engine), flush=True)
        lost = engine.journal.close()
    if lost:  # SIGTERM exits 0 only when everything reached the disk
        what = ", ".join(f"{n} {kind} rows" for kind, n in sorted(lost.items()))
        print(f"journal: NOT everything was written ({what}); see the log", file=sys.stderr, flush=True)
        return EXIT_JOURNAL_LOST
    return 0


async def _print_status(engine: Engine, every_s: float) -> None:
    next_at = time.monotonic()
    while True:
        await asyncio.sleep(min(every_s, 0.5))
        if time.monotonic() >= next_at:
            print(status_line(engine), flush=True)
            next_at = time.monotonic() + every_s


def main_headless(
    settings: Settings, paths: AppPaths, opts: RunOptions, duration_s: float | None,
    control: ControlOptions | None = None,
) -> int:  # fmt: skip
    try:
        return asyncio.run(run_headless(settings, paths, opts, duration_s, control=control))
    except KeyboardInterrupt:
        return 130
    finally:
        sys.stdout.flush()
