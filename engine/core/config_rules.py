"""Rules between fields: limits that contradict each other are refused, at load and at runtime.

Each problem names the field, its value and the rule, with the other field's value in the
rule. `validate_risk_changes` applies the same field and cross-field rules to a runtime
change set (the operator's `update_risk_limits`), so a change the config file would refuse
is refused there too, and nothing is applied unless all of it holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from engine.core.config_errors import ConfigProblem, describe, show

if TYPE_CHECKING:
    from engine.core.config import RiskConfig, Settings

RiskT = TypeVar("RiskT", bound=BaseModel)


def risk_contradictions(risk: RiskConfig, prefix: str = "risk.", traded: Sequence[str] = ()) -> list[ConfigProblem]:
    """Limits that cannot all hold, or that make another one dead. `traded`: the symbols the engine
    trades, when known (an allowlist that allows none of them would trade nothing)."""
    found: list[ConfigProblem] = []

    def refuse(field: str, rule: str) -> None:
        found.append(ConfigProblem(prefix + field, show(getattr(risk, field)), rule))

    if risk.daily_loss_limit > risk.max_drawdown:
        refuse("daily_loss_limit", f"must not exceed {prefix}max_drawdown ({show(risk.max_drawdown)}): "
                                   "a day's loss that large is already a halt on drawdown")  # fmt: skip
    if risk.risk_per_trade >= risk.daily_loss_limit:
        refuse("risk_per_trade", f"must be below {prefix}daily_loss_limit ({show(risk.daily_loss_limit)}): "
                                 "one losing trade would use up the day")  # fmt: skip
    if risk.size_schedule and risk.size_schedule[-1] >= risk.daily_loss_limit:
        refuse("size_schedule", f"must stay below {prefix}daily_loss_limit ({show(risk.daily_loss_limit)}) "
                                "at every step: each step is the risk of one trade")  # fmt: skip
    if risk.max_position_notional > 1 - risk.cash_reserve:
        room = show(round(1 - risk.cash_reserve, 12))
        refuse("max_position_notional", f"must not exceed 1 - {prefix}cash_reserve ({room}): a position "
                                        "that large could never be opened while the reserve is kept")  # fmt: skip
    if traded and risk.symbol_allowlist and not set(risk.symbol_allowlist) & set(traded):
        refuse("symbol_allowlist", f"allows none of the symbols the engine trades ({', '.join(traded)}): "
                                   "nothing could ever be traded")  # fmt: skip
    return found


def settings_contradictions(settings: Settings) -> list[ConfigProblem]:
    """Everything `risk_contradictions` finds, and the rules between sections."""
    found = risk_contradictions(settings.risk, traded=_traded_symbols(settings))
    venue = settings.engine.venue
    if venue != "simulated" and settings.venues.of(venue) is None:
        modes = "testnet or live" if venue == "binance" else "paper or live"
        found.append(ConfigProblem(
            f"venues.{venue}", "", f"is required when engine.venue is {venue!r}: at least mode = {modes}"
        ))  # fmt: skip
    stages = settings.stages
    micro, scaling = stages.live_micro.capital_cap, stages.live_scaling.capital_cap
    if micro is not None and scaling is not None and scaling < micro:
        found.append(ConfigProblem("stages.live_scaling.capital_cap", show(scaling),
                                   f"must not be below stages.live_micro.capital_cap ({show(micro)}): "
                                   "capital rises from one stage to the next"))  # fmt: skip
    for name in ("paper", "testnet"):
        modes = stages.stage(name).venue_modes
        if "live" in modes:
            found.append(ConfigProblem(f"stages.{name}.venue_modes", show(list(modes)),
                                       f"must not list 'live': the {name} stage never trades real money"))  # fmt: skip
    return found


def _traded_symbols(settings: Settings) -> list[str]:
    """The symbols the configured venue trades, when the config says (empty: the venue's defaults)."""
    venue = settings.engine.venue
    if venue == "simulated":
        return list(settings.simulator.symbols)
    conf = settings.venues.of(venue)
    if conf is not None and conf.symbols:
        return list(conf.symbols)
    return list(settings.simulator.symbols) if venue == "binance" else []


class RiskChangeRefused(ValueError):
    """A runtime change set that breaks a rule; nothing of it was applied."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        self.field = problems[0].field if problems else ""
        super().__init__("; ".join(str(p) for p in problems))


def validate_risk_changes(current: RiskT, changes: Mapping[str, Any], traded: Sequence[str] = ()) -> RiskT:
    """The risk limits `changes` would give, checked as a config file would be; `current` is untouched.
    `traded`: the engine's symbols, so an allowlist that allows none of them is refused too."""
    cls = type(current)
    unknown = [k for k in changes if k not in cls.model_fields]
    if unknown:
        known = ", ".join(cls.model_fields)
        raise RiskChangeRefused([ConfigProblem(f"risk.{k}", "", f"unknown setting (known: {known})") for k in unknown])
    data = current.model_dump() | dict(changes)
    try:
        candidate = cls.model_validate(data)
    except ValidationError as exc:
        raise RiskChangeRefused([p for err in exc.errors() for p in describe(cls, dict(err), "risk.")]) from None
    problems = risk_contradictions(candidate, traded=traded)  # type: ignore[arg-type]
    if problems:
        raise RiskChangeRefused(problems)
    return candidate


def apply_risk_changes(current: BaseModel, changes: Mapping[str, Any], traded: Sequence[str] = ()) -> dict[str, Any]:
    """Validate `changes` as a whole, then write them into `current` in place (the risk engine and
    the breakers hold that object). All or nothing: on a refusal `current` is unchanged.
    Returns the applied values."""
    checked = validate_risk_changes(current, changes, traded)
    applied = {k: getattr(checked, k) for k in changes}
    for key, value in applied.items():  # checked together above: no per-field re-validation in between
        current.__dict__[key] = value
        current.__pydantic_fields_set__.add(key)
    return applied
