"""Equity-curve figures against hand-computed values: drawdown and time to recover, the worst day
measured from its open in the trading day's time zone, daily P&L, and Sharpe on daily returns
(undefined, not zero, below the minimum sample or without variance).
"""

from __future__ import annotations

import math
import statistics
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from engine.analytics import metrics, metrics_text
from tests.metrics_rig import T0, curve_of, hourly

# --- drawdown and daily P&L ---------------------------------------------------------------------


def test_drawdown_that_recovers() -> None:
    # hour: 0    1    2    3    4    5
    # eq:   100  120  90   110  125  118
    dd = metrics.drawdown_stats(hourly(100, 120, 90, 110, 125, 118))
    assert dd["max_drawdown"] == pytest.approx(0.25)  # (120 - 90) / 120
    assert dd["time_to_recover_s"] == 7200.0  # trough at hour 2, back above 120 at hour 4
    assert dd["current_drawdown"] == pytest.approx(0.056)  # (125 - 118) / 125
    assert dd["peak_equity"] == 125.0
    assert dd["final_equity"] == 118.0
    assert dd["total_return"] == pytest.approx(0.18)  # 118 / 100 - 1


def test_drawdown_not_recovered() -> None:
    dd = metrics.drawdown_stats(hourly(100, 80, 90))
    assert dd["max_drawdown"] == pytest.approx(0.2)  # (100 - 80) / 100
    assert dd["time_to_recover_s"] is None  # 90 never gets back to 100
    assert dd["current_drawdown"] == pytest.approx(0.1)  # (100 - 90) / 100
    assert dd["total_return"] == pytest.approx(-0.1)


def test_no_drawdown_and_empty_curve() -> None:
    rising = metrics.drawdown_stats(hourly(100, 101, 102))
    assert (rising["max_drawdown"], rising["current_drawdown"], rising["time_to_recover_s"]) == (
        0.0,
        0.0,
        0.0,
    )
    empty = metrics.drawdown_stats([])
    assert empty["max_drawdown"] == 0.0 and empty["final_equity"] == 0.0


# New York is UTC-5 in January, so the New York day of Jan 5 ends at 05:00 UTC on Jan 6.
ACROSS_MIDNIGHT = curve_of(
    (datetime(2026, 1, 5, 22, tzinfo=UTC), 1000),  # NY Jan 5 17:00
    (datetime(2026, 1, 6, 3, tzinfo=UTC), 1200),  # NY Jan 5 22:00
    (datetime(2026, 1, 6, 4, tzinfo=UTC), 1080),  # NY Jan 5 23:00
    (datetime(2026, 1, 6, 6, tzinfo=UTC), 1026),  # NY Jan 6 01:00
    (datetime(2026, 1, 6, 12, tzinfo=UTC), 1134),  # NY Jan 6 07:00
)


def test_worst_day_is_measured_from_the_open_and_the_intraday_fall_apart() -> None:
    # UTC days: Jan 5 = [1000]; Jan 6 opens at 1000: 1200 -> 1080 -> 1026 -> 1134.
    #   Never below its opening 1000: worst daily loss 0. Fall from the day's high (1200 - 1026) / 1200 = 0.145.
    # NY days: Jan 5 = 1000 -> 1200 -> 1080: never below 1000 (loss 0), fall from the high (1200 - 1080) / 1200 = 0.10;
    #   Jan 6 opens at 1080: 1026 -> 1134: loss from the open (1080 - 1026) / 1080 = 0.05, the worst day.
    utc = metrics.drawdown_stats(ACROSS_MIDNIGHT)
    ny = metrics.drawdown_stats(ACROSS_MIDNIGHT, tz="America/New_York")
    assert (utc["worst_daily_loss"], utc["worst_daily_loss_date"]) == (0.0, None)
    assert utc["max_intraday_drawdown"] == pytest.approx(0.145)
    assert ny["worst_daily_loss"] == pytest.approx(0.05)
    assert ny["worst_daily_loss_date"] == date(2026, 1, 6)
    assert ny["max_intraday_drawdown"] == pytest.approx(0.10)
    assert utc["max_drawdown"] == ny["max_drawdown"] == pytest.approx(0.145)  # the zone only splits days


def test_a_day_up_4_percent_that_closes_below_its_open_is_a_1_5_percent_worst_day() -> None:
    # The case: opens at 10,000, rises to 10,400 (+4 %), ends at 9,850 (1.5 % below the open).
    # Like the daily-loss breaker: (10,000 - 9,850) / 10,000 = 0.015. From the day's high:
    # (10,400 - 9,850) / 10,400 = 0.052885 (the 5.29 % that used to read against the daily loss limit).
    day = T0 + timedelta(hours=1)
    curve = curve_of((day, 10_000), (day + timedelta(hours=6), 10_400), (day + timedelta(hours=20), 9_850))
    stats = metrics.drawdown_stats(curve)
    assert stats["worst_daily_loss"] == pytest.approx(0.015)
    assert stats["max_intraday_drawdown"] == pytest.approx(550 / 10_400)
    assert metrics.report([], curve)["daily"][0]["max_loss_pct"] == pytest.approx(1.5)


def test_open_pnl_counts_in_the_worst_day() -> None:
    # Equity samples carry open positions at the mark: a dip to 9,400 with a position still open,
    # recovered by the close, is a 6 % daily loss (the breaker would have seen it), not 0.
    curve = curve_of((T0, 10_000), (T0 + timedelta(hours=3), 9_400), (T0 + timedelta(hours=9), 10_050))
    assert metrics.drawdown_stats(curve)["worst_daily_loss"] == pytest.approx(0.06)


def test_overnight_loss_counts_in_the_new_day() -> None:
    # Jan 5 23:50 = 1000, Jan 6 00:10 = 950, 01:00 = 960. Jan 6 opens at Jan 5's last 1000,
    # so its loss is (1000 - 950) / 1000 = 0.05 even though within Jan 6 equity only rose.
    curve = curve_of(
        (datetime(2026, 1, 5, 23, 50, tzinfo=UTC), 1000),
        (datetime(2026, 1, 6, 0, 10, tzinfo=UTC), 950),
        (datetime(2026, 1, 6, 1, 0, tzinfo=UTC), 960),
    )
    assert metrics.drawdown_stats(curve)["worst_daily_loss"] == pytest.approx(0.05)


def test_daily_pnl_per_trading_day() -> None:
    # NY: Jan 5 from 1000 (first sample) to 1080 = +80 (8 %); Jan 6 from 1080 to 1134 = +54 (5 %).
    ny = metrics.daily_pnl(ACROSS_MIDNIGHT, tz="America/New_York")
    assert [d for d, _, _ in ny] == [date(2026, 1, 5), date(2026, 1, 6)]
    assert [p for _, p, _ in ny] == pytest.approx([80.0, 54.0])
    assert [pct for _, _, pct in ny] == pytest.approx([8.0, 5.0])
    # UTC: Jan 5 is the single sample 1000 (0); Jan 6 from 1000 to 1134 = +134 (13.4 %).
    utc = metrics.daily_pnl(ACROSS_MIDNIGHT)
    assert [(d, p) for d, p, _ in utc] == [(date(2026, 1, 5), 0.0), (date(2026, 1, 6), 134.0)]
    assert utc[1][2] == pytest.approx(13.4)
    assert metrics.daily_pnl([]) == []


# --- Sharpe -------------------------------------------------------------------------------------


def _daily_curve(returns: list[float], start: float = 100.0) -> list[tuple[datetime, Decimal]]:
    """An opening sample, then one close per day at 18:00 compounding the given returns."""
    points, value = [(T0, Decimal(repr(start)))], start
    for i, r in enumerate(returns):
        value *= 1 + r
        points.append((T0 + timedelta(days=i, hours=18), Decimal(repr(value))))
    return points


def test_sharpe_daily_returns_annualised_by_sqrt_365() -> None:
    # 30 daily returns alternating +2 % and -1 %: mean 0.005; deviations +-0.015, so the sample
    # variance is 30 x 0.015² / 29 = 0.00023276 and the std 0.0152565;
    # Sharpe = 0.005 / 0.0152565 x sqrt(365) = 6.2614.
    returns = [0.02, -0.01] * 15
    expected = statistics.mean(returns) / statistics.stdev(returns) * math.sqrt(365)
    assert expected == pytest.approx(6.2614, abs=1e-3)
    curve = _daily_curve(returns)
    assert list(metrics.daily_returns(curve)) == pytest.approx(returns)
    assert metrics.sharpe(curve) == pytest.approx(expected)
    rep = metrics.report([], curve, section="drawdown")
    assert (rep["sharpe_basis"], rep["sharpe_returns"], rep["sharpe_min_returns"]) == ("1D", 30, 30)


def test_sharpe_is_none_below_the_minimum_sample() -> None:
    # Three daily returns (+4 %, -2 %, +5 %) once gave a Sharpe of 11.77 (and -174 on another journal):
    # under 30 returns there is no figure, and the text says why.
    short = _daily_curve([0.04, -0.02, 0.05])
    assert metrics.sharpe(short) is None
    assert metrics.sharpe(_daily_curve([0.02, -0.01] * 14 + [0.02])) is None  # 29 returns
    rep = metrics.report([], short, section="drawdown")
    assert rep["sharpe"] is None and rep["sharpe_returns"] == 3
    assert "not enough data (3 of 30 daily returns)" in metrics_text.format_report(rep)


def test_sharpe_zero_variance_is_undefined_not_zero() -> None:
    assert metrics.sharpe(_daily_curve([0.0] * 40)) is None
    steady = _daily_curve([0.001] * 40)  # a constant return: zero variance, not a huge number
    assert metrics.sharpe(steady) is None
    assert "undefined (returns do not vary)" in metrics_text.format_report(metrics.report([], steady))
    assert metrics.sharpe([(T0, Decimal(100))]) is None
    assert metrics.sharpe([]) is None


def test_one_hour_run_says_not_enough_data() -> None:
    # The README's one-hour example used to show 0.00: one hour holds one daily return.
    start = T0 + timedelta(hours=10)
    curve = [(start + timedelta(minutes=5 * i), Decimal(1000 + i + (i % 3))) for i in range(13)]
    rep = metrics.report([], curve)
    assert rep["sharpe"] is None and rep["sharpe_returns"] == 1
    assert "Sharpe (daily returns, x sqrt(365))" in metrics_text.format_report(rep)
    assert "not enough data (1 of 30 daily returns)" in metrics_text.format_report(rep)
