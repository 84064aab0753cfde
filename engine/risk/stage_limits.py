"""What the current activation stage allows: capital cap, risk per trade, symbols.

A pure function of the stage's config, when the stage began and the clock, so the
RiskEngine can be handed fresh limits at any moment and tests can name the instant.

The size schedule ramps risk per trade up in equal slices of the stage's minimum
duration: live micro's [0.5%, 1%] over 14 days is 0.5% for 7 days, then 1%. The
operator's own `risk.risk_per_trade` stays a ceiling the schedule never exceeds.
A promotion or demotion restarts the stage, so the ramp starts again from its first step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from engine.core.config import StageConfig

DEFAULT_STEP_DAYS = 7.0  # a stage with no minimum duration ramps one step a week


@dataclass(frozen=True, slots=True)
class StageLimits:
    stage: str
    capital_cap: Decimal | None  # quote currency; None: full equity
    risk_per_trade: float  # the schedule's current step
    step: int  # 0-based index into the schedule
    steps: int
    next_step_at: datetime | None  # None: on the last step
    allowlist: frozenset[str]  # empty: every symbol
    max_symbols: int | None  # distinct symbols holding a position at once

    def describe(self) -> str:
        parts = [f"risk/trade {self.risk_per_trade:.2%} (step {self.step + 1} of {self.steps})"]
        if self.capital_cap is not None:
            parts.append(f"capital cap {self.capital_cap:,.0f}")
        if self.allowlist:
            parts.append("symbols " + ", ".join(sorted(self.allowlist)))
        if self.max_symbols is not None:
            parts.append(f"at most {self.max_symbols} symbol{'s' if self.max_symbols > 1 else ''} at once")
        return "; ".join(parts)


def stage_limits(stage: str, cfg: StageConfig, since: datetime, now: datetime) -> StageLimits:
    schedule = cfg.size_schedule
    days = cfg.criteria.min_days or DEFAULT_STEP_DAYS * len(schedule)
    slice_ = timedelta(days=days / len(schedule))
    elapsed = max(now - since, timedelta(0))
    step = min(int(elapsed / slice_), len(schedule) - 1)
    next_at = since + slice_ * (step + 1) if step < len(schedule) - 1 else None
    cap = Decimal(repr(cfg.capital_cap)) if cfg.capital_cap is not None else None
    return StageLimits(
        stage=stage,
        capital_cap=cap,
        risk_per_trade=schedule[step],
        step=step,
        steps=len(schedule),
        next_step_at=next_at,
        allowlist=frozenset(cfg.symbol_allowlist),
        max_symbols=cfg.max_symbols,
    )
