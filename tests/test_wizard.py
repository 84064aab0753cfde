"""The activation wizard against a real engine (simulated venue) under qasync, offscreen.

No network: the connectivity test is replaced by a local fake; no OS keyring: keyring's
fail backend, so credentials go to the encrypted file under the test home.
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
from console.main_window import MainWindow
from console.wizard import DONE_KEY, ActivationWizard
from console.wizard_common import CONFIRM_PHRASE, Page
from engine.app.factory import RunOptions, build_engine
from engine.app.kernel import Engine
from engine.core.config import Settings, StageCriteria, load_settings
from engine.core.paths import app_paths
from engine.persistence.secrets import CredentialStore
from tests.qt_loop import qasync_loop, until
from widgets.theme import apply_theme

pytestmark = pytest.mark.timeout(120)
Runner = Callable[[Coroutine[Any, Any, Any]], Any]
NEXT = QWizard.WizardButton.NextButton
FINISH = QWizard.WizardButton.FinishButton


@pytest.fixture
def run(qapp: QApplication, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runner]:
    monkeypatch.setenv("TRADING_CONSOLE_HOME", str(tmp_path / "home"))
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # never the developer's real keyring
    apply_theme(qapp, "dark")
    qapp.setQuitOnLastWindowClosed(False)  # as the application does (console.app.make_app)
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
        shiboken6.delete(window)  # now, while the loop runs; a later GC would delete it mid-way through another test


async def reachable(venue: str, mode: str, endpoint: str) -> tuple[bool, str]:
    await asyncio.sleep(0.01)
    return True, f"{endpoint} answered HTTP 200"


def can_next(wiz: QWizard) -> bool:
    return wiz.button(NEXT).isEnabled()


def pick(wiz: ActivationWizard, venue: str, mode: str) -> None:
    combo = wiz.venue_page.combo
    combo.setCurrentIndex(next(i for i in range(combo.count()) if combo.itemData(i) == (venue, mode)))


async def to_connect_page(wiz: ActivationWizard, venue: str, mode: str, kind: str, key: str = "KEY123") -> None:
    wiz.welcome_page.ack.setChecked(True)
    wiz.next()
    pick(wiz, venue, mode)
    wiz.next()
    assert wiz.currentId() == Page.CREDENTIALS
    page = wiz.credentials_page
    page.key.setText(key)
    page.secret.setText("SECRET456")
    page.kind.setCurrentIndex(page.kind.findData(kind))
    page.master.setText("master pw")
    page.master_again.setText("master pw")
    assert can_next(wiz)
    wiz.next()
    assert wiz.currentId() == Page.CONNECT


async def evidence(wiz: ActivationWizard) -> None:
    assert wiz.currentId() == Page.EVIDENCE
    await until(lambda: wiz.evaluation is not None, "the evidence")


def test_first_start_and_navigation_through_every_page(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            assert window.wizard_action.text() == "Activation wizard…"
            wiz = window.wizard.open_on_first_start()
            assert isinstance(wiz, ActivationWizard) and wiz.isVisible()
            wiz.connectivity_test = reachable
            # the disclosure gates Next
            assert wiz.currentId() == Page.WELCOME and not can_next(wiz)
            wiz.next()
            assert wiz.currentId() == Page.WELCOME
            await to_connect_page(wiz, "binance", "testnet", "test")
            page = wiz.connect_page
            assert page.env_label.text().startswith("✔") and not can_next(wiz)  # not tested yet
            page.test_button.click()
            await until(lambda: can_next(wiz), "the connectivity test")
            assert "HTTP 200" in page.conn_label.text()
            wiz.next()
            assert wiz.currentId() == Page.RISK
            stored = CredentialStore(engine.journal.path.parent, "master pw").load("binance", "main")
            assert stored == ("KEY123", "SECRET456")
            risk = wiz.risk_page
            risk.risk_per_trade.setValue(0.8)
            assert can_next(wiz)
            wiz.next()
            await evidence(wiz)
            wiz.next()
            assert wiz.currentId() == Page.SUMMARY  # testnet is not live: no typed phrase
            assert "binance (testnet)" in wiz.summary_page.summary.text()
            assert not wiz.summary_page.promote.isChecked()  # the evidence fails on a fresh start
            # Binance testnet needs the Testnet stage: without the promotion nothing is saved, and it says why
            wiz.button(FINISH).click()
            assert wiz.isVisible() and "needs the Testnet stage" in wiz.summary_page.result.text()
            assert not app_paths().config_file.exists()
            wiz.back()
            wiz.back()
            wiz.back()
            wiz.back()
            wiz.back()
            assert wiz.currentId() == Page.VENUE
            pick(wiz, "simulated", "simulated")
            wiz.next()
            assert wiz.currentId() == Page.RISK
            risk.risk_per_trade.setValue(0.8)
            wiz.next()
            await evidence(wiz)
            wiz.next()
            wiz.button(FINISH).click()
            await until(lambda: not wiz.isVisible(), "the wizard to finish")
            engine.journal.flush()
            assert engine.journal.get_state(DONE_KEY) is True
            assert window.wizard.open_on_first_start() is None  # not again on the next start
            saved = load_settings(app_paths().config_file)
            assert saved.engine.venue == "simulated"
            assert engine.settings.risk.risk_per_trade == pytest.approx(0.008)
            window.wizard_action.trigger()  # reachable from the window at any time
            assert window.wizard.wizard is not wiz and window.wizard.wizard.isVisible()

    run(scenario())


def test_live_key_against_testnet_endpoint_is_refused(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            wiz = window.wizard.open()
            wiz.connectivity_test = reachable
            await to_connect_page(wiz, "binance", "testnet", "live")
            page = wiz.connect_page
            assert page.env_label.text().startswith("✖ Refused: a LIVE key")
            assert "testnet.binance.vision" in page.env_label.text()
            assert not page.test_button.isEnabled() and not can_next(wiz)
            wiz.next()
            assert wiz.currentId() == Page.CONNECT
            assert CredentialStore(engine.journal.path.parent, "master pw").load("binance", "main") is None

    run(scenario())


def test_paper_key_against_the_live_endpoint_is_refused(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        settings = Settings()
        settings.stages.initial = "testnet"  # the next stage, Live micro, allows live venues
        async with console(tmp_path, settings) as (_engine, window):
            wiz = window.wizard.open()
            wiz.welcome_page.ack.setChecked(True)
            wiz.next()
            pick(wiz, "alpaca", "live")  # Alpaca tells the kind by itself: a paper key (PK...)
            wiz.next()
            wiz.credentials_page.key.setText("PKABCDEF")
            assert "paper key" in wiz.credentials_page.inferred.text()
            wiz.credentials_page.secret.setText("SECRET456")
            wiz.credentials_page.master.setText("master pw")
            wiz.credentials_page.master_again.setText("master pw")
            wiz.next()
            assert wiz.connect_page.env_label.text().startswith("✖ Refused: a PAPER key")
            assert not can_next(wiz)

    run(scenario())


def test_live_stage_needs_the_typed_phrase(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        settings = Settings()
        settings.stages.initial = "testnet"  # live venues need Live micro, the next stage
        async with console(tmp_path, settings) as (_engine, window):
            wiz = window.wizard.open()
            wiz.connectivity_test = reachable
            await to_connect_page(wiz, "binance", "live", "live")
            wiz.connect_page.test_button.click()
            await until(lambda: can_next(wiz), "the connectivity test")
            wiz.next()
            wiz.next()
            await evidence(wiz)
            wiz.next()
            assert wiz.currentId() == Page.CONFIRM and not can_next(wiz)
            phrase = wiz.confirm_page.phrase
            for wrong in (CONFIRM_PHRASE.lower(), CONFIRM_PHRASE + " ", "I ACCEPT"):
                phrase.setText(wrong)
                assert not can_next(wiz), wrong
            phrase.setText(CONFIRM_PHRASE)
            assert can_next(wiz)
            wiz.next()
            assert wiz.currentId() == Page.SUMMARY

    run(scenario())


def test_evidence_shows_fail_rows_and_finish_is_refused_with_the_reason(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            wiz = window.wizard.open()
            wiz.welcome_page.ack.setChecked(True)
            wiz.next()
            wiz.next()  # simulated: straight to the risk limits
            assert wiz.currentId() == Page.RISK
            wiz.next()
            await evidence(wiz)
            results = wiz.evidence_page.table.results()
            assert "✖ FAIL" in results and len(results) == len(wiz.evaluation.criteria)
            verdict = wiz.evidence_page.verdict.text()
            assert "Promotion to Testnet is refused" in verdict and "days" in verdict
            wiz.next()
            summary = wiz.summary_page
            summary.promote.setChecked(True)
            assert not wiz.button(FINISH).isEnabled()  # a reason is required
            summary.reason.setText("looks good to me")
            wiz.button(FINISH).click()
            await until(lambda: "refused" in summary.result.text(), "the engine's refusal")
            text = summary.result.text()
            assert "Promotion refused" in text and "off by" in text and "closed trades" in text
            assert wiz.isVisible() and engine.stage_manager.stage == "paper"

    run(scenario())


def test_finish_promotes_when_every_criterion_passes(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        settings = Settings()
        settings.stages.paper.criteria = StageCriteria(max_unexpected_errors=0)
        async with console(tmp_path, settings) as (engine, window):
            wiz = window.wizard.open()
            wiz.welcome_page.ack.setChecked(True)
            wiz.next()
            wiz.next()
            wiz.next()
            await evidence(wiz)
            assert wiz.evidence_page.table.results() == ["✔ PASS"]
            wiz.next()
            assert wiz.summary_page.promote.isChecked()
            wiz.summary_page.reason.setText("paper evidence is in")
            wiz.button(FINISH).click()
            await until(lambda: wiz.promotion is not None, "the engine's answer")
            assert wiz.promotion == (True, "promoted to Testnet"), wiz.promotion
            await until(lambda: not wiz.isVisible(), "the wizard to close")
            assert engine.stage_manager.stage == "testnet"
            assert window.top_bar is not None

    run(scenario())
