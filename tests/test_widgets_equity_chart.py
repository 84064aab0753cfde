"""The equity chart, driven with plain values (offscreen Qt): the throttled redraw, the drawdown fill
and text, daily P&L bars, the range buttons and following, downsampling, a bounded buffer, and
axes that show plain values and give way on a short chart.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QPushButton

from tests.chart_rig import T0, curve_xy, minutes
from widgets.equity_chart import EquityChart
from widgets.theme import current_palette

pytestmark = pytest.mark.gui


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
