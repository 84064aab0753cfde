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
    InstrumentCapabilities,
    MalformedReply,
    OrderNotFound,
    OrderRejected,
    OrderTypeUnsupported,
    RateLimited,
    VenueError,
    VenueTimeout,
    VenueUnavailable,
)

# Binance spot's exchangeInfo `orderTypes` onto ours (STOP_LOSS is the stop-market order).
_WIRE_TYPES = {
    "MARKET": OrderType.MARKET,
    "LIMIT": OrderType.LIMIT,
    "STOP_LOSS": OrderType.STOP_MARKET,
    "STOP_LOSS_LIMIT": OrderType.STOP_LIMIT,
}
# What Binance and ccxt say when a symbol does not take an order type.
_TYPE_REFUSALS = ("not supported for this symbol", "is not a valid order type", "parameter is not allowed for")

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


def capabilities(market: Mapping[str, Any]) -> InstrumentCapabilities:
    """The order types the symbol lists in exchangeInfo; without a list, what every spot symbol takes."""
    listed = (market.get("info") or {}).get("orderTypes")
    if not isinstance(listed, list):
        return InstrumentCapabilities()
    return InstrumentCapabilities(frozenset(_WIRE_TYPES[t] for t in listed if t in _WIRE_TYPES))


def order_type(raw: Mapping[str, Any]) -> OrderType:
    kind = str(raw.get("type") or "").lower()
    wire = str((raw.get("info") or {}).get("type") or "").upper()
    if wire in _WIRE_TYPES:
        return _WIRE_TYPES[wire]
    if kind in ("stop_loss_limit", "stop_limit"):
        return OrderType.STOP_LIMIT
    if raw.get("triggerPrice") or raw.get("stopPrice") or kind.startswith("stop"):
        return OrderType.STOP_MARKET
    return OrderType.LIMIT if kind == "limit" else OrderType.MARKET


def client_id_of(raw: Mapping[str, Any]) -> str | None:
    """Our id for the order: a cancel reply names the cancel request `clientOrderId` and ours
    `origClientOrderId` (REST), or `c` / `C` in an executionReport (ccxt already prefers C)."""
    info = raw.get("info") or {}
    orig = info.get("origClientOrderId") if isinstance(info, Mapping) else None
    return str(orig) if orig else (str(raw["clientOrderId"]) if raw.get("clientOrderId") else None)


def order(raw: Mapping[str, Any], now: datetime, known: Order | None = None) -> Order:
    """A ccxt order as an engine Order; what the venue does not say is kept from `known`."""
    filled = dec(raw.get("filled"))
    average = raw.get("average")
    if average is None and filled > 0 and raw.get("cost"):
        average = dec(raw["cost"]) / filled
    base = known or Order(
        client_id=client_id_of(raw) or str(raw.get("id")),
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
    """Fill.fee is the fee's quote value: a base-asset fee is converted; a third asset's (BNB) is left
    at 0 here and valued by the portfolio at that asset's mark (Fill.fee_charged keeps the amount)."""
    if inst is None or not currency or currency == inst.quote:
        return cost
    if currency == inst.base:
        return cost * price
    return ZERO


def fill(
    fill_id: str, client_id: str, symbol: str, side: Side, qty: Decimal, price: Decimal, fee: Decimal,
    fee_currency: str, ts: datetime, maker: bool | None, venue_order_id: str | None, inst: Instrument | None,
) -> Fill:  # fmt: skip
    return Fill(
        fill_id, client_id, symbol, side, qty, price, fee_in_quote(fee, fee_currency, inst, price), ts,
        Liquidity.MAKER if maker else Liquidity.TAKER, venue_order_id, fee_currency, fee,
    )  # fmt: skip


def reply_fills(raw: Mapping[str, Any], order_: Order, inst: Instrument | None, market_id: str,
                now: datetime) -> tuple[Fill, ...]:  # fmt: skip
    """The `fills` of a place-order reply (newOrderRespType FULL), under the ids myTrades and the stream use."""
    info = raw.get("info") or {}
    out = []
    for entry in info.get("fills") or [] if isinstance(info, Mapping) else []:
        if not isinstance(entry, Mapping) or entry.get("tradeId") in (None, -1):
            continue
        out.append(fill(
            f"{market_id}-{entry['tradeId']}", order_.client_id, order_.symbol, order_.side, dec(entry.get("qty")),
            dec(entry.get("price")), dec(entry.get("commission")), str(entry.get("commissionAsset") or ""),
            ts_of(info.get("transactTime"), now), False, order_.venue_order_id, inst,
        ))  # fmt: skip
    return tuple(out)


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


def order_request(order: Order) -> tuple[str, float | None, dict[str, Any]]:
    """ccxt's (type, price, params) for one of our orders; Binance's own type names for stops."""
    params: dict[str, Any] = {"clientOrderId": order.client_id}
    if order.order_type is OrderType.LIMIT:
        return "limit", float(order.price), params  # type: ignore[arg-type]
    if order.order_type is OrderType.STOP_MARKET:
        params["stopLossPrice"] = float(order.stop_price)  # type: ignore[arg-type]
        return "market", None, params  # ccxt sends STOP_LOSS
    if order.order_type is OrderType.STOP_LIMIT:
        params["stopLossPrice"] = float(order.stop_price)  # type: ignore[arg-type]
        params["timeInForce"] = "GTC"
        return "limit", float(order.price), params  # type: ignore[arg-type]  # ccxt sends STOP_LOSS_LIMIT
    return "market", None, params


def retry_after(headers: Mapping[str, Any]) -> float | None:
    """The seconds a 429's Retry-After header asks for, when it says."""
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return float(value)
            except ValueError:
                return None
    return None


def map_error(exc: BaseException, secrets: tuple[str, ...], retry_after_s: float | None = None) -> VenueError:
    """ccxt's error family onto ours; messages are scrubbed of the credentials."""
    import ccxt

    message = scrub(f"{type(exc).__name__}: {exc}", secrets)
    if isinstance(exc, VenueError):
        return exc
    if isinstance(exc, TimeoutError):
        return VenueTimeout(message)
    if isinstance(exc, ccxt.AuthenticationError | ccxt.PermissionDenied):
        return AuthenticationFailed(message)
    if isinstance(exc, ccxt.DDoSProtection):  # RateLimitExceeded is one of these
        return RateLimited(message, retry_after_s=retry_after_s)
    if isinstance(exc, ccxt.RequestTimeout):
        return VenueTimeout(message)
    if isinstance(exc, ccxt.BadResponse | ccxt.NullResponse):
        return MalformedReply(message)
    if isinstance(exc, ccxt.NetworkError | ccxt.OperationFailed):
        return VenueUnavailable(message)
    if isinstance(exc, ccxt.OrderNotFound):
        return OrderNotFound(message)
    if isinstance(exc, ccxt.InsufficientFunds | ccxt.InvalidOrder | ccxt.BadRequest | ccxt.OperationRejected):
        if any(text in str(exc) for text in _TYPE_REFUSALS):
            return OrderTypeUnsupported(message)
        return OrderRejected(message)
    if isinstance(exc, ccxt.BaseError):
        return VenueError(message)
    # Anything else came out of parsing a body that was not what it should be.
    return MalformedReply(f"unreadable venue response ({message})")
