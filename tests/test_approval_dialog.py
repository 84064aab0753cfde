"""Approvals on screen, driven by a real engine on the simulated venue under qasync (offscreen).

Waits are condition polls with deadlines on the running loop; qtbot.waitUntil would spin a
nested Qt loop inside qasync.
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
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QMessageBox

from console.app import build_window
from console.main_window import MainWindow
from engine.app.factory import RunOptions, build_engine
from engine.app.kernel import Engine
from engine.core.config import Settings
from engine.core.model import OrderIntent, Side, TradingState
from engine.core.paths import app_paths
from tests.qt_loop import qasync_loop, until
from widgets.approval_dialog import ApprovalDialog, countdown_text
from widgets.theme import apply_theme

pytestmark = pytest.mark.timeout(120)
Runner = Callable[[Coroutine[Any, Any, Any]], Any]


@pytest.fixture
def run(qapp: QApplication, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runner]:
    monkeypatch.setenv("TRADING_CONSOLE_HOME", str(tmp_path / "home"))
    apply_theme(qapp, "dark")
    qapp.setQuitOnLastWindowClosed(False)  # as the application does (console.app.make_app)
    with qasync_loop(qapp) as runner:
        yield runner


@asynccontextmanager
async def console(
    tmp_path: Path, timeout_s: float = 600.0, speed: float = 5.0
) -> AsyncIterator[tuple[Engine, MainWindow]]:
    settings = Settings()
    settings.approvals.policy = "all"
    settings.approvals.timeout_s = timeout_s
    engine = build_engine(settings, app_paths(), RunOptions(seed=7, speed=speed, with_strategy=False))
    store = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    window, bridge = build_window(engine, store)
    window.show()
    await engine.start()
    bridge.seed(engine)
    await until(lambda: len(engine.ticks) == len(engine.symbols), "prices for every symbol")
    try:
        yield engine, window
    finally:
        box = window.approvals.message_box
        if box is not None:
            box.close()
        await engine.shutdown("keep")
        bridge.detach()
        engine.journal.close()
        window.finish_close()
        shiboken6.delete(window)  # now, while the loop runs; a later GC would delete it mid-way through another test


def ask(engine: Engine, symbol: str, qty: str, reason: str = "EMA cross up") -> None:
    last = engine.ticks[symbol].last
    intent = OrderIntent(symbol=symbol, side=Side.BUY, qty=Decimal(qty), stop_loss=last * Decimal("0.95"),
                         reason=reason, strategy="ema_cross")  # fmt: skip
    assert engine.submit_intent(intent) is None  # it waits for a human


def dialog_of(window: MainWindow) -> ApprovalDialog:
    dlg = window.approvals.dialog
    assert dlg is not None and dlg.isVisible()
    return dlg


def statuses(engine: Engine) -> list[str]:
    engine.journal.flush()
    return [r.status for r in engine.journal.approvals()]


def test_dialog_shows_the_request_and_approve_places_the_order(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            ask(engine, "BTC/USDT", "0.02")
            await until(lambda: window.approvals.dialog is not None, "the approval dialog")
            dlg = dialog_of(window)
            assert window.approvals_panel.row_count() == 1
            text = {k: lbl.text() for k, lbl in dlg.fields.items()}
            assert text["symbol"] == "BTC/USDT" and text["side"] == "BUY"
            assert text["qty"].startswith("0.02")
            assert "% of equity" in text["equity_share"] and "from price" in text["stop_loss"]
            assert text["reason"] == "EMA cross up"
            assert "✔" in dlg.checks_label.text()
            assert dlg.countdown_label.text() in ("10:00", "9:59", "9:58")
            dlg.approve_button.click()
            assert not dlg.isVisible()  # the engine decided inside the click; the event closed it
            assert window.approvals_panel.row_count() == 0 and window.approvals.dialog is None
            await until(lambda: engine.portfolio.qty("BTC/USDT") == Decimal("0.02"), "the approved position")
            assert "approved" in statuses(engine)

    run(scenario())


def test_reject_with_reason_places_nothing(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            ask(engine, "ETH/USDT", "0.5")
            await until(lambda: window.approvals.dialog is not None, "the approval dialog")
            dlg = dialog_of(window)
            dlg.reason_edit.setText("spread too wide")
            dlg.reject_button.click()
            assert not dlg.isVisible() and window.approvals_panel.row_count() == 0
            assert engine.approval_gate.pending() == []
            engine.journal.flush()
            rec = [r for r in engine.journal.approvals() if r.status == "rejected"]
            assert rec and rec[-1].details["decision_reason"] == "spread too wide"
            assert rec[-1].operator == engine.settings.engine.operator
            assert engine.portfolio.qty("ETH/USDT") == 0

    run(scenario())


def test_approve_a_reduced_quantity_never_more(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            ask(engine, "BTC/USDT", "0.04")
            await until(lambda: window.approvals.dialog is not None, "the approval dialog")
            dlg = dialog_of(window)
            dlg.qty_spin.setValue(1.0)  # more than requested: the spin box holds it at the request
            assert dlg.reduced_qty() == Decimal("0.04")
            dlg.qty_spin.setValue(0.0)  # zero is out of (0, qty]
            assert dlg.reduced_qty() > 0
            dlg.qty_spin.setValue(0.01)
            dlg.reduced_button.click()
            assert not dlg.isVisible()
            await until(lambda: engine.portfolio.qty("BTC/USDT") == Decimal("0.01"), "the reduced position")

    run(scenario())


def test_countdown_reaching_zero_closes_the_dialog_and_the_engine_rejects(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        # the engine clock at real speed, so its deadline and the dialog's countdown agree
        async with console(tmp_path, timeout_s=2.5, speed=1.0) as (engine, window):
            ask(engine, "SOL/USDT", "5")
            await until(lambda: window.approvals.dialog is not None, "the approval dialog")
            dlg = dialog_of(window)
            first = dlg.countdown_label.text()
            await until(lambda: dlg.countdown_label.text() != first, "the countdown to tick", 5)
            await until(lambda: dlg.status != "pending", "the dialog to close at zero", 10)
            await until(lambda: engine.approval_gate.pending() == [], "the engine's timeout", 10)
            await until(lambda: window.approvals_panel.row_count() == 0, "the panel to empty", 5)
            assert "expired" in statuses(engine) and "approved" not in statuses(engine)
            assert engine.portfolio.qty("SOL/USDT") == 0  # a timeout rejects, never approves

    run(scenario())


def test_two_requests_queue_one_dialog_at_a_time(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            ask(engine, "BTC/USDT", "0.02")
            ask(engine, "ETH/USDT", "0.3")
            await until(lambda: window.approvals_panel.row_count() == 2, "both requests in the panel")
            first = dialog_of(window)
            assert first.details["symbol"] == "BTC/USDT"
            assert sum(isinstance(w, ApprovalDialog) and w.isVisible() for w in QApplication.topLevelWidgets()) <= 1
            first.reject_button.click()
            second = dialog_of(window)
            assert second is not first and second.details["symbol"] == "ETH/USDT"
            assert window.approvals_panel.row_count() == 1
            ask(engine, "SOL/USDT", "5")
            await until(lambda: window.approvals_panel.row_count() == 2, "a third request queued")
            assert dialog_of(window) is second  # a new request never replaces the one on screen
            window.approvals_panel.table.selectRow(1)  # picking a request in the panel shows that one
            third = dialog_of(window)
            assert third.details["symbol"] == "SOL/USDT" and not second.isVisible()
            third.reject_button.click()
            again = dialog_of(window)  # the one put aside comes back
            assert again.details["symbol"] == "ETH/USDT"
            again.approve_button.click()
            assert window.approvals.dialog is None and window.approvals_panel.row_count() == 0

    run(scenario())


def test_approval_after_a_halt_is_refused_and_says_so(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            ask(engine, "BTC/USDT", "0.02")
            await until(lambda: window.approvals.dialog is not None, "the approval dialog")
            dlg = dialog_of(window)
            window.big_buttons.emergency_button.click()
            assert engine.risk.state is TradingState.HALTED
            dlg.approve_button.click()
            assert not dlg.isVisible()
            box = window.approvals.message_box
            assert isinstance(box, QMessageBox) and box.isVisible()
            assert "HALTED" in box.text() and "refused" in box.text()
            assert "HALTED" in window.approvals_panel.message_label.text()
            assert window.approvals_panel.row_count() == 0
            assert "rejected" in statuses(engine) and "approved" not in statuses(engine)
            await asyncio.sleep(0.2)
            assert engine.portfolio.qty("BTC/USDT") == 0

    run(scenario())


def test_dialog_alone_countdown_and_bounds(qtbot: Any) -> None:
    details = {"request_id": "r1", "symbol": "BTC/USDT", "side": "sell", "qty": "0.123", "price": "50000",
               "notional": "6150", "equity_share": 0.0615, "equity": "100000", "stop_loss": "51500",
               "reason": "exit signal", "checks_passed": ["state", "max_position_notional"]}  # fmt: skip
    dlg = ApprovalDialog(details, 75)
    qtbot.addWidget(dlg)
    got: list[tuple[str, object]] = []
    dlg.approved.connect(lambda rid, qty: got.append((rid, qty)))
    dlg.rejected.connect(lambda rid, reason: got.append((rid, reason)))
    assert dlg.qty_spin.minimum() > 0 and dlg.qty_spin.maximum() == pytest.approx(0.123)
    assert dlg.fields["side"].text() == "SELL" and "6.15 % of equity" in dlg.fields["equity_share"].text()
    assert "+3.00 %" in dlg.fields["stop_loss"].text()
    dlg.approve_button.click()
    dlg.reject_button.click()
    assert got == [("r1", None), ("r1", "")]
    dlg.mark_resolved("approved")
    assert not dlg.isVisible() and not dlg.approve_button.isEnabled()
    assert countdown_text(75) == "1:15" and countdown_text(0.2) == "0:01" and countdown_text(0) == "0:00"
