"""The matching engine's fee models: what one fill is charged, in which asset, worth how much.

The "quote" model charges every fee in the quote asset; "binance_spot" charges a buy in the
base asset and a sell in the quote asset, as Binance spot does, or everything in BNB (at a 25%
discount, valued at BNB's mark) when BNB pays and the account holds enough BNB.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal

from engine.core.model import ZERO, Instrument, Side

FEE_QUANTUM = Decimal("0.00000001")
FEE_MODELS = ("quote", "binance_spot")
BNB = "BNB"
BNB_DISCOUNT = Decimal("0.75")  # Binance: fees paid in BNB cost 25% less
_ONE = Decimal(1)


def fee(notional: Decimal, rate: Decimal) -> Decimal:
    return (notional * rate).quantize(FEE_QUANTUM, rounding=ROUND_HALF_UP)


def charge(
    fee_model: str,
    bnb_pays: bool,
    inst: Instrument,
    side: Side,
    qty: Decimal,
    price: Decimal,
    rate: Decimal,
    mark: Callable[[str, str], Decimal | None],
    free: Mapping[str, Decimal],
) -> tuple[str, Decimal, Decimal]:
    """(asset charged, amount in that asset, value in the quote asset) for one fill.

    `mark(asset, quote)` values BNB in the quote asset; `free` is the account's free funds
    (BNB pays only while it covers the fee)."""
    quote_fee = fee(qty * price, rate)
    if fee_model == "quote":
        return inst.quote, quote_fee, quote_fee
    if bnb_pays and BNB not in (inst.base, inst.quote):
        bnb_price = mark(BNB, inst.quote)
        if bnb_price:
            bnb_fee = (qty * price * rate * BNB_DISCOUNT / bnb_price).quantize(FEE_QUANTUM, rounding=ROUND_HALF_UP)
            if 0 < bnb_fee <= free.get(BNB, ZERO):
                return BNB, bnb_fee, fee(bnb_fee * bnb_price, _ONE)
    if side is Side.BUY:
        base_fee = fee(qty, rate)
        return inst.base, base_fee, fee(base_fee * price, _ONE)
    return inst.quote, quote_fee, quote_fee
