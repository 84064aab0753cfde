"""What the metrics tests share: closed trades, equity curves, orders and fills built from plain
numbers, on a clock that starts on a Monday."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from engine.core.model import ClosedTrade, Fill, Order, OrderStatus, OrderType, Side

T0 = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday


def trade(
    pnl: str | int,
    minute: int = 0,
    *,
    symbol: str = "BTC/USDT",
    tag: str = "",
    strategy: str = "",
    fees: str = "0",
    hold_s: int = 60,
) -> ClosedTrade:
    closed = T0 + timedelta(minutes=minute)
    return ClosedTrade(
        symbol=symbol,
        side=Side.BUY,
        qty=Decimal(1),
        entry_price=Decimal(100),
        exit_price=Decimal(100) + Decimal(pnl),
        opened_at=closed - timedelta(seconds=hold_s),
        closed_at=closed,
        pnl=Decimal(pnl),
        fees=Decimal(fees),
        tag=tag,
        strategy=strategy,
    )


def curve_of(*points: tuple[datetime, str | int]) -> list[tuple[datetime, Decimal]]:
    return [(ts, Decimal(v)) for ts, v in points]


def hourly(*values: str | int, start: datetime = T0) -> list[tuple[datetime, Decimal]]:
    return [(start + timedelta(hours=i), Decimal(v)) for i, v in enumerate(values)]



def order(
    cid: str,
    side: Side,
    qty: int,
    status: OrderStatus,
    kind: OrderType = OrderType.MARKET,
    role: str = "entry",
    **kw: object,
) -> Order:
    return Order(
        client_id=cid,
        symbol="BTC/USDT",
        side=side,
        order_type=kind,
        qty=Decimal(qty),
        status=status,
        role=role,
        **kw,
    )


def fill(cid: str, side: Side, qty: str, price: str, n: int = 0) -> Fill:
    return Fill(
        fill_id=f"{cid}-{n}",
        client_id=cid,
        symbol="BTC/USDT",
        side=side,
        qty=Decimal(qty),
        price=Decimal(price),
        fee=Decimal(0),
        ts=T0,
    )
