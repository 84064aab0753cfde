"""Equity chart, price chart and risk gauges, driven with plain values (offscreen Qt)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QPushButton

from engine.core.model import RuleValue
from widgets.equity_chart import EquityChart
from widgets.gauges import GaugePanel, RiskGauge, format_rule_value
from widgets.price_chart import PriceChart
from widgets.theme import current_palette

pytestmark = pytest.mark.gui

T0 = datetime(2025, 3, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]


def minutes(n: int) -> list[datetime]:
    return [T0 + timedelta(minutes=i) for i in range(n)]


def curve_xy(item) -> tuple[np.ndarray, np.ndarray]:
    x, y = item.getOriginalDataset()
    return (np.empty(0), np.empty(0)) if x is None else (x, y)


def x_span(chart: EquityChart) -> tuple[float, float]:
    lo, hi = chart.equity_plot.getViewBox().viewRange()[0]
    return lo, hi


# ---- equity chart -------------------------------------------------------------------------------


def test_appended_points_reach_the_curve_after_a_throttled_redraw(qtbot):
    chart = EquityChart()
    qtbot.addWidget(chart)
    stamps = minutes(50)
    for i, ts in enumerate(stamps):
        chart.append(ts, 1000.0 + i)
    # append() only buffers: nothing is drawn until the throttle timer fires
    assert len(curve_xy(chart.equity_item)[0]) == 0

    qtbot.waitUntil(lambda: len(curve_xy(chart.equity_item)[0]) == 50, timeout=3000)
    x, y = curve_xy(chart.equity_item)
    assert x[0] == stamps[0].timestamp() and x[-1] == stamps[-1].timestamp()
    assert list(y) == [1000.0 + i for i in range(50)]
    assert "1,049.00" in chart._stats.text()


def test_drawdown_fill_is_the_gap_between_running_peak_and_equity(qtbot):
    chart = EquityChart()
    qtbot.addWidget(chart)
    chart.show()
    qtbot.waitExposed(chart)
    chart.set_history(list(zip(minutes(5), [100.0, 110.0, 99.0, 105.0, 112.0], strict=True)))

    _, dd = chart.drawdown_data()
    assert list(dd) == [0.0, 0.0, 11.0, 5.0, 0.0]
    _, peak = curve_xy(chart.peak_item)
    assert list(peak) == [100.0, 110.0, 110.0, 110.0, 112.0]
    # the shaded area spans from the trough (99) up to the peak it fell from (110)
    box = chart.drawdown_fill.path().boundingRect()
    assert box.top() == pytest.approx(99.0) and box.bottom() == pytest.approx(112.0)
    assert chart.drawdown_fill.brush().color().alpha() < 255  # translucent over the equity line


def test_drawdown_fill_set_while_hidden_appears_when_shown(qtbot):
    chart = EquityChart()
    qtbot.addWidget(chart)
    chart.set_history(list(zip(minutes(3), [100.0, 120.0, 90.0], strict=True)))
    chart.show()
    qtbot.waitUntil(lambda: not chart.drawdown_fill.path().isEmpty(), timeout=3000)
    assert chart.drawdown_fill.path().boundingRect().top() == pytest.approx(90.0)


def test_drawdown_text_tells_the_operator_the_current_loss_from_peak(qtbot):
    chart = EquityChart()
    qtbot.addWidget(chart)
    chart.set_history(list(zip(minutes(3), [1000.0, 1200.0, 1140.0], strict=True)))
    text = chart._stats.text()
    assert "Peak 1,200.00" in text
    assert "Drawdown −60.00" in text and "5.00" in text


def test_daily_pnl_bars_one_per_day_coloured_by_sign(qtbot):
    chart = EquityChart()
    qtbot.addWidget(chart)
    days = [(date(2025, 3, d), v) for d, v in ((1, 120.0), (2, -80.0), (3, 0.0), (4, 40.0), (5, -10.0))]
    chart.set_daily_pnl(days)
    opts = chart.pnl_bars.opts
    assert len(opts["x"]) == 5
    assert list(opts["height"]) == [120.0, -80.0, 0.0, 40.0, -10.0]
    pal = current_palette()
    colours = [QColor(b.color()).name() for b in chart.pnl_bars._brushes]
    assert colours[0] == QColor(pal.green).name() and colours[1] == QColor(pal.red).name()
    # bars sit at noon UTC of their day, so each one is centred on its date
    assert opts["x"][0] == datetime(2025, 3, 1, 12, tzinfo=UTC).timestamp()

    chart.set_daily_pnl(days[:3])
    assert len(chart.pnl_bars.opts["x"]) == 3


def test_range_buttons_change_the_visible_window(qtbot):
    chart = EquityChart()
    qtbot.addWidget(chart)
    chart.resize(900, 500)
    chart.show()
    qtbot.waitExposed(chart)
    stamps = minutes(3 * 24 * 60)
    chart.set_history([(ts, 1000.0 + (i % 97)) for i, ts in enumerate(stamps)])
    last = stamps[-1].timestamp()
    buttons = {b.text(): b for b in chart.findChildren(QPushButton)}
    assert set(buttons) == {"1H", "1D", "1W", "1M", "All"}

    qtbot.mouseClick(buttons["1H"], Qt.MouseButton.LeftButton)
    lo, hi = x_span(chart)
    assert hi - lo == pytest.approx(3600 * 1.02, rel=0.01)
    assert lo < last < hi
    assert buttons["1H"].isChecked() and chart.current_range() == "1H"
    # the P&L plot below is linked: same time window
    assert chart.pnl_plot.getViewBox().viewRange()[0] == pytest.approx([lo, hi])

    qtbot.mouseClick(buttons["1D"], Qt.MouseButton.LeftButton)
    lo, hi = x_span(chart)
    assert hi - lo == pytest.approx(86400 * 1.02, rel=0.01)

    qtbot.mouseClick(buttons["All"], Qt.MouseButton.LeftButton)
    lo, hi = x_span(chart)
    assert lo <= stamps[0].timestamp() and hi >= last
    assert not buttons["1D"].isChecked()


def test_panning_by_hand_stops_following(qtbot):
    chart = EquityChart()
    qtbot.addWidget(chart)
    chart.set_history([(ts, 1000.0) for ts in minutes(600)])
    chart.set_range("1H")
    vb = chart.equity_plot.getViewBox()
    vb.setXRange(T0.timestamp(), T0.timestamp() + 1800, padding=0)
    vb.sigRangeChangedManually.emit([True, False])  # what a mouse drag or wheel on the plot emits
    assert chart.current_range() is None
    assert not any(b.isChecked() for b in chart.findChildren(QPushButton))
    chart.append(T0 + timedelta(hours=20), 1001.0)
    chart.flush()
    assert x_span(chart) == pytest.approx((T0.timestamp(), T0.timestamp() + 1800))


def test_windowed_range_follows_new_points(qtbot):
    chart = EquityChart()
    qtbot.addWidget(chart)
    chart.set_history([(ts, 1000.0) for ts in minutes(120)])
    chart.set_range("1H")
    newest = T0 + timedelta(hours=5)
    chart.append(newest, 1010.0)
    qtbot.waitUntil(lambda: x_span(chart)[1] >= newest.timestamp(), timeout=3000)
    assert x_span(chart)[0] == pytest.approx(newest.timestamp() - 3600)


def test_unknown_range_name_is_refused(qtbot):
    chart = EquityChart()
    qtbot.addWidget(chart)
    with pytest.raises(ValueError, match="1Y"):
        chart.set_range("1Y")


def test_large_curve_is_downsampled_and_clipped(qtbot):
    chart = EquityChart()
    qtbot.addWidget(chart)
    chart.resize(800, 400)
    chart.show()
    qtbot.waitExposed(chart)
    n = 100_000
    stamps = [T0 + timedelta(seconds=10 * i) for i in range(n)]
    values = 1000.0 + np.cumsum(np.random.default_rng(1).normal(0, 1, n))
    chart.set_history(list(zip(stamps, values.tolist(), strict=True)))
    chart.set_range("1D")
    assert chart.equity_item.opts["autoDownsample"] and chart.equity_item.opts["downsampleMethod"] == "peak"
    assert chart.equity_item.opts["clipToView"]
    qtbot.waitUntil(lambda: chart.equity_item.getData()[0] is not None, timeout=3000)
    drawn = len(chart.equity_item.getData()[0])
    assert drawn < n // 10  # only the visible day, thinned to the pixel width
    assert len(curve_xy(chart.equity_item)[0]) == n  # while the full history is kept


def test_equity_buffer_is_bounded_and_keeps_the_newest_points(qtbot):
    chart = EquityChart(max_points=100)
    qtbot.addWidget(chart)
    for i, ts in enumerate(minutes(250)):
        chart.append(ts, float(i))
    chart.flush()
    x, y = chart.equity_data()
    assert 75 <= len(x) <= 100
    assert y[-1] == 249.0 and np.all(np.diff(x) > 0)


def test_out_of_order_point_is_ignored(qtbot):
    chart = EquityChart()
    qtbot.addWidget(chart)
    chart.append(T0 + timedelta(minutes=5), 10.0)
    chart.append(T0, 11.0)
    chart.flush()
    assert list(chart.equity_data()[1]) == [10.0]


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


# ---- gauges -------------------------------------------------------------------------------------


def rule(value: float, limit: float = 0.05, unit: str = "%", warn_at: float = 0.8, **kw) -> RuleValue:
    return RuleValue(
        name=kw.get("name", "daily_loss"),
        label=kw.get("label", "Daily loss"),
        value=value,
        limit=limit,
        unit=unit,
        description=kw.get("description", "Loss since 00:00 UTC as a share of equity; at the limit, halt."),
        warn_at=warn_at,
    )


@pytest.mark.parametrize(
    ("value", "expected", "word"),
    [
        (0.012, "ok", "OK"),
        (0.039, "ok", "OK"),
        (0.04, "warn", "WARN"),  # exactly warn_at (0.04 / 0.05 is 0.7999… in floats)
        (0.049, "warn", "WARN"),
        (0.05, "limit", "LIMIT"),
        (0.07, "limit", "LIMIT"),
    ],
)
def test_gauge_state_by_utilisation(qtbot, value, expected, word):
    gauge = RiskGauge(rule(value))
    qtbot.addWidget(gauge)
    assert gauge.state() == expected
    assert gauge.state_word() == word
    pal = current_palette()
    assert (
        gauge.colour().name()
        == QColor({"ok": pal.green, "warn": pal.amber, "limit": pal.red}[expected]).name()
    )


def test_gauge_respects_the_rules_own_warn_level(qtbot):
    gauge = RiskGauge(rule(0.031, warn_at=0.6))
    qtbot.addWidget(gauge)
    assert gauge.state() == "warn"
    gauge.set_rule(rule(0.029, warn_at=0.6))
    assert gauge.state() == "ok"


def test_gauge_text_and_tooltip_explain_the_limit(qtbot):
    gauge = RiskGauge(rule(0.012))
    qtbot.addWidget(gauge)
    assert gauge.value_text() == "1.20% / 5.00%"
    tip = gauge.toolTip()
    assert "Daily loss" in tip and "at the limit, halt" in tip
    assert "5.00%" in tip and "4.00%" in tip  # the limit and where amber starts
    assert "24% used" in tip  # the share of the limit used is a detail, on hover only
    assert "Daily loss" in gauge.accessibleName() and "OK" in gauge.accessibleName()


def test_gauge_reads_actual_over_limit_not_the_share_used(qtbot):
    # 0.27% lost against a 5% limit is 5% of the limit used: the gauge says 0.27%, not 5%
    gauge = RiskGauge(rule(0.0027))
    qtbot.addWidget(gauge)
    assert gauge.value_text() == "0.27% / 5.00%"
    assert gauge.accessibleName() == "Daily loss: 0.27% / 5.00%, OK"


def test_gauge_panel_puts_as_many_columns_as_fit(qtbot):
    panel = GaugePanel(columns=3)
    qtbot.addWidget(panel)
    panel.set_rules([rule(0.01, name=f"r{i}", label=f"Rule {i}") for i in range(5)])
    panel.resize(200, 600)
    panel.show()
    assert panel.columns() == 1
    panel.resize(400, 600)
    assert panel.columns() == 2
    panel.resize(1200, 600)
    assert panel.columns() == 3


def test_gauge_value_formatting_by_unit():
    assert format_rule_value(0.012, "%") == "1.20%"
    assert format_rule_value(0.0004, "%") == "0.04%"
    assert format_rule_value(3, "") == "3"
    assert format_rule_value(1234.5, "") == "1,234.50"
    assert format_rule_value(2.4, "/s") == "2.4/s"
    assert format_rule_value(45_250.5, "USDT") == "45,250.50 USDT"
    assert format_rule_value(45_250.5, "USDT", compact=True) == "45.3k USDT"


def test_gauge_without_a_limit_is_off_not_alarming(qtbot):
    gauge = RiskGauge(rule(3, limit=0, unit=""))
    qtbot.addWidget(gauge)
    assert gauge.state() == "ok" and gauge.state_word() == "OFF"
    assert gauge.value_text() == "3 / no limit"


def _count_near(img: QImage, colour: QColor, tol: int = 30) -> int:
    img = img.convertToFormat(QImage.Format.Format_RGB32)
    arr = np.frombuffer(img.constBits(), dtype=np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    b, g, r = (arr[..., i].astype(int) for i in range(3))
    near = (abs(r - colour.red()) < tol) & (abs(g - colour.green()) < tol) & (abs(b - colour.blue()) < tol)
    return int(near.sum())


def test_gauge_paints_its_state_colour(qtbot):
    red = QColor(current_palette().red)
    at_limit = RiskGauge(rule(0.06))
    calm = RiskGauge(rule(0.005))
    for g in (at_limit, calm):
        qtbot.addWidget(g)
        g.resize(180, 165)
    assert _count_near(at_limit.grab().toImage(), red) > 200
    assert _count_near(calm.grab().toImage(), red) == 0


def test_gauge_panel_updates_gauges_in_place(qtbot):
    panel = GaugePanel(columns=2)
    qtbot.addWidget(panel)
    panel.set_rules(
        [rule(0.01, name="daily_loss"), rule(2, limit=5, unit="", name="positions", label="Positions")]
    )
    first = panel.gauge("daily_loss")
    second = panel.gauge("positions")
    assert first is not None and second is not None

    panel.set_rules(
        [
            rule(0.045, name="daily_loss"),
            rule(5, limit=5, unit="", name="positions", label="Positions"),
            rule(1.0, limit=10, unit="/s", name="order_rate", label="Order rate"),
        ]
    )
    assert panel.gauge("daily_loss") is first and panel.gauge("positions") is second
    assert panel.names() == ["daily_loss", "positions", "order_rate"]
    assert len(panel.findChildren(RiskGauge)) == 3
    assert first.state() == "warn" and second.state() == "limit"
    assert panel.worst_state() == "limit"


# ---- demo ---------------------------------------------------------------------------------------


def test_demo_renders_a_png(tmp_path):
    out = tmp_path / "charts.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(
        [sys.executable, "-m", "widgets.demo_charts", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    img = QImage(str(out))
    assert img.width() >= 1000 and img.height() >= 600


def test_axes_show_plain_values_without_si_scaling(qtbot):
    # P&L in the thousands used to read "Daily P&L (x0.001)" with ticks "23.000 24.000"
    chart = EquityChart()
    qtbot.addWidget(chart)
    chart.resize(700, 400)
    chart.show()
    chart.set_daily_pnl([(date(2026, 1, d), 21_000.0 + 1_000 * d) for d in range(1, 6)])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(50):
        chart.append(start + timedelta(hours=i), 1_000_000.0 + 500 * i)
    chart.flush()
    qtbot.wait(50)
    for plot in (chart.equity_plot, chart.pnl_plot):
        axis = plot.getAxis("left")
        assert "(x" not in axis.labelString() and axis.autoSIPrefixScale == 1.0
    ticks = chart.pnl_plot.getAxis("left").tickStrings([23_000.0, 24_000.0], 1.0, 1_000.0)
    assert ticks == ["23,000", "24,000"]


def test_axis_titles_give_way_on_a_short_chart(qtbot):
    chart = EquityChart()
    qtbot.addWidget(chart)
    chart.resize(600, 160)  # a 720p screen: the two vertical titles would run into each other
    chart.show()
    qtbot.waitUntil(lambda: not chart.equity_plot.getAxis("left").label.isVisible())
    chart.resize(600, 700)
    qtbot.waitUntil(lambda: chart.equity_plot.getAxis("left").label.isVisible())
    assert chart.pnl_plot.getAxis("left").label.isVisible()
