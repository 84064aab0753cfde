"""Events cross the control server as JSON and come back as the very same values."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from engine.app.wire import EVENT_TYPES, WireError, event_from_json, event_to_json
from engine.core import events as ev
from engine.core.model import (
    AlertLevel,
    Fill,
    MarketTick,
    Order,
    OrderIntent,
    OrderType,
    Position,
    RuleValue,
    Side,
    TradingState,
)

TS = datetime(2026, 2, 2, 9, 30, 0, 123456, tzinfo=UTC)
TICK = MarketTick("BTC/USDT", TS, Decimal("60000.01"), Decimal("60000.02"), Decimal("60000.015"))
ORDER = Order("tc0001-7", "BTC/USDT", Side.BUY, OrderType.LIMIT, Decimal("0.00012345"), price=Decimal("59000.10"),
              created_at=TS, role="entry", tag="t")  # fmt: skip
INTENT = OrderIntent("ETH/USDT", Side.SELL, Decimal("1.5"), stop_loss=Decimal("3100"), reason="test")
SAMPLES: list[ev.Event] = [
    ev.MarketEvent(TS, TICK),
    ev.OrderEvent(TS, ORDER),
    ev.FillEvent(TS, Fill("f1", "tc0001-7", "BTC/USDT", Side.BUY, Decimal("0.0001"), Decimal("59000.1"),
                          Decimal("0.0000001"), TS, fee_currency="BNB"), ORDER),
    ev.PositionEvent(TS, Position("BTC/USDT", Decimal("-0.5"), Decimal("60000"), Decimal("59000"), opened_at=TS)),
    ev.EquityEvent(TS, *(Decimal(f"{i}.{i}") for i in range(1, 9))),
    ev.IntentDenied(TS, INTENT, "max_positions", "too many"),
    ev.StateChanged(TS, TradingState.ACTIVE, TradingState.HALTED, "why", "alice"),
    ev.AlertEvent(TS, AlertLevel.EMERGENCY, "emergency_stop", "stop", key="k", alert_id="a-1"),
    ev.AlertAcknowledged(TS, ("a-1", "a-2"), "bob"),
    ev.ProgressEvent(TS, "close_all", "closing", 1, 3, details={"failures": {"BTC/USDT": "refused"}}),
    ev.RiskEvent(TS, (RuleValue("daily_loss", "Daily loss", 0.25, 1.0, "%"),)),
    ev.ConnectionEvent(TS, "binance", False, None, 12.5, "stream lost"),
    ev.ApprovalEvent(TS, "r-1", "pending", INTENT, {"qty": "1.5"}),
    ev.StageEvent(TS, "testnet", "paper", "promoted"),
]


def test_every_event_type_has_a_sample() -> None:
    assert {type(s).__name__ for s in SAMPLES} == set(EVENT_TYPES)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_round_trip_gives_the_same_event(event: ev.Event) -> None:
    text = json.dumps(event_to_json(event), allow_nan=False)
    assert event_from_json(json.loads(text)) == event


def test_money_travels_as_exact_decimal_strings() -> None:
    data = event_to_json(ev.OrderEvent(TS, ORDER))
    assert data["order"]["qty"] == "0.00012345" and data["order"]["price"] == "59000.10"


def test_malformed_messages_are_refused() -> None:
    with pytest.raises(WireError):
        event_from_json({"type": "NoSuchEvent"})
    bad = event_to_json(ev.StateChanged(TS, TradingState.ACTIVE, TradingState.HALTED, "why", "alice"))
    bad["new"] = "EXPLODED"
    with pytest.raises(ValueError):
        event_from_json(bad)
