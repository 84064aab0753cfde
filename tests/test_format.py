"""The one formatter: counts with plurals, fractions as percents, actual / limit, instrument precision."""

from __future__ import annotations

from decimal import Decimal

import pytest

from widgets import format as fmt
from widgets.equity_chart import axis_tick_strings


@pytest.mark.parametrize(
    ("count", "word", "text"),
    [
        (1, "order", "1 order"),
        (2, "order", "2 orders"),
        (0, "order", "0 orders"),
        (1, "position", "1 position"),
        (3, "position", "3 positions"),
        (1, "criterion", "1 criterion"),
        (4, "criterion", "4 criteria"),
        (2, "entry", "2 entries"),
        (2, "loss", "2 losses"),
        (1250, "fill", "1,250 fills"),
        (None, "order", "— orders"),
    ],
)
def test_counts_say_the_right_plural(count: object, word: str, text: str) -> None:
    assert fmt.fmt_count(count, word) == text


def test_fractions_read_as_percent_and_actual_over_limit() -> None:
    assert fmt.fmt_fraction_pct(0.0027) == "0.27%"
    assert fmt.fmt_fraction_pct(0.05) == "5.00%"
    assert fmt.fmt_fraction_pct(-0.0123, signed=True) == "−1.23%"
    assert fmt.fmt_actual_of_limit(0.0027, 0.05) == "0.27% / 5.00%"
    assert fmt.fmt_fraction_pct(float("nan")) == fmt.EMPTY


def test_prices_keep_their_instrument_precision_never_a_long_tail() -> None:
    fmt.register_instrument("BTC/USDT", price_decimals=fmt.decimals_of_step("0.01"), qty_decimals=5)
    assert fmt.fmt_instrument_price(60035.123456789, "BTC/USDT") == "60,035.12"
    assert fmt.fmt_instrument_price(Decimal("60035.1"), "BTC/USDT") == "60,035.10"
    assert fmt.fmt_instrument_qty(Decimal("0.01500000"), "BTC/USDT") == "0.015"
    # an unknown instrument: decimals from its magnitude, at most 8
    assert fmt.fmt_instrument_price(0.000012345678, "PEPE/USDT") == "0.00001235"
    assert fmt.decimals_of_step("1E-5") == 5 and fmt.decimals_of_step("1") == 0


def test_axis_ticks_have_separators_and_no_scaling_artefacts() -> None:
    assert axis_tick_strings([23000.0, 24000.0], 1000.0) == ["23,000", "24,000"]
    assert axis_tick_strings([-20.0, 0.0, 20.0], 10.0) == ["−20", "0", "20"]
    assert axis_tick_strings([0.5, 1.0], 0.5) == ["0.5", "1.0"]


def test_instruments_register_from_the_venues_tick_and_lot_sizes() -> None:
    class Ins:
        tick_size = Decimal("0.01")
        lot_size = Decimal("0.00001")

    assert fmt.register_instruments({"ETH/USDT": Ins()}) == 1
    assert fmt.fmt_price(3001.123456, symbol="ETH/USDT") == "3,001.12"
    assert fmt.fmt_instrument_qty(Decimal("8.330312345"), "ETH/USDT") == "8.33031"
