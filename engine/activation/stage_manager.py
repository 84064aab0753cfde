"""The engine's current activation stage: persisted, promoted on evidence, demoted on red flags.

The stage lives in the journal's state table (`stage`, `stage_since`, `paper_win_rate`), so
the headless `trading-console stage` command reads the same thing the engine uses. Every
change is audited and published as a StageEvent.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from engine.activation.evidence_window import EvidenceWindow
from engine.activation.stages import (
    STAGE_LABELS,
    Evaluation,
    evaluate,
    next_stage,
    previous_stage,
)
from engine.core.config import StagesConfig
from engine.core.events import StageEvent
from engine.core.model import AlertLevel, TradingState
from engine.core.stage_venues import running_venue_refusal
from engine.persistence.journal_schema import dt_to_text, text_to_dt
from engine.risk.stage_limits import StageLimits, stage_limits

if TYPE_CHECKING:
    from engine.ports import RiskHost

log = logging.getLogger(__name__)


class StageManager:
    def __init__(self, engine: RiskHost) -> None:
        self.e = engine
        self._stage: str | None = None
        self._since: datetime | None = None
        self._paper_win_rate: float | None = None
        self._window = EvidenceWindow()  # the journal read incrementally, not once per check

    @property
    def config(self) -> StagesConfig:
        return self.e.settings.stages

    @property
    def stage(self) -> str:
        return self._stage or self.config.initial

    @property
    def since(self) -> datetime | None:
        return self._since

    def load(self) -> None:
        """Restore from the journal (a first start begins the initial stage now)."""
        j = self.e.journal
        stage = j.get_state("stage")
        since = j.get_state("stage_since")
        self._paper_win_rate = j.get_state("paper_win_rate")
        if stage is None or since is None:
            self.enter(stage or self.config.initial, self.e.clock.now())
        else:
            self._stage, self._since = stage, text_to_dt(since)
            self.refresh_limits()

    def enter(self, stage: str, since: datetime) -> None:
        """Be at `stage` since `since` (persisted): the one place a stage begins, from load, promote, demote."""
        self._stage, self._since = stage, since
        self.e.journal.set_state("stage", stage)
        self.e.journal.set_state("stage_since", dt_to_text(since))
        self.refresh_limits()

    # --- what the stage allows --------------------------------------------------------
    def limits(self, now: datetime | None = None) -> StageLimits:
        since = self._since or self.e.clock.now()
        return stage_limits(self.stage, self.config.stage(self.stage), since, now or self.e.clock.now())

    def refresh_limits(self) -> StageLimits:
        """Hand the RiskEngine the stage's current limits; a new size step is audited."""
        new = self.limits()
        old = self.e.risk.stage
        self.e.risk.stage = new
        if old is not None and old.stage == new.stage and new.step != old.step:
            self.e.audit("stage_size_step", f"size schedule step {new.step + 1} of {new.steps}",
                         {"stage": new.stage, "risk_per_trade": new.risk_per_trade}, "system")  # fmt: skip
            self.e.alert(AlertLevel.INFO, "stage_size_step", f"{STAGE_LABELS[new.stage]}: {new.describe()}",
                         key=f"stage_size_step:{new.stage}:{new.step}")  # fmt: skip
        return new

    # --- evidence ---------------------------------------------------------------------
    def evaluate(self, now: datetime | None = None) -> Evaluation:
        """Blocking (journal reads and pandas): run it off the loop, see evaluate_async."""
        data = self._window.load(self.e.journal, self._since, self._paper_win_rate)
        tz = self.e.settings.engine.trading_day_tz
        return evaluate(self.stage, data, now or self.e.clock.now(), self.config, tz)

    async def evaluate_async(self) -> Evaluation:
        now = self.e.clock.now()
        await asyncio.to_thread(self.e.journal.flush)  # what the engine just did counts too
        return await asyncio.to_thread(self.evaluate, now)

    # --- operator acts ------------------------------------------------------------------
    async def promote(self, operator: str, reason: str) -> tuple[bool, str]:
        """Move up one stage; refused while any criterion fails or a red flag holds."""
        stage = self.stage
        target = next_stage(stage)
        refusal = None
        ev: Evaluation | None = None
        if target is None:
            refusal = f"{STAGE_LABELS[stage]} is the last stage"
        elif not reason.strip():
            refusal = "a reason is required to promote"
        else:
            ev = await self.evaluate_async()
            if not ev.passed:
                refusal = "criteria not met: " + ev.summary()
        details = {"stage": stage, "target": target, "evaluation": ev.to_dict() if ev else None}
        if refusal is not None or target is None:
            self.e.audit("stage_promote_refused", reason, {**details, "refusal": refusal}, operator)
            return False, refusal or ""
        if stage == "paper" and ev is not None:
            self._paper_win_rate = ev.measured.get("win_rate")
            self.e.journal.set_state("paper_win_rate", self._paper_win_rate)
        self._change(target, operator, reason, "stage_promote", details)
        return True, f"promoted to {STAGE_LABELS[target]}"

    def demote(self, operator: str, reason: str) -> tuple[bool, str]:
        stage = self.stage
        target = previous_stage(stage)
        if target is None or not reason.strip():
            refusal = f"{STAGE_LABELS[stage]} is the first stage" if target is None else "a reason is required"
            self.e.audit("stage_demote_refused", reason, {"stage": stage, "refusal": refusal}, operator)
            return False, refusal
        self._change(target, operator, reason, "stage_demote", {"stage": stage, "target": target})
        return True, f"demoted to {STAGE_LABELS[target]}"

    def _change(self, target: str, operator: str, reason: str, action: str, details: dict[str, object]) -> None:
        previous = self.stage
        now = self.e.clock.now()
        self.enter(target, now)  # the evidence for the new stage starts now
        self.e.audit(action, reason, {**details, "from": previous, "to": target}, operator)
        self.e.bus.publish(StageEvent(now, target, previous, reason))
        self.e.alert(
            AlertLevel.WARNING if action.startswith("stage_demote") else AlertLevel.INFO,
            action,
            f"Stage {STAGE_LABELS[previous]} -> {STAGE_LABELS[target]} by {operator}: {reason}",
            key=f"stage:{target}",
        )
        refusal = running_venue_refusal(self.e.settings, target, self.e.venue.name, self.e.venue.mode.value)
        if refusal is not None:  # the stage changes (the evidence says so), the venue must not stay in use
            self.e.risk.set_state(TradingState.HALTED, refusal, "system")
            self.e.alert(AlertLevel.CRITICAL, "stage_venue_refused", refusal, key="stage_venue")

    # --- red flags --------------------------------------------------------------------
    def apply_red_flags(self, ev: Evaluation) -> bool:
        """Demote and/or halt on tripped red flags. True when it acted."""
        if not ev.red_flags or ev.stage != self.stage or ev.since != self._since:
            return False  # nothing tripped, or the evaluation is stale (the stage changed since)
        what = "; ".join(c.explain() for c in ev.red_flags)
        action = self.config.red_flags.action
        stage = self.stage
        target = previous_stage(stage)
        details = {"stage": stage, "red_flags": [c.to_dict() for c in ev.red_flags]}
        if action in ("demote", "demote_and_halt") and target is not None:
            self._change(target, "system", f"red flag: {what}", "stage_demote_auto", details)
        else:  # nowhere to demote to: the evidence restarts, so the same flag does not fire again
            self.enter(stage, self.e.clock.now())
            self.e.audit("stage_evidence_reset", f"red flag: {what}", details, "system")
        halt = action in ("halt", "demote_and_halt") or target is None
        if halt and self.e.risk.state is not TradingState.HALTED:
            self.e.risk.set_state(TradingState.HALTED, f"red flag at {STAGE_LABELS[stage]}: {what}", "system")
        self.e.alert(AlertLevel.CRITICAL, "stage_red_flag", f"Red flag at {STAGE_LABELS[stage]}: {what}")
        return True

    async def check_red_flags(self) -> Evaluation:
        ev = await self.evaluate_async()
        self.apply_red_flags(ev)
        return ev
