"""The price chart draws a stop line only where a stop really rests or is watched (issue 13)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from widgets.price_chart import PriceChart

pytestmark = pytest.mark.gui


@pytest.fixture
def chart(qtbot) -> PriceChart:
    c = PriceChart()
    qtbot.addWidget(c)
    c.resize(700, 400)
    c.show()
    c.set_symbol("BTC/USDT")
    c.append_price("BTC/USDT", datetime(2025, 3, 14, 15, 30, tzinfo=UTC), 60_000.0)
    return c


@pytest.mark.parametrize(("status", "drawn", "words"), [
    ("venue", True, "(at venue)"),
    ("watched", True, "(watched)"),
    ("unprotected", False, ""),
    ("none", False, ""),
])  # fmt: skip
def test_stop_line_only_when_it_is_real(chart: PriceChart, status: str, drawn: bool, words: str) -> None:
    chart.set_levels("BTC/USDT", 58_000.0, 61_500.0, 60_050.0, stop_status=status)
    chart.flush()
    assert chart.stop_line.isVisible() is drawn
    assert (chart.levels().stop is not None) is drawn
    if drawn:
        assert words in chart.stop_line.label.format and words in chart.title_text()
    else:
        assert "SL" not in chart.title_text()
    assert chart.take_profit_line.isVisible()  # the other levels are unaffected


def test_without_a_status_the_given_stop_is_drawn_as_before(chart: PriceChart) -> None:
    chart.set_levels("BTC/USDT", 58_000.0, None, 60_050.0)
    chart.flush()
    assert chart.stop_line.isVisible() and chart.levels().stop == 58_000.0
