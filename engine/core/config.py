"""Validated settings, TOML in and out.

A bad file is refused with the file, the field, the value and the rule
(`risk.daily_loss_limit: 1.5 is not a fraction between 0 and 1`), never a traceback.
Secrets never live here: credentials are referenced by keyring name only.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import tomli_w
from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator

from engine.core.alerts_config import AlertsConfig
from engine.core.config_errors import ConfigError, ConfigProblem, describe, refuse
from engine.core.config_rules import settings_contradictions
from engine.core.config_types import (
    AllowList,
    FiniteFloat,
    Fraction,
    FractionOrZero,
    NonNegative,
    NonNegativeInt,
    PairList,
    Positive,
    PositiveInt,
    Section,
)
from engine.core.control_config import ControlConfig
from engine.core.venue_settings import VenuesConfig

__all__ = ["ConfigError", "ConfigProblem", "Settings", "load_settings", "parse_settings", "save_settings"]

_Section = Section
StageName = Literal["paper", "testnet", "live_micro", "live_scaling", "production"]
VenueModeName = Literal["simulated", "paper", "testnet", "live"]


def _risk_schedule(v: list[float]) -> list[float]:
    if not v:
        raise ValueError("must list at least one step")
    if any(b < a for a, b in itertools.pairwise(v)):
        raise ValueError("must not decrease from one step to the next")
    if v[-1] > 0.02:
        raise ValueError("must not exceed 0.02 (2% of equity per trade)")
    return v


def _some_modes(v: list[str]) -> list[str]:
    if not v:
        raise ValueError("is empty: list at least one venue mode")
    return v


RiskSchedule = Annotated[list[Fraction], AfterValidator(_risk_schedule)]
VenueModes = Annotated[list[VenueModeName], AfterValidator(_some_modes)]


class RiskConfig(_Section):
    risk_per_trade: Fraction = 0.005
    size_schedule: RiskSchedule = Field(default_factory=lambda: [0.005, 0.01, 0.015, 0.02])
    max_position_notional: Fraction = 0.25  # one order's notional as a share of equity
    daily_loss_limit: Fraction = 0.05
    max_drawdown: Fraction = 0.15
    close_all_on_drawdown: bool = False
    max_concurrent_positions: PositiveInt = 5
    max_new_positions_per_day: PositiveInt = 3
    cash_reserve: FractionOrZero = 0.25
    stop_loss_required: bool = True
    max_slippage: Fraction = 0.005
    max_orders_per_second: Positive = 5.0
    max_consecutive_losses: PositiveInt = 5
    stale_data_s: Positive = 30.0
    venue_error_burst: PositiveInt = 5
    venue_error_window_s: Positive = 60.0
    max_rejections: PositiveInt = 5  # venue refusals within rejection_window_s that halt trading
    rejection_window_s: Positive = 30.0
    max_volatility: Positive = 0.05  # realised, per hour, as a fraction
    volatility_window_s: Positive = 900.0
    symbol_allowlist: AllowList = Field(default_factory=list)  # empty: every symbol of the venue
    warn_at: Fraction = 0.8


class ApprovalConfig(_Section):
    enabled: bool = True
    policy: Literal["all", "new_positions", "notional_above", "by_stage"] = "by_stage"
    notional_threshold: Positive = 1000.0
    timeout_s: Positive = 1800.0
    stages: list[StageName] = Field(default_factory=lambda: ["live_micro", "live_scaling", "production"])


class StageCriteria(_Section):
    """What a stage must show before promotion; None switches a criterion off."""

    min_days: NonNegative = 0.0
    min_trades: NonNegativeInt = 0
    min_win_rate: Fraction | None = None
    max_drawdown: Fraction | None = None
    max_unexpected_errors: NonNegativeInt | None = None
    min_fill_rate: Fraction | None = None
    max_avg_slippage: Fraction | None = None
    max_connection_incidents: NonNegativeInt | None = None
    max_win_rate_gap: Fraction | None = None  # against the win rate measured on paper


class StageConfig(_Section):
    venue_modes: VenueModes = Field(default_factory=lambda: ["simulated"])  # within engine.core.stage_venues
    capital_cap: Positive | None = None  # quote currency; None: full capital
    size_schedule: RiskSchedule = Field(default_factory=lambda: [0.005, 0.01])
    symbol_allowlist: AllowList = Field(default_factory=list)  # empty: every symbol
    max_symbols: PositiveInt | None = None
    max_capital_step: Fraction | None = None  # a raise of capital per step, as a fraction
    criteria: StageCriteria = Field(default_factory=StageCriteria)


def _micro_cap(v: float | None) -> float | None:
    if v is None or not 1000 <= v <= 5000:
        raise ValueError("must be between 1000 and 5000 (live micro risks little real money)")
    return v


def _scaling_step(v: float | None) -> float | None:
    if v is None or v > 0.5:
        raise ValueError("must be at most 0.5 (capital rises by 50% per step at most)")
    return v


class LiveMicroConfig(StageConfig):
    venue_modes: VenueModes = Field(default_factory=lambda: ["live"])
    capital_cap: Annotated[Positive | None, AfterValidator(_micro_cap)] = 1000.0
    max_symbols: PositiveInt | None = 1
    criteria: StageCriteria = Field(
        default_factory=lambda: StageCriteria(
            min_days=14, max_win_rate_gap=0.05, max_avg_slippage=0.005, max_connection_incidents=0
        )
    )


class LiveScalingConfig(StageConfig):
    venue_modes: VenueModes = Field(default_factory=lambda: ["live"])
    capital_cap: Positive | None = 5000.0
    size_schedule: RiskSchedule = Field(default_factory=lambda: [0.015, 0.02])
    max_capital_step: Annotated[Fraction | None, AfterValidator(_scaling_step)] = 0.5
    criteria: StageCriteria = Field(
        default_factory=lambda: StageCriteria(min_days=14, min_win_rate=0.5, max_drawdown=0.03)
    )


class RedFlagsConfig(_Section):
    """Conditions that demote (or halt) by themselves, measured since the stage began."""

    min_win_rate: Fraction = 0.40
    min_trades: PositiveInt = 10  # the win-rate flag waits for this many closed trades
    max_daily_drawdown: Fraction = 0.05
    max_consecutive_losses: PositiveInt = 5
    max_slippage: Fraction = 0.01
    action: Literal["demote", "halt", "demote_and_halt"] = "demote_and_halt"
    check_every_s: Positive = 60.0


class StagesConfig(_Section):
    initial: StageName = "paper"
    paper: StageConfig = Field(
        default_factory=lambda: StageConfig(
            size_schedule=[0.005, 0.01, 0.015, 0.02],
            criteria=StageCriteria(
                min_days=7, min_trades=20, min_win_rate=0.5, max_drawdown=0.03, max_unexpected_errors=0
            ),
        )
    )
    testnet: StageConfig = Field(
        default_factory=lambda: StageConfig(
            venue_modes=["simulated", "testnet", "paper"],
            criteria=StageCriteria(
                min_days=7, min_fill_rate=0.95, max_avg_slippage=0.005, max_connection_incidents=0
            ),
        )
    )
    live_micro: LiveMicroConfig = Field(default_factory=LiveMicroConfig)
    live_scaling: LiveScalingConfig = Field(default_factory=LiveScalingConfig)
    production: StageConfig = Field(
        default_factory=lambda: StageConfig(
            venue_modes=["live"],
            size_schedule=[0.02],
            criteria=StageCriteria(min_days=28, min_win_rate=0.5, max_drawdown=0.03),
        )
    )
    red_flags: RedFlagsConfig = Field(default_factory=RedFlagsConfig)

    def stage(self, name: str) -> StageConfig:
        return getattr(self, name)  # type: ignore[no-any-return]


class SimulatorConfig(_Section):
    seed: int = 42
    speed: float | Literal["max"] = 1.0
    symbols: PairList = Field(default_factory=lambda: ["BTC/USDT", "ETH/USDT", "SOL/USDT"])
    starting_cash: Positive = 100_000.0
    tick_interval_s: Positive = 0.25
    maker_fee: FractionOrZero = 0.0008
    taker_fee: FractionOrZero = 0.001
    latency_ms: NonNegative = 0.0
    fee_model: Literal["quote", "binance_spot"] = "quote"  # binance_spot: base asset on buys, quote on sells

    @field_validator("speed", mode="before")
    @classmethod
    def _speed(cls, v: Any) -> float | str:
        if v == "max":
            return "max"
        try:
            factor = float(v) if not isinstance(v, bool) else math.nan
        except (TypeError, ValueError):
            factor = math.nan
        if not math.isfinite(factor) or factor <= 0:
            raise ValueError("must be a positive, finite factor or 'max'")
        return factor


class StrategyConfig(_Section):
    name: Literal["ema_cross"] = "ema_cross"
    timeframe_s: Positive = 5.0
    fast: PositiveInt = 8
    slow: PositiveInt = 21
    atr_period: PositiveInt = 14
    atr_stop_mult: Positive = 2.0
    take_profit_mult: Positive = 3.0
    max_hold_s: Positive = 1800.0
    allow_short: bool = False
    # exits that clear their costs: the take profit at least this many round trips (fees + spread) away,
    # and the time exit not before min_hold_s (see engine/strategies/ema_cross.py)
    cost_multiple: FiniteFloat = Field(default=3.0, ge=1.0)
    min_hold_s: NonNegative = 4 * 3600.0

    @field_validator("slow")
    @classmethod
    def _slow_after_fast(cls, v: int, info: Any) -> int:
        fast = info.data.get("fast")
        if fast is not None and v <= fast:
            raise ValueError(f"must be greater than strategy.fast ({fast})")
        return v


class EngineConfig(_Section):
    venue: Literal["simulated", "binance", "alpaca"] = "simulated"
    trading_day_tz: str = "UTC"
    # on exit: keep; cancel_orders (working orders; resting stop legs stay); cancel_all_orders (stop legs too:
    # positions left unprotected, only by explicit choice); close_all
    shutdown: Literal["keep", "cancel_orders", "cancel_all_orders", "close_all"] = "cancel_orders"
    equity_sample_s: Positive = 5.0
    operator: str = "operator"

    @field_validator("trading_day_tz")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not a known time zone (e.g. UTC, America/New_York)") from None
        return v


class Settings(_Section):
    engine: EngineConfig = Field(default_factory=EngineConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    approvals: ApprovalConfig = Field(default_factory=ApprovalConfig)
    simulator: SimulatorConfig = Field(default_factory=SimulatorConfig)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    venues: VenuesConfig = Field(default_factory=VenuesConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    stages: StagesConfig = Field(default_factory=StagesConfig)
    control: ControlConfig = Field(default_factory=ControlConfig)

    def __setattr__(self, name: str, value: Any) -> None:
        # pydantic keeps an assigned section even when a rule between sections then refuses it: put it back
        before = self.__dict__.get(name)
        try:
            super().__setattr__(name, value)
        except ValidationError:
            if name in type(self).model_fields:
                self.__dict__[name] = before
            raise

    @model_validator(mode="after")
    def _no_contradictions(self) -> Settings:
        problems = settings_contradictions(self)
        if problems:
            refuse(problems)
        return self

    @property
    def starting_cash(self) -> Decimal:
        return Decimal(str(self.simulator.starting_cash))


def parse_settings(data: dict[str, Any], source: str = "<config>") -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, [p for err in exc.errors() for p in describe(Settings, dict(err))]) from None


def load_settings(path: Path) -> Settings:
    """Load and validate; a missing file gives the defaults. Every failure is one ConfigError line."""
    if not path.exists():
        return Settings()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), [ConfigProblem("", "", f"cannot be read: {exc.strerror}")]) from None
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark, as some editors write, is not an error
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        rule = f"is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}, column {column}): save it as UTF-8"
        raise ConfigError(str(path), [ConfigProblem("", "", rule)]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [ConfigProblem("", "", f"not valid TOML: {exc}")]) from None
    return parse_settings(data, str(path))


def save_settings(settings: Settings, path: Path) -> None:
    """Write only what would load again: values assigned one by one skip the cross-field rules,
    so the whole is checked here (ConfigError, nothing written) before the file is replaced."""
    data = settings.model_dump(mode="json", exclude_none=True)
    parse_settings(data, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(tomli_w.dumps(data), encoding="utf-8")
    tmp.replace(path)  # atomic: a crash mid-write never leaves half a config
