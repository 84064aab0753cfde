"""The SQLite journal: exact round trips, dedup, the audit chain and its verification, flushing,
concurrent reads, and a writer that survives bad rows."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from engine.core.model import (
    AlertLevel,
    ClosedTrade,
    Fill,
    Liquidity,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    Side,
)
from engine.persistence.journal import EquityPoint, Journal, verify_audit

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


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "journal.sqlite"


@pytest.fixture
def journal(path: Path) -> Iterator[Journal]:
    with Journal(path) as j:
        yield j


def tamper(path: Path, *statements: str) -> None:
    """Edit the file the way someone covering their tracks would: triggers dropped first."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DROP TRIGGER IF EXISTS audit_no_update")
        conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
        for sql in statements:
            conn.execute(sql)
    conn.close()


def write_audit_rows(path: Path, count: int) -> None:
    with Journal(path) as j:
        for i in range(count):
            j.audit(at(i), "alice", f"action{i}", f"reason {i}", {"n": i, "px": Decimal("1.10")})


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


# --- the audit chain -----------------------------------------------------------------------------


def test_audit_chain_continues_across_reopen(path: Path) -> None:
    write_audit_rows(path, 2)
    with Journal(path) as j:
        head = j.audit_head()
        j.audit(at(9), "bob", "resume", "checked", {})
        assert j.flush()
        rows = j.audit_rows()
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert rows[2]["prev_hash"] == rows[1]["hash"] == head[1]
    assert verify_audit(path).ok and verify_audit(path).rows == 3


def test_audit_rows_chain_in_order_under_concurrent_enqueues(path: Path) -> None:
    with Journal(path) as j:

        def worker(n: int) -> None:
            for i in range(200):
                j.audit(at(i), f"op{n}", "act", "why", {"i": i})

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(worker, range(4)))
        assert j.flush()
    verdict = verify_audit(path)
    assert verdict.ok and verdict.rows == 800


def test_two_journals_on_one_file_keep_one_chain(path: Path) -> None:
    """The console and a CLI report may hold the same file; audit rows must still chain."""
    with Journal(path) as a, Journal(path) as b:
        for i in range(20):
            (a if i % 2 else b).audit(at(i), "op", "act", str(i), {})
            if i % 3 == 0:
                assert a.flush() and b.flush()
    assert verify_audit(path).rows == 20 and verify_audit(path).ok


def test_audit_table_refuses_ordinary_updates_and_deletes(path: Path) -> None:
    write_audit_rows(path, 1)
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit SET reason = 'nothing happened'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit")
    conn.close()


def test_verify_detects_an_altered_row(path: Path) -> None:
    write_audit_rows(path, 5)
    tamper(path, "UPDATE audit SET reason = 'nothing to see' WHERE id = 3")
    verdict = verify_audit(path)
    assert not verdict.ok and verdict.first_bad_id == 3 and verdict.rows == 2
    assert "altered" in verdict.message


def test_verify_detects_altered_details_and_rehashed_row(path: Path) -> None:
    write_audit_rows(path, 4)
    # Recomputing the altered row's own hash is not enough: the next row no longer links to it.
    conn = sqlite3.connect(path)
    row = conn.execute(
        "SELECT id, ts, operator, action, reason, prev_hash FROM audit WHERE id = 2"
    ).fetchone()
    conn.close()
    from engine.persistence.audit import audit_hash

    forged = audit_hash(row[5], 2, row[1], row[2], row[3], row[4], '{"n":1,"px":"9.99"}')
    tamper(path, f"""UPDATE audit SET details = '{{"n":1,"px":"9.99"}}', hash = '{forged}' WHERE id = 2""")
    verdict = verify_audit(path)
    assert not verdict.ok and verdict.first_bad_id == 3


def test_verify_detects_a_removed_row(path: Path) -> None:
    write_audit_rows(path, 5)
    tamper(path, "DELETE FROM audit WHERE id = 3")
    verdict = verify_audit(path)
    assert not verdict.ok and verdict.first_bad_id == 4 and "removed" in verdict.message


def test_verify_detects_the_first_row_removed(path: Path) -> None:
    write_audit_rows(path, 3)
    tamper(path, "DELETE FROM audit WHERE id = 1")
    verdict = verify_audit(path)
    assert not verdict.ok and verdict.first_bad_id == 2


def test_verify_detects_removal_with_renumbering(path: Path) -> None:
    write_audit_rows(path, 4)
    tamper(path, "DELETE FROM audit WHERE id = 2", "UPDATE audit SET id = id - 1 WHERE id > 2")
    verdict = verify_audit(path)
    assert not verdict.ok and verdict.first_bad_id == 2


def test_verify_detects_reordered_rows(path: Path) -> None:
    write_audit_rows(path, 5)
    tamper(
        path,
        "UPDATE audit SET id = -2 WHERE id = 2",
        "UPDATE audit SET id = 2 WHERE id = 3",
        "UPDATE audit SET id = 3 WHERE id = -2",
    )
    verdict = verify_audit(path)
    assert not verdict.ok and verdict.first_bad_id == 2


def test_verify_is_read_only_and_leaves_no_files(path: Path) -> None:
    write_audit_rows(path, 3)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    verdict = verify_audit(path)
    assert verdict.ok and verdict.rows == 3 and verdict.first_bad_id is None
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_verify_on_a_live_journal_sees_committed_rows(journal: Journal, path: Path) -> None:
    journal.audit(at(0), "alice", "start", "boot")
    assert journal.flush()
    verdict = verify_audit(path)
    assert verdict.ok and verdict.rows == 1


def test_verify_reports_a_missing_journal(tmp_path: Path) -> None:
    verdict = verify_audit(tmp_path / "nope.sqlite")
    assert not verdict.ok and verdict.rows == 0


# --- flush, close, WAL ---------------------------------------------------------------------------


def test_flush_makes_everything_before_it_visible_to_other_connections(journal: Journal, path: Path) -> None:
    for i in range(1000):
        journal.record_equity(at(i), Decimal(i), Decimal(0), Decimal(0), Decimal(0), Decimal(0))
    journal.record_fill(make_fill())
    assert journal.flush(timeout=10)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM equity").fetchone()[0] == 1000
    assert conn.execute("SELECT COUNT(*) FROM fills").fetchone()[0] == 1
    conn.close()


def test_flush_times_out_while_the_disk_is_held_and_callers_never_wait(journal: Journal, path: Path) -> None:
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    try:
        for i in range(1000):
            journal.record_fill(make_fill(f"f{i}"))  # enqueue only: returns although the writer is stuck
        assert journal.flush(timeout=0.2) is False
        assert journal.fills() == []
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    assert journal.flush(timeout=10)
    assert len(journal.fills()) == 1000 and journal.errors == 0


def test_close_commits_queued_rows_and_refuses_new_ones(path: Path) -> None:
    j = Journal(path)
    for i in range(500):
        j.record_fill(make_fill(f"f{i}"))
    j.close()
    j.close()  # idempotent
    assert j.closed and j.flush()
    with pytest.raises(RuntimeError, match="closed"):
        j.record_fill(make_fill("late"))
    with Journal(path) as again:
        assert len(again.fills()) == 500


def test_wal_mode_is_on(journal: Journal, path: Path) -> None:
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


# --- concurrency and robustness ------------------------------------------------------------------


def test_reads_from_other_threads_see_consistent_prefixes_while_writing(journal: Journal) -> None:
    total = 20_000
    done = threading.Event()

    def produce() -> None:
        for i in range(total):
            journal.record_equity(at(i), Decimal(i), Decimal(0), Decimal(0), Decimal(0), Decimal(0))
        journal.flush(timeout=30)
        done.set()

    def read_until_done() -> list[int]:
        seen: list[int] = []
        while not done.is_set():
            curve = journal.equity_curve()
            assert [p.equity for p in curve] == [Decimal(i) for i in range(len(curve))]  # no holes
            seen.append(len(curve))
        return seen

    producer = threading.Thread(target=produce)
    with ThreadPoolExecutor(2) as pool:
        readers = [pool.submit(read_until_done) for _ in range(2)]
        producer.start()
        producer.join(timeout=60)
        counts = [r.result(timeout=60) for r in readers]
    for seen in counts:
        assert seen == sorted(seen)  # never goes backwards
    assert len(journal.equity_curve()) == total


def test_a_bad_row_is_counted_and_the_writer_keeps_going(path: Path) -> None:
    reported: list[str] = []
    with Journal(path, on_error=reported.append) as j:
        j.record_fill(make_fill("good1"))
        j.record_fill(make_fill("naive", ts=datetime(2024, 1, 1)))  # a bug upstream: no timezone
        j.record_fill(make_fill("good2"))
        assert j.flush() is False  # something before the flush was not written
        assert j.errors == 1 and "naive" in (j.last_error or "")
        assert reported and "naive" in reported[0]
        j.record_fill(make_fill("good3"))
        assert j.flush() is True
        assert [f.fill_id for f in j.fills()] == ["good1", "good2", "good3"]


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


def test_fills_and_audit_rows_commit_with_full_sync(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A power cut may lose the last equity samples, never an acknowledged fill or audit row."""
    statements: list[str] = []
    real_connect = sqlite3.connect

    def traced_connect(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = real_connect(*args, **kwargs)  # type: ignore[arg-type]
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced_connect)
    with Journal(path) as j:

        def sync_of_next_commit(record: Callable[[], None]) -> str:
            statements.clear()
            record()
            assert j.flush()
            pragmas = [s for s in statements if "synchronous" in s]
            return pragmas[-1] if pragmas else "unchanged"

        plain = sync_of_next_commit(lambda: j.record_incident(at(0), "sim", "x", "y"))
        assert plain in ("unchanged", "PRAGMA synchronous = NORMAL")
        assert sync_of_next_commit(lambda: j.record_fill(make_fill())) == "PRAGMA synchronous = FULL"
        assert sync_of_next_commit(lambda: j.set_state("k", 1)) == "PRAGMA synchronous = NORMAL"
        assert sync_of_next_commit(lambda: j.audit(at(1), "op", "a", "r")) == "PRAGMA synchronous = FULL"


def test_a_row_failing_inside_the_transaction_spares_the_batch_and_the_chain(path: Path) -> None:
    with Journal(path) as j:
        j.audit(at(0), "op", "first", "r")
        j._put("audit", [at(1).isoformat(), "op", "broken", "r", "{not json"])  # a corrupted queued row
        j.audit(at(2), "op", "second", "r")
        j.record_fill(make_fill())
        assert j.flush() is False and j.errors == 1
        j.audit(at(3), "op", "third", "r")
        assert j.flush()
        assert [r["action"] for r in j.audit_rows()] == ["first", "second", "third"]
        assert len(j.fills()) == 1
    assert verify_audit(path).ok
