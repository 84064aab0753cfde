"""Performance metrics over the journal: trades, drawdown, Sharpe, execution quality.

Pure functions with no I/O and no clock. Callers pass what the journal holds and run
this off the event loop, because pandas over a whole journal can take a while.

Inputs:
  trades  list[ClosedTrade]               round trips, pnl net of every fee of the trip
  curve   list[tuple[datetime, Decimal]]  equity samples (cash + open positions at the mark), tz-aware
          UTC, any order; or a float pd.Series on a UTC DatetimeIndex (as_equity), for long curves
  orders  list[Order], fills list[Fill]   optional: execution quality and the fees of every fill

Definitions (the README's performance section repeats this table):

  | figure                | definition                                                                 |
  |-----------------------|----------------------------------------------------------------------------|
  | win / loss / breakeven| a trade whose net P&L (Decimal, after both fees) is > 0 / < 0 / exactly 0. |
  |                       | A breakeven trade is neither a win nor a loss; it counts among the trades. |
  | win_rate              | wins / all closed trades (breakevens in the denominator).                  |
  | profit_factor         | gross profit / |gross loss|; None with no loss, 0.0 with losses and no win.  |
  | current_loss_streak   | losing trades since the last trade that did not lose (a win or a           |
  |                       | breakeven ends it), as the consecutive-losses breaker counts. The red flag |
  |                       | reads this one. longest_loss_streak is the longest run in the window.      |
  | total_fees            | the fees of every fill in the window when fills are given (open positions' |
  |                       | entry fees too, as the daily summary counts them); else the closed trades' |
  |                       | fees. `fees_basis` says which ("fills" or "closed trades"). Fill.fee is    |
  |                       | the fee's quote value: a fee charged in a third asset (BNB) is 0 there, so |
  |                       | it is missing here as in the daily summary (the portfolio values it).      |
  | max_drawdown          | deepest fall of equity below its running peak, a fraction of the peak.     |
  | worst_daily_loss      | the deepest the equity went below the day's opening equity, as a fraction  |
  |                       | of the opening, over the worst trading day; open P&L included. This is     |
  |                       | what the daily-loss breaker measures against risk.daily_loss_limit, and    |
  |                       | what the daily-drawdown red flag reads. worst_daily_loss_date names the day.|
  | max_intraday_drawdown | the deepest fall from a day's running high (its opening or a later high)   |
  |                       | within one day. A day up 4 % that ends 1.5 % below its opening shows 5.3 % |
  |                       | here and 1.5 % in worst_daily_loss. Shown apart; never against a limit.    |
  | sharpe                | mean / sample std (ddof=1) of daily returns, risk-free rate 0, annualised  |
  |                       | by sqrt(365) (crypto trades every day of the year). None ("not enough      |
  |                       | data") below SHARPE_MIN_RETURNS daily returns or with zero variance.       |

More on the edges:
  - No trades: every numeric trade stat is 0 or 0.0, and profit_factor is None.
  - avg_loss and largest_loss are negative; 0.0 when there are no losers.
  - time_to_recover_s runs from the trough of the max drawdown back up to the peak
    before it. It is None while that has not happened, and 0.0 when there was no drawdown.
  - A trading day is a calendar day in `tz` (default "UTC"). A day opens at the previous
    day's last sample (the first day opens at the first sample), so a loss between the
    last sample before midnight and the first one after it counts in the new day, as the
    daily loss breaker sees it.
  - Daily returns: each day's last equity over the previous day's last equity (the first day
    is measured from the first sample, and skipped when that sample is all it holds).
    SHARPE_MIN_RETURNS is 30: the standard error of an annualised Sharpe estimated from n daily
    returns is about sqrt(365 / n), 3.5 at 30 (and 11 at 3, where -174 was once reported); a
    month of 24/7 days is also the shortest sample the usual rules of thumb accept.
  - Execution figures (fill rates, slippage): see engine.analytics.execution_quality.

Keys of report() for section "all". Section "trades" keeps the trade keys and the
per_* groups. Section "drawdown" keeps the equity keys, the sharpe keys and daily. Every value is
a float, int, str, None, or a list or dict of those (no NaN or inf).
  section, tz                                   str
  start, end                                    str ISO 8601 UTC, or None without data
  trades, wins, losses, breakeven               int
  win_rate                                      float 0..1
  profit_factor                                 float or None
  expectancy, avg_win, avg_loss, largest_win, largest_loss, total_pnl, total_fees
                                                float, in quote currency; fees_basis str
  longest_win_streak, longest_loss_streak, current_loss_streak   int
  avg_hold_s                                    float seconds
  max_drawdown, current_drawdown, worst_daily_loss, max_intraday_drawdown   float 0..1
  worst_daily_loss_date                         str YYYY-MM-DD or None
  time_to_recover_s                             float seconds or None
  peak_equity, final_equity                     float; total_return: float fraction
  sharpe                                        float or None; sharpe_basis: str "1D";
  sharpe_returns, sharpe_min_returns            int (daily returns available / needed)
  per_symbol, per_tag, per_strategy             {group: {the trade stat keys}}
  daily      [{"date": "YYYY-MM-DD", "pnl": float, "pnl_pct": float in percent,
               "max_loss_pct": float in percent (deepest below the opening, >= 0)}]
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

from engine.core.model import ClosedTrade, Fill, Order, Side

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


def _streaks(pnls: Sequence[float]) -> tuple[int, int, int]:
    """(longest win streak, longest loss streak, current loss streak); a breakeven ends both kinds."""
    best = {1: 0, -1: 0}
    run_sign, run = 0, 0
    for p in pnls:
        sign = (p > 0) - (p < 0)
        run = run + 1 if sign == run_sign and sign != 0 else 1
        run_sign = sign
        if sign:
            best[sign] = max(best[sign], run)
    current_losses = run if run_sign == -1 else 0
    return best[1], best[-1], current_losses


def _stats_from_frame(df: pd.DataFrame) -> dict[str, Any]:
    n = len(df)
    pnl = df["pnl"].astype(float)  # a Decimal P&L keeps its sign as a float: exact 0 stays 0.0
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    gross_loss = -float(losses.sum())
    win_streak, loss_streak, current_losses = _streaks(pnl.tolist())
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
        "current_loss_streak": current_losses,
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


def total_fees(fills: Sequence[Fill]) -> Decimal:
    """Every fill's fee: what the account paid, open positions' entries included."""
    return sum((f.fee for f in fills), Decimal(0))


def round_trip_pnl(fills: Sequence[Fill]) -> Decimal:
    """Net P&L of one position from its fills, exact in Decimal: what a close realised, entry fee included.

    Give the fills of one symbol from flat to the close (entries and exits, any order). When they
    bring the position back to flat the result is sell notional - buy notional - every fee, with no
    division, so a true breakeven is exactly 0. When the exits close only part of the position,
    the closed share of the entry (its cost and its fees, pro rata) is charged against the exits.
    Raises ValueError for fills of several symbols or exits larger than the entries (a flip:
    split the fills at the flat point).
    """
    if not fills:
        return Decimal(0)
    if len({f.symbol for f in fills}) != 1:
        raise ValueError("round_trip_pnl takes the fills of one symbol")
    ordered = sorted(fills, key=lambda f: f.ts)
    entry_side = ordered[0].side
    entries = [f for f in ordered if f.side is entry_side]
    exits = [f for f in ordered if f.side is not entry_side]
    entry_qty = sum((f.qty for f in entries), Decimal(0))
    exit_qty = sum((f.qty for f in exits), Decimal(0))
    if exit_qty > entry_qty:
        raise ValueError(f"exits ({exit_qty}) exceed entries ({entry_qty}): split the fills where the position flips")
    entry_value = sum((f.qty * f.price for f in entries), Decimal(0))
    exit_value = sum((f.qty * f.price for f in exits), Decimal(0))
    entry_fees = sum((f.fee for f in entries), Decimal(0))
    exit_fees = sum((f.fee for f in exits), Decimal(0))
    if exit_qty != entry_qty:  # partly closed: only the closed share of the entry counts
        share = exit_qty / entry_qty
        entry_value, entry_fees = entry_value * share, entry_fees * share
    direction = 1 if entry_side is Side.BUY else -1
    return direction * (exit_value - entry_value) - entry_fees - exit_fees


# --- equity -----------------------------------------------------------------------------------

SHARPE_MIN_RETURNS = 30  # daily returns; see the module notes for why
SHARPE_PERIODS_PER_YEAR = 365  # crypto trades every day of the year


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


def _day_loss(opening: float, arr: np.ndarray) -> float:
    """Deepest point of the day below its opening, as a fraction of the opening (0 when never below)."""
    return max(0.0, (opening - float(arr.min())) / opening) if opening > 0 else 0.0


def _intraday_fall(opening: float, arr: np.ndarray) -> float:
    path = np.concatenate(([opening], arr))
    day_peak = np.maximum.accumulate(path)
    with np.errstate(divide="ignore", invalid="ignore"):
        day_dd = np.where(day_peak > 0, (day_peak - path) / day_peak, 0.0)
    return float(day_dd.max())


def drawdown_stats(curve: EquityCurve | pd.Series, tz: str = "UTC") -> dict[str, Any]:
    return _drawdown(as_equity(curve), tz)


def _drawdown(equity: pd.Series, tz: str) -> dict[str, Any]:
    if equity.empty:
        return {
            "max_drawdown": 0.0, "current_drawdown": 0.0, "worst_daily_loss": 0.0, "worst_daily_loss_date": None,
            "max_intraday_drawdown": 0.0, "time_to_recover_s": 0.0, "peak_equity": 0.0, "final_equity": 0.0,
            "total_return": 0.0,
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
    worst_loss, worst_day, intraday = 0.0, None, 0.0
    for day, opening, arr in _daily_windows(equity, tz):
        loss = _day_loss(opening, arr)
        if loss > worst_loss:
            worst_loss, worst_day = loss, day
        intraday = max(intraday, _intraday_fall(opening, arr))
    first, last = float(equity.iloc[0]), float(equity.iloc[-1])
    return {
        "max_drawdown": max_dd,
        "current_drawdown": float(dd.iloc[-1]),
        "worst_daily_loss": worst_loss,
        "worst_daily_loss_date": worst_day,
        "max_intraday_drawdown": intraday,
        "time_to_recover_s": recover,
        "peak_equity": float(peak.iloc[-1]),
        "final_equity": last,
        "total_return": last / first - 1 if first > 0 else 0.0,
    }


def daily_pnl(curve: EquityCurve | pd.Series, tz: str = "UTC") -> list[tuple[date, float, float]]:
    """(trading day, P&L, P&L in percent of the day's opening equity), oldest first."""
    return [(d, pnl, pct) for d, pnl, pct, _ in _daily(as_equity(curve), tz)]


def _daily(equity: pd.Series, tz: str) -> list[tuple[date, float, float, float]]:
    if equity.empty:
        return []
    rows = []
    for day, opening, arr in _daily_windows(equity, tz):
        pnl = float(arr[-1]) - opening
        rows.append((day, pnl, pnl / opening * 100 if opening else 0.0, _day_loss(opening, arr) * 100))
    return rows


def daily_returns(curve: EquityCurve | pd.Series, tz: str = "UTC") -> pd.Series:
    """Each trading day's return: its last equity over the previous day's last (see the module notes)."""
    return _daily_returns(as_equity(curve), tz)


def _daily_returns(equity: pd.Series, tz: str) -> pd.Series:
    if len(equity) < 2:
        return pd.Series(dtype=float)
    bins = equity.tz_convert(tz).resample("1D")
    closes = bins.last().ffill()
    previous = closes.shift(1)
    previous.iloc[0] = equity.iloc[0]  # the first day is measured from the opening sample
    returns = closes / previous - 1
    if bins.count().iloc[0] == 1:
        returns = returns.iloc[1:]  # the opening sample alone spans no time: no return to speak of
    return returns.replace([np.inf, -np.inf], np.nan).dropna()


def sharpe_of(returns: pd.Series | Sequence[float], periods_per_year: float = SHARPE_PERIODS_PER_YEAR,
              min_returns: int = SHARPE_MIN_RETURNS) -> float | None:  # fmt: skip
    """Annualised Sharpe of per-period returns (risk-free 0, ddof=1); None below min_returns or with no variance."""
    r = pd.Series(returns, dtype=float).dropna()
    if len(r) < max(2, min_returns):
        return None
    mean, std = float(r.mean()), float(r.std(ddof=1))
    # Constant returns leave float noise in std; treat it as the zero variance it is.
    if not math.isfinite(std) or std == 0 or std <= abs(mean) * 1e-9:
        return None
    value = mean / std * math.sqrt(periods_per_year)
    return value if math.isfinite(value) else None


def sharpe(curve: EquityCurve | pd.Series, tz: str = "UTC", min_returns: int = SHARPE_MIN_RETURNS) -> float | None:
    """Annualised Sharpe of daily returns (sqrt(365)); None ("not enough data") below min_returns."""
    return sharpe_of(daily_returns(curve, tz), SHARPE_PERIODS_PER_YEAR, min_returns)


# --- execution --------------------------------------------------------------------------------


def execution_stats(
    orders: Sequence[Order], fills: Sequence[Fill], reference_prices: Mapping[str, Decimal | float] | None = None
) -> dict[str, Any]:
    """Fill rates and slippage; the definitions are in engine.analytics.execution_quality."""
    from engine.analytics.execution_quality import execution_stats as stats

    return stats(orders, fills, reference_prices)


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
    """One JSON-serialisable dict; the keys are listed in the module docstring.

    Pass the window's fills so total_fees counts every fill (an open position's entry fee too);
    without them it falls back to the closed trades' fees and fees_basis says so.
    """
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
        if fills is not None:
            out["total_fees"], out["fees_basis"] = total_fees(fills), "fills"
        else:
            out["fees_basis"] = "closed trades"
        for by in _GROUP_KEYS:
            out[f"per_{by}"] = per_group(trades, by)  # type: ignore[arg-type]
    if section in ("all", "drawdown"):
        equity = as_equity(curve)  # built once: it is the slow part on a long journal
        out.update(_drawdown(equity, tz))
        returns = _daily_returns(equity, tz)
        out["sharpe"] = sharpe_of(returns)
        out["sharpe_basis"] = "1D"
        out["sharpe_returns"] = len(returns)
        out["sharpe_min_returns"] = SHARPE_MIN_RETURNS
        out["daily"] = [
            {"date": d, "pnl": p, "pnl_pct": pct, "max_loss_pct": low} for d, p, pct, low in _daily(equity, tz)
        ]
    if section == "all":
        given = orders is not None or fills is not None
        out["execution"] = execution_stats(orders or [], fills or [], reference_prices) if given else None
    return _json_safe(out)
