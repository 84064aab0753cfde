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
from engine.core.config_rules import validate_risk_changes
from engine.core.environment import DEFAULT_ENDPOINTS, environment_check, infer_key_kind
from engine.persistence.secrets import CredentialError
from widgets import format as fmt
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
        when, note = self.wiz.venue_verdict(venue, mode)
        _verdict(self.stage_note, None if when else False, note)  # a neutral note for an allowed choice
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.wiz.venue_verdict(*self.choice())[0] is not None

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
        _verdict(self.env_label, self.env_ok, msg)
        self.conn_ok = False
        self.test_button.setEnabled(self.env_ok)
        _verdict(self.conn_label, None, "Not tested yet." if self.env_ok else "Fix the environment first.")
        self.store_label.clear()
        self.store_label.setVisible(False)
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
            self.store_label.setVisible(True)
            return False
        return True


class RiskPage(QWizardPage):
    """Limits for the stage the engine trades at, pre-filled from the settings.

    Any number can be typed; one outside the rules is refused on the page with the reason (a spin
    box clamped to its range would silently drop "50" instead), and Next stays disabled.
    """

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
        self.max_positions.setRange(0, 1000)
        self.capital_cap = QDoubleSpinBox()
        self.capital_cap.setDecimals(0)
        self.capital_cap.setSingleStep(100)
        self.capital_cap.setRange(0, 1e9)
        self.form.addRow("Risk per trade:", self.risk_per_trade)
        self.form.addRow("Daily loss limit:", self.daily_loss)
        self.form.addRow("Maximum drawdown:", self.max_drawdown)
        self.form.addRow("Largest position (of equity):", self.max_position)
        self.form.addRow("Open positions at most:", self.max_positions)
        self.form.addRow("Capital cap (quote currency):", self.capital_cap)
        self.bounds_note = _label()
        self.form.addRow(self.bounds_note)
        self.refusal = _label(name="riskRefusal")
        self.form.addRow(self.refusal)
        for spin in (self.risk_per_trade, self.daily_loss, self.max_drawdown, self.max_position, self.capital_cap):
            spin.valueChanged.connect(self._changed)
        self.max_positions.valueChanged.connect(self._changed)
        self._top = 2.0
        self._max_symbols: int | None = None
        self._cap: tuple[float | None, float | None] = (None, None)

    @staticmethod
    def _pct_spin() -> QDoubleSpinBox:
        s = QDoubleSpinBox()
        s.setSuffix(" %")
        s.setDecimals(2)
        s.setSingleStep(0.1)
        s.setRange(0.0, 1000.0)  # wide on purpose: what is out of the rules is refused with a message
        return s

    def stage(self) -> str:
        """The stage these limits are for: the one the engine trades at now."""
        return self.wiz.engine.stage_manager.stage

    def initializePage(self) -> None:
        s = self.wiz.engine.settings
        stage = self.stage()
        stage_cfg = s.stages.stage(stage)
        target = self.wiz.target_stage
        after = f" (they stay in force after a promotion to {STAGE_LABELS[target]})" if target else ""
        self.setSubTitle(f"Limits for the {STAGE_LABELS[stage]} stage{after}. Values outside the rules are refused.")
        self._top = stage_cfg.size_schedule[-1] * 100  # the stage's own schedule, itself at most 2 %
        self._max_symbols = stage_cfg.max_symbols
        self.risk_per_trade.setValue(min(s.risk.risk_per_trade * 100, self._top))
        for spin, value in ((self.daily_loss, s.risk.daily_loss_limit), (self.max_drawdown, s.risk.max_drawdown),
                            (self.max_position, s.risk.max_position_notional)):  # fmt: skip
            spin.setValue(value * 100)
        self.max_positions.setValue(min(s.risk.max_concurrent_positions, self._max_symbols or 50))
        cap_stage = target or stage
        lo, hi = self.cap_bounds(cap_stage)
        self._cap = (lo, hi)
        has_cap = hi is not None
        self.form.setRowVisible(self.capital_cap, has_cap)
        if has_cap and lo is not None:
            label = self.form.labelForField(self.capital_cap)
            if isinstance(label, QLabel):
                label.setText(f"Capital cap at {STAGE_LABELS[cap_stage]}:")
            self.capital_cap.setValue(min(max(s.stages.stage(cap_stage).capital_cap or lo, lo), hi))
        notes = [f"Risk per trade at most {fmt.fmt_pct(self._top, signed=False)} at {STAGE_LABELS[stage]}, ramping "
                 + " then ".join(fmt.fmt_fraction_pct(x) for x in stage_cfg.size_schedule) + " over the stage."]
        if self._max_symbols:
            notes.append(f"At most {fmt.fmt_count(self._max_symbols, 'symbol')} held at once.")
        if has_cap:
            notes.append(f"Capital cap between {fmt.fmt_money(lo, decimals=0)} and {fmt.fmt_money(hi, decimals=0)}.")
        self.bounds_note.setText(" ".join(notes))
        self._changed()

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

    def problems(self) -> list[str]:
        """Every value the rules refuse, named, with the rule; empty when the page may be saved."""
        found = []
        stage = STAGE_LABELS[self.stage()]
        risk = self.risk_per_trade.value()
        if risk <= 0:
            found.append("Risk per trade must be above 0 %.")
        elif risk > self._top + 1e-9:
            found.append(f"Risk per trade {fmt.fmt_pct(risk, signed=False)} is above the {stage} stage's ceiling "
                         f"of {fmt.fmt_pct(self._top, signed=False)}.")  # fmt: skip
        for name, spin in (("Daily loss limit", self.daily_loss), ("Maximum drawdown", self.max_drawdown),
                           ("Largest position", self.max_position)):  # fmt: skip
            if not 0 < spin.value() < 100:
                found.append(f"{name} {fmt.fmt_pct(spin.value(), signed=False)} must be above 0 % and below 100 %.")
        n, most = self.max_positions.value(), self._max_symbols or 50
        if not 1 <= n <= most:
            found.append(f"Open positions at most must be between 1 and {most} at the {stage} stage (not {n}).")
        lo, hi = self._cap
        if hi is not None and lo is not None and not lo <= self.capital_cap.value() <= hi:
            found.append(f"Capital cap {fmt.fmt_money(self.capital_cap.value(), decimals=0)} must be between "
                         f"{fmt.fmt_money(lo, decimals=0)} and {fmt.fmt_money(hi, decimals=0)}.")  # fmt: skip
        if not found:  # the config's own cross-field rules (e.g. a daily loss above the drawdown)
            try:
                values = self.values()
                values.pop("capital_cap")
                validate_risk_changes(self.wiz.engine.settings.risk, values)
            except ValueError as exc:
                found.append(f"Refused by the configuration rules: {exc}")
        return found

    def _changed(self) -> None:
        found = self.problems()
        self.refusal.setVisible(bool(found))
        if found:
            _verdict(self.refusal, False, "Not accepted:\n• " + "\n• ".join(found))
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return not self.problems()

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
        return fmt.fmt_fraction_pct(value)
    if c.unit == "days":
        return f"{value:.1f} days" if value != 1 else "1 day"
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
