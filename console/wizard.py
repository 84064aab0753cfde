"""The activation wizard: disclosure, venue, credentials, environment check, risk limits, evidence,
the typed confirmation for live stages, a summary; Finish may promote to the next stage.

This module is the QWizard, which holds what the pages share and saves the setup (checked whole
before anything changes, never half-applied), and the launcher that opens it. The pages live in
``wizard_setup_pages``, ``wizard_risk_page`` and ``wizard_stage_pages``. Opened with ``.open()``
(never ``exec()``: qasync). Shown by itself until a run of it has finished once (journal state
key ``wizard_done``).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import shiboken6
import tomli_w
from PySide6.QtWidgets import QWidget, QWizard

from console.wizard_common import VENUE_CHOICES, Page
from console.wizard_risk_page import RiskPage
from console.wizard_setup_pages import ConnectPage, CredentialsPage, VenuePage, WelcomePage
from console.wizard_stage_pages import ConfirmPage, EvidencePage, SummaryPage
from engine.activation.stages import LIVE_STAGES, STAGE_LABELS, Evaluation, next_stage
from engine.core.config import Settings, load_settings, save_settings
from engine.core.config_rules import apply_risk_changes
from engine.core.stage_venues import allowed_modes, check_stage_allows
from engine.persistence.secrets import CredentialStore

if TYPE_CHECKING:
    from engine.app.console_view import ConsoleEngine as Engine

log = logging.getLogger(__name__)

DONE_KEY = "wizard_done"
DISMISSED_KEY = "wizard_dismissed"  # cancelled on a first start: offered from the menu, not forced again
ConnectivityTest = Callable[[str, str, str], Awaitable[tuple[bool, str]]]
_PING = {"binance": "/api/v3/ping", "alpaca": "/v2/clock"}


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
