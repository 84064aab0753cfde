"""The journal's records: every record type round trips exactly across a reopen, reads filter and
limit, a fill recorded twice counts once, the latest order and approval state wins, values that
cannot be stored fail at the call, and a journal written before a column existed still opens.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from engine.core.model import AlertLevel, ClosedTrade, Liquidity, OrderIntent, OrderStatus, OrderType, Side
from engine.persistence.journal import EquityPoint, Journal
from tests.journal_rig import at, make_fill, make_order


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "journal.sqlite"


@pytest.fixture
def journal(path: Path) -> Iterator[Journal]:
    with Journal(path) as j:
        yield j


# --- round trips ---------------------------------------------------------------------------------


def test_every_record_type_round_trips_exactly_across_reopen(path: Path) -> None:
    order, fill = make_order(), make_fill()
    trade = ClosedTrade(
        symbol="ETH/USDT",
        side=Side.SELL,
        qty=Decimal("1.500"),
        entry_price=Decimal("3000.01"),
        exit_price=Decimal("2990.00"),
        opened_at=at(10),
        closed_at=at(70),
        pnl=Decimal("15.0150"),
        fees=Decimal("0.0001"),
        tag="t",
        strategy="ema",
        extra={"exit": "take_profit"},
    )
    intent = OrderIntent(
        symbol="BTC/USDT",
        side=Side.BUY,
        qty=Decimal("0.25"),
        order_type=OrderType.LIMIT,
        price=Decimal("64000.5"),
        stop_loss=Decimal("63000"),
        take_profit=Decimal("66000.00"),
        reason="signal",
        tag="x",
        strategy="ema",
        max_hold_s=3600.0,
    )
    plus_two = timezone(timedelta(hours=2))
    with Journal(path) as j:
        j.record_order(order)
        j.record_fill(fill)
        j.record_trade(trade)
        j.record_equity(
            at(3), Decimal("10000.01"), Decimal("9000"), Decimal("1000.01"), Decimal("0"), Decimal("-0.0125")
        )
        j.record_alert(at(4), AlertLevel.CRITICAL, "daily_loss", "Daily loss at 80%", "loss")
        j.record_denial(at(5), intent, "notional", "too big")
        j.record_incident(at(6).astimezone(plus_two), "binance", "disconnect", "socket closed")
        j.record_approval(
            "r1",
            at(7),
            "approved",
            "BTC/USDT",
            Side.BUY,
            Decimal("0.25"),
            Decimal("16000.125"),
            "alice",
            3.5,
            {"note": "ok"},
        )
        j.set_state("trading_state", "HALTED")
        j.set_state("limits", {"max": Decimal("0.02"), "symbols": ["BTC/USDT"]})
        j.audit(at(8), "alice", "emergency_stop", "test", {"orders": 3})

    with Journal(path) as j:
        assert j.orders() == [order]
        assert j.order("o1") == order and j.order("missing") is None
        got = j.fills()[0]
        assert got == fill
        assert str(got.fee) == "-1E-13" and str(got.qty) == "1E-8"  # exact Decimal text, not floats
        assert str(j.orders()[0].qty) == "0.10000000" and str(j.orders()[0].price) == "1E+2"
        assert isinstance(got.side, Side) and got.liquidity is Liquidity.MAKER
        assert got.ts == at(2) and got.ts.tzinfo is not None and got.ts.utcoffset() == timedelta(0)
        assert j.trades() == [trade]
        assert j.equity_curve() == [EquityPoint(at(3), Decimal("10000.01"), Decimal("-0.0125"))]
        (alert,) = j.alerts()
        assert (alert.ts, alert.level, alert.code, alert.message, alert.key) == (
            at(4),
            AlertLevel.CRITICAL,
            "daily_loss",
            "Daily loss at 80%",
            "loss",
        )
        (denial,) = j.denials(10)
        assert (denial.ts, denial.intent, denial.code, denial.message) == (
            at(5),
            intent,
            "notional",
            "too big",
        )
        (incident,) = j.incidents()
        assert incident.ts == at(6) and incident.ts.utcoffset() == timedelta(0)  # same instant, stored as UTC
        assert (incident.venue, incident.kind, incident.message) == ("binance", "disconnect", "socket closed")
        (approval,) = j.approvals()
        assert approval.notional == Decimal("16000.125") and approval.side is Side.BUY
        assert (approval.request_id, approval.ts, approval.status, approval.operator) == (
            "r1",
            at(7),
            "approved",
            "alice",
        )
        assert approval.latency_s == 3.5 and approval.details == {"note": "ok"}
        assert j.get_state("trading_state") == "HALTED"
        assert j.get_state("limits") == {"max": "0.02", "symbols": ["BTC/USDT"]}
        assert j.get_state("absent", default=7) == 7
        (row,) = j.audit_rows()
        assert (row["ts"], row["action"], row["details"]) == (at(8), "emergency_stop", {"orders": 3})
        assert j.last_fill_ts() == at(2)


def test_since_filters_and_latest_limits(journal: Journal) -> None:
    for i in range(5):
        journal.record_fill(make_fill(f"f{i}", ts=at(i)))
        journal.record_equity(at(i), Decimal(i), Decimal(0), Decimal(0), Decimal(0), Decimal(0))
        journal.record_alert(at(i), AlertLevel.INFO, f"a{i}", "m")
        journal.record_incident(at(i), "sim", "error", f"e{i}")
    assert journal.flush()
    assert [f.fill_id for f in journal.fills(since=at(3))] == ["f3", "f4"]
    assert [p.equity for p in journal.equity_curve(since=at(4))] == [Decimal(4)]
    assert [a.code for a in journal.alerts(limit=2)] == ["a3", "a4"]  # the newest two, oldest first
    assert [i.message for i in journal.incidents(since=at(2))] == ["e2", "e3", "e4"]
    assert journal.last_fill_ts() == at(4)


def test_empty_journal_reads(journal: Journal) -> None:
    assert journal.orders() == [] and journal.fills() == [] and journal.trades() == []
    assert journal.last_fill_ts() is None and journal.equity_curve() == [] and journal.audit_rows() == []
    assert journal.audit_head()[0] == 0


# --- upsert and dedup ----------------------------------------------------------------------------


def test_fill_recorded_twice_counts_once_even_across_reopen(path: Path) -> None:
    with Journal(path) as j:
        j.record_fill(make_fill("f1"))
        j.record_fill(make_fill("f1", qty=Decimal("99")))  # a replayed venue message
        j.record_fill(make_fill("f2"))
    with Journal(path) as j:
        j.record_fill(make_fill("f1", qty=Decimal("42")))
        assert j.flush()
        fills = j.fills()
    assert [f.fill_id for f in fills] == ["f1", "f2"]
    assert fills[0].qty == Decimal("0.00000001")  # the first record stands


def test_order_upsert_latest_state_wins(journal: Journal) -> None:
    journal.record_order(make_order("a", status=OrderStatus.PENDING, filled_qty=Decimal(0)))
    journal.record_order(make_order("b", status=OrderStatus.OPEN))
    journal.record_order(make_order("a", status=OrderStatus.PARTIALLY_FILLED, filled_qty=Decimal("0.05")))
    journal.record_order(make_order("a", status=OrderStatus.FILLED, filled_qty=Decimal("0.10000000")))
    assert journal.flush()
    orders = journal.orders()
    assert [o.client_id for o in orders] == ["a", "b"]  # first-recorded order kept
    assert orders[0].status is OrderStatus.FILLED and orders[0].filled_qty == Decimal("0.1")
    assert [o.client_id for o in journal.orders(open_only=True)] == ["b"]


def test_approval_upsert_and_status_filter(journal: Journal) -> None:
    journal.record_approval("r1", at(0), "pending", "BTC/USDT", Side.BUY, Decimal("1"), Decimal("10"))
    journal.record_approval("r2", at(1), "pending", "ETH/USDT", None, None, None)
    journal.record_approval(
        "r1", at(2), "rejected", "BTC/USDT", Side.BUY, Decimal("1"), Decimal("10"), "bob", 4.0
    )
    assert journal.flush()
    assert [(a.request_id, a.status) for a in journal.approvals()] == [("r2", "pending"), ("r1", "rejected")]
    (r2,) = journal.approvals(status="pending")
    assert r2.side is None and r2.qty is None and r2.details == {}


def test_values_that_cannot_be_stored_fail_at_the_call(journal: Journal) -> None:
    with pytest.raises(TypeError):
        journal.set_state("k", object())
    with pytest.raises(ValueError, match="naive"):
        journal.audit(datetime(2024, 1, 1), "op", "act", "why")
    assert journal.flush() and journal.errors == 0


def test_an_old_journal_missing_a_column_opens_and_reads(path: Path) -> None:
    with Journal(path) as j:
        j.record_order(make_order("old"))
    conn = sqlite3.connect(path)
    conn.execute('ALTER TABLE orders DROP COLUMN "external"')  # as written before the field existed
    conn.commit()
    conn.close()
    with Journal(path) as j:
        (order,) = j.orders()
    assert order.client_id == "old" and order.external is False
