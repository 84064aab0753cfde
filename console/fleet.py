"""The fleet: several attached engines in one window, STOP ALL across them, the dead-man alarm.

`trading-console --attach URL [--attach URL ...]` opens the fleet window; File → Attach to
engine… adds one (from the fleet window or the embedded console). Each engine is a
`RemoteEngine`; the strip shows its state, equity, day P&L and unacknowledged alerts, and
the total. STOP ALL sends an emergency stop to every engine at once and shows, per engine,
whether it was acknowledged, is still pending (retried with the same command id), or
failed. An engine that goes silent raises a CRITICAL alert in the fleet's alert feed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import uuid
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow, QVBoxLayout, QWidget

from console.deadman import DeadManMonitor
from console.remote_client import Endpoint, default_operator
from console.remote_engine import RemoteEngine
from console.remote_window import RemoteEngineWindow
from engine.core.events import AlertEvent
from widgets.alert_feed import AlertFeed
from widgets.fleet_strip import FleetRow, FleetStrip

if TYPE_CHECKING:
    from engine.core.config import Settings
    from engine.core.paths import AppPaths

log = logging.getLogger(__name__)

STOP_ALL_REASON = "STOP ALL pressed in the fleet console"
STOP_ALL_DEADLINE_S = 30.0  # keep resending (same command id) this long before calling it failed


class FleetWindow(QMainWindow):
    def __init__(self, operator: str = "", silent_after_s: float = 15.0, paths: AppPaths | None = None) -> None:
        super().__init__()
        self.setWindowTitle("Trading Console — fleet")
        self.resize(1280, 520)
        self.operator = operator or default_operator()
        self.paths = paths
        self.engines: dict[str, RemoteEngine] = {}
        self.windows: dict[str, RemoteEngineWindow] = {}
        self.acks: dict[str, str] = {}
        self.strip = FleetStrip()
        self.strip.stopAllRequested.connect(self.stop_all)
        self.strip.openRequested.connect(self.open_engine_window)
        self.alerts = AlertFeed()
        self.deadman = DeadManMonitor([], self._on_deadman, silent_after_s=silent_after_s)
        central = QWidget()
        v = QVBoxLayout(central)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(self.strip)
        v.addWidget(self.alerts, 1)
        self.setCentralWidget(central)
        self.attach_dialog: Any = None
        file_menu = self.menuBar().addMenu("&File")
        self.attach_action = QAction("Attach to engine…", self)
        self.attach_action.triggered.connect(self.request_attach)
        file_menu.addAction(self.attach_action)
        self._stop_tasks: set[asyncio.Task[Any]] = set()
        self._refresh = QTimer(self)
        self._refresh.setInterval(250)  # the strip's stale clocks and silence counters move even with no news
        self._refresh.timeout.connect(self.refresh)
        self._refresh.start()
        self._deadman_timer = QTimer(self)
        self._deadman_timer.setInterval(500)
        self._deadman_timer.timeout.connect(self.deadman.check)
        self._deadman_timer.start()

    # ---- engines ---------------------------------------------------------------------------------
    def attach(self, endpoint: Endpoint, name: str = "") -> RemoteEngine:
        if endpoint.url in self.engines:
            return self.engines[endpoint.url]
        remote = RemoteEngine(endpoint, operator=self.operator, name=name)
        remote.bus.subscribe(lambda ev, r=remote: self._engine_alert(r, ev), AlertEvent)
        self.engines[endpoint.url] = remote
        self.deadman.add(remote)
        remote.start()
        self.refresh()
        return remote

    async def detach_all(self) -> None:
        for window in self.windows.values():
            window.detach()
            window.deleteLater()
        self.windows.clear()
        for remote in self.engines.values():
            await remote.stop()
        self.engines.clear()

    def open_engine_window(self, url: str) -> RemoteEngineWindow:
        window = self.windows.get(url)
        if window is None:
            window = self.windows[url] = RemoteEngineWindow(self.engines[url], self.operator)
        window.show()
        window.raise_()
        window.activateWindow()
        return window

    def request_attach(self) -> None:
        from console.attach_dialog import AttachDialog

        dlg = AttachDialog(self)
        dlg.endpointChosen.connect(lambda ep: self.attach(ep))
        self.attach_dialog = dlg
        dlg.setModal(False)
        dlg.show()  # never open(): a window-modal dialog would stand between the operator and STOP ALL

    # ---- the strip ---------------------------------------------------------------------------------
    def rows(self) -> list[FleetRow]:
        out = []
        for url, r in self.engines.items():
            silent = url in self.deadman.silent
            note = "silent" if silent else ("" if r.connected else r.link)
            out.append(FleetRow(
                key=url, name=f"{r.name} · {_where(url)}", state=r.state,
                equity=r.figure("equity"), day_pnl=r.figure("day_pnl"),
                alerts=int(r.status.get("unacknowledged_alerts", 0)), live=r.connected and not silent,
                stale_since=r.stale_since(), link_note=note, ack=self.acks.get(url, ""),
            ))  # fmt: skip
        return out

    def refresh(self) -> None:
        self.strip.set_rows(self.rows())

    # ---- STOP ALL ------------------------------------------------------------------------------------
    def stop_all(self) -> None:
        """One click: an emergency stop to every engine at once, each acknowledged (or not) on its card."""
        loop = asyncio.get_running_loop()
        for url, remote in self.engines.items():
            self.acks[url] = "pending"
            task = loop.create_task(self._stop_one(url, remote))
            self._stop_tasks.add(task)
            task.add_done_callback(self._stop_tasks.discard)
        self.refresh()

    async def _stop_one(self, url: str, remote: RemoteEngine) -> None:
        cid = uuid.uuid4().hex  # one id per engine per press: resends execute once
        try:
            result = await remote.client.command("emergency_stop", operator=self.operator, command_id=cid,
                                                 deadline_s=STOP_ALL_DEADLINE_S, reason=STOP_ALL_REASON)  # fmt: skip
        except Exception as exc:
            self.acks[url] = f"failed: {exc}"[:160]
            self._raise("stop_all_failed", f"STOP ALL NOT acknowledged by {remote.name}: {exc}", 30)
        else:
            self.acks[url] = "acknowledged" if result.ok else f"failed: {result.message}"
            if result.ok:
                remote.status["state"] = str(result.details.get("state", remote.state))
        self.refresh()

    # ---- alerts --------------------------------------------------------------------------------------
    def _engine_alert(self, remote: RemoteEngine, ev: AlertEvent) -> None:
        text = f"[{remote.name} · {_where(remote.url)}] {ev.message}"
        self.alerts.add_alert(f"{remote.url}#{ev.alert_id}", ev.level, text, ev.ts, code=ev.code)

    def _on_deadman(self, ev: AlertEvent) -> None:
        self.alerts.add_alert(ev.alert_id, ev.level, ev.message, ev.ts, code=ev.code)
        self.refresh()

    def _raise(self, code: str, message: str, level: int) -> None:
        from datetime import UTC, datetime

        from engine.core.model import AlertLevel

        alert_id = f"{code}-{uuid.uuid4().hex[:8]}"
        self.alerts.add_alert(alert_id, AlertLevel(level), message, datetime.now(UTC), code=code)


def _where(url: str) -> str:
    """host:port, so two engines of the same venue are told apart on the strip."""
    return url.split("://", 1)[-1].rstrip("/")


_FLEET: FleetWindow | None = None


def fleet_window(operator: str = "", paths: AppPaths | None = None) -> FleetWindow:
    """The one fleet window of this process (File → Attach from any window adds to it)."""
    global _FLEET
    if _FLEET is None:
        _FLEET = FleetWindow(operator, paths=paths)
    return _FLEET


def connect_attach_action(window: Any) -> None:
    """Enable the embedded console's File → Attach to engine…: it opens the fleet and asks where."""
    action = getattr(window, "attach_action", None)
    if action is None:
        return
    action.setEnabled(True)
    action.setToolTip("Attach to an engine running elsewhere (a server, another process); opens the fleet window")

    def attach() -> None:
        fleet = fleet_window(getattr(window, "operator", ""))
        fleet.show()
        fleet.request_attach()

    action.triggered.connect(attach)


def _install_keyboard_stop(app: Any, fleet: FleetWindow) -> None:
    """F12 / Ctrl+Shift+X anywhere in a fleet-only process is STOP ALL (the embedded console keeps its own)."""
    try:
        from console.stop_guard import StopGuard
    except ImportError:  # pragma: no cover - a build without the guard: the button still works
        log.warning("no keyboard emergency stop in the fleet window: console.stop_guard is missing")
        return
    fleet.stop_guard = StopGuard.install(app, lambda _source: fleet.stop_all(), fleet)  # type: ignore[attr-defined]


def run_fleet_gui(args: argparse.Namespace, paths: AppPaths, settings: Settings) -> int:
    """`trading-console --attach URL ...`: the fleet window over engines this process did not start."""
    import sys

    import qasync

    from console.app import make_app, settings_store
    from console.control_cli import attach_endpoints
    from console.remote_client import RemoteError
    from widgets.theme import apply_theme

    try:
        endpoints = attach_endpoints(args, paths)
    except RemoteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if exc.kind == RemoteError.USAGE else 3
    app = make_app()
    app.setQuitOnLastWindowClosed(True)
    theme = str(settings_store(paths).value("view/theme", "dark"))
    apply_theme(app, theme if theme in ("dark", "light") else "dark")
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)

    async def main() -> int:
        fleet = fleet_window(settings.engine.operator if settings.engine.operator != "operator" else "", paths)
        fleet.deadman.silent_after_s = args.silent_after
        for ep in endpoints:
            fleet.attach(ep)
        _install_keyboard_stop(app, fleet)
        fleet.show()
        if len(endpoints) == 1:
            fleet.open_engine_window(endpoints[0].url)
        closed = asyncio.get_running_loop().create_future()
        app.lastWindowClosed.connect(lambda: closed.done() or closed.set_result(None))
        await closed
        await fleet.detach_all()
        return 0

    with loop:
        return loop.run_until_complete(main())
