"""Number, money, percent and time formatting for an operator reading at a glance.

Signed figures always carry an explicit sign (+ or the true minus "−", U+2212,
which is as wide as "+" and cannot be mistaken for a dash), so meaning never
depends on colour alone. Values may be Decimal, int, float, str or None;
None (or anything unparseable) formats as an em dash.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

MINUS = "−"
EMPTY = "—"
ARROW_UP = "▲"
ARROW_DOWN = "▼"

Number = Decimal | int | float


def to_decimal(value: object) -> Decimal | None:
    """Best-effort conversion; None for missing, NaN/inf or unparseable values."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    try:
        d = Decimal(str(value).strip().replace(",", "").replace(MINUS, "-"))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def to_float(value: object) -> float | None:
    d = to_decimal(value)
    return None if d is None else float(d)


def _group(d: Decimal, decimals: int) -> str:
    """Absolute value with thousands separators and a fixed number of decimals."""
    return f"{abs(d):,.{decimals}f}"


def _signed(text: str, negative: bool, zero: bool, signed: bool) -> str:
    if negative and not zero:
        return MINUS + text
    if signed and not zero:
        return "+" + text
    return text


def fmt_money(value: object, *, signed: bool = False, decimals: int = 2, currency: str = "") -> str:
    """`1234.5` -> "1,234.50"; signed: "+1,234.50" / "−1,234.50"; currency appended ("… USDT")."""
    d = to_decimal(value)
    if d is None:
        return EMPTY
    q = round(d, decimals)
    text = _signed(_group(q, decimals), q < 0, q == 0, signed)
    return f"{text} {currency}" if currency else text


def fmt_pct(value: object, *, signed: bool = True, decimals: int = 2) -> str:
    """Percent given in percent units: `1.234` -> "+1.23 %"."""
    d = to_decimal(value)
    if d is None:
        return EMPTY
    q = round(d, decimals)
    return _signed(f"{abs(q):,.{decimals}f}", q < 0, q == 0, signed) + " %"


def _trim(text: str) -> str:
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def fmt_qty(value: object, *, signed: bool = False, max_decimals: int = 8) -> str:
    """Quantities keep their meaningful decimals only: 0.01500000 -> "0.015", 1200 -> "1,200"."""
    d = to_decimal(value)
    if d is None:
        return EMPTY
    q = round(d, max_decimals)
    return _signed(_trim(_group(q, max_decimals)), q < 0, q == 0, signed)


def price_decimals(value: Decimal) -> int:
    """Decimals a price needs to be readable: big prices 2, sub-unit prices more significant digits."""
    a = abs(value)
    if a == 0 or a >= 1000:
        return 2
    if a >= 1:
        return 4
    # keep ~5 significant digits for tiny prices (0.00001234)
    return min(10, max(4, -a.adjusted() + 4))


def fmt_price(value: object, *, decimals: int | None = None, symbol: str | None = None) -> str:
    """Decimal prices keep their own precision (tick-size aware); floats get magnitude-based decimals.

    With `symbol`, a registered instrument's tick decimals win (see register_instrument)."""
    d = to_decimal(value)
    if d is None:
        return EMPTY
    if decimals is None and symbol is not None:
        decimals = _PRICE_DECIMALS.get(symbol)
    if decimals is None:
        decimals = price_decimals(d)
        exp = d.as_tuple().exponent
        if isinstance(value, Decimal) and isinstance(exp, int) and -10 <= exp < 0:
            # a venue Decimal carries its tick precision; long computed ones (averages) do not
            decimals = max(2, -exp)
    q = round(d, decimals)
    return _signed(_group(q, decimals), q < 0, q == 0, False)


def arrow(value: object) -> str:
    """▲ for positive, ▼ for negative, "" otherwise: a shape cue for colour-blind readers."""
    d = to_decimal(value)
    if d is None or d == 0:
        return ""
    return ARROW_UP if d > 0 else ARROW_DOWN


def as_utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def fmt_time(ts: object, *, with_date: bool = False) -> str:
    """UTC wall time "14:03:27" (datetimes; epoch seconds also accepted)."""
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        ts = datetime.fromtimestamp(ts, UTC)
    if not isinstance(ts, datetime):
        return EMPTY
    ts = as_utc(ts)
    return ts.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def fmt_timestamp_full(ts: object) -> str:
    """For tooltips: the full ISO stamp with its zone."""
    if not isinstance(ts, datetime):
        return ""
    return as_utc(ts).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def fmt_duration(seconds: object) -> str:
    """Compact age: "42s", "3m 05s", "2h 07m", "3d 04h"."""
    d = to_float(seconds)
    if d is None:
        return EMPTY
    s = max(0, int(d))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def age_seconds(value: object, now: datetime) -> float | None:
    """An age column holds either a start datetime or a number of seconds."""
    if isinstance(value, datetime):
        return (as_utc(now) - as_utc(value)).total_seconds()
    return to_float(value)


def fmt_latency(ms: object) -> str:
    d = to_float(ms)
    if d is None:
        return EMPTY
    return f"{d:,.0f} ms" if d >= 10 else f"{d:.1f} ms"


def fmt_seconds(s: object) -> str:
    d = to_float(s)
    if d is None:
        return EMPTY
    return f"{d:.1f} s" if d < 100 else fmt_duration(d)


# ---- counts, fractions and instrument precision -------------------------------------------------

_IRREGULAR_PLURALS = {"criterion": "criteria", "day": "days", "entry": "entries", "reply": "replies"}


def plural(word: str, count: int) -> str:
    """The word in the form the count asks for: plural("order", 1) -> "order", plural("order", 2) -> "orders"."""
    if count == 1:
        return word
    if word in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[word]
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u"):
        return word[:-1] + "ies"
    return word + "s"


def fmt_count(count: object, word: str, plural_form: str | None = None) -> str:
    """ "1 order", "2 orders", "0 positions", "1,250 fills"; a missing count reads "— orders"."""
    d = to_decimal(count)
    if d is None:
        return f"{EMPTY} {plural_form or plural(word, 2)}"
    n = int(d)
    form = word if n == 1 else (plural_form or plural(word, n))
    return f"{n:,} {form}"


def fmt_fraction_pct(value: object, *, decimals: int = 2, signed: bool = False) -> str:
    """A fraction shown as a percent, the way limits are written: 0.0027 -> "0.27%", 0.05 -> "5.00%"."""
    d = to_decimal(value)
    if d is None:
        return EMPTY
    q = round(d * 100, decimals)
    return _signed(f"{abs(q):,.{decimals}f}", q < 0, q == 0, signed) + "%"


def fmt_actual_of_limit(actual: object, limit: object, *, decimals: int = 2) -> str:
    """How close to a limit, at a glance: "0.27% / 5.00%" (both fractions)."""
    return f"{fmt_fraction_pct(actual, decimals=decimals)} / {fmt_fraction_pct(limit, decimals=decimals)}"


# Decimals of each instrument's price and quantity, as the venue lists them (tick and step size).
# Registered once the venue's markets are known; a symbol not registered falls back to magnitude.
_PRICE_DECIMALS: dict[str, int] = {}
_QTY_DECIMALS: dict[str, int] = {}


def decimals_of_step(step: object) -> int:
    """Decimals a tick or step size implies: 0.01 -> 2, 0.00001 -> 5, 1 -> 0."""
    d = to_decimal(step)
    if d is None or d <= 0:
        return 2
    exp = d.normalize().as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 2


def register_instrument(symbol: str, *, price_decimals: int | None = None, qty_decimals: int | None = None) -> None:
    if price_decimals is not None:
        _PRICE_DECIMALS[symbol] = max(0, min(10, int(price_decimals)))
    if qty_decimals is not None:
        _QTY_DECIMALS[symbol] = max(0, min(10, int(qty_decimals)))


def instrument_price_decimals(symbol: str | None) -> int | None:
    return _PRICE_DECIMALS.get(symbol) if symbol else None


def fmt_instrument_price(value: object, symbol: str | None) -> str:
    """A price with its instrument's precision ("60,035.12" for BTC/USDT), magnitude-based otherwise."""
    decimals = instrument_price_decimals(symbol)
    if decimals is None:
        d = to_decimal(value)
        decimals = None if d is None else max(2, min(price_decimals(d), 8))
    return fmt_price(value, decimals=decimals)


def fmt_instrument_qty(value: object, symbol: str | None, *, signed: bool = False) -> str:
    """A quantity with at most its instrument's step decimals ("0.015 BTC" never "0.01500000")."""
    decimals = _QTY_DECIMALS.get(symbol or "", 8)
    return fmt_qty(value, signed=signed, max_decimals=decimals)


def register_instruments(instruments: Mapping[str, Any]) -> int:
    """Register every instrument a venue lists (objects with tick_size and lot_size); returns how many."""
    for symbol, ins in instruments.items():
        tick, lot = getattr(ins, "tick_size", None), getattr(ins, "lot_size", None)
        register_instrument(symbol, price_decimals=None if tick is None else decimals_of_step(tick),
                            qty_decimals=None if lot is None else decimals_of_step(lot))  # fmt: skip
    return len(instruments)
