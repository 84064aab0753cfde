"""The audit log's hash chain, and an independent check of a journal file.

Each audit row stores the previous row's hash and its own:
``hash = sha256(prev_hash + canonical JSON of {id, ts, operator, action, reason, details})``.
Altering a row breaks its hash; removing one leaves an id gap and a prev_hash that no
longer matches; moving content to another id breaks the hash because the id is hashed.
What the chain cannot show alone is the newest rows being cut off the end: compare
`Journal.audit_head()` with a copy kept elsewhere (logs, alerts) for that.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.persistence.journal_schema import canonical_json

GENESIS_HASH = "0" * 64


def audit_hash(
    prev_hash: str, row_id: int, ts: str, operator: str, action: str, reason: str, details: str
) -> str:
    """Hash of one row; `ts` and `details` are the stored texts (ISO UTC, canonical JSON)."""
    body = canonical_json(
        {
            "id": row_id,
            "ts": ts,
            "operator": operator,
            "action": action,
            "reason": reason,
            "details": json.loads(details),
        }
    )
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def append_audit(conn: sqlite3.Connection, insert_sql: str, params: list[Any]) -> None:
    """Chain one row onto the newest in the file.

    Called by the journal's single writer inside a `BEGIN IMMEDIATE` transaction, so the head
    it reads cannot move before the insert, and a reopened journal continues where it stopped.
    """
    ts, operator, action, reason, details = params
    head = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    prev_id, prev_hash = head if head is not None else (0, GENESIS_HASH)
    row_id = prev_id + 1
    digest = audit_hash(prev_hash, row_id, ts, operator, action, reason, details)
    conn.execute(insert_sql, [row_id, ts, operator, action, reason, details, prev_hash, digest])


@dataclass(frozen=True, slots=True)
class AuditVerdict:
    ok: bool
    rows: int
    first_bad_id: int | None
    message: str


def verify_rows(rows: Iterable[Mapping[str, Any] | sqlite3.Row]) -> AuditVerdict:
    """Walk rows in id order; stop at the first one that breaks the chain."""
    expected_id, expected_prev, count = 1, GENESIS_HASH, 0
    for row in rows:
        row_id = row["id"]
        if row_id != expected_id:
            return _bad(count, row_id, f"row id {row_id} follows id {expected_id - 1}: rows removed or moved")
        if row["prev_hash"] != expected_prev:
            return _bad(count, row_id, f"row {row_id} does not link to the row before: removed or reordered")
        try:
            fields = (row["ts"], row["operator"], row["action"], row["reason"], row["details"])
            recomputed = audit_hash(row["prev_hash"], row_id, *fields)
        except (TypeError, ValueError) as exc:  # details no longer JSON, a NULL where text was
            return _bad(count, row_id, f"row {row_id} is unreadable ({exc}): altered")
        if recomputed != row["hash"]:
            return _bad(count, row_id, f"row {row_id} does not match its hash: altered")
        expected_id, expected_prev, count = row_id + 1, row["hash"], count + 1
    return AuditVerdict(True, count, None, f"audit chain intact ({count} rows)")


def _bad(good_rows: int, row_id: int, message: str) -> AuditVerdict:
    return AuditVerdict(False, good_rows, row_id, message)


def open_read_only(path: Path) -> sqlite3.Connection:
    """Open without any chance of writing, and without leaving -wal/-shm files behind.

    With no -wal file the journal is closed (or was never written in WAL mode): read the main
    file as immutable. With one, a writer may be live, so go through SQLite's locking read-only.
    """
    uri = Path(path).resolve().as_uri()
    if not Path(f"{path}-wal").exists():
        return sqlite3.connect(f"{uri}?immutable=1", uri=True)
    return sqlite3.connect(f"{uri}?mode=ro", uri=True)


def verify_audit(path: Path) -> AuditVerdict:
    """Check a journal file's audit chain, read-only (the file is not modified)."""
    path = Path(path)
    if not path.is_file():
        return AuditVerdict(False, 0, None, f"no journal at {path}")
    try:
        conn = open_read_only(path)
    except sqlite3.Error as exc:
        return AuditVerdict(False, 0, None, f"cannot open {path}: {exc}")
    try:
        conn.row_factory = sqlite3.Row
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'")
        if found.fetchone() is None:
            return AuditVerdict(False, 0, None, "the journal has no audit table")
        cursor = conn.execute(
            "SELECT id, ts, operator, action, reason, details, prev_hash, hash FROM audit ORDER BY id"
        )
        return verify_rows(cursor)
    except sqlite3.Error as exc:
        return AuditVerdict(False, 0, None, f"cannot read the audit table: {exc}")
    finally:
        conn.close()
