"""The audit log's keyed hash chain, and an independent check of a journal file.

Each audit row stores the previous row's hash and its own:
``hash = HMAC-SHA256(key, prev_hash + canonical JSON of {id, ts, operator, action, reason, details})``
(scheme ``hmac-sha256``). The key lives in the credential store, not in the journal, so whoever
can edit the journal file cannot recompute the chain after a rewrite. Rows written before
the chain was keyed keep their plain ``sha256`` hashes (scheme ``sha256``, or NULL in files
older than the scheme column); they are accepted only as the prefix recorded when the chain
was first keyed, so plain hashes cannot be used to forge later rows.

The chain alone cannot show rows cut off its end, or all of them deleted: the head is
therefore anchored outside the journal (see `audit_anchor`) and `verify_chain` compares them.
The append-only triggers must still be there: dropping them is reported too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.persistence.audit_anchor import Anchor, AnchorError, read_anchor
from engine.persistence.journal_schema import AUDIT_TRIGGERS, canonical_json

GENESIS_HASH = "0" * 64
LEGACY = "sha256"
KEYED = "hmac-sha256"
_AUDIT_COLUMNS = "id, ts, operator, action, reason, details, prev_hash, hash"


def audit_hash(
    prev_hash: str,
    row_id: int,
    ts: str,
    operator: str,
    action: str,
    reason: str,
    details: str,
    key: bytes | None = None,
) -> str:
    """Hash of one row; `ts` and `details` are the stored texts (ISO UTC, canonical JSON).

    Keyed (HMAC-SHA256) when `key` is given, plain SHA-256 for legacy rows.
    """
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
    message = (prev_hash + body).encode("utf-8")
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def append_audit(conn: sqlite3.Connection, insert_sql: str, params: list[Any], key: bytes | None = None) -> int:
    """Chain one row onto the newest in the file; returns its id.

    Called inside a `BEGIN IMMEDIATE` transaction (by the journal's writer, or by a synchronous
    durable append), so the head it reads cannot move before the insert.
    """
    ts, operator, action, reason, details = params
    head = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    prev_id, prev_hash = head if head is not None else (0, GENESIS_HASH)
    row_id = prev_id + 1
    digest = audit_hash(prev_hash, row_id, ts, operator, action, reason, details, key)
    scheme = LEGACY if key is None else KEYED
    conn.execute(insert_sql, [row_id, ts, operator, action, reason, details, prev_hash, digest, scheme])
    return int(row_id)


@dataclass(frozen=True, slots=True)
class AuditVerdict:
    ok: bool
    rows: int
    first_bad_id: int | None
    message: str
    legacy_rows: int = 0  # rows hashed before the chain was keyed (plain SHA-256)
    anchored: bool = False  # the head was compared with the anchor kept outside the journal


def verify_rows(
    rows: Iterable[Mapping[str, Any] | sqlite3.Row], key: bytes | None = None, legacy_limit: int | None = None
) -> AuditVerdict:
    """Walk rows in id order; stop at the first one that breaks the chain.

    `legacy_limit`: how many leading rows may be plain (unkeyed), as recorded by the anchor.
    """
    expected_id, expected_prev, count, legacy, keyed_seen = 1, GENESIS_HASH, 0, 0, False
    for row in rows:
        row_id = row["id"]
        if row_id != expected_id:
            return _bad(count, row_id, f"row id {row_id} follows id {expected_id - 1}: rows removed or moved")
        if row["prev_hash"] != expected_prev:
            return _bad(count, row_id, f"row {row_id} does not link to the row before: removed or reordered")
        scheme = row["scheme"] or LEGACY
        if scheme == LEGACY:
            if keyed_seen or (legacy_limit is not None and row_id > legacy_limit):
                return _bad(count, row_id, f"row {row_id} carries a plain hash where the chain is keyed: rewritten")
            row_key = None
        elif scheme == KEYED:
            if key is None:
                return _bad(count, row_id, f"row {row_id} is keyed and the audit key is not available: cannot check")
            keyed_seen, row_key = True, key
        else:
            return _bad(count, row_id, f"row {row_id} has an unknown hash scheme {scheme!r}: altered")
        try:
            fields = (row["ts"], row["operator"], row["action"], row["reason"], row["details"])
            recomputed = audit_hash(row["prev_hash"], row_id, *fields, key=row_key)
        except (TypeError, ValueError) as exc:  # details no longer JSON, a NULL where text was
            return _bad(count, row_id, f"row {row_id} is unreadable ({exc}): altered")
        if not hmac.compare_digest(recomputed, str(row["hash"])):
            return _bad(count, row_id, f"row {row_id} does not match its hash: altered")
        expected_id, expected_prev, count = row_id + 1, row["hash"], count + 1
        legacy += scheme == LEGACY
    return AuditVerdict(True, count, None, f"audit chain intact ({count} rows)", legacy_rows=legacy)


def _bad(good_rows: int, row_id: int | None, message: str, anchored: bool = False) -> AuditVerdict:
    return AuditVerdict(False, good_rows, row_id, message, anchored=anchored)


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
    """Check a journal's chain without key or anchor: legacy files, and the row links of any file."""
    return verify_chain(path, key=None, anchor_path=None)


def verify_chain(path: Path, key: bytes | None, anchor_path: Path | None) -> AuditVerdict:
    """Check a journal file's audit chain, read-only (the file is not modified).

    With `key` and `anchor_path` (what the engine and `audit verify` use), a rewrite with
    recomputed hashes, an inserted or deleted row, a cut-off tail, an emptied table, a dropped
    append-only trigger and a removed or edited anchor are all reported, naming the first bad row.
    """
    path = Path(path)
    if not path.is_file():
        return AuditVerdict(False, 0, None, f"no journal at {path}")
    try:
        conn = open_read_only(path)
    except sqlite3.Error as exc:
        return AuditVerdict(False, 0, None, f"cannot open {path}: {exc}")
    try:
        conn.row_factory = sqlite3.Row
        return _verify_open(conn, key, anchor_path)
    except sqlite3.Error as exc:
        return AuditVerdict(False, 0, None, f"cannot read the audit table: {exc}")
    finally:
        conn.close()


def _verify_open(conn: sqlite3.Connection, key: bytes | None, anchor_path: Path | None) -> AuditVerdict:
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")}
    if "audit" not in names:
        return AuditVerdict(False, 0, None, "the journal has no audit table")
    meta = _meta(conn, names)
    anchor: Anchor | None = None
    if anchor_path is not None and key is not None:
        try:
            anchor = read_anchor(anchor_path, key)
        except AnchorError as exc:
            return _bad(0, None, str(exc))
        if anchor is None and (meta.get("audit_anchored") == "1" or _has_keyed_rows(conn)):
            return _bad(0, None, f"the audit anchor {anchor_path} is missing: the chain's end cannot be checked")
        if anchor is not None and meta.get("journal_id") and anchor.journal_id != meta["journal_id"]:
            return _bad(0, None, f"the audit anchor belongs to journal {anchor.journal_id}, "
                                 f"not to this journal {meta['journal_id']}")  # fmt: skip
    columns = {r[1] for r in conn.execute("PRAGMA table_info(audit)")}
    scheme = "scheme" if "scheme" in columns else "NULL AS scheme"
    cursor = conn.execute(f"SELECT {_AUDIT_COLUMNS}, {scheme} FROM audit ORDER BY id")
    verdict = verify_rows(cursor, key, anchor.legacy_rows if anchor is not None else None)
    if not verdict.ok:
        return verdict
    dropped = [t for t in AUDIT_TRIGGERS if t not in names]
    if dropped and (meta.get("audit_triggers") == "1" or anchor is not None):
        return _bad(verdict.rows, None, f"the append-only trigger {dropped[0]} was dropped: the audit table "
                                        "could be edited in place")  # fmt: skip
    if anchor is None:
        note = " (not anchored: give the key and anchor to check the end)" if anchor_path is None else ""
        return AuditVerdict(True, verdict.rows, None, verdict.message + note, legacy_rows=verdict.legacy_rows)
    return _compare_with_anchor(conn, verdict, anchor)


def _compare_with_anchor(conn: sqlite3.Connection, verdict: AuditVerdict, anchor: Anchor) -> AuditVerdict:
    if verdict.rows < anchor.rows:
        first_missing = verdict.rows + 1
        return _bad(verdict.rows, first_missing,
                    f"rows {first_missing}..{anchor.rows} are missing: the chain ends at row {verdict.rows} "
                    f"but the anchor records {anchor.rows} rows (deleted tail)", anchored=True)  # fmt: skip
    if anchor.rows:
        row = conn.execute("SELECT hash FROM audit WHERE id = ?", [anchor.rows]).fetchone()
        if row is None or not hmac.compare_digest(str(row["hash"]), anchor.head):
            return _bad(verdict.rows, anchor.rows,
                        f"row {anchor.rows} differs from the anchored head: rewritten", anchored=True)  # fmt: skip
    legacy = verdict.legacy_rows
    text = f"audit chain intact ({verdict.rows} rows, keyed, anchored at row {anchor.rows})"
    if legacy:
        text += f"; the first {legacy} rows predate keying and were checked as a plain SHA-256 chain"
    return AuditVerdict(True, verdict.rows, None, text, legacy_rows=legacy, anchored=True)


def _meta(conn: sqlite3.Connection, names: set[str]) -> dict[str, str]:
    if "meta" not in names:
        return {}
    return {str(r[0]): str(r[1]) for r in conn.execute("SELECT key, value FROM meta")}


def _has_keyed_rows(conn: sqlite3.Connection) -> bool:
    columns = {r[1] for r in conn.execute("PRAGMA table_info(audit)")}
    if "scheme" not in columns:
        return False
    return conn.execute("SELECT 1 FROM audit WHERE scheme = ? LIMIT 1", [KEYED]).fetchone() is not None
