"""The windowed application: Qt and the engine on one asyncio loop (qasync).

``run_gui`` is called by ``console.__main__``. With ``smoke_test`` it builds the
window, runs the simulated venue for two seconds in a throw-away home and exits
0 (the installer check and the start-up benchmark use it). Screenshots for the
README: set TRADING_CONSOLE_SCREENSHOT=path (and optionally
TRADING_CONSOLE_SCREENSHOT_AFTER=seconds, default 20) or pass ``screenshot``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QSettings, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QWidget

from engine.app.factory import RunOptions
from engine.core.config import Settings
from engine.core.paths import AppPaths

if TYPE_CHECKING:
    from console.bridge import EngineBridge
    from console.main_window import MainWindow
    from engine.app.console_view import ConsoleEngine as Engine

log = logging.getLogger(__name__)

ORGANISATION = "TradingConsole"
APPLICATION = "trading-console"
FIRST_PAINT_MARKER = "FIRST-PAINT"
SMOKE_MARKER = "SMOKE-TEST OK"
SMOKE_SECONDS = 2.0


class _FirstPaint(QObject):
    """Prints a marker the first time the watched widget is painted (for bench/startup.py)."""

    def __init__(self, widget: QWidget) -> None:
        super().__init__(widget)
        self.widget = widget
        self.done = False
        widget.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if not self.done and event.type() == QEvent.Type.Paint:
            self.done = True
            print(f"{FIRST_PAINT_MARKER} {time.time():.6f}", flush=True)
            self.widget.removeEventFilter(self)
        return False


def make_app() -> QApplication:
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setDesktopFileName(APPLICATION)  # Wayland matches windows to trading-console.desktop by this
    app.setWindowIcon(app_icon())
    app.setQuitOnLastWindowClosed(False)  # the loop ends when the engine has shut down, not before
    # Qt's own dialogs, not the platform's: every dialog is a QDialog the stop guard can keep non-modal
    app.setAttribute(Qt.ApplicationAttribute.AA_DontUseNativeDialogs, True)
    return app


def app_icon() -> QIcon:
    """The application icon in every size shipped in resources/icons (empty if none is found)."""
    from widgets.theme import resources_dir

    icon = QIcon()
    for png in sorted((resources_dir() / "icons").glob(f"{APPLICATION}-*.png")):
        icon.addFile(str(png))
    return icon


def build_window(engine: Engine, store: QSettings) -> tuple[MainWindow, EngineBridge]:
    """The window and its bridge, wired; build it before ``engine.start()`` to see the first events."""
    from console.approvals_ui import ApprovalsController
    from console.bridge import EngineBridge
    from console.main_window import MainWindow
    from console.notify_desktop import install_desktop_notifier
    from console.stop_guard import StopGuard
    from console.wizard import WizardLauncher

    window = MainWindow(engine, store)
    bridge = EngineBridge(engine.bus, window, parent=window)
    # F12 / Ctrl+Shift+X in any window, dialogs non-modal: nothing on screen can block the stop
    app = QApplication.instance()
    if isinstance(app, QApplication):
        window.stop_guard = StopGuard.install(  # type: ignore[attr-defined]
            app, lambda source: window.operator_actions.emergency_stop(source), window
        )
    window.approvals = ApprovalsController(
        engine, window.approvals_panel, window,
        on_emergency_stop=lambda: window.operator_actions.emergency_stop("approval dialog"),
    )  # fmt: skip
    bridge.approvalChanged.connect(window.approvals.on_event)
    window.wizard = WizardLauncher(engine, window)
    window.wizard_action.triggered.connect(window.wizard.open)
    bridge.alertRaised.connect(window.on_alert)
    bridge.alertAcknowledged.connect(window.on_alert_acknowledged)
    window.desktop_notifier = install_desktop_notifier(window, bridge)  # type: ignore[attr-defined]  # tray, sound
    bridge.stateChanged.connect(window.on_state_changed)
    bridge.progressed.connect(window.on_progress)
    bridge.stageChanged.connect(window.on_stage_changed)
    return window, bridge


def settings_store(paths: AppPaths) -> QSettings:
    """Window layout and theme: the platform's store, or an ini file under TRADING_CONSOLE_HOME."""
    if os.environ.get("TRADING_CONSOLE_HOME"):
        paths.ensure()
        return QSettings(str(paths.config_dir / "layout.ini"), QSettings.Format.IniFormat)
    return QSettings()


def run_gui(
    settings: Settings,
    paths: AppPaths,
    opts: RunOptions,
    smoke_test: bool = False,
    screenshot: str | None = None,
    screenshot_after_s: float | None = None,
) -> int:
    import qasync

    from widgets.theme import apply_theme

    app = make_app()
    store = settings_store(paths)
    if smoke_test:
        # never touch the operator's journal, layout or venue: a throw-away home, the simulator
        root = Path(tempfile.mkdtemp(prefix="tc-smoke-"))
        paths = AppPaths(root / "config", root / "data", root / "logs")
        settings = settings.model_copy(deep=True)
        settings.engine.venue = "simulated"
        store = QSettings(str(root / "layout.ini"), QSettings.Format.IniFormat)
    theme = str(store.value("view/theme", "dark"))
    apply_theme(app, theme if theme in ("dark", "light") else "dark")
    screenshot = screenshot or os.environ.get("TRADING_CONSOLE_SCREENSHOT") or None
    if screenshot_after_s is None:
        screenshot_after_s = float(os.environ.get("TRADING_CONSOLE_SCREENSHOT_AFTER", "20"))
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    # plain threads for to_thread/run_in_executor: shut down cleanly before Qt goes away
    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tc-worker")
    loop.set_default_executor(executor)
    try:
        with loop:
            return loop.run_until_complete(
                run_window(settings, paths, opts, store, smoke_test, screenshot, screenshot_after_s)
            )
    except KeyboardInterrupt:
        return 130
    finally:
        executor.shutdown(wait=True)


async def run_window(
    settings: Settings,
    paths: AppPaths,
    opts: RunOptions,
    store: QSettings,
    smoke_test: bool = False,
    screenshot: str | None = None,
    screenshot_after_s: float = 20.0,
) -> int:
    from console.first_run import first_run_gate
    from console.unlock import ask_master_password, needs_unlock
    from engine.app.factory import build_engine

    # nothing is built, nothing reaches a venue, nothing trades until the operator has answered
    gate = await first_run_gate(settings, store, interactive=not (smoke_test or screenshot))
    if not gate.may_start:
        return 0
    settings = gate.settings
    if needs_unlock(settings, paths.data_dir):
        unlocked = await ask_master_password(settings, paths.data_dir)
        if unlocked is None:
            return 0
        opts.credentials = unlocked  # the venue reads its keys from this store (engine.app.factory)
    try:
        engine = build_engine(settings, paths, opts)
    except ValueError as exc:  # a config the stage refuses, missing credentials: said in one line, no traceback
        print(f"the engine cannot start: {exc}", file=sys.stderr)
        return 2
    gate.record(engine)
    window, bridge = build_window(engine, store)
    window.wizard.config_path = paths.config_file  # the wizard saves limits and the venue choice there
    _FirstPaint(window.top_bar.badge)
    window.show()

    closed = asyncio.get_running_loop().create_future()

    def shutdown_requested(policy: str) -> None:
        if not closed.done():
            closed.set_result(policy)

    window.shutdownRequested.connect(shutdown_requested)
    try:
        await engine.start()
    except Exception as exc:
        log.exception("engine start failed")
        print(f"the engine could not start: {exc}", file=sys.stderr)
        window.finish_close()
        engine.journal.close()
        return 1
    bridge.seed(engine)
    window.approvals.seed()
    window.show_state(engine.risk.state.value, engine.risk.state_reason)
    if not smoke_test and not screenshot:
        window.wizard.open_on_first_start()
    shot: asyncio.Task[None] | None = None
    if screenshot:
        shot = asyncio.create_task(_take_screenshot(window, screenshot, screenshot_after_s))
        # a screenshot run ends by itself, with the configured shutdown policy
        shot.add_done_callback(lambda _t: shutdown_requested(settings.engine.shutdown))
    policy: str | None = None
    try:
        if smoke_test:
            await asyncio.sleep(SMOKE_SECONDS)
            policy = settings.engine.shutdown
        else:
            stopped = asyncio.create_task(engine.stopped.wait())
            await asyncio.wait([closed, stopped], return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            policy = closed.result() if closed.done() else None
    finally:
        if shot is not None and not shot.done():
            shot.cancel()
        await engine.shutdown(policy)
        bridge.detach()
        engine.journal.close()
        window.finish_close()
    if smoke_test:
        print(SMOKE_MARKER, flush=True)
    return 0


async def _take_screenshot(window: MainWindow, path: str, after_s: float) -> None:
    # after_s seconds of wall time, not more: the picture used to wait up to 60 s longer for a position
    # (94 s for --screenshot-after 30); the charts get their last redraw inside the same budget
    await asyncio.sleep(max(0.0, after_s - 0.3))
    window.equity_chart.flush()
    await asyncio.sleep(0.3)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(path)
    print(f"screenshot {'saved to' if ok else 'FAILED:'} {path}", flush=True)
