"""Trade statistics against hand-computed figures (the arithmetic next to each expectation): win
rate, profit factor when there are no winners or no losers, breakeven trades, streaks by close
time, and the split per symbol, tag and strategy.
"""

from __future__ import annotations

import pytest

from engine.analytics import metrics
from tests.metrics_rig import trade

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
