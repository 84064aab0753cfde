"""The activation wizard's risk-limits page: the limits for the stage the engine trades at,
pre-filled from the settings, each value outside the stage's rules or the config's cross-field
rules refused on the page with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QDoubleSpinBox, QFormLayout, QLabel, QSpinBox, QWizardPage

from console.wizard_common import show_verdict, text_label
from engine.activation.stages import STAGE_LABELS
from engine.core.config_rules import validate_risk_changes
from widgets import format as fmt

if TYPE_CHECKING:
    from console.wizard import ActivationWizard


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
        self.bounds_note = text_label()
        self.form.addRow(self.bounds_note)
        self.refusal = text_label(name="riskRefusal")
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
            show_verdict(self.refusal, False, "Not accepted:\n• " + "\n• ".join(found))
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
