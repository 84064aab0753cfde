"""The price chart, driven with plain values (offscreen Qt): a bounded history per symbol, fills as
buy and sell markers for the selected symbol only, and the stop, take-profit and entry lines.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtCore import Qt

from tests.chart_rig import curve_xy, minutes
from widgets.price_chart import PriceChart

pytestmark = pytest.mark.gui


# ---- price chart --------------------------------------------------------------------------------


def test_prices_are_buffered_per_symbol_and_switching_shows_that_history(qtbot):
    chart = PriceChart()
    qtbot.addWidget(chart)
    chart.set_symbol("BTC/USDT")
    for i, ts in enumerate(minutes(30)):
        chart.append_price("BTC/USDT", ts, 60_000.0 + i)
        chart.append_price("ETH/USDT", ts, 3_000.0 + i)
    qtbot.waitUntil(lambda: len(curve_xy(chart.price_item)[0]) == 30, timeout=3000)
    assert curve_xy(chart.price_item)[1][-1] == 60_029.0
    assert "BTC/USDT" in chart.title_text() and "60,029.00" in chart.title_text()

    chart.set_symbol("ETH/USDT")
    x, y = curve_xy(chart.price_item)
    assert len(x) == 30 and y[0] == 3_000.0 and y[-1] == 3_029.0
    assert "ETH/USDT" in chart.title_text()


def test_price_buffer_per_symbol_is_bounded(qtbot):
    chart = PriceChart(max_points=100)
    qtbot.addWidget(chart)
    for i, ts in enumerate(minutes(250)):
        chart.append_price("SOL/USDT", ts, float(i))
    x, y = chart.price_data("SOL/USDT")
    assert len(x) == 100 and y[0] == 150.0 and y[-1] == 249.0


def test_fills_show_as_buy_and_sell_markers_for_the_selected_symbol_only(qtbot):
    chart = PriceChart()
    qtbot.addWidget(chart)
    chart.set_symbol("BTC/USDT")
    ts = minutes(3)
    chart.add_fill("BTC/USDT", ts[0], "buy", 60_000.0, 0.5)
    chart.add_fill("BTC/USDT", ts[1], "sell", 60_500.0, 0.25)
    chart.add_fill("BTC/USDT", ts[2], "BUY", 60_100.0, 0.1)
    chart.add_fill("ETH/USDT", ts[0], "sell", 3_000.0, 1.0)
    chart.flush()

    bx, by = chart.buy_scatter.getData()
    _, sy = chart.sell_scatter.getData()
    assert list(by) == [60_000.0, 60_100.0] and list(bx) == [ts[0].timestamp(), ts[2].timestamp()]
    assert list(sy) == [60_500.0]
    assert chart.buy_scatter.opts["symbol"] == "t1" and chart.sell_scatter.opts["symbol"] == "t"  # ▲ / ▼
    tips = [p.data() for p in chart.sell_scatter.points()]
    assert tips[0].startswith("SELL 0.25 @ 60,500.00")

    chart.set_symbol("ETH/USDT")
    assert len(chart.buy_scatter.getData()[0]) == 0 and list(chart.sell_scatter.getData()[1]) == [3_000.0]

    with pytest.raises(ValueError):
        chart.add_fill("BTC/USDT", ts[0], "long", 1.0, 1.0)


def test_stop_take_profit_and_entry_lines_are_placed_and_labelled(qtbot):
    chart = PriceChart()
    qtbot.addWidget(chart)
    chart.resize(700, 400)
    chart.show()
    qtbot.waitExposed(chart)
    chart.set_symbol("BTC/USDT")
    for i, ts in enumerate(minutes(20)):
        chart.append_price("BTC/USDT", ts, 60_000.0 + 10 * i)
    chart.set_levels("BTC/USDT", stop=58_000.0, take_profit=61_500.0, entry=60_050.0)
    chart.flush()

    assert chart.stop_line.isVisible() and chart.stop_line.value() == 58_000.0
    assert chart.take_profit_line.value() == 61_500.0 and chart.entry_line.value() == 60_050.0
    assert chart.stop_line.label.toPlainText() == "SL 58,000.00"
    assert chart.take_profit_line.label.toPlainText() == "TP 61,500.00"
    assert chart.entry_line.label.toPlainText().startswith("Entry 60,050")
    assert chart.stop_line.pen.style() == Qt.PenStyle.DashLine
    # the stop is far below the prices, yet auto-range keeps it on screen
    qtbot.waitUntil(lambda: chart.plot.getViewBox().viewRange()[1][0] <= 58_000.0, timeout=3000)

    chart.set_levels("BTC/USDT", stop=None, take_profit=None, entry=60_050.0)
    chart.flush()
    assert not chart.stop_line.isVisible() and not chart.take_profit_line.isVisible()
    assert chart.entry_line.isVisible()

    # levels belong to their symbol
    chart.set_symbol("ETH/USDT")
    assert not chart.entry_line.isVisible()
