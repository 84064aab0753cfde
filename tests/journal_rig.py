"""What the journal tests share: a fixed clock origin and fully populated orders and fills
(every field set, awkward decimals included) for exact round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from engine.core.model import Fill, Liquidity, Order, OrderStatus, OrderType, Side

T0 = datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def make_order(client_id: str = "o1", **changes: object) -> Order:
    order = Order(
        client_id=client_id,
        symbol="BTC/USDT",
        side=Side.SELL,
        order_type=OrderType.STOP_MARKET,
        qty=Decimal("0.10000000"),
        price=Decimal("1E+2"),
        stop_price=Decimal("64999.99"),
        status=OrderStatus.PARTIALLY_FILLED,
        filled_qty=Decimal("0.05"),
        avg_fill_price=Decimal("65000.000001"),
        venue_order_id="v-9",
        created_at=T0,
        updated_at=at(1.5),
        reduce_only=True,
        tag="breakout",
        strategy="ema",
        parent_id="o0",
        role="stop_loss",
        reason="protective leg",
        external=True,
    )
    return order.evolve(**changes)


def make_fill(fill_id: str = "f1", **changes: object) -> Fill:
    fill = Fill(
        fill_id=fill_id,
        client_id="o1",
        symbol="BTC/USDT",
        side=Side.BUY,
        qty=Decimal("0.00000001"),
        price=Decimal("65000.10"),
        fee=Decimal("-0.0000000000001"),
        ts=at(2),
        liquidity=Liquidity.MAKER,
        venue_order_id="v-9",
        fee_currency="USDT",
    )
    return Fill(**{**{f: getattr(fill, f) for f in fill.__slots__}, **changes})  # type: ignore[arg-type]
