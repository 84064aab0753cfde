"""ccxt's unified structures (markets, orders, trades, tickers, errors) turned into engine values.

Pure functions; ccxt itself is imported only inside `map_error`, so importing
this module costs nothing until the ccxt venue is actually used.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from engine.core.model import ZERO, Fill, Instrument, Liquidity, MarketTick, Order, OrderStatus, OrderType, Side
from engine.venues.base import (
    AuthenticationFailed,
    OrderNotFound,
    OrderRejected,
    TransientVenueError,
    VenueError,
)

_STATUS = {
    "open": OrderStatus.OPEN,
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "rejected": OrderStatus.REJECTED,
    "expired": OrderStatus.EXPIRED,
}


def dec(value: Any, default: Decimal = ZERO) -> Decimal:
    """ccxt hands numbers over as floats (or strings); str() keeps 0.01 from growing binary noise."""
    if value is None or value == "":
        return default
    return value if isinstance(value, Decimal) else Decimal(str(value)).normalize()


def ts_of(ms: Any, fallback: datetime) -> datetime:
    return fallback if ms is None else datetime.fromtimestamp(int(ms) / 1000, UTC)


def instrument(market: Mapping[str, Any], venue: str) -> Instrument:
    precision, limits = market.get("precision") or {}, market.get("limits") or {}
    tick = dec(precision.get("price"), Decimal("0.00000001"))
    lot = dec(precision.get("amount"), Decimal("0.00000001"))
    return Instrument(
        symbol=market["symbol"],
        base=market["base"],
        quote=market["quote"],
        tick_size=tick,
        lot_size=lot,
        min_qty=dec((limits.get("amount") or {}).get("min"), lot),
        min_notional=dec((limits.get("cost") or {}).get("min")),
        venue=venue,
    )


def order_status(raw: Mapping[str, Any]) -> OrderStatus:
    status = _STATUS.get(str(raw.get("status")), OrderStatus.OPEN)
    filled = dec(raw.get("filled"))
    if status is OrderStatus.OPEN and filled > 0:
        return OrderStatus.PARTIALLY_FILLED
    return status


def order_type(raw: Mapping[str, Any]) -> OrderType:
    kind = str(raw.get("type") or "").lower()
    if raw.get("triggerPrice") or raw.get("stopPrice") or kind.startswith("stop"):
        return OrderType.STOP_MARKET
    return OrderType.LIMIT if kind == "limit" else OrderType.MARKET


def order(raw: Mapping[str, Any], now: datetime, known: Order | None = None) -> Order:
    """A ccxt order as an engine Order; what the venue does not say is kept from `known`."""
    filled = dec(raw.get("filled"))
    average = raw.get("average")
    if average is None and filled > 0 and raw.get("cost"):
        average = dec(raw["cost"]) / filled
    base = known or Order(
        client_id=str(raw.get("clientOrderId") or raw.get("id")),
        symbol=str(raw.get("symbol")),
        side=Side(str(raw.get("side")).lower()),
        order_type=order_type(raw),
        qty=dec(raw.get("amount")),
        price=dec(raw["price"]) if raw.get("price") else None,
        stop_price=dec(raw.get("triggerPrice")) if raw.get("triggerPrice") else None,
        created_at=ts_of(raw.get("timestamp"), now),
        external=known is None,
    )
    return base.evolve(
        status=order_status(raw),
        filled_qty=filled,
        avg_fill_price=dec(average) if average is not None and filled > 0 else base.avg_fill_price,
        venue_order_id=str(raw["id"]) if raw.get("id") is not None else base.venue_order_id,
        updated_at=ts_of(raw.get("lastUpdateTimestamp") or raw.get("timestamp"), now),
    )


def fee_in_quote(cost: Decimal, currency: str, inst: Instrument | None, price: Decimal) -> Decimal:
    """Fill.fee is in the quote currency: a fee paid in the base asset is converted, others are left out."""
    if inst is None or not currency or currency == inst.quote:
        return cost
    if currency == inst.base:
        return cost * price
    return ZERO  # paid in a third asset (BNB): the balance shows it, the P&L cannot price it here


def fill(
    fill_id: str, client_id: str, symbol: str, side: Side, qty: Decimal, price: Decimal, fee: Decimal,
    fee_currency: str, ts: datetime, maker: bool | None, venue_order_id: str | None, inst: Instrument | None,
) -> Fill:  # fmt: skip
    return Fill(
        fill_id, client_id, symbol, side, qty, price, fee_in_quote(fee, fee_currency, inst, price), ts,
        Liquidity.MAKER if maker else Liquidity.TAKER, venue_order_id, fee_currency,
    )  # fmt: skip


def trade_fill(raw: Mapping[str, Any], market_id: str, client_id: str, inst: Instrument | None, now: datetime) -> Fill:
    fee = raw.get("fee") or {}
    return fill(
        f"{market_id}-{raw['id']}", client_id, str(raw["symbol"]), Side(str(raw["side"]).lower()),
        dec(raw["amount"]), dec(raw["price"]), dec(fee.get("cost")), str(fee.get("currency") or ""),
        ts_of(raw.get("timestamp"), now), raw.get("takerOrMaker") == "maker",
        str(raw.get("order")) if raw.get("order") is not None else None, inst,
    )  # fmt: skip


def execution_fill(info: Mapping[str, Any], order_: Order, inst: Instrument | None, now: datetime) -> Fill | None:
    """The fill inside a Binance executionReport (x == TRADE), with the id myTrades gives it too."""
    if info.get("x") != "TRADE" or info.get("t") in (None, -1):
        return None
    return fill(
        f"{info['s']}-{info['t']}", order_.client_id, order_.symbol, order_.side, dec(info.get("l")),
        dec(info.get("L")), dec(info.get("n")), str(info.get("N") or ""), ts_of(info.get("T"), now),
        bool(info.get("m")), order_.venue_order_id, inst,
    )  # fmt: skip


def tick(raw: Mapping[str, Any], now: datetime, volume: Decimal) -> MarketTick | None:
    bid, ask = raw.get("bid"), raw.get("ask")
    if bid is None or ask is None:
        return None
    last = raw.get("last") or raw.get("close") or ask
    return MarketTick(str(raw["symbol"]), ts_of(raw.get("timestamp"), now), dec(bid), dec(ask), dec(last), volume)


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def map_error(exc: BaseException, secrets: tuple[str, ...], retry_after_s: float | None = None) -> VenueError:
    """ccxt's error family onto ours; messages are scrubbed of the credentials."""
    import ccxt

    message = scrub(f"{type(exc).__name__}: {exc}", secrets)
    if isinstance(exc, VenueError):
        return exc
    if isinstance(exc, ccxt.AuthenticationError | ccxt.PermissionDenied):
        return AuthenticationFailed(message)
    if isinstance(exc, ccxt.DDoSProtection):  # RateLimitExceeded is one of these
        return TransientVenueError(message, retry_after_s=retry_after_s)
    if isinstance(exc, ccxt.NetworkError | ccxt.BadResponse | ccxt.OperationFailed):
        return TransientVenueError(message)
    if isinstance(exc, ccxt.OrderNotFound):
        return OrderNotFound(message)
    if isinstance(exc, ccxt.InsufficientFunds | ccxt.InvalidOrder | ccxt.BadRequest | ccxt.OperationRejected):
        return OrderRejected(message)
    if isinstance(exc, ccxt.BaseError):
        return VenueError(message)
    # Anything else came out of parsing a body that was not what it should be.
    return TransientVenueError(f"unreadable venue response ({message})")
