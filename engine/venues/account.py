"""Account truth: holdings that predate the engine, read once from the venue's balances.

A real account holds coins or shares the engine never bought. They are a
baseline: shown apart, never traded or closed by the engine, never a position
mismatch. The engine's own position in a symbol is the venue's holding of the
base asset minus the baseline (fees paid in the base asset included, since the
venue took them from the engine's buys).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from engine.core.model import ZERO, Balance, Instrument


@dataclass(frozen=True, slots=True)
class HoldingsBaseline:
    """Per asset, what the account held (free + locked) when the engine first read it."""

    assets: dict[str, Decimal] = field(default_factory=dict)
    quote: str = ""
    cash: Decimal = ZERO  # the quote currency's total at that read, for reference (cash is never a baseline)

    def of_symbol(self, inst: Instrument) -> Decimal:
        return self.assets.get(inst.base, ZERO)

    def engine_quantity(self, inst: Instrument, venue_quantity: Decimal) -> Decimal:
        """The part of the venue's holding of inst.base that belongs to the engine."""
        return venue_quantity - self.of_symbol(inst)

    def by_symbol(self, instruments: Mapping[str, Instrument]) -> dict[str, Decimal]:
        return {s: self.assets[i.base] for s, i in instruments.items() if self.assets.get(i.base)}


def baseline_from_balances(balances: Mapping[str, Balance], quote: str,
                           engine_positions: Mapping[str, Decimal] | None = None,
                           instruments: Mapping[str, Instrument] | None = None) -> HoldingsBaseline:  # fmt: skip
    """The baseline from the first balances read: every non-zero asset but the quote currency.

    When the engine already holds positions (a journal restored after a restart)
    those quantities are the engine's, not the baseline's: pass them with the
    instruments and they are subtracted (never below zero).
    """
    assets = {a: b.total for a, b in balances.items() if a != quote and b.total != 0}
    for symbol, qty in (engine_positions or {}).items():
        inst = (instruments or {}).get(symbol)
        if inst is not None and inst.base in assets:
            left = assets[inst.base] - qty
            if left > 0:
                assets[inst.base] = left
            else:
                del assets[inst.base]
    cash = balances[quote].total if quote in balances else ZERO
    return HoldingsBaseline(assets, quote, cash)
