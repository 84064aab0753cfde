"""EMERGENCY STOP reaches the engine with any dialog of the app open (issue 13).

For every dialog the console can show, opened the way the app opens it (``open()``/``show()``,
never ``exec()``), each of F12, Ctrl+Shift+X and a click on the main window's EMERGENCY STOP
must take a real engine (simulated venue, qasync, offscreen) from ACTIVE to HALTED. Keys and
clicks go in through the window system layer (``QTest`` on the ``QWindow``), where Qt drops
input to windows a modal dialog blocks, so a blocked button would fail here as it fails for
an operator. Between the three, trading is resumed through the OperatorAPI.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import shiboken6
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractButton, QApplication, QDialog, QFileDialog, QMessageBox, QWidget

from console.app import build_window
from console.bridge import EngineBridge
from console.close_policy import QuitDialog
from console.main_window import MainWindow
from console.stop_guard import wizard_stop_button
from console.wizard import ActivationWizard
from engine.app.factory import RunOptions, build_engine
from engine.app.kernel import Engine
from engine.core.config import Settings
from engine.core.model import OrderIntent, Side, TradingState
from engine.core.paths import app_paths
from tests.qt_loop import qasync_loop, until
from widgets.approval_dialog import ApprovalDialog
from widgets.dialogs import CloseAllDialog, PullStopsDialog, ResumeDialog
from widgets.theme import apply_theme

pytestmark = [pytest.mark.gui, pytest.mark.timeout(120)]
Runner = Callable[[Coroutine[Any, Any, Any]], Any]
CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


@pytest.fixture
def run(qapp: QApplication, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runner]:
    monkeypatch.setenv("TRADING_CONSOLE_HOME", str(tmp_path / "home"))
    apply_theme(qapp, "dark")
    qapp.setQuitOnLastWindowClosed(False)
    with qasync_loop(qapp) as runner:
        yield runner


@asynccontextmanager
async def console(tmp_path: Path, approvals: str | None = None) -> AsyncIterator[tuple[Engine, MainWindow]]:
    settings = Settings()
    if approvals is not None:
        settings.approvals.policy = approvals  # type: ignore[assignment]
        settings.approvals.timeout_s = 600.0
    engine = build_engine(settings, app_paths(), RunOptions(seed=7, speed=5.0, with_strategy=False))
    store = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    window, bridge = build_window(engine, store)
    window.show()
    await engine.start()
    bridge.seed(engine)
    await until(lambda: len(engine.ticks) == len(engine.symbols), "prices for every symbol")
    try:
        yield engine, window
    finally:
        for w in QApplication.topLevelWidgets():
            if isinstance(w, QDialog) and w.isVisible():
                w.close()
        await engine.shutdown("keep")
        _detach(bridge)
        engine.journal.close()
        window.finish_close()
        shiboken6.delete(window)


def _detach(bridge: EngineBridge) -> None:
    bridge.detach()


def open_long(engine: Engine, symbol: str, qty: str = "0.01") -> None:
    last = engine.ticks[symbol].last
    intent = OrderIntent(symbol=symbol, side=Side.BUY, qty=Decimal(qty), stop_loss=last * Decimal("0.9"),
                         reason="test")  # fmt: skip
    assert engine.submit_intent(intent) is not None


# ---- input as the window system delivers it (a modal dialog would swallow it) ------------------------
def press(widget: QWidget, key: Qt.Key, modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    QTest.keyClick(widget.window().windowHandle(), key, modifiers)


def click(button: QAbstractButton) -> None:
    top = button.window()
    QTest.mouseClick(top.windowHandle(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     button.mapTo(top, button.rect().center()))  # fmt: skip


async def deliver(act: Callable[[], None], engine: Engine) -> TradingState:
    """Run ``act`` from a plain loop callback and return the state right after it, with no await between.

    Window-system input is delivered synchronously and Qt processes events while it does; inside a
    running asyncio task that would re-enter the loop, so the input is sent from outside any task.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[TradingState] = loop.create_future()

    def fire() -> None:
        try:
            act()
            done.set_result(engine.risk.state)
        except BaseException as exc:  # surfaced in the test, not lost in the loop's handler
            done.set_exception(exc)

    loop.call_soon(fire)
    return await done


def resume(engine: Engine, window: MainWindow) -> None:
    result = window.operator_actions.api.resume("test: try the next way in", "tester")
    assert result.ok, result.message
    assert engine.risk.state is TradingState.ACTIVE


async def stops_every_way(engine: Engine, window: MainWindow, dialog: QWidget) -> None:
    """F12 and Ctrl+Shift+X into the open dialog, a click on the main window's button, F12 there."""
    assert dialog.isVisible()
    assert QApplication.modalWindow() is None, "a modal dialog blocks the main window"
    ways: list[tuple[str, Callable[[], None]]] = [
        ("F12 in the dialog", lambda: press(dialog, Qt.Key.Key_F12)),
        ("Ctrl+Shift+X in the dialog", lambda: press(dialog, Qt.Key.Key_X, CTRL_SHIFT)),
        ("click on EMERGENCY STOP", lambda: click(window.big_buttons.emergency_button)),
        ("F12 in the main window", lambda: press(window, Qt.Key.Key_F12)),
    ]
    for what, act in ways:
        if engine.risk.state is not TradingState.ACTIVE:
            resume(engine, window)
        assert dialog.isVisible(), f"the dialog closed before {what}"
        # HALTED right after the input: the handler itself halted the engine
        assert await deliver(act, engine) is TradingState.HALTED, what
        assert "EMERGENCY STOP" in engine.risk.state_reason, what
        assert window.top_bar.badge.state == "HALTED", what
        await asyncio.sleep(0.05)  # let this stop's cancel task start before the next resume


async def own_button_stops(engine: Engine, window: MainWindow, button: QAbstractButton) -> None:
    """The dialog's own EMERGENCY STOP, for when the dialog covers the main one."""
    resume(engine, window)
    assert button.isVisible() and "EMERGENCY STOP" in button.text()
    assert await deliver(lambda: click(button), engine) is TradingState.HALTED


def test_through_the_activation_wizard(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            wizard = window.wizard.open()
            assert isinstance(wizard, ActivationWizard)
            await stops_every_way(engine, window, wizard)
            button = wizard_stop_button(wizard)
            assert isinstance(button, QAbstractButton)
            await own_button_stops(engine, window, button)

    run(scenario())


def test_through_the_close_all_confirmation(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            open_long(engine, engine.symbols[0])
            await until(lambda: engine.portfolio.open_count() == 1, "an open position")
            window.big_buttons.close_all_button.click()
            dlg = window.close_all_dialog
            assert isinstance(dlg, CloseAllDialog)
            await stops_every_way(engine, window, dlg)
            await own_button_stops(engine, window, dlg.stop_button)
            assert engine.portfolio.open_count() == 1  # stopping is not closing

    run(scenario())


def test_through_the_quit_dialog(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            open_long(engine, engine.symbols[0])
            await until(lambda: engine.portfolio.open_count() == 1, "an open position")
            chosen: list[str] = []
            window.shutdownRequested.connect(chosen.append)
            window.close()
            dlg = window.message_box
            assert isinstance(dlg, QuitDialog)
            await stops_every_way(engine, window, dlg)
            await own_button_stops(engine, window, dlg.stop_button)
            assert chosen == [] and window.isVisible()  # stopping is not quitting

    run(scenario())


def test_through_the_export_file_dialog(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            view = window.performance.view
            view.request_export_trades()
            dlg = view.file_dialog
            assert isinstance(dlg, QFileDialog) and dlg.isVisible()
            assert QApplication.testAttribute(Qt.ApplicationAttribute.AA_DontUseNativeDialogs)
            await stops_every_way(engine, window, dlg)

    run(scenario())


def test_through_an_approval_request(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path, approvals="all") as (engine, window):
            last = engine.ticks["BTC/USDT"].last
            intent = OrderIntent(symbol="BTC/USDT", side=Side.BUY, qty=Decimal("0.02"),
                                 stop_loss=last * Decimal("0.95"), reason="EMA cross up")  # fmt: skip
            assert engine.submit_intent(intent) is None  # it waits for a human
            await until(lambda: window.approvals.dialog is not None, "the approval dialog")
            dlg = window.approvals.dialog
            assert isinstance(dlg, ApprovalDialog)
            await stops_every_way(engine, window, dlg)
            await own_button_stops(engine, window, dlg.stop_button)

    run(scenario())


def test_through_message_boxes(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            window._inform("Resume refused", "✖ Trading stays HALTED.")  # an error box
            box = window.message_box
            assert isinstance(box, QMessageBox)
            await stops_every_way(engine, window, box)
            box.close()
            resume(engine, window)
            open_long(engine, engine.symbols[0])
            await until(lambda: window.positions.row(engine.symbols[0]) is not None, "the position row")
            window.request_close_position(engine.symbols[0])  # the close-one-position question
            box = window.message_box
            assert isinstance(box, QMessageBox) and box is not None
            await stops_every_way(engine, window, box)

    run(scenario())


def test_through_the_resume_dialog(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            window.emergency_stop()
            window.big_buttons.resume_button.click()
            dlg = window.resume_dialog
            assert isinstance(dlg, ResumeDialog)
            resume(engine, window)  # ACTIVE again with the dialog still open
            await stops_every_way(engine, window, dlg)
            await own_button_stops(engine, window, dlg.stop_button)

    run(scenario())


def test_through_the_pull_stops_confirmation(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            window.big_buttons.pull_stops_button.click()
            dlg = window.operator_actions.pull_stops_dialog
            assert isinstance(dlg, PullStopsDialog)
            await stops_every_way(engine, window, dlg)

    run(scenario())


def test_typing_x_or_ctrl_x_in_a_dialog_is_not_a_stop(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            wizard = window.wizard.open()
            for mods in (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.ControlModifier,
                         Qt.KeyboardModifier.ShiftModifier):  # a letter, cut, a capital  # fmt: skip
                assert await deliver(lambda m=mods: press(wizard, Qt.Key.Key_X, m), engine) is TradingState.ACTIVE
            assert window.operator_actions.stops == 0

    run(scenario())


def test_through_the_help_about_files_and_disclosure_dialogs(run: Runner, tmp_path: Path) -> None:
    from console import menus

    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            for show in (menus.show_help, menus.show_about, menus.show_files, menus.show_disclosure):
                if engine.risk.state is not TradingState.ACTIVE:
                    resume(engine, window)
                dlg = show(window)
                await stops_every_way(engine, window, dlg)
                dlg.close()

    run(scenario())
