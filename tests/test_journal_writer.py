"""The journal's writer thread: a flush makes everything before it visible and never makes callers
wait on a held disk, close commits what is queued, WAL is on, readers on other threads see
consistent prefixes, a bad row is counted while the writer keeps going, fills and audit rows
commit with full sync.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from engine.persistence.journal import Journal, verify_audit
from tests.journal_rig import at, make_fill


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "journal.sqlite"


@pytest.fixture
def journal(path: Path) -> Iterator[Journal]:
    with Journal(path) as j:
        yield j


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
