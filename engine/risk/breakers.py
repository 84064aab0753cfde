"""Breakers: limits that act by themselves.

Each breaker measures one condition, warns once when it reaches `warn_at`
(80%) of its limit, and trips at the limit: HALTED for losses, drawdown,
loss streaks and venue error bursts; REDUCING for stale data and excessive
volatility (those lift by themselves when the condition clears, because
REDUCING still lets exits through and nothing is left unprotected).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from engine.core.config import RiskConfig
from engine.core.model import ZERO, AlertLevel, RuleValue, TradingState
from engine.risk.risk_engine import RiskEngine

AlertFn = Callable[[AlertLevel, str, str, str], None]


@dataclass(slots=True)
class _Gauge:
    name: str
    label: str
    unit: str
    action: TradingState
    description: str
    value: float = 0.0
    limit: float = 1.0
    warned: bool = False
    tripped: bool = False

    @property
    def utilisation(self) -> float:
        return 0.0 if self.limit <= 0 else self.value / self.limit


class _VolTrack:
    """One symbol's realised-variance state: the hot path touches one object, not three dicts."""

    __slots__ = ("price", "samples", "t", "var")

    def __init__(self, price: float, t: float) -> None:
        self.price, self.t, self.var, self.samples = price, t, 0.0, 0


class Breakers:
    def __init__(self, cfg: RiskConfig, risk: RiskEngine, alert: AlertFn, close_all: Callable[[str], None]):
        self.cfg = cfg
        self.risk = risk
        self._alert = alert
        self._close_all = close_all
        self.consecutive_losses = 0
        self._errors: deque[float] = deque()
        self._vol: dict[str, _VolTrack] = {}
        self._vol_symbol = ""
        self._g = {
            g.name: g
            for g in (
                _Gauge(
                    "daily_loss",
                    "Daily loss",
                    "%",
                    TradingState.HALTED,
                    "Loss since the start of the trading day (realised + unrealised) against the daily "
                    "loss limit. At the limit trading halts.",
                ),
                _Gauge(
                    "drawdown",
                    "Drawdown",
                    "%",
                    TradingState.HALTED,
                    "Equity below its peak, open positions included, against the maximum drawdown. "
                    "At the limit trading halts.",
                ),
                _Gauge(
                    "loss_streak",
                    "Loss streak",
                    "",
                    TradingState.HALTED,
                    "Consecutive losing trades. At the limit trading halts; a resume acknowledges the streak.",
                ),
                _Gauge(
                    "venue_errors",
                    "Venue errors",
                    "",
                    TradingState.HALTED,
                    "Venue errors within the error window. A burst at the limit halts trading.",
                ),
                _Gauge(
                    "data_age",
                    "Data age",
                    "s",
                    TradingState.REDUCING,
                    "Seconds since the last market data. Past the limit only exits are allowed.",
                ),
                _Gauge(
                    "volatility",
                    "Volatility",
                    "%",
                    TradingState.REDUCING,
                    "Realised volatility per hour (highest symbol). Above the limit only exits are allowed.",
                ),
            )
        }
        self.reload(cfg)

    def reload(self, cfg: RiskConfig) -> None:
        self.cfg = cfg
        self._equity_seen: tuple[Decimal, Decimal, Decimal] | None = None  # new limits: judge again
        g = self._g
        g["daily_loss"].limit = cfg.daily_loss_limit
        g["drawdown"].limit = cfg.max_drawdown
        g["loss_streak"].limit = cfg.max_consecutive_losses
        g["venue_errors"].limit = cfg.venue_error_burst
        g["data_age"].limit = cfg.stale_data_s
        g["volatility"].limit = cfg.max_volatility

    # --- inputs ---------------------------------------------------------------
    def on_equity(self, day_pnl: Decimal, day_start_equity: Decimal, drawdown: Decimal) -> None:
        seen = (day_pnl, day_start_equity, drawdown)
        if seen == self._equity_seen:
            return  # flat, or marks that moved nothing: the gauges already hold these values
        self._equity_seen = seen
        loss = -day_pnl if day_pnl < 0 else ZERO
        self._update("daily_loss", float(loss / day_start_equity) if day_start_equity > 0 else 0.0)
        self._update("drawdown", float(drawdown))

    def on_trade_closed(self, pnl: Decimal) -> None:
        self.consecutive_losses = self.consecutive_losses + 1 if pnl < 0 else 0
        self._update("loss_streak", float(self.consecutive_losses))

    def on_venue_error(self, now: float) -> None:
        self._errors.append(now)
        self.on_clock(now)

    def on_clock(self, now: float) -> None:
        errors = self._errors
        window = self.cfg.venue_error_window_s
        while errors and errors[0] < now - window:
            errors.popleft()
        self._update("venue_errors", float(len(errors)))

    def on_data_age(self, age_s: float) -> None:
        self._update("data_age", age_s)

    def on_price(self, symbol: str, price: float, t: float) -> None:
        """Exponentially weighted realised variance per second, reported per hour."""
        tr = self._vol.get(symbol)
        if tr is None:
            self._vol[symbol] = _VolTrack(price, t)
            return
        prev_price, prev_t = tr.price, tr.t
        tr.price, tr.t = price, t
        if t <= prev_t or prev_price <= 0:
            return
        dt = t - prev_t
        r = math.log(price / prev_price)
        inst = r * r / dt
        if tr.samples == 0:
            tr.var = inst
        else:
            alpha = dt / self.cfg.volatility_window_s
            tr.var += (alpha if alpha < 1.0 else 1.0) * (inst - tr.var)
        tr.samples += 1
        if tr.samples < 60:  # not enough samples to judge
            return
        vol = math.sqrt(tr.var * 3600.0)
        if symbol == self._vol_symbol or vol > self._g["volatility"].value:
            self._vol_symbol = symbol
            self._update("volatility", vol)

    def restore_streak(self, losses: int) -> None:
        """The loss streak as journaled before a restart."""
        self.consecutive_losses = losses
        self._update("loss_streak", float(losses))

    def acknowledge_streak(self) -> None:
        self.consecutive_losses = 0
        self._update("loss_streak", 0.0)

    # --- evaluation -----------------------------------------------------------
    def _update(self, name: str, value: float) -> None:
        g = self._g[name]
        g.value = value
        u = g.utilisation
        if u >= 1.0:
            if not g.tripped:
                g.tripped = True
                self._trip(g)
        else:
            if g.tripped:
                g.tripped = False
                self._cleared(g)
            if u >= self.cfg.warn_at:
                if not g.warned:
                    g.warned = True
                    self._alert(
                        AlertLevel.WARNING,
                        f"breaker_warning:{name}",
                        f"{g.label} at {u:.0%} of its limit ({self._fmt(g, g.value)} of {self._fmt(g, g.limit)})",
                        f"breaker_warning:{name}",
                    )
            elif u < self.cfg.warn_at * 0.9:
                g.warned = False  # hysteresis: a value hovering at 80% warns once

    def _trip(self, g: _Gauge) -> None:
        reason = f"{g.label} breaker: {self._fmt(g, g.value)} reached the limit {self._fmt(g, g.limit)}"
        level = AlertLevel.CRITICAL if g.action is TradingState.HALTED else AlertLevel.WARNING
        self._alert(level, f"breaker_trip:{g.name}", reason, f"breaker_trip:{g.name}")
        state = self.risk.state
        if g.action is TradingState.HALTED:
            self.risk.set_state(TradingState.HALTED, reason, "breaker")
            if g.name == "drawdown" and self.cfg.close_all_on_drawdown:
                self._close_all(reason)
        elif state is TradingState.ACTIVE:
            self.risk.set_state(TradingState.REDUCING, reason, "breaker")

    def _cleared(self, g: _Gauge) -> None:
        if g.action is not TradingState.REDUCING or self.risk.state is not TradingState.REDUCING:
            return
        if any(o.tripped for o in self._g.values() if o.action is TradingState.REDUCING):
            return
        self._alert(AlertLevel.INFO, f"breaker_clear:{g.name}", f"{g.label} back within its limit", "")
        self.risk.set_state(TradingState.ACTIVE, f"{g.label} back within its limit", "breaker")

    @staticmethod
    def _fmt(g: _Gauge, v: float) -> str:
        if g.unit == "%":
            return f"{v:.2%}"
        if g.unit == "s":
            return f"{v:.0f}s"
        return f"{v:g}"

    # --- reads ----------------------------------------------------------------
    def holding(self) -> list[str]:
        """Conditions that still hold and so refuse a resume (the streak is acknowledged by resuming)."""
        return [
            f"{g.label}: {self._fmt(g, g.value)} is at or over the limit {self._fmt(g, g.limit)}"
            for g in self._g.values()
            if g.utilisation >= 1.0 and g.name != "loss_streak"
        ]

    def rule_values(self) -> list[RuleValue]:
        return [
            RuleValue(g.name, g.label, g.value, g.limit, g.unit, g.description, self.cfg.warn_at)
            for g in self._g.values()
        ]
