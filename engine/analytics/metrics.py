"""Performance metrics over the journal: trades, drawdown, Sharpe, execution quality.

Pure functions with no I/O and no clock. Callers pass what the journal holds and run
this off the event loop, because pandas over a whole journal can take a while.

Inputs:
  trades  list[ClosedTrade]               round trips, pnl net of fees
  curve   list[tuple[datetime, Decimal]]  equity samples, tz-aware UTC, any order
          or a float pd.Series on a UTC DatetimeIndex (as_equity), for callers keeping long curves
  orders  list[Order], fills list[Fill]   optional, for execution quality

What a number means when the data cannot define it:
  - No trades: every numeric trade stat is 0 or 0.0, and profit_factor is None.
  - win_rate = wins / all trades. A breakeven trade (pnl exactly 0) counts in the
    denominator, is neither a win nor a loss, and ends both kinds of streak.
  - profit_factor = gross profit / |gross loss|. It is None when there is no loss (only
    winners, only breakevens or no trades) and 0.0 when there are losses but no wins.
  - avg_loss and largest_loss are negative. They are 0.0 when there are no losers.
  - Drawdowns are positive fractions of the running peak (0.15 means 15 % below the peak).
  - time_to_recover_s runs from the trough of the max drawdown back up to the peak
    before it. It is None while that has not happened, and 0.0 when there was no drawdown.
  - A trading day is a calendar day in `tz` (default "UTC"). A day opens at the previous
    day's last sample (the first day opens at the first sample), so a loss between the
    last sample before midnight and the first one after it counts in the new day. That is
    how the daily loss limit sees it too.
  - Sharpe uses a risk-free rate of 0. Each period's return is its last equity over the
    previous period's last equity (the first period is measured from the first sample,
    and skipped when that sample is all it holds).
    Returns use the sample std (ddof=1) and are annualised by sqrt(periods_per_year).
    Fewer than 2 periods, or zero variance, gives 0.0. For short runs: when the requested
    period gives fewer than 2 returns and is longer than an hour, hourly returns are used
    and annualised by periods_per_year * (period / 1 h), so 1D/365 becomes 8760 hours a
    year. That way a one-hour simulated run still gets a figure. `sharpe_basis` says
    which period was used.
  - Slippage is a signed fraction of the reference price, positive when adverse (paid
    more, or received less, than expected).

Keys of report() for section "all". Section "trades" keeps the trade keys and the
per_* groups. Section "drawdown" keeps the equity keys, sharpe and daily. Every value is
a float, int, str, None, or a list or dict of those (no NaN or inf).
  section, tz                                   str
  start, end                                    str ISO 8601 UTC, or None without data
  trades, wins, losses, breakeven               int
  win_rate                                      float 0..1
  profit_factor                                 float or None
  expectancy, avg_win, avg_loss, largest_win, largest_loss, total_pnl, total_fees
                                                float, in quote currency
  longest_win_streak, longest_loss_streak       int
  avg_hold_s                                    float seconds
  max_drawdown, current_drawdown, max_daily_drawdown   float 0..1
  time_to_recover_s                             float seconds or None
  peak_equity, final_equity                     float; total_return: float fraction
  sharpe                                        float; sharpe_basis: str such as "1D" or "1h"
  per_symbol, per_tag, per_strategy             {group: {the trade stat keys}}
  daily      [{"date": "YYYY-MM-DD", "pnl": float, "pnl_pct": float in percent}]
  execution  the execution_stats() dict, or None when neither orders nor fills were given
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import pandas as pd

from engine.core.model import ClosedTrade, Fill, Order, OrderStatus, OrderType, Side

EquityCurve = Sequence[tuple[datetime, Decimal]]
_TRADE_COLUMNS = [
    "symbol", "side", "qty", "entry_price", "exit_price", "opened_at", "closed_at",
    "hold_s", "pnl", "fees", "tag", "strategy",
]  # fmt: skip
_MONEY = ("qty", "entry_price", "exit_price", "pnl", "fees")
_GROUP_KEYS = ("symbol", "tag", "strategy")


# --- frames -----------------------------------------------------------------------------------


def trades_frame(trades: Sequence[ClosedTrade]) -> pd.DataFrame:
    """One row per trade with float money columns, sorted by close time (streaks need order)."""
    floats = {k: pd.Series([float(getattr(t, k)) for t in trades], dtype=float) for k in _MONEY}
    df = pd.DataFrame(
        {
            "symbol": pd.Series([t.symbol for t in trades], dtype=object),
            "side": pd.Series([str(t.side) for t in trades], dtype=object),
            **floats,
            "opened_at": pd.to_datetime([t.opened_at for t in trades], utc=True),
            "closed_at": pd.to_datetime([t.closed_at for t in trades], utc=True),
            "tag": pd.Series([t.tag for t in trades], dtype=object),
            "strategy": pd.Series([t.strategy for t in trades], dtype=object),
        }
    )
    df["hold_s"] = (df["closed_at"] - df["opened_at"]).dt.total_seconds()
    return df.sort_values(["closed_at", "opened_at"], kind="stable").reset_index(drop=True)[_TRADE_COLUMNS]


def as_equity(curve: EquityCurve | pd.Series) -> pd.Series:
    """The equity Series the figures are computed on. A float Series on a UTC DatetimeIndex (what a
    caller keeping a long curve in arrays holds) gets the same sorting and de-duplication as a list."""
    if isinstance(curve, pd.Series):
        equity = curve.astype(float).sort_index(kind="stable").rename("equity")
        return equity[~equity.index.duplicated(keep="last")]
    return equity_frame(curve)["equity"]


def equity_frame(curve: EquityCurve) -> pd.DataFrame:
    """Equity as floats on a sorted UTC index named "ts"; a repeated timestamp keeps its last sample."""
    index = pd.DatetimeIndex(pd.to_datetime([ts for ts, _ in curve], utc=True), name="ts")
    df = pd.DataFrame({"equity": [float(v) for _, v in curve]}, index=index, dtype=float)
    df = df.sort_index(kind="stable")
    return df[~df.index.duplicated(keep="last")]


# --- trades -----------------------------------------------------------------------------------


def _streaks(pnls: Sequence[float]) -> tuple[int, int]:
    best = {1: 0, -1: 0}
    run_sign, run = 0, 0
    for p in pnls:
        sign = (p > 0) - (p < 0)
        run = run + 1 if sign == run_sign and sign != 0 else 1
        run_sign = sign
        if sign:
            best[sign] = max(best[sign], run)
    return best[1], best[-1]


def _stats_from_frame(df: pd.DataFrame) -> dict[str, Any]:
    n = len(df)
    pnl = df["pnl"].astype(float)
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    gross_loss = -float(losses.sum())
    win_streak, loss_streak = _streaks(pnl.tolist())
    return {
        "trades": n,
        "wins": len(wins),
        "losses": len(losses),
        "breakeven": int((pnl == 0).sum()),
        "win_rate": len(wins) / n if n else 0.0,
        "profit_factor": float(wins.sum()) / gross_loss if gross_loss > 0 else None,
        "expectancy": float(pnl.mean()) if n else 0.0,
        "avg_win": float(wins.mean()) if len(wins) else 0.0,
        "avg_loss": float(losses.mean()) if len(losses) else 0.0,
        "largest_win": float(wins.max()) if len(wins) else 0.0,
        "largest_loss": float(losses.min()) if len(losses) else 0.0,
        "longest_win_streak": win_streak,
        "longest_loss_streak": loss_streak,
        "total_pnl": float(pnl.sum()),
        "total_fees": float(df["fees"].astype(float).sum()),
        "avg_hold_s": float(df["hold_s"].astype(float).mean()) if n else 0.0,
    }


def trade_stats(trades: Sequence[ClosedTrade]) -> dict[str, Any]:
    return _stats_from_frame(trades_frame(trades))


def per_group(
    trades: Sequence[ClosedTrade], by: Literal["symbol", "tag", "strategy"] = "symbol"
) -> dict[str, dict[str, Any]]:
    """trade_stats for each symbol, tag or strategy; an untagged trade is grouped under ""."""
    if by not in _GROUP_KEYS:
        raise ValueError(f"cannot group trades by {by!r}; use one of {', '.join(_GROUP_KEYS)}")
    df = trades_frame(trades)
    return {str(key): _stats_from_frame(group) for key, group in df.groupby(by, sort=True)}


# --- equity -----------------------------------------------------------------------------------


def _daily_windows(equity: pd.Series, tz: str) -> list[tuple[date, float, np.ndarray]]:
    """(day, opening equity, samples of that day) per trading day in `tz`."""
    local = equity.tz_convert(tz)
    days = pd.Series(local.index.date, index=local.index)
    out: list[tuple[date, float, np.ndarray]] = []
    opening = float(equity.iloc[0])
    for day, values in local.groupby(days.values, sort=True):
        arr = values.to_numpy(dtype=float)
        out.append((day, opening, arr))
        opening = float(arr[-1])
    return out


def drawdown_stats(curve: EquityCurve, tz: str = "UTC") -> dict[str, Any]:
    return _drawdown(as_equity(curve), tz)


def _drawdown(equity: pd.Series, tz: str) -> dict[str, Any]:
    if equity.empty:
        return {
            "max_drawdown": 0.0, "current_drawdown": 0.0, "max_daily_drawdown": 0.0,
            "time_to_recover_s": 0.0, "peak_equity": 0.0, "final_equity": 0.0, "total_return": 0.0,
        }  # fmt: skip
    peak = equity.cummax()
    dd = ((peak - equity) / peak).where(peak > 0, 0.0)
    max_dd = float(dd.max())
    recover: float | None = 0.0
    if max_dd > 0:
        trough_at = dd.idxmax()
        after = equity[equity.index > trough_at]
        back = after[after >= peak[trough_at]]
        recover = (back.index[0] - trough_at).total_seconds() if len(back) else None
    daily_worst = 0.0
    for _, opening, arr in _daily_windows(equity, tz):
        path = np.concatenate(([opening], arr))
        day_peak = np.maximum.accumulate(path)
        with np.errstate(divide="ignore", invalid="ignore"):
            day_dd = np.where(day_peak > 0, (day_peak - path) / day_peak, 0.0)
        daily_worst = max(daily_worst, float(day_dd.max()))
    first, last = float(equity.iloc[0]), float(equity.iloc[-1])
    return {
        "max_drawdown": max_dd,
        "current_drawdown": float(dd.iloc[-1]),
        "max_daily_drawdown": daily_worst,
        "time_to_recover_s": recover,
        "peak_equity": float(peak.iloc[-1]),
        "final_equity": last,
        "total_return": last / first - 1 if first > 0 else 0.0,
    }


def daily_pnl(curve: EquityCurve, tz: str = "UTC") -> list[tuple[date, float, float]]:
    """(trading day, P&L, P&L in percent of the day's opening equity), oldest first."""
    return _daily(as_equity(curve), tz)


def _daily(equity: pd.Series, tz: str) -> list[tuple[date, float, float]]:
    if equity.empty:
        return []
    rows = []
    for day, opening, arr in _daily_windows(equity, tz):
        pnl = float(arr[-1]) - opening
        rows.append((day, pnl, pnl / opening * 100 if opening else 0.0))
    return rows


def _period_returns(equity: pd.Series, period: str, tz: str) -> pd.Series:
    bins = equity.tz_convert(tz).resample(period)
    closes = bins.last().ffill()
    previous = closes.shift(1)
    previous.iloc[0] = equity.iloc[0]  # the first period is measured from the opening sample
    returns = closes / previous - 1
    if bins.count().iloc[0] == 1:
        returns = returns.iloc[1:]  # the opening sample alone spans no time: no return to speak of
    return returns.replace([np.inf, -np.inf], np.nan).dropna()


def _sharpe_of(returns: pd.Series, periods_per_year: float) -> float:
    if len(returns) < 2:
        return 0.0
    mean, std = float(returns.mean()), float(returns.std(ddof=1))
    # Constant returns leave float noise in std; treat it as the zero variance it is.
    if not math.isfinite(std) or std == 0 or std <= abs(mean) * 1e-9:
        return 0.0
    value = mean / std * math.sqrt(periods_per_year)
    return value if math.isfinite(value) else 0.0


def sharpe_with_basis(
    curve: EquityCurve, period: str = "1D", periods_per_year: float = 365, tz: str = "UTC"
) -> tuple[float, str]:
    """Annualised Sharpe and the period it was computed on (see the module notes on short runs)."""
    return _sharpe(as_equity(curve), period, periods_per_year, tz)


def _sharpe(equity: pd.Series, period: str, periods_per_year: float, tz: str) -> tuple[float, str]:
    if len(equity) < 2:
        return 0.0, period
    returns = _period_returns(equity, period, tz)
    if len(returns) < 2:
        try:
            hours = pd.Timedelta(period) / pd.Timedelta("1h")
        except ValueError:  # calendar periods such as "ME" have no fixed length
            hours = 0.0
        if hours > 1:
            return _sharpe_of(_period_returns(equity, "1h", tz), periods_per_year * hours), "1h"
    return _sharpe_of(returns, periods_per_year), period


def sharpe(curve: EquityCurve, period: str = "1D", periods_per_year: float = 365, tz: str = "UTC") -> float:
    return sharpe_with_basis(curve, period, periods_per_year, tz)[0]


# --- execution --------------------------------------------------------------------------------


def execution_stats(
    orders: Sequence[Order],
    fills: Sequence[Fill],
    reference_prices: Mapping[str, Decimal | float] | None = None,
) -> dict[str, Any]:
    """Fill rate of finished entry orders and slippage against the price each order expected.

    fill_rate is filled qty / ordered qty over entry orders that are finished and not rejected;
    orders still working are left out because their outcome is not known yet. order_fill_rate
    is the share of those orders filled completely. Slippage is measured where an expected price
    is known: reference_prices[client_id] (the quote a market order was sized on), else a stop
    order's trigger. Limit orders are left out unless given a reference, since their limit
    bounds the price. Rates and slippage are None when there is nothing to measure.
    """
    refs = dict(reference_prices or {})
    by_id: dict[str, list[Fill]] = {}
    for f in fills:
        by_id.setdefault(f.client_id, []).append(f)
    filled_of = {cid: sum((f.qty for f in fs), Decimal(0)) for cid, fs in by_id.items()}

    entries = [
        o for o in orders
        if o.role == "entry" and o.status.is_terminal and o.status is not OrderStatus.REJECTED
    ]  # fmt: skip
    ordered = sum((o.qty for o in entries), Decimal(0))
    filled = [min(o.qty, max(o.filled_qty, filled_of.get(o.client_id, Decimal(0)))) for o in entries]
    complete = sum(1 for o, q in zip(entries, filled, strict=True) if q >= o.qty)

    known = {o.client_id: o for o in orders}
    slips: list[float] = []
    for cid in dict.fromkeys([*known, *by_id]):
        order, own = known.get(cid), by_id.get(cid, [])
        ref = refs.get(cid)
        if ref is None and order is not None:
            ref = order.ref_price  # journaled with the order when it was sized
        if ref is None and order is not None and order.order_type is OrderType.STOP_MARKET:
            ref = order.stop_price
        qty = sum((f.qty for f in own), Decimal(0))
        if qty > 0:
            price = sum((f.qty * f.price for f in own), Decimal(0)) / qty
            side = own[0].side
        elif order is not None and order.filled_qty > 0 and order.avg_fill_price is not None:
            price, side = order.avg_fill_price, order.side
        else:
            continue
        if ref is None or float(ref) <= 0:
            continue
        sign = 1.0 if side is Side.BUY else -1.0
        slips.append(sign * (float(price) - float(ref)) / float(ref))

    return {
        "orders": len(entries),
        "filled_orders": complete,
        "rejected": sum(1 for o in orders if o.status is OrderStatus.REJECTED),
        "fill_rate": float(sum(filled, Decimal(0)) / ordered) if ordered > 0 else None,
        "order_fill_rate": complete / len(entries) if entries else None,
        "avg_slippage": sum(slips) / len(slips) if slips else None,
        "max_slippage": max(slips) if slips else None,
        "slippage_samples": len(slips),
    }


# --- report -----------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    """Decimal, numpy and dates to plain JSON values; NaN and inf become None."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        return str(value)  # plain str, also for StrEnum members
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, Decimal | float):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"metrics report cannot hold {type(value).__name__}")


def report(
    trades: Sequence[ClosedTrade],
    curve: EquityCurve | pd.Series,
    section: Literal["all", "trades", "drawdown"] = "all",
    orders: Sequence[Order] | None = None,
    fills: Sequence[Fill] | None = None,
    tz: str = "UTC",
    reference_prices: Mapping[str, Decimal | float] | None = None,
) -> dict[str, Any]:
    """One JSON-serialisable dict; the keys are listed in the module docstring."""
    if section not in ("all", "trades", "drawdown"):
        raise ValueError(f"unknown report section {section!r}; use all, trades or drawdown")
    if isinstance(curve, pd.Series):
        stamps: list[Any] = [curve.index.min(), curve.index.max()] if len(curve) else []
    else:
        stamps = [ts for ts, _ in curve]
    stamps += [t.opened_at for t in trades] + [t.closed_at for t in trades]
    out: dict[str, Any] = {
        "section": section,
        "tz": tz,
        "start": pd.Timestamp(min(stamps)).tz_convert("UTC").isoformat() if stamps else None,
        "end": pd.Timestamp(max(stamps)).tz_convert("UTC").isoformat() if stamps else None,
    }
    if section in ("all", "trades"):
        out.update(trade_stats(trades))
        for by in _GROUP_KEYS:
            out[f"per_{by}"] = per_group(trades, by)  # type: ignore[arg-type]
    if section in ("all", "drawdown"):
        equity = as_equity(curve)  # built once: it is the slow part on a long journal
        out.update(_drawdown(equity, tz))
        out["sharpe"], out["sharpe_basis"] = _sharpe(equity, "1D", 365, tz)
        out["daily"] = [{"date": d, "pnl": p, "pnl_pct": pct} for d, p, pct in _daily(equity, tz)]
    if section == "all":
        given = orders is not None or fills is not None
        out["execution"] = execution_stats(orders or [], fills or [], reference_prices) if given else None
    return _json_safe(out)

