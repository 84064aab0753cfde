"""Activation stages and their evidence: paper -> testnet -> live micro -> live scaling -> production.

`evaluate` is a pure function of what the journal holds and the time it is given, so it
is tested on synthetic histories. Everything is measured over the window since the stage
(or, for live scaling, the capital level) began. Each criterion carries its measured
value, its threshold and the comparison; a value that cannot be measured (no trades, no
orders) never passes a criterion and never trips a red flag.

Measured like the breakers they stand beside: the daily-drawdown red flag reads the deepest
the equity went below a day's opening equity (open P&L included, as the daily-loss breaker),
the consecutive-losses flag the current streak (a win or a breakeven ends it), and the testnet
fill-rate criterion the share of orders filled completely (never a sum of quantities of
different instruments). The definitions are in engine.analytics.metrics.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.core.config import StagesConfig
from engine.core.model import ClosedTrade, Fill, Order
from engine.persistence.journal_schema import IncidentRecord

if TYPE_CHECKING:
    from engine.persistence.journal import Journal

STAGES = ("paper", "testnet", "live_micro", "live_scaling", "production")
LIVE_STAGES = frozenset({"live_micro", "live_scaling", "production"})
STAGE_LABELS = {
    "paper": "Paper",
    "testnet": "Testnet",
    "live_micro": "Live micro",
    "live_scaling": "Live scaling",
    "production": "Production",
}
# Incidents of these kinds, or whose message names the connection or a stream, are connection
# incidents; every other incident is an unexpected error.
CONNECTION_KINDS = frozenset({"connection", "disconnect", "reconnect", "timeout"})
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<": operator.lt,
    "<=": operator.le,
}


def next_stage(stage: str) -> str | None:
    i = STAGES.index(stage)
    return STAGES[i + 1] if i + 1 < len(STAGES) else None


def previous_stage(stage: str) -> str | None:
    i = STAGES.index(stage)
    return STAGES[i - 1] if i > 0 else None


@dataclass(frozen=True, slots=True)
class Criterion:
    name: str
    value: float | None
    threshold: float
    passed: bool
    comparison: str  # how value must compare to threshold to pass: >=, >, <, <=
    description: str
    unit: str = ""  # "fraction" (shown as %), "days", "trades", "count"

    def shortfall(self) -> float | None:
        """How far the value is from passing (always >= 0), or None when it was not measured."""
        if self.value is None:
            return None
        return 0.0 if self.passed else abs(self.value - self.threshold)

    def explain(self) -> str:
        """One line: `win rate 45.00% needs >= 50.00% (short by 5.00 points)`."""
        label = self.name.replace("_", " ")
        need = f"{self.comparison} {_show(self.threshold, self.unit)}"
        if self.value is None:
            return f"{label}: not measured yet (needs {need})"
        got = _show(self.value, self.unit)
        if self.passed:
            return f"{label}: {got} (needs {need}) ok"
        gap = self.shortfall() or 0.0
        by = f"{gap * 100:.2f} points" if self.unit == "fraction" else _show(gap, self.unit)
        return f"{label}: {got} needs {need} (off by {by})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _show(v: float, unit: str) -> str:
    if unit == "fraction":
        return f"{v * 100:.2f}%"
    if unit == "days":
        return f"{v:.2f} days"
    if unit in ("trades", "count"):
        return f"{v:g}"
    return f"{v:g}"


@dataclass(frozen=True, slots=True)
class Evaluation:
    stage: str
    criteria: tuple[Criterion, ...]
    passed: bool  # every criterion passed and no red flag tripped
    red_flags: tuple[Criterion, ...]  # only the tripped ones
    now: datetime | None = None
    since: datetime | None = None
    measured: Mapping[str, float | None] = field(default_factory=dict)

    @property
    def failing(self) -> tuple[Criterion, ...]:
        return tuple(c for c in self.criteria if not c.passed)

    def summary(self) -> str:
        if self.passed:
            return f"{STAGE_LABELS[self.stage]}: every criterion passes"
        parts = [c.explain() for c in self.failing]
        parts += [f"red flag: {c.explain()}" for c in self.red_flags]
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "next_stage": next_stage(self.stage),
            "passed": self.passed,
            "since": self.since.isoformat() if self.since else None,
            "now": self.now.isoformat() if self.now else None,
            "criteria": [c.to_dict() for c in self.criteria],
            "red_flags": [c.to_dict() for c in self.red_flags],
        }


@dataclass(frozen=True, slots=True)
class JournalData:
    """What the journal holds, as evaluate() reads it; anything before `since` is ignored."""

    trades: Sequence[ClosedTrade] = ()
    equity: Sequence[tuple[datetime, Decimal]] = ()
    incidents: Sequence[IncidentRecord] = ()
    orders: Sequence[Order] = ()
    fills: Sequence[Fill] = ()
    since: datetime | None = None  # when the stage (or capital level) began
    paper_win_rate: float | None = None  # measured when paper was passed, for live micro
    reference_prices: Mapping[str, Decimal | float] = field(default_factory=dict)


def load_journal_data(journal: Journal, since: datetime | None, paper_win_rate: float | None = None) -> JournalData:
    """Read the window since `since` (blocking: call off the event loop)."""
    orders = [o for o in journal.orders() if since is None or o.created_at is None or o.created_at >= since]
    return JournalData(
        trades=journal.trades(since),
        equity=[(p.ts, p.equity) for p in journal.equity_curve(since)],
        incidents=journal.incidents(since),
        orders=orders,
        fills=journal.fills(since),
        since=since,
        paper_win_rate=paper_win_rate,
    )


def is_connection_incident(rec: IncidentRecord) -> bool:
    text = rec.message.lower()
    return rec.kind in CONNECTION_KINDS or "connect" in text or "stream" in text


def measure(data: JournalData, now: datetime, tz: str = "UTC") -> dict[str, float | None]:
    """Every figure a criterion or a red flag reads, over the window since data.since."""
    since = data.since
    trades = [t for t in data.trades if since is None or t.closed_at >= since]
    curve = _window(data.equity, since)
    incidents = [i for i in data.incidents if since is None or i.ts >= since]
    fills = [f for f in data.fills if since is None or f.ts >= since]
    orders = [o for o in data.orders if since is None or o.created_at is None or o.created_at >= since]
    from engine.analytics import metrics  # pandas: loaded only when evidence is measured, not at start-up

    start = since or (_first_ts(curve) or now)

    ts = metrics.trade_stats(trades)
    dd = metrics.drawdown_stats(curve, tz)
    ex = metrics.execution_stats(orders, fills, data.reference_prices)
    win_rate = ts["win_rate"] if trades else None
    gap = None
    if win_rate is not None and data.paper_win_rate is not None:
        gap = abs(win_rate - data.paper_win_rate)
    connection = sum(1 for i in incidents if is_connection_incident(i))
    return {
        "days": max(0.0, (now - start).total_seconds() / 86400),
        "trades": float(len(trades)),
        "win_rate": win_rate,
        "win_rate_gap": gap,
        "max_drawdown": dd["max_drawdown"] if len(curve) else None,
        # the daily-loss breaker's measure: deepest below the day's opening equity, open P&L included
        "worst_daily_loss": dd["worst_daily_loss"] if len(curve) else None,
        # the breaker's count: losses since the last trade that did not lose (not the window's longest run)
        "consecutive_losses": float(ts["current_loss_streak"]),
        "unexpected_errors": float(len(incidents) - connection),
        "connection_incidents": float(connection),
        "fill_rate": ex["order_fill_rate"],  # per order: filled orders / orders that could fill
        "notional_fill_rate": ex["notional_fill_rate"],  # shown, not a criterion
        "avg_slippage": ex["avg_slippage"],
    }


def _window(equity: Any, since: datetime | None) -> Any:
    """The equity curve since `since`: a list of (ts, value), or a float Series on a UTC index (what the
    engine's evidence window keeps: a week of samples as floats, not Decimal objects)."""
    if hasattr(equity, "index") and hasattr(equity, "iloc"):
        return equity if since is None else equity[equity.index >= since]
    return [(ts, v) for ts, v in equity if since is None or ts >= since]


def _first_ts(curve: Any) -> datetime | None:
    if hasattr(curve, "index") and hasattr(curve, "iloc"):
        return curve.index[0].to_pydatetime() if len(curve) else None
    return min((ts for ts, _ in curve), default=None)


def _check(
    name: str, value: float | None, comparison: str, threshold: float, description: str, unit: str,
    missing_passes: bool = False,
) -> Criterion:  # fmt: skip
    if value is None:
        passed = missing_passes
    else:  # rounded so 0.03 measured as 0.030000000000000002 sits on the boundary it means
        passed = _COMPARE[comparison](round(value, 12), round(threshold, 12))
    return Criterion(name, value, threshold, passed, comparison, description, unit)


def criteria_for(stage: str, m: Mapping[str, float | None], config: StagesConfig) -> list[Criterion]:
    c = config.stage(stage).criteria
    out: list[Criterion] = []
    if c.min_days:
        out.append(_check("days", m["days"], ">=", c.min_days, f"at least {c.min_days:g} days", "days"))
    if c.min_trades:
        out.append(
            _check("closed_trades", m["trades"], ">=", c.min_trades, f"at least {c.min_trades} closed trades",
                   "trades")
        )  # fmt: skip
    if c.min_win_rate is not None:
        out.append(
            _check("win_rate", m["win_rate"], ">=", c.min_win_rate,
                   f"win rate at least {c.min_win_rate:.0%}", "fraction")
        )  # fmt: skip
    if c.max_drawdown is not None:
        out.append(
            _check("max_drawdown", m["max_drawdown"], "<", c.max_drawdown,
                   f"maximum drawdown under {c.max_drawdown:.0%}", "fraction")
        )  # fmt: skip
    if c.max_unexpected_errors is not None:
        out.append(
            _check("unexpected_errors", m["unexpected_errors"], "<=", c.max_unexpected_errors,
                   "no unexpected errors" if not c.max_unexpected_errors
                   else f"at most {c.max_unexpected_errors} unexpected errors", "count")
        )  # fmt: skip
    if c.min_fill_rate is not None:
        out.append(
            _check("fill_rate", m["fill_rate"], ">", c.min_fill_rate,
                   f"fill rate above {c.min_fill_rate:.0%} of orders (filled completely)", "fraction")
        )  # fmt: skip
    if c.max_avg_slippage is not None:
        out.append(
            _check("avg_slippage", m["avg_slippage"], "<", c.max_avg_slippage,
                   f"average slippage under {c.max_avg_slippage:.2%}", "fraction")
        )  # fmt: skip
    if c.max_connection_incidents is not None:
        out.append(
            _check("connection_incidents", m["connection_incidents"], "<=", c.max_connection_incidents,
                   "no connection incidents" if not c.max_connection_incidents
                   else f"at most {c.max_connection_incidents} connection incidents", "count")
        )  # fmt: skip
    if c.max_win_rate_gap is not None:
        out.append(
            _check("win_rate_vs_paper", m["win_rate_gap"], "<=", c.max_win_rate_gap,
                   f"win rate within {c.max_win_rate_gap * 100:g} points of paper", "fraction")
        )  # fmt: skip
    return out


def red_flags_for(m: Mapping[str, float | None], config: StagesConfig) -> list[Criterion]:
    """Every red-flag check; a check that fails is a tripped flag. Unmeasured values never trip."""
    r = config.red_flags
    win_rate = m["win_rate"] if (m["trades"] or 0) >= r.min_trades else None
    return [
        _check("win_rate_floor", win_rate, ">=", r.min_win_rate,
               f"win rate not under {r.min_win_rate:.0%} (after {r.min_trades} trades)", "fraction", True),
        _check("daily_drawdown", m["worst_daily_loss"], "<=", r.max_daily_drawdown,
               f"no day more than {r.max_daily_drawdown:.0%} below its opening equity", "fraction", True),
        _check("consecutive_losses", m["consecutive_losses"], "<", r.max_consecutive_losses,
               f"fewer than {r.max_consecutive_losses} losses in a row now", "count", True),
        _check("slippage", m["avg_slippage"], "<=", r.max_slippage,
               f"average slippage not over {r.max_slippage:.0%}", "fraction", True),
    ]  # fmt: skip


def evaluate(
    stage: str, data: JournalData, now: datetime, config: StagesConfig | None = None, tz: str = "UTC"
) -> Evaluation:
    """The evidence for leaving `stage` upwards, measured at `now` over data since data.since."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    config = config or StagesConfig()
    m = measure(data, now, tz)
    criteria = tuple(criteria_for(stage, m, config))
    flags = tuple(c for c in red_flags_for(m, config) if not c.passed)
    passed = all(c.passed for c in criteria) and not flags
    return Evaluation(stage, criteria, passed, flags, now, data.since, m)
