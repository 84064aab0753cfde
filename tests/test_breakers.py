"""Breakers warn once at 80%, trip at the limit, and hold while the condition holds."""

import math
from decimal import Decimal as D

from engine.core.config import RiskConfig
from engine.core.model import TradingState
from engine.risk.breakers import Breakers
from engine.risk.risk_engine import RiskEngine


class Rig:
    def __init__(self, **cfg: object) -> None:
        self.alerts: list[tuple[str, str]] = []
        self.closed: list[str] = []
        self.risk = RiskEngine(RiskConfig(**cfg), lambda *a: None)
        self.b = Breakers(
            self.risk.cfg,
            self.risk,
            lambda lvl, code, msg, key: self.alerts.append((code, msg)),
            self.closed.append,
        )

    def codes(self) -> list[str]:
        return [c for c, _ in self.alerts]


def test_daily_loss_warns_once_then_halts_and_holds() -> None:
    r = Rig(daily_loss_limit=0.05)
    r.b.on_equity(D("-3999"), D("100000"), D("0.04"))  # 4.0% < 80% of 5%
    assert r.codes() == []
    r.b.on_equity(D("-4000"), D("100000"), D("0.04"))  # exactly 80%
    r.b.on_equity(D("-4100"), D("100000"), D("0.04"))
    assert r.codes() == ["breaker_warning:daily_loss"]
    r.b.on_equity(D("-4999"), D("100000"), D("0.05"))
    assert r.risk.state is TradingState.ACTIVE
    r.b.on_equity(D("-5000"), D("100000"), D("0.05"))
    assert r.risk.state is TradingState.HALTED
    assert "breaker_trip:daily_loss" in r.codes()
    assert any("Daily loss" in h for h in r.b.holding())
    r.b.on_equity(D("-100"), D("100000"), D("0.001"))  # next day: condition cleared
    assert r.b.holding() == []
    assert r.risk.state is TradingState.HALTED  # a halt never lifts by itself


def test_drawdown_trips_and_optionally_closes_all() -> None:
    r = Rig(max_drawdown=0.15, close_all_on_drawdown=True)
    r.b.on_equity(D(0), D("100000"), D("0.1199"))
    assert r.codes() == []
    r.b.on_equity(D(0), D("100000"), D("0.12"))
    assert r.codes() == ["breaker_warning:drawdown"]
    r.b.on_equity(D(0), D("100000"), D("0.1499"))
    assert r.risk.state is TradingState.ACTIVE and r.closed == []
    r.b.on_equity(D(0), D("100000"), D("0.15"))
    assert r.risk.state is TradingState.HALTED and len(r.closed) == 1
    assert any("Drawdown" in h for h in r.b.holding())  # resume refused while it holds
    r.b.on_equity(D(0), D("100000"), D("0.10"))
    assert r.b.holding() == []


def test_consecutive_losses() -> None:
    r = Rig(max_consecutive_losses=5)
    for _ in range(3):
        r.b.on_trade_closed(D("-1"))
    assert r.codes() == []
    r.b.on_trade_closed(D("-1"))  # 4 of 5 = 80%
    assert r.codes() == ["breaker_warning:loss_streak"]
    r.b.on_trade_closed(D("-1"))
    assert r.risk.state is TradingState.HALTED
    # the streak does not refuse resume by itself: the resume acknowledges it
    assert r.b.holding() == []
    r.b.acknowledge_streak()
    assert r.b.consecutive_losses == 0


def test_a_win_resets_the_streak() -> None:
    r = Rig(max_consecutive_losses=3)
    r.b.on_trade_closed(D("-1"))
    r.b.on_trade_closed(D("-1"))
    r.b.on_trade_closed(D("2"))
    r.b.on_trade_closed(D("-1"))
    assert r.risk.state is TradingState.ACTIVE


def test_venue_error_burst_within_window() -> None:
    r = Rig(venue_error_burst=5, venue_error_window_s=60)
    for t in (0, 10, 20, 30):
        r.b.on_venue_error(float(t))
    assert r.codes() == ["breaker_warning:venue_errors"]
    r.b.on_venue_error(100.0)  # the first four left the window
    assert r.risk.state is TradingState.ACTIVE
    for t in (101, 102, 103, 104):
        r.b.on_venue_error(float(t))
    assert r.risk.state is TradingState.HALTED
    assert r.b.holding()
    r.b.on_clock(200.0)
    assert r.b.holding() == []


def test_stale_data_reduces_and_recovers_by_itself() -> None:
    r = Rig(stale_data_s=30)
    r.b.on_data_age(23.9)
    assert r.codes() == []
    r.b.on_data_age(24)
    assert r.codes() == ["breaker_warning:data_age"]
    r.b.on_data_age(29.9)
    assert r.risk.state is TradingState.ACTIVE
    r.b.on_data_age(30)
    assert r.risk.state is TradingState.REDUCING
    assert r.b.holding()
    r.b.on_data_age(1)
    assert r.risk.state is TradingState.ACTIVE


def test_stale_data_does_not_lift_a_halt() -> None:
    r = Rig(stale_data_s=30)
    r.risk.set_state(TradingState.HALTED, "operator")
    r.b.on_data_age(31)
    assert r.risk.state is TradingState.HALTED
    r.b.on_data_age(1)
    assert r.risk.state is TradingState.HALTED


def _feed_vol(r: Rig, hourly: float, n: int = 400) -> None:
    """Alternating returns of size s per 1-second step give a realised hourly vol of s * 60."""
    s = hourly / math.sqrt(3600)
    p = 100.0
    for i in range(n):
        p *= math.exp(s if i % 2 else -s)
        r.b.on_price("BTC/USDT", p, 1000.0 + i)


def test_volatility_reduces_above_limit() -> None:
    r = Rig(max_volatility=0.05, volatility_window_s=30)
    _feed_vol(r, 0.03)
    assert r.risk.state is TradingState.ACTIVE and r.codes() == []
    _feed_vol(r, 0.042)
    assert r.codes() == ["breaker_warning:volatility"]
    _feed_vol(r, 0.08)
    assert r.risk.state is TradingState.REDUCING
    assert any("Volatility" in h for h in r.b.holding())
    _feed_vol(r, 0.01, n=2000)
    assert r.b.holding() == [] and r.risk.state is TradingState.ACTIVE


def test_rule_values_feed_the_gauges() -> None:
    r = Rig(daily_loss_limit=0.05)
    r.b.on_equity(D("-2500"), D("100000"), D("0.02"))
    values = {v.name: v for v in r.b.rule_values()}
    assert math.isclose(values["daily_loss"].utilisation, 0.5)
    assert values["daily_loss"].description
