"""The six figures issue 17 found misleading, each against a hand-computed value.

(Fill rate and worst day are also checked at the stage level in tests/test_stages.py, Sharpe and
max drawdown against empyrical in tests/test_metrics_oracle.py.)
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from engine.alerts.daily_summary import DayData, build_daily_summary
from engine.analytics import metrics, metrics_text
from engine.core.model import ClosedTrade, Fill, Order, OrderStatus, OrderType, Side
from engine.oms.portfolio import Portfolio

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
D = Decimal


def fill(n: int, side: Side, qty: str, price: str, fee: str = "0", symbol: str = "SOL/USDT", cid: str = "") -> Fill:
    return Fill(f"f{n}", cid or f"o{n}", symbol, side, D(qty), D(price), D(fee), T0 + timedelta(minutes=n))


def book(fills: list[Fill]) -> tuple[Portfolio, list[ClosedTrade]]:
    p = Portfolio(D(100_000))
    trades = [t for f in fills if (t := p.apply_fill(f).trade) is not None]
    return p, trades


# --- fill rate ---------------------------------------------------------------------------------


def test_fill_rate_never_adds_quantities_of_different_instruments() -> None:
    # 0.4 BTC ordered (limit 60,000), never filled; 166 SOL ordered (sized on 150) and filled at 150.10.
    btc = Order("b", "BTC/USDT", Side.BUY, OrderType.LIMIT, D("0.4"), price=D(60_000), status=OrderStatus.CANCELED)
    sol = Order("s", "SOL/USDT", Side.BUY, OrderType.MARKET, D(166), status=OrderStatus.FILLED,
                filled_qty=D(166), ref_price=D(150))  # fmt: skip
    stats = metrics.execution_stats([btc, sol], [fill(1, Side.BUY, "166", "150.10", cid="s")])
    assert stats["order_fill_rate"] == 0.5  # 1 of 2 orders, not 166 / 166.4 = 99.76 %
    # notional at each order's own price: 166 x 150 / (0.4 x 60,000 + 166 x 150) = 24,900 / 48,900
    assert stats["notional_fill_rate"] == pytest.approx(24_900 / 48_900)
    assert "50.00 %" in metrics_text.format_report(metrics.report([], [], orders=[btc, sol], fills=[]))


def test_notional_rate_is_per_quote_currency_when_currencies_differ() -> None:
    usdt = Order("u", "BTC/USDT", Side.BUY, OrderType.LIMIT, D(1), price=D(100), status=OrderStatus.FILLED,
                 filled_qty=D(1))  # fmt: skip
    eur = Order("e", "BTC/EUR", Side.BUY, OrderType.LIMIT, D(2), price=D(90), status=OrderStatus.CANCELED,
                filled_qty=D(1))  # fmt: skip
    stats = metrics.execution_stats([usdt, eur], [])
    assert stats["notional_fill_rate"] is None  # USDT and EUR do not add up
    assert stats["notional_fill_rate_by_quote"] == {"USDT": 1.0, "EUR": 0.5}
    assert (stats["order_fill_rate"], stats["partially_filled_orders"]) == (0.5, 1)


# --- consecutive losses --------------------------------------------------------------------------


def _trades(*pnls: int) -> list[ClosedTrade]:
    return [
        ClosedTrade("BTC/USDT", Side.BUY, D(1), D(100), D(100 + p), T0, T0 + timedelta(minutes=i + 1), D(p), D(0))
        for i, p in enumerate(pnls)
    ]


@pytest.mark.parametrize(
    ("pnls", "longest", "current"),
    [
        ((-1, -1, -1, -1, -1, 5), 5, 0),  # the old flag stayed tripped on this window
        ((5, -1, -1), 2, 2),
        ((-1, -1, 0, -1), 2, 1),  # a breakeven ends the streak, as the breaker's `+1 if pnl < 0 else 0`
        ((), 0, 0),
    ],
)
def test_current_loss_streak_is_what_the_breaker_counts(pnls: tuple[int, ...], longest: int, current: int) -> None:
    stats = metrics.trade_stats(_trades(*pnls))
    assert (stats["longest_loss_streak"], stats["current_loss_streak"]) == (longest, current)


# --- fees ----------------------------------------------------------------------------------------


def test_total_fees_count_every_fill_and_agree_with_the_daily_summary() -> None:
    # A closed round trip (fees 25.02 + 25.02) and an open position (entry fee 25.00): the closed
    # trades hold 50.04, the account paid 75.04. Report and daily summary both say 75.04.
    fills = [
        fill(1, Side.BUY, "100", "250.20", "25.02"),
        fill(2, Side.SELL, "100", "250.20", "25.02"),
        fill(3, Side.BUY, "0.5", "50000", "25.00", symbol="BTC/USDT"),
    ]
    _, trades = book(fills)
    assert sum(t.fees for t in trades) == D("50.04")
    curve = [(T0, D(100_000)), (T0 + timedelta(hours=1), D("99924.96"))]
    rep = metrics.report(trades, curve, fills=fills)
    assert (rep["total_fees"], rep["fees_basis"]) == (75.04, "fills")
    assert metrics.report(trades, curve)["fees_basis"] == "closed trades"  # without fills it says so
    samples = [{"ts": ts, "equity": v, "cash": v, "unrealized": D(0), "realized": D(0), "drawdown": D(0)}
               for ts, v in curve]  # fmt: skip
    summary = build_daily_summary(DayData(samples=samples, fills=fills, trades=trades), date(2026, 1, 5))
    assert summary.fees == D("75.04") == D(repr(rep["total_fees"]))


# --- breakeven and a close's realised P&L --------------------------------------------------------


def test_a_true_breakeven_with_partial_fills_books_exactly_zero_and_is_neither_win_nor_loss() -> None:
    # Bought 1 @ 100 and 2 @ 101 (average 100.666..., not exact in Decimal), sold 1 @ 100 and 2 @ 101,
    # no fees: the trip made exactly 0. The average-cost sum used to give -1E-25, a "loss".
    fills = [fill(1, Side.BUY, "1", "100"), fill(2, Side.BUY, "2", "101"),
             fill(3, Side.SELL, "1", "100"), fill(4, Side.SELL, "2", "101")]  # fmt: skip
    _, trades = book(fills)
    assert len(trades) == 1 and trades[0].pnl == D(0) and str(trades[0].pnl) == "0"
    assert metrics.round_trip_pnl(fills) == 0
    stats = metrics.trade_stats(trades)
    assert (stats["wins"], stats["losses"], stats["breakeven"], stats["win_rate"]) == (0, 0, 1, 0.0)
    assert stats["current_loss_streak"] == 0


def test_a_close_realises_the_entry_fee_too() -> None:
    # Entry 100 SOL @ 150.00, fee 15.00; exit @ 149.50, fee 14.95. Gross -50; net -50 - 15 - 14.95 = -79.95.
    # The close fill alone realises -64.95 (its own fee only): close-all used to report that figure
    # while the report said -79.95 for the same trade.
    fills = [fill(1, Side.BUY, "100", "150.00", "15.00"), fill(2, Side.SELL, "100", "149.50", "14.95")]
    p = Portfolio(D(100_000))
    p.apply_fill(fills[0])
    close = p.apply_fill(fills[1])
    assert close.realized == D("-64.95")
    assert close.trade is not None and close.trade.pnl == D("-79.95")
    assert metrics.round_trip_pnl(fills) == D("-79.95")


def test_round_trip_pnl_partial_close_and_refusals() -> None:
    entry = [fill(1, Side.BUY, "2", "100", "0.2")]
    half = [fill(2, Side.SELL, "1", "101", "0.101")]
    # closed half: (101 - 100) x 1 - 0.2 / 2 - 0.101 = 0.799
    assert metrics.round_trip_pnl(entry + half) == D("0.799")
    short = [fill(1, Side.SELL, "1", "100", "0.1"), fill(2, Side.BUY, "1", "90", "0.09")]
    assert metrics.round_trip_pnl(short) == D("9.81")  # (100 - 90) - 0.1 - 0.09
    with pytest.raises(ValueError, match="flips"):
        metrics.round_trip_pnl([fill(1, Side.BUY, "1", "100"), fill(2, Side.SELL, "2", "100")])
    with pytest.raises(ValueError, match="one symbol"):
        metrics.round_trip_pnl([fill(1, Side.BUY, "1", "100"), fill(2, Side.SELL, "1", "100", symbol="BTC/USDT")])
    assert metrics.round_trip_pnl([]) == 0
