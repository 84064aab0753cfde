"""The console window driven by a real engine on the simulated venue, under qasync, offscreen.

Waits are condition polls with deadlines on the running loop (``await asyncio.sleep``):
qtbot.waitUntil would spin a nested Qt loop inside qasync and deadlock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import shiboken6
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QColor
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDockWidget, QMessageBox

from console.app import build_window
from console.bridge import EngineBridge
from console.close_policy import QuitDialog
from console.main_window import MainWindow
from engine.app.factory import RunOptions, build_engine
from engine.app.kernel import Engine
from engine.core.config import Settings
from engine.core.model import OrderIntent, Side, TradingState
from engine.core.paths import app_paths
from tests.qt_loop import qasync_loop
from widgets.theme import apply_theme

pytestmark = pytest.mark.timeout(120)

Runner = Callable[[Coroutine[Any, Any, Any]], Any]


@pytest.fixture
def run(qapp: QApplication, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runner]:
    monkeypatch.setenv("TRADING_CONSOLE_HOME", str(tmp_path / "home"))
    apply_theme(qapp, "dark")
    with qasync_loop(qapp) as runner:
        yield runner


async def until(cond: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def console(
    tmp_path: Path, speed: float | str = "max", strategy: bool = True
) -> AsyncIterator[tuple[Engine, MainWindow, EngineBridge]]:
    settings = Settings()
    engine = build_engine(settings, app_paths(), RunOptions(seed=7, speed=speed, with_strategy=strategy))
    store = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    window, bridge = build_window(engine, store)
    window.show()
    await engine.start()
    bridge.seed(engine)
    try:
        yield engine, window, bridge
    finally:
        await engine.shutdown("keep")
        bridge.detach()
        engine.journal.close()
        window.finish_close()
        shiboken6.delete(window)  # now, on this thread: left to the GC, another thread could delete it


def open_long(engine: Engine, symbol: str, qty: str) -> None:
    last = engine.ticks[symbol].last
    intent = OrderIntent(
        symbol=symbol, side=Side.BUY, qty=Decimal(qty), stop_loss=last * Decimal("0.9"), reason="test"
    )
    assert engine.submit_intent(intent) is not None


def red_share(widget: Any) -> float:
    img = widget.grab().toImage()
    w, h = img.width(), img.height()
    pixels = [QColor(img.pixel(x, y)) for x in range(0, w, 3) for y in range(0, h, 3)]
    red = sum(1 for c in pixels if c.red() > 150 and c.green() < 90 and c.blue() < 90)
    return red / max(1, len(pixels))


def test_simulated_run_fills_tables_chart_and_gauges(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path, speed="max") as (engine, window, _bridge):
            await until(lambda: window.fills.row_count() > 0, "a fill in the fills table", 60)
            await until(lambda: len(window.equity_chart.equity_data()[0]) > 2, "equity points")
            await until(lambda: len(window.gauges.names()) >= 6, "the risk gauges")
            await until(lambda: len(window.price_chart.price_data()[0]) > 5, "prices on the chart")
            assert "—" not in window.top_bar.equity_label.text()
            assert window.top_bar.connection_health == "ok"
            assert window.gauges.gauge("daily_loss") is not None
            assert "limit" in window.gauges.gauge("daily_loss").toolTip().lower()
            # open positions in the engine show in the table (the strategy trades on its own)
            await until(
                lambda: {p.symbol for p in engine.portfolio.positions()}
                == set(window.positions.model.keys()),
                "positions table matches the book",
            )

    run(scenario())


def test_emergency_stop_halts_inside_the_click_and_badge_turns_red(
    run: Runner, qtbot: Any, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with console(tmp_path, speed=50, strategy=False) as (engine, window, _bridge):
            assert engine.risk.state is TradingState.ACTIVE
            assert window.top_bar.badge.state == "ACTIVE"
            qtbot.mouseClick(window.big_buttons.emergency_button, Qt.MouseButton.LeftButton)
            # no await since the click: the handler itself halted the engine
            assert engine.risk.state is TradingState.HALTED
            assert window.top_bar.badge.state == "HALTED"
            assert "HALTED" in window.top_bar.badge.text()
            assert red_share(window.top_bar.badge) > 0.3
            assert window.big_buttons.resume_button.isEnabled()
            await until(lambda: window.big_buttons.progress_result == "ok", "the venue confirms the stop")
            assert "none open" in window.big_buttons.progress_message.text()

    run(scenario())


def test_emergency_stop_keyboard_shortcut(run: Runner, qtbot: Any, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path, speed=50, strategy=False) as (engine, window, _bridge):
            window.activateWindow()
            await until(lambda: QApplication.activeWindow() is window, "the window to be active", 5)
            qtbot.keyClick(window.positions.view, Qt.Key.Key_F12)
            assert engine.risk.state is TradingState.HALTED
            assert window.top_bar.badge.state == "HALTED"

    run(scenario())


def test_close_all_shows_preview_and_flattens_only_after_confirmation(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path, speed=20, strategy=False) as (engine, window, _bridge):
            await until(lambda: len(engine.ticks) == len(engine.symbols), "prices for every symbol")
            sym = engine.symbols[0]
            open_long(engine, sym, "0.01")
            await until(lambda: window.positions.row(sym) is not None, "the position in the table")

            # cancel: nothing happens
            window.big_buttons.close_all_button.click()
            dlg = window.close_all_dialog
            assert dlg is not None and dlg.isVisible()
            assert dlg.table.rowCount() == 1 and dlg.table.item(0, 0).text() == sym
            assert dlg.pnl_label.text().strip() not in ("", "—")
            dlg.cancel_button.click()
            await asyncio.sleep(0.3)
            assert engine.portfolio.open_count() == 1
            assert engine.risk.state is TradingState.ACTIVE

            # confirm: flat and HALTED, progress shown until the venue confirms
            window.big_buttons.close_all_button.click()
            dlg = window.close_all_dialog
            assert dlg is not None
            dlg.close_button.click()
            assert engine.risk.state is TradingState.HALTED
            await until(lambda: engine.portfolio.open_count() == 0, "flat book")
            await until(lambda: window.positions.row_count() == 0, "empty positions table")
            await until(lambda: window.big_buttons.progress_result == "ok", "close-all finished")
            assert "flat" in window.big_buttons.progress_message.text()

    run(scenario())


def test_resume_refused_while_a_breaker_holds(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path, speed=1.0, strategy=False) as (engine, window, _bridge):
            for _ in range(engine.settings.risk.venue_error_burst):
                engine.breakers.on_venue_error(engine.clock.monotonic())
            assert engine.risk.state is TradingState.HALTED
            await until(lambda: window.top_bar.badge.state == "HALTED", "the state change on screen", 5)
            window.big_buttons.resume_button.click()
            dlg = window.resume_dialog
            assert dlg is not None and dlg.isVisible()
            assert dlg.refusal is not None and "Venue errors" in dlg.refusal_label.text()
            dlg.reason_edit.setText("checked the venue")
            assert not dlg.ok_button.isEnabled()
            # even if the dialog is bypassed, the engine refuses and the console says why
            window._resume_confirmed("checked the venue")
            box = window.message_box
            assert isinstance(box, QMessageBox) and box.isVisible()
            assert "Venue errors" in box.text()
            assert engine.risk.state is TradingState.HALTED
            box.close()
            dlg.reject()

    run(scenario())


def test_alert_appears_in_the_feed(run: Runner, tmp_path: Path) -> None:
    from engine.core.model import AlertLevel

    async def scenario() -> None:
        async with console(tmp_path, speed=50, strategy=False) as (engine, window, _bridge):
            engine.alert(AlertLevel.CRITICAL, "test_alert", "Something the operator must see")

            def messages() -> list[str]:
                return [r["message"] for r in window.alerts.model.records()]

            # queued to the window at once (never inside the engine's call stack), not on the next flush
            await until(lambda: "Something the operator must see" in messages(), "the alert in the feed", 5)
            assert window.alerts.unacknowledged_count >= 1

    run(scenario())


def test_layout_round_trips_through_qsettings(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path, speed=50, strategy=False) as (_engine, window, _bridge):
            host = window.dock_host
            host.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, window.docks["gauges"])
            window.docks["fills"].hide()
            window.positions.set_column_visible("stop_loss", False)
            window.set_theme("light")
            window.save_layout()

        async with console(tmp_path, speed=50, strategy=False) as (_engine, window, _bridge):
            host = window.dock_host
            assert host.dockWidgetArea(window.docks["gauges"]) == Qt.DockWidgetArea.BottomDockWidgetArea
            assert window.docks["fills"].isHidden()
            assert not window.positions.is_column_visible("stop_loss")
            assert window.store.value("view/theme") == "light"
            window.reset_layout_action.trigger()
            assert host.dockWidgetArea(window.docks["gauges"]) == Qt.DockWidgetArea.RightDockWidgetArea
            assert not window.docks["fills"].isHidden()
            # the top bar and the big buttons are never docks
            assert not isinstance(window.big_buttons.parent(), QDockWidget)
            assert window.big_buttons.isVisible() and window.top_bar.isVisible()
            window.set_theme("dark")

    run(scenario())


def test_closing_with_open_positions_keeps_protection_by_default_and_says_what_stays(
    run: Runner, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with console(tmp_path, speed=20, strategy=False) as (engine, window, _bridge):
            await until(lambda: len(engine.ticks) == len(engine.symbols), "prices for every symbol")
            open_long(engine, engine.symbols[0], "0.01")
            await until(lambda: engine.portfolio.open_count() == 1, "an open position")
            sym = engine.symbols[0]
            await until(lambda: engine.portfolio.positions()[0].protection in ("venue", "watched"), "protection")
            chosen: list[str] = []
            window.shutdownRequested.connect(chosen.append)
            window.close()
            box = window.message_box
            assert isinstance(box, QuitDialog) and box.isVisible() and window.isVisible()
            # Enter keeps the positions and their resting stops, whatever the configured policy
            default = box.default_button()
            assert default.objectName() == "policy_keep" and default.isDefault()
            assert "Quit, keep positions and their resting stops" in default.text()
            stays = box.stays_label.text()
            assert "1 open position stays open at the venue" in stays
            if engine.portfolio.positions()[0].protection == "venue":
                assert "1 resting stop-loss leg stays at the venue" in stays
            else:  # the venue holds no stop: the text must not pretend it does
                assert "No stop-loss order rests at the venue" in stays
                assert f"Only the engine watches the stop of {sym}" in stays
            assert "take-profits, time exits" in stays and "do not fire until you start it again" in stays
            assert "stop-loss leg" in box.buttons["cancel_all_orders"].text()  # the option says it pulls the stops
            box.stay_button.click()
            await until(lambda: not box.isVisible(), "the question closes")
            assert chosen == [] and window.isVisible()
            window.close()
            box = window.message_box
            assert isinstance(box, QuitDialog)
            QTest.keyClick(box.default_button(), Qt.Key.Key_Return)
            await until(lambda: chosen == ["keep"], "the keep policy")

    run(scenario())


def test_price_chart_follows_the_held_symbol_until_the_operator_picks_one(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path, speed=20, strategy=False) as (engine, window, _bridge):
            await until(lambda: len(engine.ticks) == len(engine.symbols), "prices for every symbol")
            first, second, third = engine.symbols[:3]
            await until(lambda: window.price_chart.symbol() == first, "the chart on the first symbol")
            open_long(engine, second, "0.1")
            await until(lambda: window.price_chart.symbol() == second, "the chart on the held symbol")
            assert window.docks["price"].windowTitle() == f"Price — {second}"
            open_long(engine, third, "1")
            await until(lambda: window.positions.row(third) is not None, "the second position in the table")
            assert window.price_chart.symbol() == second  # a chart already on a held symbol stays put
            assert engine.api.close_position(second, "test", "tester").ok
            await until(lambda: window.price_chart.symbol() == third, "the chart on what is still held")
            # five orders went out just now (two entries, their stop legs, the close): at speed 20 the next
            # entry, its stop leg and its close can land inside the same engine-clock second and be refused
            # by the order-rate rule (5 a second), so the window empties first
            await until(lambda: engine.risk.orders_last_second(engine.clock.monotonic()) == 0, "an empty order window")
            open_long(engine, first, "0.01")
            await until(lambda: window.positions.row(first) is not None, "the first symbol held too")
            row = window.positions.keys_in_view_order().index(first)
            window.positions.view.setCurrentIndex(window.positions.proxy.index(row, 0))  # the operator picks it
            await until(lambda: window.price_chart.symbol() == first, "the operator's pick on the chart")
            assert engine.api.close_position(first, "test", "tester").ok
            await until(lambda: window.positions.row(first) is None, "the pick closed")
            # the table's selection moves to a remaining row, and the chart with it: still something held
            await until(lambda: window.price_chart.symbol() == third, "the chart on the row now selected")
            assert window.positions.view.currentIndex().isValid()

    run(scenario())
