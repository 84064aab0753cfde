"""The activation wizard's setup pages: the risk disclosure, the venue and mode, the API credentials,
and the environment check with a connectivity test. Each page refuses to continue (isComplete)
while its rule fails and says why on the page; the shared choices live on the wizard
(``console.wizard.ActivationWizard``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWizardPage,
)

from console.wizard_common import DISCLOSURE, VENUE_CHOICES, Page, show_verdict, text_label
from engine.core.environment import DEFAULT_ENDPOINTS, environment_check, infer_key_kind
from engine.persistence.secrets import CredentialError

if TYPE_CHECKING:
    from console.wizard import ActivationWizard


class WelcomePage(QWizardPage):
    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Welcome — risk disclosure")
        self.setSubTitle("Read this first. Trading with this console is at your own risk.")
        self.ack = QCheckBox("I have read and understood the risks, and I accept them.")
        self.ack.toggled.connect(lambda _c: self.completeChanged.emit())
        layout = QVBoxLayout(self)
        layout.addWidget(text_label(DISCLOSURE))
        layout.addStretch(1)
        layout.addWidget(self.ack)

    def isComplete(self) -> bool:
        return self.ack.isChecked()


class VenuePage(QWizardPage):
    def __init__(self, wiz: ActivationWizard) -> None:
        super().__init__()
        self.wiz = wiz
        self.setTitle("Venue and mode")
        self.setSubTitle("Where orders go. LIVE modes trade real money.")
        self.combo = QComboBox()
        for label, venue, mode in VENUE_CHOICES:
            self.combo.addItem(label, (venue, mode))
        self.endpoint = QLineEdit()
        self.account = QLineEdit("main")
        self.stage_note = text_label()
        form = QFormLayout(self)
        form.addRow("Venue and mode:", self.combo)
        form.addRow("Endpoint:", self.endpoint)
        form.addRow("Account name:", self.account)
        form.addRow(self.stage_note)
        self.combo.currentIndexChanged.connect(self._changed)
        self._changed()

    def choice(self) -> tuple[str, str]:
        venue, mode = self.combo.currentData()
        return str(venue), str(mode)

    def _changed(self) -> None:
        venue, mode = self.choice()
        self.endpoint.setText(DEFAULT_ENDPOINTS.get((venue, mode), ""))
        self.endpoint.setEnabled(venue != "simulated")
        when, note = self.wiz.venue_verdict(venue, mode)
        show_verdict(self.stage_note, None if when else False, note)  # a neutral note for an allowed choice
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.wiz.venue_verdict(*self.choice())[0] is not None

    def nextId(self) -> int:
        return Page.RISK if self.choice()[0] == "simulated" else Page.CREDENTIALS


class CredentialsPage(QWizardPage):
    KINDS = (("Choose…", ""), ("Paper / testnet key", "test"), ("Live key (real money)", "live"))

    def __init__(self, wiz: ActivationWizard) -> None:
        super().__init__()
        self.wiz = wiz
        self.setTitle("API credentials")
        self.setSubTitle("Stored in the OS keyring (or an encrypted file), never in a config file or a log.")
        self.key = QLineEdit()
        self.secret = QLineEdit()
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.kind = QComboBox()
        for label, value in self.KINDS:
            self.kind.addItem(label, value)
        self.inferred = text_label()
        self.master = QLineEdit()
        self.master.setEchoMode(QLineEdit.EchoMode.Password)
        self.master_again = QLineEdit()
        self.master_again.setEchoMode(QLineEdit.EchoMode.Password)
        self.master_note = text_label(
            "No keyring service runs here: the credentials go to an encrypted file. Choose a master "
            "password; it is asked again when the engine needs the keys.", name="warningNote"
        )
        form = QFormLayout(self)
        form.addRow("API key:", self.key)
        form.addRow("API secret:", self.secret)
        form.addRow("Key kind:", self.kind)
        form.addRow(self.inferred)
        form.addRow(self.master_note)
        form.addRow("Master password:", self.master)
        form.addRow("Repeat master password:", self.master_again)
        for w in (self.key, self.secret, self.master, self.master_again):
            w.textChanged.connect(self._changed)
        self.kind.currentIndexChanged.connect(self._changed)

    def initializePage(self) -> None:
        needs = self.wiz.credential_store.needs_master_password
        for w in (self.master_note, self.master, self.master_again):
            w.setVisible(needs)
        form = self.layout()
        if isinstance(form, QFormLayout):
            for w in (self.master, self.master_again):
                form.setRowVisible(w, needs)
        self._changed()

    def key_kind(self) -> str:
        venue, mode = self.wiz.venue_page.choice()
        inferred = infer_key_kind(venue, self.key.text())
        if inferred:
            return inferred
        declared = str(self.kind.currentData())
        return "" if not declared else "live" if declared == "live" else ("paper" if mode == "paper" else "testnet")

    def _changed(self) -> None:
        venue, _mode = self.wiz.venue_page.choice()
        inferred = infer_key_kind(venue, self.key.text())
        self.inferred.setText(f"Alpaca says this is a {inferred} key (from its prefix)." if inferred else "")
        self.kind.setEnabled(inferred is None)
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        if not self.key.text().strip() or not self.secret.text().strip() or not self.key_kind():
            return False
        if self.wiz.credential_store.needs_master_password:
            return bool(self.master.text()) and self.master.text() == self.master_again.text()
        return True


class ConnectPage(QWizardPage):
    """Environment check first (pure, instant), then a connectivity test; both must pass."""

    def __init__(self, wiz: ActivationWizard) -> None:
        super().__init__()
        self.wiz = wiz
        self.setTitle("Environment check and connectivity")
        self.setSubTitle("Live keys only against live endpoints, paper/testnet keys only against test endpoints.")
        self.env_label = text_label(name="envCheck")
        self.test_button = QPushButton("Test connection")
        self.test_button.clicked.connect(self.start_test)
        self.conn_label = text_label(name="connCheck")
        self.store_label = text_label(name="refusal")
        self.store_label.setVisible(False)  # an empty refusal box reads as an error
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Environment check:"))
        layout.addWidget(self.env_label)
        layout.addWidget(self.test_button)
        layout.addWidget(self.conn_label)
        layout.addWidget(self.store_label)
        layout.addStretch(1)
        self.env_ok = False
        self.conn_ok = False
        self._task: asyncio.Future[tuple[bool, str]] | None = None

    def initializePage(self) -> None:
        venue, mode = self.wiz.venue_page.choice()
        kind = self.wiz.credentials_page.key_kind()
        self.env_ok, msg = environment_check(venue, mode, kind, self.wiz.venue_page.endpoint.text().strip())
        show_verdict(self.env_label, self.env_ok, msg)
        self.conn_ok = False
        self.test_button.setEnabled(self.env_ok)
        show_verdict(self.conn_label, None, "Not tested yet." if self.env_ok else "Fix the environment first.")
        self.store_label.clear()
        self.store_label.setVisible(False)
        self.completeChanged.emit()

    def start_test(self) -> None:
        venue, mode = self.wiz.venue_page.choice()
        endpoint = self.wiz.venue_page.endpoint.text().strip()
        self.test_button.setEnabled(False)
        show_verdict(self.conn_label, None, f"Connecting to {endpoint}…")
        self._task = asyncio.ensure_future(self.wiz.connectivity_test(venue, mode, endpoint))
        self._task.add_done_callback(self._tested)

    def _tested(self, task: asyncio.Future[tuple[bool, str]]) -> None:
        try:
            ok, msg = task.result()
        except Exception as exc:  # the tester's message never holds the secret; the type is enough
            ok, msg = False, f"connection test failed: {type(exc).__name__}"
        self.conn_ok = ok
        show_verdict(self.conn_label, ok, msg)
        self.test_button.setEnabled(True)
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.env_ok and self.conn_ok

    def validatePage(self) -> bool:
        """Store the credentials only now: never keys that failed the environment check."""
        try:
            self.wiz.store_credentials()
        except CredentialError as exc:
            self.store_label.setText(f"✖ {exc}")
            self.store_label.setVisible(True)
            return False
        return True
