"""The activation wizard's pages. Each page refuses to continue (isComplete) while its rule fails
and says why on the page; the shared choices live on the wizard (``console.wizard.ActivationWizard``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWizardPage,
)

from engine.activation.stages import STAGE_LABELS, Criterion
from engine.core.environment import DEFAULT_ENDPOINTS, environment_check, infer_key_kind
from engine.core.stage_venues import allowed_modes
from engine.persistence.secrets import CredentialError
from widgets import theme

if TYPE_CHECKING:
    from console.wizard import ActivationWizard

CONFIRM_PHRASE = "I ACCEPT REAL MONEY RISK"
# (label, venue, mode)
VENUE_CHOICES = (
    ("Simulated — no keys, no network", "simulated", "simulated"),
    ("Binance testnet", "binance", "testnet"),
    ("Binance LIVE — real money", "binance", "live"),
    ("Alpaca paper", "alpaca", "paper"),
    ("Alpaca LIVE — real money", "alpaca", "live"),
)
DISCLOSURE = (
    "Automated trading can lose money quickly, including more than you expect: strategies fail, "
    "venues go down, orders fill at worse prices than shown, and software has bugs. Past results "
    "on paper or testnet do not promise live results.\n\n"
    "This console limits risk (breakers, stages, approvals, EMERGENCY STOP), but it cannot remove "
    "it. You stay responsible for every order placed with your keys. Use only money you can "
    "afford to lose."
)


def _label(text: str = "", *, wrap: bool = True, name: str = "") -> QLabel:
    lbl = QLabel(text)
    lbl.setWordWrap(wrap)
    if name:
        lbl.setObjectName(name)
    return lbl


def _verdict(label: QLabel, ok: bool | None, text: str) -> None:
    pal = theme.current_palette()
    colour = pal.muted if ok is None else pal.green if ok else pal.red
    mark = "" if ok is None else "✔ " if ok else "✖ "
    label.setText(mark + text)
    label.setStyleSheet(f"color: {colour}; font-weight: bold;")


class WelcomePage(QWizardPage):
    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Welcome — risk disclosure")
        self.setSubTitle("Read this first. Trading with this console is at your own risk.")
        self.ack = QCheckBox("I have read and understood the risks, and I accept them.")
        self.ack.toggled.connect(lambda _c: self.completeChanged.emit())
        layout = QVBoxLayout(self)
        layout.addWidget(_label(DISCLOSURE))
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
        self.stage_note = _label()
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
        target = self.wiz.target_stage
        if target is None:
            self.stage_note.setText("The engine is at the last stage (production).")
            return
        modes = allowed_modes(self.wiz.engine.settings, target)  # the stage's list within its fixed ceiling
        fits = mode in modes
        note = f"Next stage: {STAGE_LABELS[target]} runs on {', '.join(modes)}."
        _verdict(self.stage_note, None if fits else False, note if fits else note + f" '{mode}' is not one of them.")

    def nextId(self) -> int:
        from console.wizard import Page

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
        self.inferred = _label()
        self.master = QLineEdit()
        self.master.setEchoMode(QLineEdit.EchoMode.Password)
        self.master_again = QLineEdit()
        self.master_again.setEchoMode(QLineEdit.EchoMode.Password)
        self.master_note = _label(
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
        self.env_label = _label(name="envCheck")
        self.test_button = QPushButton("Test connection")
        self.test_button.clicked.connect(self.start_test)
        self.conn_label = _label(name="connCheck")
        self.store_label = _label(name="refusal")
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
        _verdict(self.env_label, self.env_ok, msg)
        self.conn_ok = False
        self.test_button.setEnabled(self.env_ok)
        _verdict(self.conn_label, None, "Not tested yet." if self.env_ok else "Fix the environment first.")
        self.store_label.clear()
        self.completeChanged.emit()

    def start_test(self) -> None:
        venue, mode = self.wiz.venue_page.choice()
        endpoint = self.wiz.venue_page.endpoint.text().strip()
        self.test_button.setEnabled(False)
        _verdict(self.conn_label, None, f"Connecting to {endpoint}…")
        self._task = asyncio.ensure_future(self.wiz.connectivity_test(venue, mode, endpoint))
        self._task.add_done_callback(self._tested)

    def _tested(self, task: asyncio.Future[tuple[bool, str]]) -> None:
        try:
            ok, msg = task.result()
        except Exception as exc:  # the tester's message never holds the secret; the type is enough
            ok, msg = False, f"connection test failed: {type(exc).__name__}"
        self.conn_ok = ok
        _verdict(self.conn_label, ok, msg)
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
            return False
        return True


class RiskPage(QWizardPage):
    """Limits for the target stage, pre-filled from the settings and bounded by the config rules."""

    def __init__(self, wiz: ActivationWizard) -> None:
        super().__init__()
        self.wiz = wiz
        self.setTitle("Risk limits")
        self.form = QFormLayout(self)
        self.risk_per_trade = self._pct_spin()
        self.daily_loss = self._pct_spin()
        self.max_drawdown = self._pct_spin()
        self.max_position = self._pct_spin()
        self.max_positions = QSpinBox()
        self.capital_cap = QDoubleSpinBox()
        self.capital_cap.setDecimals(0)
        self.capital_cap.setSingleStep(100)
        self.form.addRow("Risk per trade:", self.risk_per_trade)
        self.form.addRow("Daily loss limit:", self.daily_loss)
        self.form.addRow("Maximum drawdown:", self.max_drawdown)
        self.form.addRow("Largest position (of equity):", self.max_position)
        self.form.addRow("Open positions at most:", self.max_positions)
        self.form.addRow("Capital cap (quote currency):", self.capital_cap)
        self.bounds_note = _label()
        self.form.addRow(self.bounds_note)

    @staticmethod
    def _pct_spin() -> QDoubleSpinBox:
        s = QDoubleSpinBox()
        s.setSuffix(" %")
        s.setDecimals(2)
        s.setSingleStep(0.1)
        return s

    def initializePage(self) -> None:
        s = self.wiz.engine.settings
        target = self.wiz.target_stage or self.wiz.engine.stage_manager.stage
        stage_cfg = s.stages.stage(target)
        self.setSubTitle(f"For the {STAGE_LABELS[target]} stage. Values outside the rules cannot be entered.")
        top = stage_cfg.size_schedule[-1] * 100  # the stage's own schedule, itself at most 2 %
        self.risk_per_trade.setRange(0.01, top)
        self.risk_per_trade.setValue(min(s.risk.risk_per_trade * 100, top))
        for spin, value in ((self.daily_loss, s.risk.daily_loss_limit), (self.max_drawdown, s.risk.max_drawdown),
                            (self.max_position, s.risk.max_position_notional)):  # fmt: skip
            spin.setRange(0.01, 99.99)  # a fraction strictly between 0 and 1
            spin.setValue(value * 100)
        self.max_positions.setRange(1, stage_cfg.max_symbols or 50)
        self.max_positions.setValue(min(s.risk.max_concurrent_positions, stage_cfg.max_symbols or 50))
        lo, hi = self.cap_bounds(target)
        has_cap = hi is not None
        self.form.setRowVisible(self.capital_cap, has_cap)
        if has_cap and lo is not None:
            self.capital_cap.setRange(lo, hi)
            self.capital_cap.setValue(min(max(stage_cfg.capital_cap or lo, lo), hi))
        notes = [f"Risk per trade at most {top:.2f} % at {STAGE_LABELS[target]}, ramping "
                 + " then ".join(f"{x:.2%}" for x in stage_cfg.size_schedule) + " over the stage."]
        if stage_cfg.max_symbols:
            notes.append(f"At most {stage_cfg.max_symbols} symbol(s) held at once.")
        if has_cap:
            notes.append(f"Capital cap between {lo:,.0f} and {hi:,.0f}.")
        self.bounds_note.setText(" ".join(notes))

    def cap_bounds(self, target: str) -> tuple[float | None, float | None]:
        stages = self.wiz.engine.settings.stages
        if target == "live_micro":
            return 1000.0, 5000.0
        if target == "live_scaling":
            base = stages.live_micro.capital_cap or 1000.0
            current = stages.live_scaling.capital_cap or base
            step = stages.live_scaling.max_capital_step or 0.5
            return base, max(base, current * (1 + step))  # one step of at most +50 %
        return None, None

    def values(self) -> dict[str, float | int | None]:
        return {
            "risk_per_trade": round(self.risk_per_trade.value() / 100, 6),
            "daily_loss_limit": round(self.daily_loss.value() / 100, 6),
            "max_drawdown": round(self.max_drawdown.value() / 100, 6),
            "max_position_notional": round(self.max_position.value() / 100, 6),
            "max_concurrent_positions": self.max_positions.value(),
            "capital_cap": self.capital_cap.value() if self.capital_cap.isVisibleTo(self) else None,
        }


def show_value(c: Criterion, value: float | None) -> str:
    if value is None:
        return "not measured"
    if c.unit == "fraction":
        return f"{value * 100:.2f} %"
    if c.unit == "days":
        return f"{value:.1f} days"
    return f"{value:g}"


class EvidenceTable(QTableWidget):
    HEADERS = ("Criterion", "Measured", "Needs", "Result")

    def __init__(self) -> None:
        super().__init__(0, len(self.HEADERS))
        self.setHorizontalHeaderLabels(list(self.HEADERS))
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        h = self.horizontalHeader()
        h.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)

    def set_criteria(self, criteria: list[Criterion], red_flag: bool = False) -> None:
        pal = theme.current_palette()
        self.setRowCount(len(criteria))
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for row, c in enumerate(criteria):
            result = "✔ PASS" if c.passed else ("✖ RED FLAG" if red_flag else "✖ FAIL")
            cells = (c.description, show_value(c, c.value), f"{c.comparison} {show_value(c, c.threshold)}", result)
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col in (1, 2):
                    item.setTextAlignment(right)
                if col == 3:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                    item.setBackground(QColor(pal.green if c.passed else pal.red))
                    item.setForeground(QColor(pal.on_strong))
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                if col == 0:
                    item.setToolTip(c.explain())
                self.setItem(row, col, item)

        # exactly as tall as its rows: the verdict below stays next to them, not under an empty band
        height = self.horizontalHeader().sizeHint().height() + self.verticalHeader().length()
        self.setFixedHeight(height + 2 * self.frameWidth() + 6)

    def results(self) -> list[str]:
        return [self.item(r, 3).text() for r in range(self.rowCount())]
