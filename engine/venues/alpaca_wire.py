"""Alpaca's JSON (REST v2 and trade_updates) onto the engine's value types, and its errors onto ours.

Pure functions over plain dicts: the venue asks alpaca-py for raw data
(`raw_data=True`) so an unexpected field never fails a pydantic model mid-trade.
Unified symbols are Alpaca's own: equities "AAPL" (quoted in USD), crypto "BTC/USD".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.core.model import ZERO, Fill, Instrument, Liquidity, Order, OrderStatus, OrderType, Side
from engine.venues.base import (
    AuthenticationFailed,
    MalformedReply,
    OrderNotFound,
    OrderRejected,
    OrderTypeUnsupported,
    RateLimited,
    VenueError,
    VenueTimeout,
    VenueUnavailable,
)

PAPER_HOST = "paper-api.alpaca.markets"
LIVE_HOST = "api.alpaca.markets"

_STATUS = {
    "new": OrderStatus.OPEN,
    "accepted": OrderStatus.OPEN,
    "pending_new": OrderStatus.OPEN,
    "accepted_for_bidding": OrderStatus.OPEN,
    "pending_cancel": OrderStatus.OPEN,  # still able to fill until Alpaca says canceled
    "pending_replace": OrderStatus.OPEN,
    "held": OrderStatus.OPEN,
    "calculated": OrderStatus.OPEN,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "replaced": OrderStatus.CANCELED,
    "stopped": OrderStatus.CANCELED,
    "suspended": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "done_for_day": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}
_TYPES = {"market": OrderType.MARKET, "limit": OrderType.LIMIT, "stop": OrderType.STOP_MARKET,
          "stop_limit": OrderType.STOP_LIMIT}  # fmt: skip


@dataclass(frozen=True, slots=True)
class AlpacaEnvironment:
    """What the wizard shows before a key is trusted with money."""

    endpoint: str
    endpoint_kind: str  # "paper" | "live" | "custom"
    key_kind: str  # "paper" (PK...) | "live" (AK...) | "unknown"
    account_number: str | None = None
    account_status: str | None = None

    @property
    def is_paper(self) -> bool:
        return self.endpoint_kind != "live" and self.key_kind != "live"

    @property
    def consistent(self) -> bool:
        """False when a live key points at the paper endpoint or the other way round."""
        known = {self.endpoint_kind, self.key_kind} - {"custom", "unknown"}
        return len(known) <= 1


def timeout_session(session: Any, timeout_s: float) -> None:
    """Mount adapters that give every request a timeout; alpaca-py passes none."""
    from requests.adapters import HTTPAdapter

    class TimeoutAdapter(HTTPAdapter):
        def send(self, request: Any, **kw: Any) -> Any:  # type: ignore[override]
            if kw.get("timeout") is None:
                kw["timeout"] = timeout_s
            return super().send(request, **kw)

    for prefix in ("http://", "https://"):
        session.mount(prefix, TimeoutAdapter(max_retries=0))


def dec(value: Any) -> Decimal:
    if value is None or value == "":
        return ZERO
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return ZERO


def opt_dec(value: Any) -> Decimal | None:
    return None if value is None or value == "" else dec(value)


def ts(value: Any, default: datetime) -> datetime:
    if not value:
        return default
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).replace("Z", "+00:00")
    if "." in text:  # Alpaca sends nanoseconds; fromisoformat takes at most microseconds
        head, _, tail = text.partition(".")
        digits = "".join(c for c in tail if c.isdigit())
        zone = tail[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return default
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def instrument(symbol: str, venue: str, asset: dict[str, Any] | None = None) -> Instrument:
    base, _, quote = symbol.partition("/")
    crypto = bool(quote)
    asset = asset or {}
    tick = dec(asset.get("price_increment")) or Decimal("0.01")
    lot = dec(asset.get("min_trade_increment")) or (Decimal(1) if not crypto else Decimal("0.0001"))
    min_qty = dec(asset.get("min_order_size")) or lot
    return Instrument(symbol, base, quote or "USD", tick, lot, min_qty, ZERO, venue)


def order(raw: dict[str, Any], now: datetime, known: Order | None = None) -> Order:
    status = _STATUS.get(str(raw.get("status", "")).lower(), OrderStatus.OPEN)
    kind = _TYPES.get(str(raw.get("type") or raw.get("order_type") or "market"), OrderType.MARKET)
    values: dict[str, Any] = {
        "status": status,
        "filled_qty": dec(raw.get("filled_qty")),
        "avg_fill_price": opt_dec(raw.get("filled_avg_price")),
        "venue_order_id": str(raw["id"]) if raw.get("id") is not None else None,
        "updated_at": ts(raw.get("updated_at"), now),
    }
    if known is not None:
        return known.evolve(**values)
    return Order(
        client_id=str(raw.get("client_order_id") or raw.get("id")),
        symbol=str(raw.get("symbol", "")),
        side=Side(str(raw.get("side", "buy"))),
        order_type=kind,
        qty=dec(raw.get("qty")),
        price=opt_dec(raw.get("limit_price")),
        stop_price=opt_dec(raw.get("stop_price")),
        created_at=ts(raw.get("created_at") or raw.get("submitted_at"), now),
        external=True,  # not placed through this venue object: reconciliation decides
        **values,
    )


def activity_fill(raw: dict[str, Any], client_id: str, quote: str, now: datetime) -> Fill:
    """One FILL account activity (GET /v2/account/activities/FILL)."""
    return Fill(
        fill_id=str(raw.get("id")),
        client_id=client_id,
        symbol=str(raw.get("symbol", "")),
        side=Side(str(raw.get("side", "buy"))),
        qty=dec(raw.get("qty")),
        price=dec(raw.get("price")),
        fee=ZERO,  # Alpaca charges no commission; regulatory fees arrive as separate activities
        ts=ts(raw.get("transaction_time"), now),
        liquidity=Liquidity.TAKER,
        venue_order_id=str(raw.get("order_id")) if raw.get("order_id") else None,
        fee_currency=quote,
    )


def update_fill(data: dict[str, Any], order_: Order, quote: str, now: datetime) -> Fill | None:
    """The fill carried by a trade_updates `fill` / `partial_fill` event."""
    if data.get("event") not in ("fill", "partial_fill"):
        return None
    qty = dec(data.get("qty"))
    if qty <= 0:
        return None
    fill_id = str(data.get("execution_id") or f"{order_.venue_order_id}:{dec(data.get('position_qty'))}:{qty}")
    return Fill(
        fill_id, order_.client_id, order_.symbol, order_.side, qty, dec(data.get("price")), ZERO,
        ts(data.get("timestamp"), now), Liquidity.TAKER, order_.venue_order_id, quote,
    )  # fmt: skip


def fill_id(venue_order_id: str | None, cum_qty: Decimal) -> str:
    """Same id whichever path reports the fill (stream event, polling, activities)."""
    return f"{venue_order_id}:{cum_qty.normalize()}"


def order_request(order: Order) -> Any:
    """alpaca-py's request for one of our orders (equities by the day, crypto good till cancelled)."""
    from alpaca.trading import requests as rq

    tif = "gtc" if "/" in order.symbol else "day"
    common = {"symbol": order.symbol, "qty": float(order.qty), "side": order.side.value,
              "time_in_force": tif, "client_order_id": order.client_id}  # fmt: skip
    if order.order_type is OrderType.LIMIT:
        return rq.LimitOrderRequest(limit_price=float(order.price), **common)  # type: ignore[arg-type]
    if order.order_type is OrderType.STOP_MARKET:
        return rq.StopOrderRequest(stop_price=float(order.stop_price), **common)  # type: ignore[arg-type]
    if order.order_type is OrderType.STOP_LIMIT:
        return rq.StopLimitOrderRequest(stop_price=float(order.stop_price), limit_price=float(order.price),  # type: ignore[arg-type]
                                        **common)  # fmt: skip
    return rq.MarketOrderRequest(**common)


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _api_message(body: str) -> tuple[int | None, str]:
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return None, body[:200]
    if isinstance(data, dict):
        code = data.get("code")
        return (int(code) if isinstance(code, int) else None), str(data.get("message", body[:200]))
    return None, body[:200]


def map_error(exc: BaseException, secrets: tuple[str, ...]) -> VenueError:
    """alpaca-py and requests failures onto the VenueError family; messages scrubbed of the keys."""
    import requests
    from alpaca.common.exceptions import APIError

    if isinstance(exc, VenueError):
        return exc
    if isinstance(exc, APIError):
        status = exc.status_code
        code, text = _api_message(str(exc))
        message = scrub(f"alpaca {status}: {text}", secrets)
        retry_after = None
        response = exc.response
        if response is not None and response.headers.get("Retry-After"):
            try:
                retry_after = float(response.headers["Retry-After"])
            except ValueError:
                retry_after = None
        lowered = text.lower()
        if status == 403 and ("buying power" in lowered or "insufficient" in lowered):
            return OrderRejected(message)
        if status in (401, 403):
            return AuthenticationFailed(message)
        if status == 404:
            return OrderNotFound(message)
        if status == 429:
            return RateLimited(message, retry_after_s=retry_after or 1.0)
        if status is None or status >= 500:
            return VenueUnavailable(message)
        if status == 422 and code == 40010001 and "client_order_id" in lowered:
            return OrderRejected(f"duplicate client_order_id: {message}")
        if status == 422 and ("order type" in lowered or "not supported" in lowered):
            return OrderTypeUnsupported(message)
        return OrderRejected(message)
    if isinstance(exc, TimeoutError | requests.Timeout):
        return VenueTimeout("alpaca: request timed out")
    if isinstance(exc, ValueError):  # requests' JSONDecodeError is one: a body that is not JSON
        return MalformedReply(scrub(f"alpaca: unreadable response ({type(exc).__name__})", secrets))
    if isinstance(exc, requests.RequestException | ConnectionError):
        return VenueUnavailable(scrub(f"alpaca: connection failed ({type(exc).__name__})", secrets))
    # Anything else came out of parsing a body that was not what it should be.
    return MalformedReply(scrub(f"alpaca: unreadable response ({type(exc).__name__}: {exc})", secrets))


__all__ = [
    "LIVE_HOST",
    "PAPER_HOST",
    "AlpacaEnvironment",
    "activity_fill",
    "fill_id",
    "instrument",
    "map_error",
    "order",
    "order_request",
    "scrub",
    "timeout_session",
    "update_fill",
]
