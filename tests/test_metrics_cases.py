"""More hand-computed metrics: the edge cases as the report (JSON and text) shows them, and a
drawdown curve with two dips where only the deeper one defines the time to recover."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from engine.analytics import metrics, metrics_text
from engine.core.model import ClosedTrade, Side

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)


def trade(pnl: str | int, minute: int, *, fees: str = "0", opened_s: int = 60, symbol: str = "BTC/USDT") -> ClosedTrade:
    closed = T0 + timedelta(minutes=minute)
    return ClosedTrade(
        symbol=symbol, side=Side.BUY, qty=Decimal(1), entry_price=Decimal(100),
        exit_price=Decimal(100) + Decimal(pnl), opened_at=closed - timedelta(seconds=opened_s),
        closed_at=closed, pnl=Decimal(pnl), fees=Decimal(fees),
    )  # fmt: skip


def line(text: str, label: str) -> str:
    """The value printed after `label` in a text block."""
    row = next(r for r in text.splitlines() if r.strip().startswith(label))
    return row.strip()[len(label) :].strip()


# --- the edge cases, end to end through report() ------------------------------------------------


def test_no_trades_report_is_json_safe_and_says_undefined() -> None:
    rep = metrics.report([], [(T0, Decimal(1000))])
    json.dumps(rep, allow_nan=False)
    assert (rep["trades"], rep["win_rate"], rep["expectancy"], rep["profit_factor"]) == (0, 0.0, 0.0, None)
    assert rep["per_symbol"] == rep["per_tag"] == rep["per_strategy"] == {}
    text = metrics_text.format_report(rep)
    assert line(text, "Profit factor") == "n/a"
    assert line(text, "Win rate") == "0.00 %"
    assert "By symbol" not in text  # no empty tables


def test_only_winners_profit_factor_is_none_in_json_and_no_losses_in_text() -> None:
    rep = metrics.report([trade(10, 1), trade(30, 2, symbol="ETH/USDT")], [])
    assert json.loads(json.dumps(rep, allow_nan=False))["profit_factor"] is None  # never inf or NaN
    assert rep["win_rate"] == 1.0
    assert rep["expectancy"] == pytest.approx(20.0)  # (10 + 30) / 2
    assert (rep["avg_win"], rep["avg_loss"]) == (pytest.approx(20.0), 0.0)
    assert (rep["longest_win_streak"], rep["longest_loss_streak"]) == (2, 0)
    text = metrics_text.format_report(rep)
    assert line(text, "Profit factor") == "no losses"
    by_symbol = text[text.index("By symbol") : text.index("By tag")]
    assert by_symbol.count("no losses") == 2  # each symbol's own profit factor says it too


def test_only_losers() -> None:
    rep = metrics.report([trade(-3, 1, fees="1"), trade(-9, 2, fees="1"), trade(-6, 3, fees="1")], [])
    assert rep["profit_factor"] == 0.0  # 0 won / 18 lost
    assert rep["win_rate"] == 0.0
    assert rep["expectancy"] == pytest.approx(-6.0)  # -18 / 3
    assert rep["avg_loss"] == pytest.approx(-6.0)
    assert rep["largest_loss"] == -9.0
    assert rep["total_fees"] == pytest.approx(3.0)
    assert rep["longest_loss_streak"] == 3
    assert line(metrics_text.format_report(rep), "Profit factor") == "0.00"


def test_a_single_losing_trade() -> None:
    stats = metrics.trade_stats([trade("-7.5", 0, opened_s=300)])
    assert (stats["trades"], stats["wins"], stats["losses"]) == (1, 0, 1)
    assert stats["profit_factor"] == 0.0
    assert stats["expectancy"] == stats["avg_loss"] == stats["largest_loss"] == stats["total_pnl"] == -7.5
    assert (stats["avg_win"], stats["largest_win"]) == (0.0, 0.0)
    assert (stats["longest_win_streak"], stats["longest_loss_streak"]) == (0, 1)
    assert stats["avg_hold_s"] == 300.0


def test_expectancy_is_the_mean_and_matches_rates_times_averages() -> None:
    # W L L B W: +40 -10 -10 0 +25
    stats = metrics.trade_stats([trade(p, i) for i, p in enumerate([40, -10, -10, 0, 25])])
    assert stats["win_rate"] == pytest.approx(0.4)  # 2 of 5 (the breakeven counts in the 5)
    assert stats["profit_factor"] == pytest.approx(3.25)  # 65 / 20
    assert stats["avg_win"] == pytest.approx(32.5)  # 65 / 2
    assert stats["avg_loss"] == pytest.approx(-10.0)  # -20 / 2
    assert stats["expectancy"] == pytest.approx(9.0)  # 45 / 5
    # the same expectancy from the rates: 0.4 x 32.5 + 0.4 x -10 + 0.2 x 0 = 13 - 4 = 9
    assert 0.4 * stats["avg_win"] + 0.4 * stats["avg_loss"] == pytest.approx(stats["expectancy"])
    assert (stats["longest_win_streak"], stats["longest_loss_streak"]) == (1, 2)


def test_streaks_order_trades_closed_together_by_their_opening() -> None:
    # Closed at minutes 0 0 1 2 3 4 5 6 -> by close then open: W W L W W W L L.
    # The two trades closed at minute 0 are given in the wrong order and with a loss between
    # them in the list: sorting must still put both wins first.
    trades = [
        trade(5, 0, opened_s=30),  # opened later than the next one
        trade(-1, 1),
        trade(5, 0, opened_s=90),
        trade(2, 2), trade(2, 3), trade(2, 4), trade(-1, 5), trade(-1, 6),
    ]  # fmt: skip
    stats = metrics.trade_stats(trades)
    assert (stats["longest_win_streak"], stats["longest_loss_streak"]) == (3, 2)


# --- drawdown and time to recover on a hand-made curve ------------------------------------------

# Hourly from 22:00 UTC on Mon 2 March 2026 (17:00 in New York, UTC-5 until 8 March).
START = datetime(2026, 3, 2, 22, tzinfo=UTC)
VALUES = ["100", "110", "99", "104.5", "110", "121", "108.9", "96.8", "115", "121", "118.58"]
#  peak    100   110   110   110     110   121   121     121    121   121    121
#  dd      0     0     .10   .05     0     0     .10     .20    .0496 0      .02
CURVE = [(START + timedelta(hours=i), Decimal(v)) for i, v in enumerate(VALUES)]


def test_drawdown_the_deeper_dip_sets_the_time_to_recover() -> None:
    dd = metrics.drawdown_stats(CURVE)
    assert dd["max_drawdown"] == pytest.approx(0.2)  # (121 - 96.8) / 121 at hour 7
    # the first dip (110 -> 99) recovered in 2 h too, but only the deepest one counts:
    # trough at hour 7, back to 121 at hour 9
    assert dd["time_to_recover_s"] == 2 * 3600.0
    assert dd["current_drawdown"] == pytest.approx(0.02)  # (121 - 118.58) / 121
    assert dd["peak_equity"] == 121.0
    assert dd["total_return"] == pytest.approx(0.1858)  # 118.58 / 100 - 1


def test_not_yet_recovered_until_the_old_peak_is_reached_again() -> None:
    dd = metrics.drawdown_stats(CURVE[:9])  # ends at 115, below the 121 peak
    assert dd["time_to_recover_s"] is None
    assert dd["current_drawdown"] == pytest.approx(6 / 121)


def test_daily_drawdown_in_new_york_and_in_utc() -> None:
    # New York: hours 0-6 are Mar 2 (17:00-23:00), hours 7-10 Mar 3.
    #   Mar 2 opens at 100: lowest 99, a loss of 0.01 from the open; from a day's high 110 -> 99
    #   and 121 -> 108.9 are both 0.10.
    #   Mar 3 opens at Mar 2's close 108.9: lowest 96.8, a loss of 12.1 / 108.9 = 1/9 (from the open,
    #   which is also its high).
    ny = metrics.drawdown_stats(CURVE, tz="America/New_York")
    assert ny["worst_daily_loss"] == pytest.approx(1 / 9)
    assert str(ny["worst_daily_loss_date"]) == "2026-03-03"
    assert ny["max_intraday_drawdown"] == pytest.approx(1 / 9)
    # UTC: hours 0-1 are Mar 2 (never below 100); Mar 3 opens at 110 and goes down to 96.8:
    # 13.2 / 110 = 0.12 below its open, while the fall from its 121 high is 0.20.
    utc = metrics.drawdown_stats(CURVE)
    assert utc["worst_daily_loss"] == pytest.approx(0.12)
    assert utc["max_intraday_drawdown"] == pytest.approx(0.2)
    days = metrics.daily_pnl(CURVE, tz="America/New_York")
    assert [d for d, _, _ in days] == [date(2026, 3, 2), date(2026, 3, 3)]
    assert [p for _, p, _ in days] == pytest.approx([8.9, 9.68])  # 108.9 - 100; 118.58 - 108.9
    assert [pct for _, _, pct in days] == pytest.approx([8.9, 9.68 / 108.9 * 100])


def test_a_float_series_gives_the_report_a_list_gives() -> None:
    # The performance dock keeps long curves in arrays; it must get the very same figures.
    shuffled = CURVE[5:] + CURVE[:5] + [CURVE[3]]  # out of order, one sample repeated
    series = pd.Series(
        [float(v) for _, v in shuffled], index=pd.DatetimeIndex([ts for ts, _ in shuffled]).tz_convert("UTC")
    )
    trades = [trade(10, 1), trade(-4, 2)]
    from_list = metrics.report(trades, shuffled, tz="America/New_York")
    from_series = metrics.report(trades, series, tz="America/New_York")
    assert from_series == from_list
    assert from_series["start"] == T0.isoformat()  # the first trade opened before the first sample
