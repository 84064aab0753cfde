"""Execution quality: how many orders filled, how much of the money ordered filled, and slippage.

Pure functions over orders and fills. The two fill rates answer different questions and are
never mixed; neither ever adds quantities of different instruments (0.4 BTC and 166 SOL are not
166.4 of anything):

  | figure             | definition                                                           |
  |--------------------|----------------------------------------------------------------------|
  | order_fill_rate    | orders filled completely / orders that could fill. The testnet stage |
  |                    | criterion (min_fill_rate) reads this one.                            |
  | notional_fill_rate | filled notional / ordered notional, in the quote currency. Each      |
  |                    | order is valued at one price for both (its limit price, else the     |
  |                    | quote it was sized on, else its stop trigger, else its average fill  |
  |                    | price), so slippage does not move the rate. None when the orders     |
  |                    | are quoted in more than one currency (see the _by_quote dict).        |

"Orders that could fill" are entry orders that are finished and were not rejected: an order still
working has no outcome yet, and a rejected one never reached the book (rejections are counted
apart). An order partly filled and then cancelled counts as not filled in order_fill_rate and
with its filled share in notional_fill_rate. An order with no price to value it by is left out of
the notional rate and counted in `unpriced_orders`. Rates are None when there is nothing to measure.

Slippage is a signed fraction of the reference price, positive when adverse (paid more, or
received less, than expected). The reference is reference_prices[client_id], else the quote the
order was sized on (Order.ref_price), else a stop order's trigger; a limit order without one is
left out because its limit bounds the price.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from engine.core.model import Fill, Order, OrderStatus, OrderType, Side

ZERO = Decimal(0)


def quote_of(symbol: str) -> str:
    """The quote currency of a unified symbol ("BTC/USDT" -> "USDT"); "" when the symbol does not say
    (an Alpaca equity such as "SPY" is quoted in the account currency)."""
    return symbol.split("/", 1)[1] if "/" in symbol else ""


def _valuation_price(order: Order, refs: Mapping[str, Decimal | float]) -> Decimal | None:
    for candidate in (order.price, refs.get(order.client_id), order.ref_price, order.stop_price, order.avg_fill_price):
        if candidate is not None and Decimal(str(candidate)) > 0:
            return Decimal(str(candidate))
    return None


def fill_rates(
    orders: Sequence[Order], fills: Sequence[Fill], reference_prices: Mapping[str, Decimal | float] | None = None
) -> dict[str, Any]:
    """The two fill rates and their counts (see the module docstring for the definitions)."""
    refs = dict(reference_prices or {})
    filled_of: dict[str, Decimal] = {}
    for f in fills:
        filled_of[f.client_id] = filled_of.get(f.client_id, ZERO) + f.qty
    entries = [o for o in orders if o.role == "entry" and o.status.is_terminal and o.status is not OrderStatus.REJECTED]
    complete = partial = unpriced = 0
    ordered_by_quote: dict[str, Decimal] = {}
    filled_by_quote: dict[str, Decimal] = {}
    for o in entries:
        filled = min(o.qty, max(o.filled_qty, filled_of.get(o.client_id, ZERO)))
        if filled >= o.qty:
            complete += 1
        elif filled > 0:
            partial += 1
        price = _valuation_price(o, refs)
        if price is None:
            unpriced += 1
            continue
        quote = quote_of(o.symbol)
        ordered_by_quote[quote] = ordered_by_quote.get(quote, ZERO) + o.qty * price
        filled_by_quote[quote] = filled_by_quote.get(quote, ZERO) + filled * price
    by_quote = {q: float(filled_by_quote[q] / v) for q, v in ordered_by_quote.items() if v > 0}
    return {
        "orders": len(entries),
        "filled_orders": complete,
        "partially_filled_orders": partial,
        "rejected": sum(1 for o in orders if o.role == "entry" and o.status is OrderStatus.REJECTED),
        "order_fill_rate": complete / len(entries) if entries else None,
        "notional_fill_rate": next(iter(by_quote.values())) if len(by_quote) == 1 else None,
        "notional_fill_rate_by_quote": by_quote,
        "unpriced_orders": unpriced,
    }


def slippage(
    orders: Sequence[Order], fills: Sequence[Fill], reference_prices: Mapping[str, Decimal | float] | None = None
) -> list[float]:
    """One signed slippage sample per order that traded and has a reference price."""
    refs = dict(reference_prices or {})
    by_id: dict[str, list[Fill]] = {}
    for f in fills:
        by_id.setdefault(f.client_id, []).append(f)
    known = {o.client_id: o for o in orders}
    samples: list[float] = []
    for cid in dict.fromkeys([*known, *by_id]):
        order, own = known.get(cid), by_id.get(cid, [])
        ref = refs.get(cid)
        if ref is None and order is not None:
            ref = order.ref_price  # journaled with the order when it was sized
        if ref is None and order is not None and order.order_type is OrderType.STOP_MARKET:
            ref = order.stop_price
        qty = sum((f.qty for f in own), ZERO)
        if qty > 0:
            price = sum((f.qty * f.price for f in own), ZERO) / qty
            side = own[0].side
        elif order is not None and order.filled_qty > 0 and order.avg_fill_price is not None:
            price, side = order.avg_fill_price, order.side
        else:
            continue
        if ref is None or float(ref) <= 0:
            continue
        sign = 1.0 if side is Side.BUY else -1.0
        samples.append(sign * (float(price) - float(ref)) / float(ref))
    return samples


def execution_stats(
    orders: Sequence[Order], fills: Sequence[Fill], reference_prices: Mapping[str, Decimal | float] | None = None
) -> dict[str, Any]:
    """fill_rates() plus avg_slippage, max_slippage and slippage_samples."""
    slips = slippage(orders, fills, reference_prices)
    return {
        **fill_rates(orders, fills, reference_prices),
        "avg_slippage": sum(slips) / len(slips) if slips else None,
        "max_slippage": max(slips) if slips else None,
        "slippage_samples": len(slips),
    }
