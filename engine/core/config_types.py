"""The value types every config section is built from, defined once.

NaN and infinity are refused everywhere (as TOML floats and as "nan" / "inf" strings): a
NaN compares false with every limit, so `stale_data_s = nan` or `max_orders_per_second = inf`
would silently switch a safety check off. Every section derives from `Section`, whose
`allow_inf_nan=False` covers each float it holds, nested lists included; the annotated
types below carry the same rule so they stay finite wherever they are used.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

FINITE_RULE = "is not a finite number (NaN and infinity would switch the check off)"


class Section(BaseModel):
    """A config table: unknown keys refused, assignments validated, numbers finite."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class FrozenSection(BaseModel):
    """A table read once at start (venue settings): replaced whole, never edited in place."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
FiniteDecimal = Annotated[Decimal, Field(allow_inf_nan=False)]


def _fraction(v: float) -> float:
    if not 0 < v < 1:
        raise ValueError("is not a fraction between 0 and 1")
    return v


def _fraction_or_zero(v: float) -> float:
    if not 0 <= v < 1:
        raise ValueError("is not a fraction between 0 (off) and 1")
    return v


def _positive(v: float) -> float:
    if v <= 0:
        raise ValueError("must be greater than 0")
    return v


def _non_negative(v: float) -> float:
    if v < 0:
        raise ValueError("must not be negative")
    return v


def _positive_int(v: int) -> int:
    if v < 1:
        raise ValueError("must be a whole number of at least 1")
    return v


Fraction = Annotated[FiniteFloat, AfterValidator(_fraction)]
FractionOrZero = Annotated[FiniteFloat, AfterValidator(_fraction_or_zero)]
Positive = Annotated[FiniteFloat, AfterValidator(_positive)]
NonNegative = Annotated[FiniteFloat, AfterValidator(_non_negative)]
PositiveInt = Annotated[int, AfterValidator(_positive_int)]
NonNegativeInt = Annotated[int, AfterValidator(_non_negative)]

# Symbols: refused rather than normalised, so what the operator wrote is what trades.
_PAIR = re.compile(r"[A-Z0-9]+/[A-Z0-9]+")
_TICKER = re.compile(r"[A-Z0-9][A-Z0-9.]*(/[A-Z0-9]+)?")


def _expected_pair(v: str) -> str:
    if "/" in v:
        return v.strip().upper()
    return "BASE/QUOTE, e.g. BTC/USDT"


def _pair(v: str) -> str:
    if not _PAIR.fullmatch(v):
        raise ValueError(f"is not a symbol as the venue lists it (expected {_expected_pair(v)!r}, upper case)")
    return v


def _ticker(v: str) -> str:
    if not _TICKER.fullmatch(v):
        expected = v.strip().upper() if _TICKER.fullmatch(v.strip().upper()) else "AAPL or BTC/USD"
        raise ValueError(f"is not a symbol as the venue lists it (expected {expected!r}, upper case)")
    return v


def _distinct(v: list[str]) -> list[str]:
    seen = [s for i, s in enumerate(v) if s in v[:i]]
    if seen:
        raise ValueError(f"lists {seen[0]!r} twice")
    return v


def _not_empty(v: list[str]) -> list[str]:
    if not v:
        raise ValueError("is empty: list at least one symbol")
    return v


PairSymbol = Annotated[str, AfterValidator(_pair)]  # a crypto pair: BTC/USDT
TickerSymbol = Annotated[str, AfterValidator(_ticker)]  # a stock (AAPL, BRK.B) or a pair (BTC/USD)
PairList = Annotated[list[PairSymbol], AfterValidator(_distinct), AfterValidator(_not_empty)]
TickerList = Annotated[list[TickerSymbol], AfterValidator(_distinct), AfterValidator(_not_empty)]
AllowList = Annotated[list[TickerSymbol], AfterValidator(_distinct)]  # empty: every symbol
