"""The price chart writes prices in the instrument's precision, like the tables beside it.

Seen on screen before: the positions table said 149.92 and the chart above it 149.9900.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from widgets.format import register_instrument
from widgets.price_chart import PriceChart


def test_title_levels_and_fills_use_the_instruments_tick_decimals(qtbot) -> None:  # type: ignore[no-untyped-def]
    register_instrument("SOL/USDT", price_decimals=2, qty_decimals=3)
    chart = PriceChart()
    qtbot.addWidget(chart)
    chart.set_symbol("SOL/USDT")
    t0 = datetime(2026, 2, 2, 9, tzinfo=UTC)
    for i in range(10):
        chart.append_price("SOL/USDT", t0 + timedelta(seconds=i), 149.9 + i / 100)
    chart.add_fill("SOL/USDT", t0, "buy", 150.1, 166.633)
    chart.set_levels("SOL/USDT", stop=149.0, take_profit=150.98, entry=150.1)
    chart.flush()
    title = chart.title_text()
    assert "last 149.99" in title and "149.9900" not in title
    assert "SL 149.00" in title and "TP 150.98" in title and "Entry 150.10" in title
    assert chart.stop_line.label.toPlainText() == "SL 149.00"
    assert chart.entry_line.label.toPlainText() == "Entry 150.10"
    tips = [str(p.data()) for p in chart.buy_scatter.points()]  # what hovering the fill marker shows
    assert len(tips) == 1 and tips[0].startswith("BUY 166.633 @ 150.10"), tips
