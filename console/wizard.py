"""The activation wizard: disclosure, venue, credentials, environment check, risk limits, evidence,
the typed confirmation for live stages, a summary; Finish may promote to the next stage.

Opened with ``.open()`` (never ``exec()``: qasync). The evidence is measured off the loop by
``StageManager.evaluate_async``; the promotion is ``Engine.promote`` scheduled with
``asyncio.ensure_future``, and the page shows the engine's answer: a refusal names every
failing criterion and by how much. Shown by itself until a run of it has finished once
(journal state key ``wizard_done``).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import shiboken6
import tomli_w
from PySide6.QtWidgets import QCheckBox, QLabel, QLineEdit, QVBoxLayout, QWidget, QWizard, QWizardPage

from console.wizard_pages import (
    CONFIRM_PHRASE,
    VENUE_CHOICES,
    ConnectPage,
    CredentialsPage,
    EvidenceTable,
    RiskPage,
    VenuePage,
    WelcomePage,
    _label,
    _verdict,
)
from engine.activation.stages import LIVE_STAGES, STAGE_LABELS, Evaluation, next_stage
from engine.core.config import Settings, load_settings, save_settings
from engine.core.config_rules import apply_risk_changes
from engine.core.stage_venues import allowed_modes, check_stage_allows
from engine.persistence.secrets import CredentialStore
from widgets import format as fmt

if TYPE_CHECKING:
    from engine.app.console_view import ConsoleEngine as Engine

log = logging.getLogger(__name__)

DONE_KEY = "wizard_done"
DISMISSED_KEY = "wizard_dismissed"  # cancelled on a first start: offered from the menu, not forced again
ConnectivityTest = Callable[[str, str, str], Awaitable[tuple[bool, str]]]
_PING = {"binance": "/api/v3/ping", "alpaca": "/v2/clock"}


class Page(enum.IntEnum):
    WELCOME = 0
    VENUE = 1
    CREDENTIALS = 2
    CONNECT = 3
    RISK = 4
    EVIDENCE = 5
    CONFIRM = 6
    SUMMARY = 7


async def http_connectivity_test(venue: str, mode: str, endpoint: str) -> tuple[bool, str]:
    """Reach the venue's public ping (5 s); says the HTTP status or the error type, never a key."""
    if venue == "simulated":
        return True, "Simulated venue: nothing to reach."
    import aiohttp

    url = endpoint.rstrip("/") + _PING.get(venue, "/")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s, s.get(url) as r:
            # Alpaca's clock answers 401/403 without keys: the host is reachable all the same
            ok = r.status < 500
            return ok, f"{url} answered HTTP {r.status}" + ("" if ok else " (venue error)")
    except (aiohttp.ClientError, TimeoutError) as exc:
        return False, f"{url} unreachable ({type(exc).__name__})"


class EvidencePage(QWizardPage):
    def __init__(self, wiz: ActivationWizard) -> None:
        super().__init__()
        self.wiz = wiz
        self.setTitle("Evidence")
        self.table = EvidenceTable()
        self.flags = EvidenceTable()
        self.flags_caption = QLabel("RED FLAGS TRIPPED")
        self.flags_caption.setProperty("role", "caption")
        self.verdict = _label(name="evidenceVerdict")
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(self.flags_caption)
        layout.addWidget(self.flags)
        layout.addWidget(self.verdict)
        layout.addStretch(1)
        self._task: asyncio.Future[Evaluation] | None = None

    def initializePage(self) -> None:
        stage = self.wiz.engine.stage_manager.stage
        target = self.wiz.target_stage
        to = f" → {STAGE_LABELS[target]}" if target else " (last stage)"
        self.setSubTitle(f"Every criterion of the {STAGE_LABELS[stage]} stage{to}, measured from the journal.")
        self.wiz.evaluation = None
        self.table.setRowCount(0)
        self.flags.setVisible(False)
        self.flags_caption.setVisible(False)
        _verdict(self.verdict, None, "Measuring…")
        self._task = asyncio.ensure_future(self.wiz.engine.stage_manager.evaluate_async())
        self._task.add_done_callback(self._measured)
        self.completeChanged.emit()

    def _measured(self, task: asyncio.Future[Evaluation]) -> None:
        if task is not self._task:
            return
        try:
            ev = task.result()
        except Exception as exc:
            log.exception("evaluation failed")
            _verdict(self.verdict, False, f"The evidence could not be measured: {exc}")
            return
        self.show_evaluation(ev)

    def show_evaluation(self, ev: Evaluation) -> None:
        self.wiz.evaluation = ev
        self.table.set_criteria(list(ev.criteria))
        self.flags.set_criteria(list(ev.red_flags), red_flag=True)
        self.flags.setVisible(bool(ev.red_flags))
        self.flags_caption.setVisible(bool(ev.red_flags))
        target = self.wiz.target_stage
        n = len(ev.criteria)
        criteria = fmt.fmt_count(n, "criterion")
        if target is None:
            _verdict(self.verdict, ev.passed, "Production is the last stage: nothing to promote to.")
        elif ev.passed:
            _verdict(self.verdict, True, f"All {criteria} pass: promotion to {STAGE_LABELS[target]} is allowed.")
        else:
            lines = [c.explain() for c in ev.failing] + [f"red flag: {c.explain()}" for c in ev.red_flags]
            failing = len(ev.failing) + len(ev.red_flags)
            head = f"Promotion to {STAGE_LABELS[target]} is refused: {failing} of {criteria} fail."
            text = head + "\n• " + "\n• ".join(lines)
            _verdict(self.verdict, False, text)
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.wiz.evaluation is not None  # failing evidence still lets the setup be saved

    def nextId(self) -> int:
        return Page.CONFIRM if self.wiz.needs_confirmation() else Page.SUMMARY


class ConfirmPage(QWizardPage):
    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Real money")
        self.setSubTitle("This step risks real money. Type the phrase below exactly to continue.")
        self.phrase = QLineEdit()
        self.phrase.setPlaceholderText(CONFIRM_PHRASE)
        self.phrase.textChanged.connect(lambda _t: self.completeChanged.emit())
        layout = QVBoxLayout(self)
        prompt = _label(f"Type:  {CONFIRM_PHRASE}")
        prompt.setObjectName("dialogHeadline")
        layout.addWidget(prompt)
        layout.addWidget(self.phrase)
        layout.addStretch(1)

    def isComplete(self) -> bool:
        return self.phrase.text() == CONFIRM_PHRASE

    def nextId(self) -> int:
        return Page.SUMMARY


class SummaryPage(QWizardPage):
    def __init__(self, wiz: ActivationWizard) -> None:
        super().__init__()
        self.wiz = wiz
        self.setTitle("Summary")
        self.summary = _label()
        self.promote = QCheckBox()
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("Why promote now (required, audited)")
        self.result = _label(name="promotionResult")
        for sig in (self.promote.toggled, self.reason.textChanged):
            sig.connect(lambda *_: self.completeChanged.emit())
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.promote)
        layout.addWidget(self.reason)
        layout.addWidget(self.result)
        layout.addStretch(1)
        self.busy = False
        self._task: asyncio.Future[tuple[bool, str]] | None = None

    def initializePage(self) -> None:
        w = self.wiz
        venue, mode = w.venue_page.choice()
        stage, target = w.engine.stage_manager.stage, w.target_stage
        risk = w.risk_page.values()
        ev = w.evaluation
        pct = {k: fmt.fmt_fraction_pct(risk[k] or 0) for k in ("risk_per_trade", "daily_loss_limit", "max_drawdown")}
        cap = f", capital cap {fmt.fmt_money(risk['capital_cap'], decimals=0)}" if risk["capital_cap"] else ""
        endpoint = f", endpoint {w.venue_page.endpoint.text()}" if venue != "simulated" else ""
        evidence = "every criterion passes" if ev and ev.passed else "criteria failing (see the previous page)"
        lines = [
            f"Venue: {venue} ({mode}){endpoint}",
            f"Credentials: {'stored in the ' + w.stored_backend if w.stored_backend else 'none needed'}",
            f"Risk per trade {pct['risk_per_trade']}, daily loss limit {pct['daily_loss_limit']}, maximum drawdown "
            f"{pct['max_drawdown']}, at most {fmt.fmt_count(risk['max_concurrent_positions'], 'position')}{cap}",
            f"Stage: {STAGE_LABELS[stage]}" + (f" → {STAGE_LABELS[target]}" if target else ""),
            f"Evidence: {evidence}",
            "A venue change takes effect at the next start.",
        ]
        self.summary.setText("\n".join(lines))
        self.promote.setText(f"Promote to {STAGE_LABELS[target]} now" if target else "Nothing to promote to")
        self.promote.setEnabled(target is not None)
        self.promote.setChecked(bool(target and ev and ev.passed))
        self.result.clear()

    def isComplete(self) -> bool:
        if self.busy:
            return False
        return not self.promote.isChecked() or bool(self.reason.text().strip())

    def validatePage(self) -> bool:
        """Finish: save the setup; promote when asked, and finish only when the engine agrees."""
        if self.wiz.promotion is not None and self.wiz.promotion[0]:
            return True  # QWizard.accept() validates again after the engine said yes
        when, note = self.wiz.venue_verdict(*self.wiz.venue_page.choice())
        if when is None or (when == "after_promotion" and not self.promote.isChecked()):
            _verdict(self.result, False, f"Not saved. {note}" + (" Tick the promotion above, or go back and choose "
                                                                 "another venue." if when else ""))  # fmt: skip
            return False
        try:  # a venue that needs the next stage is saved only once the engine has promoted
            self.wiz.apply_setup(include_venue=when == "now")
        except ValueError as exc:  # limits that contradict each other, a config the next start would refuse
            _verdict(self.result, False, f"Not saved: {exc}")
            return False
        if not self.promote.isChecked():
            return True
        self.busy = True
        self.completeChanged.emit()
        _verdict(self.result, None, "Asking the engine to promote…")
        self._task = asyncio.ensure_future(promote(self.wiz.engine, self.wiz.operator, self.reason.text().strip()))
        self._task.add_done_callback(self._promoted)
        return False  # the wizard closes once the engine has answered yes

    def _promoted(self, task: asyncio.Future[tuple[bool, str]]) -> None:
        self.busy = False
        try:
            ok, msg = task.result()
        except Exception as exc:
            log.exception("promotion failed")
            ok, msg = False, f"promotion failed: {exc}"
        if ok and self.wiz.venue_verdict(*self.wiz.venue_page.choice())[0] == "after_promotion":
            try:  # the stage that allows the venue is the engine's now
                self.wiz.apply_setup(include_venue=True)
            except ValueError as exc:
                ok, msg = False, f"promoted, but the venue was not saved: {exc}"
        self.wiz.promotion = (ok, msg)
        if ok:
            _verdict(self.result, True, msg)
            self.wiz.accept()
        else:
            _verdict(self.result, False, f"Promotion refused: {msg}")
        self.completeChanged.emit()


class ActivationWizard(QWizard):
    def __init__(
        self,
        engine: Engine,
        parent: QWidget | None = None,
        *,
        credential_store: CredentialStore | None = None,
        config_path: Path | None = None,
        connectivity_test: ConnectivityTest | None = None,
    ) -> None:
        super().__init__(parent)
        self.engine = engine
        self.operator = engine.settings.engine.operator
        self.config_path = config_path
        self.credential_store = credential_store or CredentialStore(engine.journal.path.parent)
        self.connectivity_test: ConnectivityTest = connectivity_test or http_connectivity_test
        self.target_stage = next_stage(engine.stage_manager.stage)
        self.evaluation: Evaluation | None = None
        self.promotion: tuple[bool, str] | None = None
        self.stored_backend = ""
        self.setWindowTitle("Activation wizard")
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, False)
        self.welcome_page = WelcomePage()
        self.venue_page = VenuePage(self)
        self.credentials_page = CredentialsPage(self)
        self.connect_page = ConnectPage(self)
        self.risk_page = RiskPage(self)
        self.evidence_page = EvidencePage(self)
        self.confirm_page = ConfirmPage()
        self.summary_page = SummaryPage(self)
        for pid, page in (
            (Page.WELCOME, self.welcome_page), (Page.VENUE, self.venue_page),
            (Page.CREDENTIALS, self.credentials_page), (Page.CONNECT, self.connect_page),
            (Page.RISK, self.risk_page), (Page.EVIDENCE, self.evidence_page),
            (Page.CONFIRM, self.confirm_page), (Page.SUMMARY, self.summary_page),
        ):  # fmt: skip
            self.setPage(pid, page)
        self.setStartId(Page.WELCOME)
        self.resize(760, 600)

    def validateCurrentPage(self) -> bool:
        # QWizard.next() skips isComplete; a page's rule must hold however the wizard is driven
        page = self.currentPage()
        if page is not None and not page.isComplete():
            return False
        return super().validateCurrentPage()

    def venue_verdict(self, venue: str, mode: str) -> tuple[str | None, str]:
        """("now" | "after_promotion" | None, what to tell the operator) for a venue choice.

        The engine starts next at its current stage, so a venue that stage does not allow would
        refuse to start: it is accepted only when the stage it needs is the one being promoted to.
        """
        label = venue_label(venue, mode)
        stage, target = self.engine.stage_manager.stage, self.target_stage
        now = allowed_modes(self.engine.settings, stage)
        if mode in now:
            return "now", f"{label} is allowed at the {STAGE_LABELS[stage]} stage."
        later = allowed_modes(self.engine.settings, target) if target else []
        if mode in later and target is not None:
            return "after_promotion", (
                f"{label} needs the {STAGE_LABELS[target]} stage: it is saved only if the promotion on the last "
                f"page succeeds (the {STAGE_LABELS[stage]} stage runs only {', '.join(now)})."
            )
        nxt = f", nor at {STAGE_LABELS[target]} ({', '.join(later) or 'nothing'})" if target else ""
        return None, (f"{label} is refused: not allowed at the {STAGE_LABELS[stage]} stage, which runs only "
                      f"{', '.join(now) or 'nothing'}{nxt}. Nothing is saved.")  # fmt: skip

    def needs_confirmation(self) -> bool:
        return self.target_stage in LIVE_STAGES or self.venue_page.choice()[1] == "live"

    def store_credentials(self) -> None:
        page, store = self.credentials_page, self.credential_store
        if store.needs_master_password:
            store.set_master_password(page.master.text())
        venue, _mode = self.venue_page.choice()
        store.store(venue, self.venue_page.account.text().strip() or "main", page.key.text().strip(),
                    page.secret.text().strip())  # fmt: skip
        self.stored_backend = "OS keyring" if store.uses_keyring else "encrypted file"
        page.secret.clear()  # do not keep the secret in a widget longer than needed

    def setup_settings(self, include_venue: bool) -> Settings:
        """The settings this wizard would save: a copy, checked whole, never half-applied."""
        saved = self.engine.settings.model_copy(deep=True)
        values = self.risk_page.values()
        cap = values.pop("capital_cap")
        apply_risk_changes(saved.risk, values)  # all or nothing, with the config's cross-field rules
        if cap is not None:
            saved.stages.stage(self.target_stage or self.engine.stage_manager.stage).capital_cap = float(cap)
        if include_venue:
            venue, mode = self.venue_page.choice()
            if venue != "simulated":  # names only: the key and secret live in the credential store
                saved.venues[venue] = {"mode": mode, "endpoint": self.venue_page.endpoint.text().strip(),
                                       "account": self.venue_page.account.text().strip() or "main"}  # fmt: skip
            saved.engine.venue = venue  # type: ignore[assignment]
        return saved

    def check_loads(self, saved: Settings) -> None:
        """The text about to be written goes through the config loader and the stage's venue rule first:
        a config the next start would refuse is never saved (ConfigError names the field and the rule)."""
        data = saved.model_dump(mode="json", exclude_none=True)
        with tempfile.TemporaryDirectory(prefix="tc-wizard-") as tmp:
            trial = Path(tmp) / "config.toml"
            trial.write_text(tomli_w.dumps(data), encoding="utf-8")
            loaded = load_settings(trial)
        check_stage_allows(loaded, self.engine.stage_manager.stage, str(self.config_path or "config.toml"))

    def apply_setup(self, include_venue: bool = True) -> None:
        """Risk limits now (in memory and in the config file); the venue choice at the next start.

        Everything is checked before anything changes: a refusal raises ValueError (ConfigError is
        one) with the reason, and neither the engine nor the file is touched."""
        saved = self.setup_settings(include_venue)
        if self.config_path is not None:
            self.check_loads(saved)
        values = self.risk_page.values()
        values.pop("capital_cap")
        # through the OperatorAPI: checked like the config, audited, and bound at once (the risk checks and
        # the breakers reload), never only written into settings that are read at the next start
        result = self.engine.api.update_risk_limits(values, "risk limits set in the activation wizard", self.operator)
        if not result.ok:
            raise ValueError(result.message)
        cap_stage = self.target_stage or self.engine.stage_manager.stage
        self.engine.settings.stages.stage(cap_stage).capital_cap = saved.stages.stage(cap_stage).capital_cap
        self.engine.stage_manager.refresh_limits()  # a new capital cap binds now too
        if self.config_path is not None:
            save_settings(saved, self.config_path)
        self.engine.journal.set_state(DONE_KEY, True)
        self.engine.audit("activation_wizard", "setup saved" if include_venue else "risk limits saved",
                          {"venue": self.venue_page.choice(), **values}, self.operator)  # fmt: skip


async def promote(engine: Engine, operator: str, reason: str) -> tuple[bool, str]:
    """Through the OperatorAPI (audited, one command id), as every operator command goes."""
    api = getattr(engine, "api", None)
    if api is None:  # an engine without the API layer (older kernels)
        return await engine.promote(operator, reason)  # type: ignore[attr-defined, no-any-return]
    result = await api.promote(reason, operator)
    return bool(result.ok), str(result.message)


def venue_label(venue: str, mode: str) -> str:
    return next((label.split(" — ")[0] for label, v, m in VENUE_CHOICES if (v, m) == (venue, mode)),
                f"{venue} ({mode})")  # fmt: skip


class WizardLauncher:
    """Opens one wizard at a time from the window's action, and by itself on the first start."""

    def __init__(self, engine: Engine, window: QWidget, config_path: Path | None = None) -> None:
        self.engine = engine
        self.window = window
        self.config_path = config_path
        self.wizard: ActivationWizard | None = None

    def open(self) -> ActivationWizard:
        if self.wizard is not None:
            if self.wizard.isVisible():
                self.wizard.raise_()
                return self.wizard
            shiboken6.delete(self.wizard)  # a finished wizard is not reused: every run starts fresh
        self.wizard = ActivationWizard(self.engine, self.window, config_path=self.config_path)
        self.wizard.accepted.connect(self._disclosure_accepted)
        store = getattr(self.window, "store", None)
        if store is not None:  # accepted at the first-run question: not asked twice in a row
            from console.first_run import ACCEPTED, remembered_choice

            self.wizard.welcome_page.ack.setChecked(remembered_choice(store) == ACCEPTED)
        self.wizard.open()
        return self.wizard

    def _disclosure_accepted(self) -> None:
        # finishing the wizard means its first page's disclosure was accepted: the first-run question is answered
        store = getattr(self.window, "store", None)
        if store is not None:
            from console.first_run import ACCEPTED, remember

            remember(store, ACCEPTED)

    def open_on_first_start(self) -> ActivationWizard | None:
        """Once: a finished wizard, or one the operator cancelled, is not shown again by itself
        (the Activation menu opens it any time)."""
        journal = self.engine.journal
        if journal.get_state(DONE_KEY) or journal.get_state(DISMISSED_KEY):
            return None
        wizard = self.open()
        wizard.rejected.connect(lambda: journal.set_state(DISMISSED_KEY, True))
        return wizard
