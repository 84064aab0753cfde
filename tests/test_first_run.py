"""A first run that makes sense: nothing trades before the disclosure is answered; the wizard refuses,
on the page and with the reason, every choice that would give a config the next start refuses, and
saves nothing then; the master password of the credential file is asked at start, in a dialog.

A real engine on the simulated venue under qasync, offscreen; keyring's fail backend (credentials go
to the encrypted file under the test home); no network.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import keyring
import pytest
import shiboken6
from keyring.backends import fail
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QWizard

from console.app import build_window
from console.first_run import ACCEPTED, CHOICE_KEY, DEMO, QUIT, FirstRunDialog, first_run_gate
from console.main_window import MainWindow
from console.unlock import MasterPasswordDialog, ask_master_password, needs_unlock
from console.wizard import DISMISSED_KEY, ActivationWizard
from console.wizard_common import Page
from engine.app.factory import RunOptions, build_engine
from engine.app.kernel import Engine
from engine.core.config import Settings, load_settings
from engine.core.paths import app_paths
from engine.core.stage_venues import check_stage_allows
from engine.persistence.secrets import CredentialStore
from tests.qt_loop import qasync_loop, until
from widgets.theme import apply_theme

pytestmark = [pytest.mark.gui, pytest.mark.timeout(120)]
Runner = Callable[[Coroutine[Any, Any, Any]], Any]
NEXT = QWizard.WizardButton.NextButton
FINISH = QWizard.WizardButton.FinishButton


@pytest.fixture
def run(qapp: QApplication, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runner]:
    monkeypatch.setenv("TRADING_CONSOLE_HOME", str(tmp_path / "home"))
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # never the developer's real keyring
    apply_theme(qapp, "dark")
    qapp.setQuitOnLastWindowClosed(False)
    with qasync_loop(qapp) as runner:
        yield runner
    keyring.set_keyring(before)


@asynccontextmanager
async def console(tmp_path: Path, settings: Settings | None = None) -> AsyncIterator[tuple[Engine, MainWindow]]:
    engine = build_engine(settings or Settings(), app_paths(), RunOptions(seed=7, speed=5, with_strategy=False))
    store = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    window, bridge = build_window(engine, store)
    window.wizard.config_path = app_paths().config_file
    window.show()
    await engine.start()
    try:
        yield engine, window
    finally:
        wiz = window.wizard.wizard
        if wiz is not None:
            wiz.reject()
        await engine.shutdown("keep")
        bridge.detach()
        engine.journal.close()
        window.finish_close()
        shiboken6.delete(window)


def pick(wiz: ActivationWizard, venue: str, mode: str) -> None:
    combo = wiz.venue_page.combo
    combo.setCurrentIndex(next(i for i in range(combo.count()) if combo.itemData(i) == (venue, mode)))


def to_venue_page(wiz: ActivationWizard) -> None:
    wiz.welcome_page.ack.setChecked(True)
    wiz.next()
    assert wiz.currentId() == Page.VENUE


def config_written() -> bool:
    return app_paths().config_file.exists()


# ---- the first-run gate ---------------------------------------------------------------------------


def store_in(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)


async def answer(gate: asyncio.Task[Any], click: Callable[[FirstRunDialog], None]) -> Any:
    await until(lambda: any(isinstance(w, FirstRunDialog) and w.isVisible() for w in QApplication.topLevelWidgets()),
                "the first-run dialog")  # fmt: skip
    dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, FirstRunDialog) and w.isVisible())
    click(dialog)
    return await gate


def test_nothing_is_built_before_the_disclosure_is_answered_and_quit_starts_nothing(
    run: Runner, tmp_path: Path
) -> None:
    async def scenario() -> None:
        store = store_in(tmp_path)
        gate = asyncio.ensure_future(first_run_gate(Settings(), store))
        await asyncio.sleep(0.2)
        assert not gate.done()  # the question is open: no engine, no venue, no strategy
        assert not app_paths().journal_file.exists()
        result = await answer(gate, lambda d: d.quit_button.click())
        assert result.choice == QUIT and not result.may_start
        assert store.value(CHOICE_KEY) is None  # nothing remembered: asked again at the next start

    run(scenario())


def test_accept_needs_the_box_ticked_and_is_remembered(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        store = store_in(tmp_path)
        gate = asyncio.ensure_future(first_run_gate(Settings(), store))

        def tick_and_accept(d: FirstRunDialog) -> None:
            assert not d.accept_button.isEnabled()
            d._done(ACCEPTED)  # even a programmatic accept without the box is ignored
            assert d.isVisible()
            d.ack.setChecked(True)
            d.accept_button.click()

        result = await answer(gate, tick_and_accept)
        assert result.choice == ACCEPTED and result.asked_now
        again = await first_run_gate(Settings(), store)  # the next start does not ask again
        assert again.choice == ACCEPTED and not again.asked_now

    run(scenario())


def test_demo_runs_the_simulated_venue_only_whatever_the_config_names(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        settings = Settings.model_validate({"engine": {"venue": "binance"},
                                            "venues": {"binance": {"mode": "live"}}})  # fmt: skip
        store = store_in(tmp_path)
        gate = asyncio.ensure_future(first_run_gate(settings, store))
        result = await answer(gate, lambda d: d.demo_button.click())
        assert result.choice == DEMO and result.settings.engine.venue == "simulated"
        assert settings.engine.venue == "binance"  # the operator's config itself is untouched
        engine = build_engine(result.settings, app_paths(), RunOptions(seed=7, with_strategy=False))
        try:
            assert engine.venue.name.lower().startswith("sim")
        finally:
            engine.journal.close()
        assert (await first_run_gate(settings, store)).settings.engine.venue == "simulated"  # remembered

    run(scenario())


def test_a_screenshot_run_without_an_answer_runs_the_demo_and_remembers_nothing(tmp_path: Path, qapp: Any) -> None:
    store = store_in(tmp_path)
    settings = Settings.model_validate({"engine": {"venue": "binance"}, "venues": {"binance": {"mode": "testnet"}}})
    result = asyncio.run(first_run_gate(settings, store, interactive=False))
    assert result.settings.engine.venue == "simulated" and store.value(CHOICE_KEY) is None


# ---- the wizard: refused on the page, nothing saved -------------------------------------------


def test_live_venue_at_the_paper_stage_is_refused_on_the_page(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (_engine, window):
            wiz = window.wizard.open()
            to_venue_page(wiz)
            pick(wiz, "binance", "live")
            note = wiz.venue_page.stage_note.text()
            assert note.startswith("✖") and "not allowed at the Paper stage" in note and "Nothing is saved" in note
            assert not wiz.button(NEXT).isEnabled()
            wiz.next()
            assert wiz.currentId() == Page.VENUE and not config_written()

    run(scenario())


def test_the_default_simulated_choice_shows_no_red_cross(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (_engine, window):
            wiz = window.wizard.open()
            to_venue_page(wiz)
            assert wiz.venue_page.choice() == ("simulated", "simulated")
            note = wiz.venue_page.stage_note.text()
            assert "✖" not in note and "allowed at the Paper stage" in note
            assert wiz.button(NEXT).isEnabled()

    run(scenario())


def test_the_risk_page_names_the_stage_the_engine_trades_at(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (_engine, window):
            wiz = window.wizard.open()
            to_venue_page(wiz)
            wiz.next()
            assert wiz.currentId() == Page.RISK
            subtitle = wiz.risk_page.subTitle()
            assert subtitle.startswith("Limits for the Paper stage"), subtitle

    run(scenario())


def test_fifty_percent_risk_is_refused_with_a_message_not_ignored(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            wiz = window.wizard.open()
            to_venue_page(wiz)
            wiz.next()
            risk = wiz.risk_page
            risk.risk_per_trade.lineEdit().selectAll()
            risk.risk_per_trade.lineEdit().insert("50")  # typed, as an operator would
            risk.risk_per_trade.interpretText()
            assert risk.risk_per_trade.value() == 50  # kept as typed, not clamped away
            assert risk.refusal.isVisible()
            assert "Risk per trade 50.00 % is above the Paper stage's ceiling of 2.00 %" in risk.refusal.text()
            assert not wiz.button(NEXT).isEnabled()
            wiz.next()
            assert wiz.currentId() == Page.RISK
            assert engine.settings.risk.risk_per_trade != 0.5 and not config_written()

    run(scenario())


def test_contradictory_limits_are_refused_by_the_config_rules(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (_engine, window):
            wiz = window.wizard.open()
            to_venue_page(wiz)
            wiz.next()
            risk = wiz.risk_page
            risk.daily_loss.setValue(20)
            risk.max_drawdown.setValue(10)  # a day's loss above the whole drawdown limit
            assert "daily_loss_limit" in risk.refusal.text() and not wiz.button(NEXT).isEnabled()
            assert not config_written()

    run(scenario())


def test_a_venue_that_needs_the_next_stage_is_not_saved_without_the_promotion(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            wiz = window.wizard.open()
            wiz.connectivity_test = lambda *_a: _reachable()
            to_venue_page(wiz)
            pick(wiz, "binance", "testnet")
            assert "needs the Testnet stage" in wiz.venue_page.stage_note.text()
            wiz.next()
            cred = wiz.credentials_page
            cred.key.setText("KEY123")
            cred.secret.setText("SECRET456")
            cred.kind.setCurrentIndex(cred.kind.findData("test"))
            cred.master.setText("pw")
            cred.master_again.setText("pw")
            wiz.next()
            wiz.connect_page.test_button.click()
            await until(lambda: wiz.button(NEXT).isEnabled(), "the connection test")
            wiz.next()
            wiz.next()
            await until(lambda: wiz.evaluation is not None, "the evidence")
            wiz.next()
            assert wiz.currentId() == Page.SUMMARY and not wiz.summary_page.promote.isChecked()
            wiz.button(FINISH).click()
            text = wiz.summary_page.result.text()
            assert text.startswith("✖ Not saved") and "needs the Testnet stage" in text
            assert wiz.isVisible() and not config_written() and engine.settings.engine.venue == "simulated"

    run(scenario())


async def _reachable() -> tuple[bool, str]:
    return True, "answered HTTP 200"


def test_the_saved_config_loads_and_the_stage_allows_it(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            wiz = window.wizard.open()
            to_venue_page(wiz)
            wiz.next()
            wiz.risk_page.risk_per_trade.setValue(0.7)
            wiz.next()
            await until(lambda: wiz.evaluation is not None, "the evidence")
            wiz.next()
            wiz.button(FINISH).click()
            await until(lambda: not wiz.isVisible(), "the wizard to finish")
            saved = load_settings(app_paths().config_file)  # the loader the next start uses
            check_stage_allows(saved, engine.stage_manager.stage)
            assert saved.risk.risk_per_trade == pytest.approx(0.007)

    run(scenario())


def test_no_empty_red_box_under_not_tested_yet(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        settings = Settings()
        settings.stages.initial = "testnet"
        async with console(tmp_path, settings) as (_engine, window):
            wiz = window.wizard.open()
            to_venue_page(wiz)
            pick(wiz, "binance", "testnet")
            wiz.next()
            cred = wiz.credentials_page
            cred.key.setText("KEY123")
            cred.secret.setText("SECRET456")
            cred.kind.setCurrentIndex(cred.kind.findData("test"))
            cred.master.setText("pw")
            cred.master_again.setText("pw")
            wiz.next()
            page = wiz.connect_page
            assert "Not tested yet" in page.conn_label.text()
            assert not page.store_label.isVisible()

    run(scenario())


def test_cancel_on_the_first_start_is_remembered(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            wiz = window.wizard.open_on_first_start()
            assert wiz is not None and wiz.isVisible()
            wiz.reject()
            await until(lambda: engine.journal.get_state(DISMISSED_KEY) is True, "the dismissal journaled")
            assert window.wizard.open_on_first_start() is None  # not forced again at the next start
            window.wizard_action.trigger()  # still offered from the menu
            assert window.wizard.wizard is not None and window.wizard.wizard.isVisible()

    run(scenario())


# ---- the master password at start ----------------------------------------------------------------


def test_master_password_is_asked_in_a_dialog_and_a_wrong_one_is_refused(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        data = app_paths().data_dir
        data.mkdir(parents=True, exist_ok=True)
        CredentialStore(data, master_password="right one", use_keyring=False).store("binance", "main", "K", "S")
        settings = Settings.model_validate({"engine": {"venue": "binance"},
                                            "venues": {"binance": {"mode": "testnet", "account": "main"}}})  # fmt: skip
        assert needs_unlock(settings, data)
        task = asyncio.ensure_future(ask_master_password(settings, data))
        await until(lambda: any(isinstance(w, MasterPasswordDialog) and w.isVisible()
                                for w in QApplication.topLevelWidgets()), "the password dialog")  # fmt: skip
        shown = [w for w in QApplication.topLevelWidgets() if isinstance(w, MasterPasswordDialog) and w.isVisible()]
        dialog = shown[0]
        dialog.password.setText("wrong")
        dialog.buttons.accepted.emit()
        await until(lambda: dialog.error.isVisible(), "the refusal")
        assert "Wrong master password" in dialog.error.text() and dialog.isVisible() and not task.done()
        dialog.password.setText("right one")
        dialog.buttons.accepted.emit()
        store = await task
        assert store is not None and store.load("binance", "main") == ("K", "S")
        assert not any(isinstance(w, MasterPasswordDialog) and w.isVisible() for w in QApplication.topLevelWidgets())

    run(scenario())


def test_no_password_is_asked_for_the_simulated_venue(tmp_path: Path) -> None:
    assert not needs_unlock(Settings(), tmp_path)


def test_quit_at_the_first_run_question_builds_no_engine(run: Runner, tmp_path: Path) -> None:
    from console.app import run_window

    async def scenario() -> None:
        store = store_in(tmp_path)
        started = asyncio.ensure_future(run_window(Settings(), app_paths(), RunOptions(seed=7), store))
        code = await answer(started, lambda d: d.quit_button.click())
        assert code == 0
        assert not app_paths().journal_file.exists()  # no engine was ever built: nothing could trade

    run(scenario())


def test_a_screenshot_is_taken_at_its_time_without_waiting_for_a_position(run: Runner, tmp_path: Path) -> None:
    from console.app import _take_screenshot

    async def scenario() -> None:
        async with console(tmp_path) as (_engine, window):  # no strategy: no position will ever open
            target = tmp_path / "shot.png"
            await asyncio.wait_for(_take_screenshot(window, str(target), 0.5), timeout=15)
            assert target.exists() and window.positions.row_count() == 0

    run(scenario())


def test_the_unlocked_store_is_what_the_engine_reads_its_keys_from(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TRADING_CONSOLE_BINANCE_API_KEY", "TRADING_CONSOLE_BINANCE_API_SECRET"):
        monkeypatch.delenv(name, raising=False)

    async def scenario() -> None:
        data = app_paths().data_dir
        data.mkdir(parents=True, exist_ok=True)
        CredentialStore(data, master_password="pw", use_keyring=False).store("binance", "main", "K", "S")
        settings = Settings.model_validate({
            "engine": {"venue": "binance"}, "stages": {"initial": "testnet"},
            "venues": {"binance": {"mode": "testnet", "account": "main"}},
        })  # fmt: skip
        with pytest.raises(ValueError, match="no binance API credentials"):  # locked: the start refuses, by name
            build_engine(settings, app_paths(), RunOptions(with_strategy=False))
        unlocked = CredentialStore(data, master_password="pw", use_keyring=False)
        engine = build_engine(settings, app_paths(), RunOptions(with_strategy=False, credentials=unlocked))
        try:
            assert engine.venue.name.lower().startswith("binance")
        finally:
            engine.journal.close()

    run(scenario())


def test_the_wizard_does_not_ask_again_for_a_disclosure_accepted_at_the_first_run(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (_engine, window):
            assert not window.wizard.open().welcome_page.ack.isChecked()
            window.wizard.wizard.reject()
            window.store.setValue(CHOICE_KEY, ACCEPTED)
            wiz = window.wizard.open()
            assert wiz.welcome_page.ack.isChecked() and wiz.button(NEXT).isEnabled()

    run(scenario())
