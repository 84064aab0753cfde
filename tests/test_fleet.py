"""The fleet console attached to two real headless engines (separate processes, 127.0.0.1).

STOP ALL halts both and shows each acknowledgement; killing one engine (SIGKILL) raises
the dead-man alert and marks its data stale; each engine's own window is one click away.
Waits are condition polls on the running qasync loop (never qtbot.waitUntil).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from console.fleet import FleetWindow
from console.remote_client import ControlClient, Endpoint
from engine.app.control_files import read_endpoint, token_path
from engine.core.model import AlertLevel
from engine.core.paths import AppPaths
from tests.qt_loop import qasync_loop
from widgets.theme import apply_theme

pytestmark = [pytest.mark.gui, pytest.mark.timeout(180)]

Runner = Callable[[Coroutine[Any, Any, Any]], Any]


@pytest.fixture
def run(qapp: QApplication) -> Iterator[Runner]:
    apply_theme(qapp, "dark")
    with qasync_loop(qapp, timeout_s=150) as runner:
        yield runner


async def until(cond: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def headless(home: Path) -> tuple[subprocess.Popen[str], AppPaths]:
    env = {**os.environ, "TRADING_CONSOLE_HOME": str(home)}
    env.pop("DISPLAY", None)
    proc = subprocess.Popen([sys.executable, "-m", "console", "--headless", "--speed", "20", "--control-port", "0"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    return proc, AppPaths(home / "config", home / "data", home / "logs")


@pytest.fixture
def two_engines(tmp_path: Path) -> Iterator[list[tuple[subprocess.Popen[str], AppPaths]]]:
    engines = [headless(tmp_path / name) for name in ("alpha", "beta")]
    try:
        yield engines
    finally:
        for proc, _ in engines:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in engines:
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


async def served(paths: AppPaths, proc: subprocess.Popen[str]) -> Endpoint:
    await until(lambda: read_endpoint(paths) is not None or proc.poll() is not None, "the engine to serve", 60)
    assert proc.poll() is None, proc.communicate()
    return Endpoint.local(paths)


def test_fleet_shows_both_engines_stops_all_and_raises_the_dead_man_alarm(
    run: Runner, two_engines: list[tuple[subprocess.Popen[str], AppPaths]]
) -> None:
    async def scenario() -> None:
        endpoints = [await served(paths, proc) for proc, paths in two_engines]
        fleet = FleetWindow("alice", silent_after_s=2.0)
        fleet.show()
        try:
            fleet.attach(endpoints[0])
            fleet.request_attach()  # File → Attach to engine…, as the operator does it
            dlg = fleet.attach_dialog
            assert dlg.isVisible() and dlg.windowModality() == Qt.WindowModality.NonModal
            dlg.url.setText(endpoints[1].url)
            dlg.token_file.setText(str(token_path(two_engines[1][1])))
            dlg.try_accept()
            assert not dlg.isVisible() and endpoints[1].url in fleet.engines
            cards = fleet.strip.cards
            await until(lambda: len(cards) == 2 and all(r.live and r.state == "ACTIVE" for r in fleet.rows()),
                        "both engines live and ACTIVE")  # fmt: skip
            await until(lambda: all(r.equity is not None for r in fleet.rows()), "equity on both cards")
            assert "TOTAL" in fleet.strip.total_label.text() and "2 engines" in fleet.strip.total_label.text()

            fleet.request_attach()  # a dialog open changes nothing for STOP ALL
            fleet.strip.stop_all_button.click()
            assert set(fleet.acks.values()) == {"pending"}, "each engine's stop is pending until acknowledged"
            await until(lambda: set(fleet.acks.values()) == {"acknowledged"}, "both acknowledged")
            for ep in endpoints:  # the engines themselves say HALTED
                async with ControlClient(ep) as c:
                    assert (await c.status())["state"] == "HALTED"
            await until(lambda: all(r.state == "HALTED" for r in fleet.rows()), "both cards HALTED")
            assert all("STOP ALL acknowledged" in card.text for card in cards.values())
            fleet.attach_dialog.reject()

            window = fleet.open_engine_window(endpoints[0].url)  # one click from the strip
            assert window.isVisible() and not window.banner.isVisible()
            await until(lambda: window.top_bar.badge.state == "HALTED", "the engine's window shows HALTED")
            window.big_buttons.emergency_button.click()  # the window's own button says what became of it
            assert window.last_result["emergency_stop"] == "pending"
            await until(lambda: window.last_result["emergency_stop"] == "acknowledged", "the stop acknowledged")
            # the acknowledgement answers the command; the stop's progress arrives later on the stream
            await until(lambda: window.big_buttons.progress_result == "ok", "the stop's progress to finish")

            assert endpoints[1].url not in fleet.windows, "a window is made only when asked for"
            beta = fleet.engines[endpoints[1].url]
            snapshots = beta.snapshots
            beta.drop_link()  # a network blip: reconnect, and the snapshot replaces what was shown
            await until(lambda: beta.snapshots > snapshots and beta.connected, "beta reconnected with a new snapshot")

            if os.environ.get("FLEET_SCREENSHOT"):
                await asyncio.sleep(0.5)
                fleet.grab().save(os.environ["FLEET_SCREENSHOT"].replace(".png", "-live.png"))

            alpha_proc = two_engines[0][0]
            alpha_proc.kill()  # SIGKILL: no goodbye, no endpoint cleanup
            alpha_proc.wait(timeout=30)

            def silent_alarm() -> bool:
                rows = [fleet.alerts.alert(a) for a in fleet.alerts.visible_alert_ids()]
                return any(r and r["code"] == "engine_silent" and r["level"] == AlertLevel.CRITICAL for r in rows)

            await until(silent_alarm, "the dead-man alarm for the killed engine", timeout=20)
            row = {r.key: r for r in fleet.rows()}
            assert not row[endpoints[0].url].live and row[endpoints[1].url].live
            assert "data stale since" in cards[endpoints[0].url].text
            await until(lambda: window.banner.isVisible(), "the engine window's banner")
            assert window.banner.text().startswith("DISCONNECTED — data stale since ")
            assert "not live" in fleet.strip.total_label.text()
            window.big_buttons.emergency_button.click()  # to a dead engine: never shown as done
            assert window.last_result["emergency_stop"] == "pending"
            await until(lambda: window.last_result["emergency_stop"] == "failed", "the stop reported failed", 30)
            assert window.big_buttons.progress_result == "fail"
            assert "NOT acknowledged" in window.big_buttons.progress_message.text()
            if os.environ.get("FLEET_SCREENSHOT"):
                fleet.resize(1280, 560)
                await asyncio.sleep(0.5)
                assert fleet.grab().save(os.environ["FLEET_SCREENSHOT"])
                window.grab().save(os.environ["FLEET_SCREENSHOT"].replace(".png", "-engine.png"))
        finally:
            await fleet.detach_all()
            fleet.close()
            fleet.deleteLater()

    run(scenario())
