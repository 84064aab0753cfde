"""Metrics against hand-computed figures; the arithmetic is written out next to each expectation."""

from __future__ import annotations

import json
import math
import statistics
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from engine.analytics import metrics, metrics_text
from engine.core.model import ClosedTrade, Fill, Order, OrderStatus, OrderType, Side

T0 = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday


def trade(
    pnl: str | int,
    minute: int = 0,
    *,
    symbol: str = "BTC/USDT",
    tag: str = "",
    strategy: str = "",
    fees: str = "0",
    hold_s: int = 60,
) -> ClosedTrade:
    closed = T0 + timedelta(minutes=minute)
    return ClosedTrade(
        symbol=symbol,
        side=Side.BUY,
        qty=Decimal(1),
        entry_price=Decimal(100),
        exit_price=Decimal(100) + Decimal(pnl),
        opened_at=closed - timedelta(seconds=hold_s),
        closed_at=closed,
        pnl=Decimal(pnl),
        fees=Decimal(fees),
        tag=tag,
        strategy=strategy,
    )


def curve_of(*points: tuple[datetime, str | int]) -> list[tuple[datetime, Decimal]]:
    return [(ts, Decimal(v)) for ts, v in points]


def hourly(*values: str | int, start: datetime = T0) -> list[tuple[datetime, Decimal]]:
    return [(start + timedelta(hours=i), Decimal(v)) for i, v in enumerate(values)]


# --- trade statistics ---------------------------------------------------------------------------


def test_no_trades_gives_zeros_and_undefined_profit_factor() -> None:
    stats = metrics.trade_stats([])
    assert stats["profit_factor"] is None
    assert {k: v for k, v in stats.items() if k != "profit_factor"} == {
        "trades": 0, "wins": 0, "losses": 0, "breakeven": 0, "win_rate": 0.0, "expectancy": 0.0,
        "avg_win": 0.0, "avg_loss": 0.0, "largest_win": 0.0, "largest_loss": 0.0,
        "longest_win_streak": 0, "longest_loss_streak": 0, "current_loss_streak": 0, "total_pnl": 0.0,
        "total_fees": 0.0,
        "avg_hold_s": 0.0,
    }  # fmt: skip


def test_mixed_trades() -> None:
    pnls = [30, -10, 0, 20, -20, 10]
    trades = [trade(p, minute=i, fees="1", hold_s=60 * (i + 1)) for i, p in enumerate(pnls)]
    stats = metrics.trade_stats(trades)
    assert (stats["trades"], stats["wins"], stats["losses"], stats["breakeven"]) == (6, 3, 2, 1)
    assert stats["win_rate"] == pytest.approx(3 / 6)  # the breakeven trade counts in the denominator
    assert stats["profit_factor"] == pytest.approx(2.0)  # (30 + 20 + 10) / (10 + 20) = 60 / 30
    assert stats["expectancy"] == pytest.approx(5.0)  # 30 net / 6 trades
    assert stats["avg_win"] == pytest.approx(20.0)  # 60 / 3
    assert stats["avg_loss"] == pytest.approx(-15.0)  # -30 / 2
    assert stats["largest_win"] == 30.0
    assert stats["largest_loss"] == -20.0
    assert stats["total_pnl"] == pytest.approx(30.0)
    assert stats["total_fees"] == pytest.approx(6.0)  # 6 x 1
    assert stats["avg_hold_s"] == pytest.approx(210.0)  # 60 s x (1+2+3+4+5+6) / 6 = 60 x 3.5


def test_only_winners_have_no_profit_factor() -> None:
    stats = metrics.trade_stats([trade(5, 0), trade(15, 1)])
    assert stats["profit_factor"] is None  # nothing lost: the ratio is undefined, not infinite
    assert stats["win_rate"] == 1.0
    assert stats["avg_win"] == pytest.approx(10.0)  # (5 + 15) / 2
    assert (stats["avg_loss"], stats["largest_loss"], stats["longest_loss_streak"]) == (0.0, 0.0, 0)
    assert stats["longest_win_streak"] == 2


def test_only_losers_have_zero_profit_factor() -> None:
    stats = metrics.trade_stats([trade(-4, 0), trade(-6, 1)])
    assert stats["profit_factor"] == 0.0  # 0 gross profit / 10 gross loss
    assert stats["win_rate"] == 0.0
    assert stats["avg_loss"] == pytest.approx(-5.0)  # (-4 - 6) / 2
    assert stats["largest_loss"] == -6.0
    assert (stats["avg_win"], stats["largest_win"]) == (0.0, 0.0)
    assert stats["longest_loss_streak"] == 2


def test_single_trade() -> None:
    stats = metrics.trade_stats([trade("12.5", fees="0.5", hold_s=90)])
    assert (stats["trades"], stats["wins"], stats["win_rate"]) == (1, 1, 1.0)
    assert stats["expectancy"] == stats["total_pnl"] == stats["largest_win"] == 12.5
    assert stats["total_fees"] == 0.5
    assert stats["avg_hold_s"] == 90.0
    assert stats["longest_win_streak"] == 1


def test_breakeven_trades_are_neither_wins_nor_losses() -> None:
    stats = metrics.trade_stats([trade(0, 0), trade(0, 1)])
    assert (stats["wins"], stats["losses"], stats["breakeven"]) == (0, 0, 2)
    assert stats["win_rate"] == 0.0
    assert stats["profit_factor"] is None
    assert (stats["longest_win_streak"], stats["longest_loss_streak"]) == (0, 0)


def test_streaks_follow_close_time_and_breakeven_ends_a_streak() -> None:
    # By close time: W W | L L L | B | L | W W W W  -> longest win run 4, longest loss run 3
    # (the breakeven trade splits L L L from the L after it, so it is not a run of 4).
    pnls = [5, 5, -1, -1, -1, 0, -1, 2, 2, 2, 2]
    trades = [trade(p, minute=i) for i, p in enumerate(pnls)]
    stats = metrics.trade_stats(list(reversed(trades)))  # the journal's order must not matter
    assert stats["longest_win_streak"] == 4
    assert stats["longest_loss_streak"] == 3


def test_per_group_splits_by_symbol_tag_and_strategy() -> None:
    trades = [
        trade(10, 0, symbol="BTC/USDT", tag="breakout", strategy="ema_cross"),
        trade(-5, 1, symbol="ETH/USDT", tag="breakout", strategy="ema_cross"),
        trade(-5, 2, symbol="BTC/USDT", tag="", strategy="ema_cross"),
    ]
    by_symbol = metrics.per_group(trades, "symbol")
    assert sorted(by_symbol) == ["BTC/USDT", "ETH/USDT"]
    assert by_symbol["BTC/USDT"]["trades"] == 2
    assert by_symbol["BTC/USDT"]["profit_factor"] == pytest.approx(2.0)  # 10 / 5
    assert by_symbol["ETH/USDT"]["win_rate"] == 0.0
    by_tag = metrics.per_group(trades, "tag")
    assert by_tag["breakout"]["total_pnl"] == pytest.approx(5.0)  # 10 - 5
    assert by_tag[""]["trades"] == 1  # untagged trades are kept, under ""
    assert metrics.per_group(trades, "strategy")["ema_cross"]["trades"] == 3
    assert metrics.per_group([], "symbol") == {}
    with pytest.raises(ValueError, match="cannot group"):
        metrics.per_group(trades, "side")  # type: ignore[arg-type]


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


# --- execution quality --------------------------------------------------------------------------


def order(
    cid: str,
    side: Side,
    qty: int,
    status: OrderStatus,
    kind: OrderType = OrderType.MARKET,
    role: str = "entry",
    **kw: object,
) -> Order:
    return Order(
        client_id=cid,
        symbol="BTC/USDT",
        side=side,
        order_type=kind,
        qty=Decimal(qty),
        status=status,
        role=role,
        **kw,
    )


def fill(cid: str, side: Side, qty: str, price: str, n: int = 0) -> Fill:
    return Fill(
        fill_id=f"{cid}-{n}",
        client_id=cid,
        symbol="BTC/USDT",
        side=side,
        qty=Decimal(qty),
        price=Decimal(price),
        fee=Decimal(0),
        ts=T0,
    )


def test_execution_fill_rate_and_slippage() -> None:
    orders = [
        order("A", Side.BUY, 2, OrderStatus.FILLED, filled_qty=Decimal(2)),
        order(
            "B", Side.BUY, 4, OrderStatus.CANCELED, OrderType.LIMIT, price=Decimal(50), filled_qty=Decimal(1)
        ),
        order("C", Side.SELL, 1, OrderStatus.REJECTED),
        order(
            "D",
            Side.SELL,
            2,
            OrderStatus.FILLED,
            OrderType.STOP_MARKET,
            role="stop_loss",
            stop_price=Decimal(95),
            filled_qty=Decimal(2),
        ),
        order("E", Side.BUY, 3, OrderStatus.OPEN, OrderType.LIMIT, price=Decimal(40)),
        order("F", Side.SELL, 1, OrderStatus.FILLED, filled_qty=Decimal(1)),
    ]
    fills = [
        fill("A", Side.BUY, "1", "100.5", 0),
        fill("A", Side.BUY, "1", "101.5", 1),  # VWAP 101
        fill("B", Side.BUY, "1", "50"),
        fill("D", Side.SELL, "2", "94.05"),
        fill("F", Side.SELL, "1", "200"),
    ]
    stats = metrics.execution_stats(orders, fills, {"A": Decimal(100), "F": Decimal(202)})
    # Orders that could fill: the finished, non-rejected entry orders A, B, F (D is a protective leg,
    # E still open, C rejected). Filled completely: A and F, so the per-order rate is 2 / 3.
    assert (stats["orders"], stats["filled_orders"], stats["order_fill_rate"]) == (3, 2, pytest.approx(2 / 3))
    assert (stats["partially_filled_orders"], stats["rejected"]) == (1, 1)
    # Notional, each order at its own price: A 2 x 100 of 2 x 100, B 1 x 50 of 4 x 50 (its limit),
    # F 1 x 202 of 1 x 202: (200 + 50 + 202) / (200 + 200 + 202) = 452 / 602.
    assert stats["notional_fill_rate"] == pytest.approx(452 / 602)
    assert stats["notional_fill_rate_by_quote"] == {"USDT": pytest.approx(452 / 602)}
    # Slippage, positive = adverse:
    #   A buy  VWAP 101 vs 100:          (101 - 100) / 100       = 0.01
    #   D sell 94.05 vs stop trigger 95: -(94.05 - 95) / 95      = 0.01
    #   F sell 200 vs reference 202:     -(200 - 202) / 202      = 0.00990
    #   B is a limit order without a reference: its limit bounds the price, so it is left out.
    assert stats["slippage_samples"] == 3
    assert stats["avg_slippage"] == pytest.approx((0.01 + 0.01 + 2 / 202) / 3)
    assert stats["max_slippage"] == pytest.approx(0.01)


def test_execution_without_orders_is_undefined_not_perfect() -> None:
    stats = metrics.execution_stats([], [])
    assert stats["order_fill_rate"] is None and stats["notional_fill_rate"] is None
    assert stats["avg_slippage"] is None
    assert stats["rejected"] == 0 and stats["orders"] == 0


# --- report -------------------------------------------------------------------------------------


def _sample_report(**kw: object) -> dict:
    trades = [trade(30, 1, tag="breakout"), trade(-10, 2, symbol="ETH/USDT"), trade(0, 3)]
    curve = hourly(100, 120, 90, 110, 105)
    return metrics.report(trades, curve, **kw)  # type: ignore[arg-type]


def test_report_is_strict_json_with_the_headline_numbers() -> None:
    rep = _sample_report(
        orders=[order("A", Side.BUY, 2, OrderStatus.FILLED, filled_qty=Decimal(2))],
        fills=[fill("A", Side.BUY, "2", "101")],
        reference_prices={"A": Decimal(100)},
    )
    text = json.dumps(rep, allow_nan=False)  # raises on Decimal, NaN or inf
    assert json.loads(text) == rep
    assert rep["trades"] == 3
    assert rep["win_rate"] == pytest.approx(1 / 3)
    assert rep["profit_factor"] == pytest.approx(3.0)  # 30 / 10
    assert rep["max_drawdown"] == pytest.approx(0.25)  # (120 - 90) / 120
    assert rep["sharpe"] is None  # four hours: not enough daily returns
    assert rep["time_to_recover_s"] is None  # 105 never regains 120
    assert set(rep["per_symbol"]) == {"BTC/USDT", "ETH/USDT"}
    # opens at 100, lowest 90: 10 % below the open at worst
    assert rep["daily"] == [
        {"date": "2026-01-05", "pnl": 5.0, "pnl_pct": pytest.approx(5.0), "max_loss_pct": pytest.approx(10.0)}
    ]
    assert (rep["total_fees"], rep["fees_basis"]) == (0.0, "fills")
    assert rep["execution"]["avg_slippage"] == pytest.approx(0.01)
    assert rep["start"] == "2026-01-05T00:00:00+00:00"


def test_report_sections_and_degenerate_inputs() -> None:
    trades_only = _sample_report(section="trades")
    assert "win_rate" in trades_only and "per_tag" in trades_only
    assert "max_drawdown" not in trades_only and "execution" not in trades_only
    dd_only = _sample_report(section="drawdown")
    assert "sharpe" in dd_only and "daily" in dd_only and "trades" not in dd_only
    assert _sample_report()["execution"] is None  # no orders or fills given
    # Zero equity would divide by zero everywhere: still strict JSON.
    broke = metrics.report([], hourly(0, 0, 0))
    json.dumps(broke, allow_nan=False)
    assert broke["profit_factor"] is None and broke["total_return"] == 0.0
    json.dumps(metrics.report([], []), allow_nan=False)
    with pytest.raises(ValueError, match="section"):
        metrics.report([], [], section="everything")  # type: ignore[arg-type]


def test_format_report_is_aligned_and_readable() -> None:
    text = metrics_text.format_report(_sample_report())
    lines = text.splitlines()
    assert lines[0].startswith("Performance report")
    block = lines[lines.index("Trades") + 2 : lines.index("Equity and drawdown") - 1]
    assert len({len(line) for line in block}) == 1  # labels padded, values right-aligned to one edge
    assert any(line.split() == ["Win", "rate", "33.33", "%"] for line in block)
    assert "Max drawdown" in text and "25.00 %" in text
    assert "not recovered" in text
    assert "2026-01-05" in text and "ETH/USDT" in text and "(none)" in text  # untagged group
    only_trades = metrics_text.format_report(_sample_report(section="trades"))
    assert "Equity and drawdown" not in only_trades and "Profit factor" in only_trades
    # profit factor of winners only: unbounded, said so in words (the JSON holds None)
    assert "no losses" in metrics_text.format_report(metrics.report([trade(5)], []))
    assert "n/a" in metrics_text.format_report(metrics.report([], []))  # no trades: undefined
