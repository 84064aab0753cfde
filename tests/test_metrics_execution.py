"""Execution quality against hand-computed figures: fill rate and slippage, and undefined (not
perfect) without orders.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.analytics import metrics
from engine.core.model import OrderStatus, OrderType, Side
from tests.metrics_rig import fill, order

# --- execution quality --------------------------------------------------------------------------


def test_execution_fill_rate_and_slippage() -> None:
    orders = [
        order("A", Side.BUY, 2, OrderStatus.FILLED, filled_qty=Decimal(2)),
        order(
            "B", Side.BUY, 4, OrderStatus.CANCELED, OrderType.LIMIT, price=Decimal(50), filled_qty=Decimal(1)
        ),
        order("C", Side.SELL, 1, OrderStatus.REJECTED),
        order(
            "D",
            Side.SELL,
            2,
            OrderStatus.FILLED,
            OrderType.STOP_MARKET,
            role="stop_loss",
            stop_price=Decimal(95),
            filled_qty=Decimal(2),
        ),
        order("E", Side.BUY, 3, OrderStatus.OPEN, OrderType.LIMIT, price=Decimal(40)),
        order("F", Side.SELL, 1, OrderStatus.FILLED, filled_qty=Decimal(1)),
    ]
    fills = [
        fill("A", Side.BUY, "1", "100.5", 0),
        fill("A", Side.BUY, "1", "101.5", 1),  # VWAP 101
        fill("B", Side.BUY, "1", "50"),
        fill("D", Side.SELL, "2", "94.05"),
        fill("F", Side.SELL, "1", "200"),
    ]
    stats = metrics.execution_stats(orders, fills, {"A": Decimal(100), "F": Decimal(202)})
    # Orders that could fill: the finished, non-rejected entry orders A, B, F (D is a protective leg,
    # E still open, C rejected). Filled completely: A and F, so the per-order rate is 2 / 3.
    assert (stats["orders"], stats["filled_orders"], stats["order_fill_rate"]) == (3, 2, pytest.approx(2 / 3))
    assert (stats["partially_filled_orders"], stats["rejected"]) == (1, 1)
    # Notional, each order at its own price: A 2 x 100 of 2 x 100, B 1 x 50 of 4 x 50 (its limit),
    # F 1 x 202 of 1 x 202: (200 + 50 + 202) / (200 + 200 + 202) = 452 / 602.
    assert stats["notional_fill_rate"] == pytest.approx(452 / 602)
    assert stats["notional_fill_rate_by_quote"] == {"USDT": pytest.approx(452 / 602)}
    # Slippage, positive = adverse:
    #   A buy  VWAP 101 vs 100:          (101 - 100) / 100       = 0.01
    #   D sell 94.05 vs stop trigger 95: -(94.05 - 95) / 95      = 0.01
    #   F sell 200 vs reference 202:     -(200 - 202) / 202      = 0.00990
    #   B is a limit order without a reference: its limit bounds the price, so it is left out.
    assert stats["slippage_samples"] == 3
    assert stats["avg_slippage"] == pytest.approx((0.01 + 0.01 + 2 / 202) / 3)
    assert stats["max_slippage"] == pytest.approx(0.01)


def test_execution_without_orders_is_undefined_not_perfect() -> None:
    stats = metrics.execution_stats([], [])
    assert stats["order_fill_rate"] is None and stats["notional_fill_rate"] is None
    assert stats["avg_slippage"] is None
    assert stats["rejected"] == 0 and stats["orders"] == 0
