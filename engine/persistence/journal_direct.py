"""The journal's synchronous durable writes: the halt and the emergency-stop audit row.

They do not queue: each commits on its own connection with synchronous=FULL before returning,
so they work while the queue is full or the writer is retrying, and survive a SIGKILL (or a
power cut) the moment they return. Mixed into Journal.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.persistence import journal_schema as schema
from engine.persistence.audit import append_audit
from engine.persistence.audit_anchor import AnchorKeeper
from engine.persistence.errors import JournalWriteError, classify_sqlite_error
from engine.persistence.journal_schema import canonical_json, dt_to_text


class DirectWrites:
    """Needs `path`, `_closed`, `_audit_key`, `_anchor`, `_direct`, `_direct_lock`, `_next_state_seq`."""

    path: Path
    _closed: bool
    _audit_key: bytes | None
    _anchor: AnchorKeeper | None
    _direct: sqlite3.Connection | None
    _direct_lock: threading.Lock

    def _next_state_seq(self) -> int:
        raise NotImplementedError

    def write_state_now(self, key: str, value: Any) -> None:
        """Commit one state value with synchronous=FULL before returning, bypassing the queue.

        Works while the queue is full or the writer is retrying; a queued older value for the same
        key never overwrites it. Raises JournalWriteError (with `.cause`) if it did not commit.
        Blocks for a few milliseconds (an fsync): call it where durability matters more than that.
        """
        text = canonical_json(value)
        self._direct_write(f"state {key!r}", lambda conn: conn.execute(
            schema.SQL["state"], [key, text, self._next_state_seq()]))  # fmt: skip

    def audit_now(
        self, ts: datetime, operator: str, action: str, reason: str, details: Mapping[str, Any] | None = None
    ) -> int:
        """Append an audit row and commit it (synchronous=FULL) before returning; returns its id.

        Chains onto whatever the writer committed before; rows still queued chain after it.
        Raises JournalWriteError if it did not commit.
        """
        params = [dt_to_text(ts), operator, action, reason, canonical_json(dict(details or {}))]
        row_id = self._direct_write(
            f"audit {action!r}", lambda conn: append_audit(conn, schema.SQL["audit"], params, self._audit_key)
        )
        if self._anchor is not None:
            with self._direct_lock, contextlib.suppress(OSError):
                assert self._direct is not None
                self._anchor.advance(self._direct)
        return int(row_id)

    def _direct_write(self, what: str, write: Callable[[sqlite3.Connection], Any]) -> Any:
        if self._closed:
            raise JournalWriteError(f"{what} not written: the journal {self.path} is closed")
        with self._direct_lock:
            try:
                conn = self._direct_connection()
                conn.execute("BEGIN IMMEDIATE")
                result = write(conn)
                conn.execute("COMMIT")
                return result
            except sqlite3.Error as exc:
                if self._direct is not None:
                    with contextlib.suppress(sqlite3.Error):
                        if self._direct.in_transaction:
                            self._direct.execute("ROLLBACK")
                cause = classify_sqlite_error(exc, self.path, doing="writing")
                raise JournalWriteError(f"{what} not written: {cause}", cause) from None

    def _direct_connection(self) -> sqlite3.Connection:
        if self._direct is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 5000")
            conn.execute("PRAGMA synchronous = FULL")
            self._direct = conn
        return self._direct
