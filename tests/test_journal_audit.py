"""The journal's audit table: one hash chain across reopens, concurrent writers and two journals on
one file; ordinary updates and deletes refused; `verify_audit` finds every altered, removed or
reordered row, reads only, and reports a missing journal.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest

from engine.persistence.journal import Journal, verify_audit
from tests.journal_rig import at


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
