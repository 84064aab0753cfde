"""Value types shared by the engine, the venues and the widgets.

Money, prices and quantities are `Decimal`; timestamps are timezone-aware UTC.
Everything here is immutable (frozen dataclasses) so it can cross the event bus
and the Qt bridge without copies.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

ZERO = Decimal(0)


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(enum.StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP_MARKET = "stop_market"
    STOP_LIMIT = "stop_limit"  # triggers at stop_price, then rests as a limit at price


class OrderStatus(enum.StrEnum):
    PENDING = "pending"  # created locally, not yet acknowledged by the venue
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_working(self) -> bool:
        return self in (OrderStatus.PENDING, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)


_TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED})


class ProtectionStatus(enum.StrEnum):
    """What really guards a position's stop level: shown as it is, never as planned."""

    VENUE = "venue"  # a stop order rests at the venue
    WATCHED = "watched"  # the engine watches the level and exits at market
    UNPROTECTED = "unprotected"  # a stop was planned and nothing guards it
    NONE = "none"  # no stop was asked for


class Liquidity(enum.StrEnum):
    MAKER = "maker"
    TAKER = "taker"


class TradingState(enum.StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class VenueMode(enum.StrEnum):
    SIMULATED = "simulated"
    PAPER = "paper"
    TESTNET = "testnet"
    LIVE = "live"

    @property
    def is_real_money(self) -> bool:
        return self is VenueMode.LIVE


class AlertLevel(enum.IntEnum):
    INFO = 10
    WARNING = 20
    CRITICAL = 30
    EMERGENCY = 40


def quantize_down(value: Decimal, step: Decimal) -> Decimal:
    """Round towards zero onto a step grid (lot sizes must never round up)."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def quantize_nearest(value: Decimal, step: Decimal) -> Decimal:
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_HALF_UP) * step


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str  # unified form, e.g. "BTC/USDT"
    base: str
    quote: str
    tick_size: Decimal
    lot_size: Decimal
    min_qty: Decimal = ZERO
    min_notional: Decimal = ZERO
    venue: str = "simulated"

    def round_price(self, price: Decimal) -> Decimal:
        return quantize_nearest(price, self.tick_size).quantize(self.tick_size)

    def round_qty(self, qty: Decimal) -> Decimal:
        return quantize_down(qty, self.lot_size).quantize(self.lot_size)

    def precision_error(self, qty: Decimal, price: Decimal | None) -> str | None:
        """Why the venue would refuse this size/price, or None when it is acceptable."""
        if qty <= 0:
            return "quantity must be positive"
        if self.round_qty(qty) != qty:
            return f"quantity {qty} is not a multiple of the lot size {self.lot_size}"
        if qty < self.min_qty:
            return f"quantity {qty} is below the minimum {self.min_qty}"
        if price is not None:
            if price <= 0:
                return "price must be positive"
            if (price / self.tick_size) % 1 != 0:
                return f"price {price} is not a multiple of the tick size {self.tick_size}"
            if qty * price < self.min_notional:
                return f"notional {qty * price:.2f} is below the minimum {self.min_notional}"
        return None


@dataclass(frozen=True, slots=True)
class MarketTick:
    symbol: str
    ts: datetime
    bid: Decimal
    ask: Decimal
    last: Decimal
    volume: Decimal = ZERO  # traded since the previous tick

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


@dataclass(frozen=True, slots=True)
class Bar:
    symbol: str
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """What a strategy (or the operator) wants; the risk engine decides if and how much."""

    symbol: str
    side: Side
    qty: Decimal | None = None  # None: the risk engine sizes it from the stop distance
    order_type: OrderType = OrderType.MARKET
    price: Decimal | None = None  # limit price
    stop_price: Decimal | None = None  # trigger for stop orders
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    reduce_only: bool = False
    reason: str = ""
    tag: str = ""
    strategy: str = ""
    max_hold_s: float | None = None  # time-based exit for the resulting position


@dataclass(frozen=True, slots=True)
class Order:
    client_id: str
    symbol: str
    side: Side
    order_type: OrderType
    qty: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    status: OrderStatus = OrderStatus.PENDING
    filled_qty: Decimal = ZERO
    avg_fill_price: Decimal | None = None
    venue_order_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    reduce_only: bool = False
    tag: str = ""
    strategy: str = ""
    parent_id: str | None = None  # protective legs point at the entry order
    role: str = "entry"  # entry | stop_loss | take_profit | exit | flatten
    reason: str = ""
    external: bool = False  # adopted from the venue, not placed by this engine
    ref_price: Decimal | None = None  # the quote a market order was sized on: slippage is measured from it
    orig_client_id: str | None = None  # a venue reply naming the order by a new id (Binance cancel) says the old

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled_qty

    def evolve(self, **changes: object) -> Order:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Fill:
    fill_id: str
    client_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal  # its value in the quote currency (a third-asset fee may come as 0: the portfolio values it)
    ts: datetime
    liquidity: Liquidity = Liquidity.TAKER
    venue_order_id: str | None = None
    fee_currency: str = ""  # the asset charged: quote, base (Binance buys) or a third one (BNB)
    fee_charged: Decimal | None = None  # the amount in fee_currency as charged; None: `fee` is it (quote)

    @property
    def notional(self) -> Decimal:
        return self.qty * self.price

    def evolve(self, **changes: object) -> Fill:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """A venue's word about an order: its new state and, when it traded, the fill."""

    order: Order
    fill: Fill | None = None


@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    qty: Decimal  # signed: positive long, negative short
    avg_price: Decimal
    last_price: Decimal
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    opened_at: datetime | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    protection: str = "none"  # ProtectionStatus value: venue | watched | unprotected | none
    protection_price: Decimal | None = None  # the stop level that is really resting or watched

    @property
    def side(self) -> Side:
        return Side.BUY if self.qty >= 0 else Side.SELL

    @property
    def unrealized_pnl(self) -> Decimal:
        return (self.last_price - self.avg_price) * self.qty

    @property
    def unrealized_pct(self) -> Decimal:
        cost = abs(self.avg_price * self.qty)
        return ZERO if cost == 0 else self.unrealized_pnl / cost * 100

    @property
    def notional(self) -> Decimal:
        return abs(self.qty * self.last_price)


@dataclass(frozen=True, slots=True)
class Balance:
    asset: str
    free: Decimal
    locked: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True, slots=True)
class RuleValue:
    """One risk rule as data: the engine evaluates it, the UI draws it as a gauge."""

    name: str
    label: str
    value: float
    limit: float
    unit: str = ""
    description: str = ""
    warn_at: float = 0.8

    @property
    def utilisation(self) -> float:
        if self.limit == 0:
            return 0.0
        return max(0.0, min(1.0, self.value / self.limit))


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """A round trip, from flat to flat, for metrics and the fills view."""

    symbol: str
    side: Side
    qty: Decimal
    entry_price: Decimal
    exit_price: Decimal
    opened_at: datetime
    closed_at: datetime
    pnl: Decimal  # net of fees
    fees: Decimal
    tag: str = ""
    strategy: str = ""
    extra: dict[str, str] = field(default_factory=dict)
