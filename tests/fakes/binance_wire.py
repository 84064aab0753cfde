"""Binance spot wire formats for the fake: symbols, orders, trades, execution reports, signatures.

Kept apart from the server so the shapes can be checked against Binance's
documentation in one place. Numbers travel as strings, times as epoch ms.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.core.model import Fill, Instrument, Liquidity, Order, OrderStatus, OrderType, Side

STATUS_TO_WIRE = {
    OrderStatus.PENDING: "NEW",
    OrderStatus.OPEN: "NEW",
    OrderStatus.PARTIALLY_FILLED: "PARTIALLY_FILLED",
    OrderStatus.FILLED: "FILLED",
    OrderStatus.CANCELED: "CANCELED",
    OrderStatus.REJECTED: "REJECTED",
    OrderStatus.EXPIRED: "EXPIRED",
}
TYPE_TO_WIRE = {OrderType.MARKET: "MARKET", OrderType.LIMIT: "LIMIT", OrderType.STOP_MARKET: "STOP_LOSS",
                OrderType.STOP_LIMIT: "STOP_LOSS_LIMIT"}  # fmt: skip
ALL_WIRE_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"]
# Binance's -2010 texts when a symbol does not list the type (errors.md, "Messages for -1010, -2010, -2011").
TYPE_REFUSED = {
    "STOP_LOSS": "Stop loss orders are not supported for this symbol.",
    "STOP_LOSS_LIMIT": "Stop loss limit orders are not supported for this symbol.",
    "MARKET": "Market orders are not supported for this symbol.",
}
WIRE_TO_TYPE = {v: k for k, v in TYPE_TO_WIRE.items()}

# Binance's own error codes and texts, so ccxt maps them exactly as it would the real venue.
ERR_KEY_FORMAT = (-2014, "API-key format invalid.")
ERR_KEY_INVALID = (-2015, "Invalid API-key, IP, or permissions for action.")
ERR_SIGNATURE = (-1022, "Signature for this request is not valid.")
ERR_TIMESTAMP = (-1021, "Timestamp for this request is outside of the recvWindow.")
ERR_UNKNOWN_ORDER = (-2013, "Order does not exist.")
ERR_CANCEL_UNKNOWN = (-2011, "Unknown order sent.")
ERR_DUPLICATE = (-2010, "Duplicate order sent.")
ERR_FUNDS = (-2010, "Account has insufficient balance for requested action.")
ERR_BAD_SYMBOL = (-1121, "Invalid symbol.")
ERR_MANDATORY = (-1102, "Mandatory parameter was not sent, was empty/null, or malformed.")
ERR_RATE = (-1003, "Too many requests; current limit is 6000 request weight per 1 MINUTE.")


def ms(ts: datetime | None) -> int:
    return 0 if ts is None else int(ts.timestamp() * 1000)


def num(value: Decimal | None) -> str:
    return "0.00000000" if value is None else f"{value:f}"


def market_id(symbol: str) -> str:
    return symbol.replace("/", "")


def sign(payload: str, secret: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def strip_signature(raw: str) -> tuple[str, str | None]:
    """The signed payload (every parameter but the signature, order kept) and the signature itself."""
    kept, signature = [], None
    for part in raw.split("&") if raw else []:
        if part.startswith("signature="):
            signature = part[len("signature=") :]
        else:
            kept.append(part)
    return "&".join(kept), signature


def reject_code(reason: str) -> tuple[int, str]:
    """A matching-engine rejection as the Binance error ccxt knows (filters name the failing rule)."""
    text = reason.lower()
    if "insufficient funds" in text:
        return ERR_FUNDS
    if "lot size" in text or "quantity" in text:
        return -1013, f"Filter failure: LOT_SIZE ({reason})"
    if "tick size" in text or "price" in text:
        return -1013, f"Filter failure: PRICE_FILTER ({reason})"
    if "notional" in text:
        return -1013, f"Filter failure: NOTIONAL ({reason})"
    return -1013, f"Filter failure: {reason}"


def commission(fill: Fill) -> str:
    """What Binance reports: the amount in commissionAsset (base on spot buys, BNB when BNB pays)."""
    return num(fill.fee_charged if fill.fee_charged is not None else fill.fee)


def symbol_info(inst: Instrument, order_types: list[str] | None = None) -> dict[str, Any]:
    return {
        "symbol": market_id(inst.symbol),
        "status": "TRADING",
        "baseAsset": inst.base,
        "baseAssetPrecision": 8,
        "quoteAsset": inst.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": list(order_types or ALL_WIRE_TYPES),
        "icebergAllowed": True,
        "ocoAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": num(inst.tick_size),
                "maxPrice": "1000000.00000000",
                "tickSize": num(inst.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": num(inst.min_qty or inst.lot_size),
                "maxQty": "9000.00000000",
                "stepSize": num(inst.lot_size),
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": num(inst.min_notional),
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def order_json(
    order: Order, order_id: int, fills: list[tuple[int, Fill]] | None = None, cancel_client_id: str | None = None
) -> dict[str, Any]:
    """An order as GET/POST /api/v3/order show it; a DELETE reply names the cancel request's own
    clientOrderId and the order's as origClientOrderId, as Binance does."""
    filled_quote = (order.avg_fill_price or Decimal(0)) * order.filled_qty
    out: dict[str, Any] = {
        "symbol": market_id(order.symbol),
        **({"origClientOrderId": order.client_id} if cancel_client_id else {}),
        "orderId": order_id,
        "orderListId": -1,
        "clientOrderId": cancel_client_id or order.client_id,
        "price": num(order.price or Decimal(0)),
        "origQty": num(order.qty),
        "executedQty": num(order.filled_qty),
        "cummulativeQuoteQty": num(filled_quote),
        "status": STATUS_TO_WIRE[order.status],
        "timeInForce": "GTC",
        "type": TYPE_TO_WIRE[order.order_type],
        "side": order.side.value.upper(),
        "stopPrice": num(order.stop_price or Decimal(0)),
        "icebergQty": "0.00000000",
        "time": ms(order.created_at),
        "transactTime": ms(order.updated_at),
        "updateTime": ms(order.updated_at),
        "workingTime": ms(order.created_at),
        "isWorking": order.status.is_working,
        "origQuoteOrderQty": "0.00000000",
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }
    if fills is not None:
        out["fills"] = [
            {
                "price": num(f.price),
                "qty": num(f.qty),
                "commission": commission(f),
                "commissionAsset": f.fee_currency,
                "tradeId": trade_id,
            }
            for trade_id, f in fills
        ]
    return out


def trade_json(trade_id: int, fill: Fill, order_id: int) -> dict[str, Any]:
    return {
        "symbol": market_id(fill.symbol),
        "id": trade_id,
        "orderId": order_id,
        "orderListId": -1,
        "price": num(fill.price),
        "qty": num(fill.qty),
        "quoteQty": num(fill.notional),
        "commission": commission(fill),
        "commissionAsset": fill.fee_currency,
        "time": ms(fill.ts),
        "isBuyer": fill.side is Side.BUY,
        "isMaker": fill.liquidity is Liquidity.MAKER,
        "isBestMatch": True,
    }


def execution_report(
    order: Order, order_id: int, event_ms: int, fill: Fill | None = None, trade_id: int = -1,
    cancel_client_id: str | None = None,
) -> dict[str, Any]:
    """The user-data stream's executionReport (x = what happened now, X = the order's status);
    a cancel's report carries the cancel request's id in `c` and the order's in `C`."""
    if fill is not None:
        exec_type = "TRADE"
    elif order.status is OrderStatus.CANCELED:
        exec_type = "CANCELED"
    elif order.status is OrderStatus.REJECTED:
        exec_type = "REJECTED"
    elif order.status is OrderStatus.EXPIRED:
        exec_type = "EXPIRED"
    else:
        exec_type = "NEW"
    filled_quote = (order.avg_fill_price or Decimal(0)) * order.filled_qty
    return {
        "e": "executionReport",
        "E": event_ms,
        "s": market_id(order.symbol),
        "c": cancel_client_id or order.client_id,
        "S": order.side.value.upper(),
        "o": TYPE_TO_WIRE[order.order_type],
        "f": "GTC",
        "q": num(order.qty),
        "p": num(order.price or Decimal(0)),
        "P": num(order.stop_price or Decimal(0)),
        "F": "0.00000000",
        "g": -1,
        "C": order.client_id if cancel_client_id else "",
        "x": exec_type,
        "X": STATUS_TO_WIRE[order.status],
        "r": "NONE" if order.status is not OrderStatus.REJECTED else "OTHER",
        "i": order_id,
        "l": num(fill.qty if fill else Decimal(0)),
        "z": num(order.filled_qty),
        "L": num(fill.price if fill else Decimal(0)),
        "n": commission(fill) if fill else "0",
        "N": fill.fee_currency if fill else None,
        "T": ms(fill.ts if fill else order.updated_at),
        "t": trade_id,
        "w": order.status.is_working,
        "m": bool(fill and fill.liquidity is Liquidity.MAKER),
        "M": False,
        "O": ms(order.created_at),
        "Z": num(filled_quote),
        "Y": num(fill.notional if fill else Decimal(0)),
        "Q": "0.00000000",
        "W": ms(order.created_at),
        "V": "EXPIRE_MAKER",
    }


def ticker_24hr(inst: Instrument, bid: Decimal, ask: Decimal, last: Decimal, volume: Decimal, now_ms: int) -> dict:
    """The `<symbol>@ticker` stream event; REST /ticker/24hr shares the numbers under long names."""
    return {
        "e": "24hrTicker",
        "E": now_ms,
        "s": market_id(inst.symbol),
        "p": "0",
        "P": "0",
        "w": num(last),
        "x": num(last),
        "c": num(last),
        "Q": "0",
        "b": num(bid),
        "B": "1",
        "a": num(ask),
        "A": "1",
        "o": num(last),
        "h": num(last),
        "l": num(last),
        "v": num(volume),
        "q": num(volume * last),
        "O": now_ms - 86_400_000,
        "C": now_ms,
        "F": 0,
        "L": 0,
        "n": 0,
    }


def rest_ticker(event: dict[str, Any]) -> dict[str, Any]:
    e = event
    return {
        "symbol": e["s"], "priceChange": e["p"], "priceChangePercent": e["P"], "weightedAvgPrice": e["w"],
        "prevClosePrice": e["x"], "lastPrice": e["c"], "lastQty": e["Q"], "bidPrice": e["b"], "bidQty": e["B"],
        "askPrice": e["a"], "askQty": e["A"], "openPrice": e["o"], "highPrice": e["h"], "lowPrice": e["l"],
        "volume": e["v"], "quoteVolume": e["q"], "openTime": e["O"], "closeTime": e["C"],
        "firstId": e["F"], "lastId": e["L"], "count": e["n"],
    }  # fmt: skip


def side_of(wire: str) -> Side:
    return Side.BUY if wire.upper() == "BUY" else Side.SELL
