"""The performance report: strict JSON with the headline numbers, sections and degenerate inputs,
and the text form aligned and readable.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from engine.analytics import metrics, metrics_text
from engine.core.model import OrderStatus, Side
from tests.metrics_rig import fill, hourly, order, trade

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
