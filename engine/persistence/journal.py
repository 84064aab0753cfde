"""SQLite journal: orders, fills, trades, equity, alerts, denials, incidents, approvals, state, audit.

The asyncio loop must never wait on the disk, so every write is an O(1) append to a bounded
buffer drained by exactly one writer thread (see `journal_writer`). A batch holding a fill or
an audit row commits with `synchronous=FULL` (it survives a power cut), the rest with NORMAL.
Readers use their own per-thread connections (see `journal_reads`).

Nothing fails silently: a full buffer or a failing disk calls the `on_failure` callbacks
once and keeps the rows in memory until they can be written; `lost_rows()` names what never
was. The halt and the emergency-stop audit row do not queue at all: `write_state_now` and
`audit_now` commit on their own connection before they return.

Damaged files raise the classes of `engine.persistence.errors` at open; the journal's identity
(does this file belong where the sidecar says?) is checked by `journal_identity.open_journal`.
"""

from __future__ import annotations

import atexit
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlite_utils

from engine.core.model import AlertLevel, ClosedTrade, Fill, Order, OrderIntent, Side
from engine.persistence import journal_schema as schema
from engine.persistence.audit import AuditVerdict, verify_audit, verify_chain
from engine.persistence.audit_anchor import AnchorKeeper
from engine.persistence.errors import JournalError, classify_sqlite_error
from engine.persistence.journal_direct import DirectWrites
from engine.persistence.journal_files import check_journal_file, prepare_journal_file
from engine.persistence.journal_reads import JournalReads
from engine.persistence.journal_schema import (
    AlertRecord,
    ApprovalRecord,
    DenialRecord,
    EquityPoint,
    IncidentRecord,
    canonical_json,
    dt_to_text,
)
from engine.persistence.journal_writer import JournalWriter

__all__ = [
    "AlertRecord",
    "ApprovalRecord",
    "AuditVerdict",
    "DenialRecord",
    "EquityPoint",
    "IncidentRecord",
    "Journal",
    "verify_audit",
]

log = logging.getLogger(__name__)

DEFAULT_CAPACITY = 20_000  # rows; a simulated day at --speed max stays well below it when it awaits room


class Journal(JournalReads, DirectWrites):
    def __init__(
        self,
        path: Path,
        *,
        on_error: Callable[[str], None] | None = None,
        max_batch: int = 10_000,
        capacity: int = DEFAULT_CAPACITY,
        retry_s: float = 1.0,
        audit_key: bytes | None = None,
        anchor_path: Path | None = None,
        new_journal_id: str | None = None,
    ) -> None:
        """Open (creating if needed) the journal.

        `on_error` is called (on the writer thread) with every error message; `on_failure`
        callbacks once per failure. `audit_key` keys the audit chain (HMAC-SHA256) and
        `anchor_path` keeps its head outside the journal; without them rows are plain SHA-256
        (tests, and command-line readers that never audit). `new_journal_id` is the id a journal
        without one gets (else a random one); `journal_identity.open_journal` wires all this.
        Raises a JournalError subclass for a damaged, read-only or full journal.
        """
        self.path = Path(path)
        self._new_journal_id = new_journal_id
        self._audit_key = audit_key
        self._anchor_path = anchor_path
        self._anchor: AnchorKeeper | None = None
        self.journal_id = ""
        self.anchor_note = ""
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._direct: sqlite3.Connection | None = None
        self._direct_lock = threading.Lock()
        self._state_seq = 0
        self._seq_lock = threading.Lock()
        self._closed = False
        self._close_lock = threading.Lock()
        self._lost_at_close: dict[str, int] = {}
        self._startup_error: BaseException | None = None
        check_journal_file(self.path)  # not a database, truncated, unwritable: one clear error each
        self._writer = JournalWriter(
            self.path, capacity=capacity, max_batch=max_batch, retry_s=retry_s,
            audit_key=audit_key, anchor=None, on_error=on_error,
        )  # fmt: skip
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name=f"journal-writer:{self.path.name}", daemon=True
        )
        self._thread.start()
        started.wait()
        if self._startup_error is not None:
            self._thread.join()
            raise self._startup_error
        if self.anchor_note:
            log.warning("journal %s: %s", self.path, self.anchor_note)
        atexit.register(self.close)  # a forgotten close() must not lose the queued rows

    # --- health -------------------------------------------------------------------------------

    @property
    def errors(self) -> int:
        """Rows that could not be written since opening (rejected, or lost at close)."""
        return self._writer.errors

    @property
    def last_error(self) -> str | None:
        return self._writer.last_error

    @property
    def backlog(self) -> int:
        """Rows accepted and not yet committed (queued, or held after a failed write)."""
        return self._writer.backlog

    @property
    def capacity(self) -> int:
        return self._writer.capacity

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def failure(self) -> str | None:
        """Why writes are held back right now (disk full, queue full...), or None."""
        return self._writer.failure

    @property
    def healthy(self) -> bool:
        """True when nothing is held back and nothing was lost."""
        return self._writer.failure is None and not self.lost_rows()

    def lost_rows(self) -> dict[str, int]:
        """Rows that will never be written, by kind ("fill": 3, ...): rejected ones, and at close the rest."""
        return self._writer.lost()

    def unwritten_rows(self) -> dict[str, int]:
        """Rows accepted but not committed yet, by kind: held in memory while writes fail."""
        return self._writer.unwritten()

    def on_failure(self, callback: Callable[[str], None]) -> None:
        """`callback(reason)` once each time the journal goes from healthy to failing, and on the
        first rejected row. Runs on the writer thread (write errors) or on the enqueuing thread
        (a full queue): from asyncio, hop with `loop.call_soon_threadsafe`. Must not block."""
        self._writer.add_failure_callback(callback)

    def on_recovery(self, callback: Callable[[], None]) -> None:
        """`callback()` when held rows were written after a failure (same threads as on_failure)."""
        self._writer.add_recovery_callback(callback)

    async def wait_for_room(self) -> None:
        """Return when the backlog is at most half the capacity: a simulator awaits this before each
        step so it never outruns the writer. While writes fail it waits until they succeed again."""
        await self._writer.wait_for_room()

    @property
    def has_room(self) -> bool:
        return self._writer.backlog <= self._writer.low_water

    # --- writes (enqueue only) ----------------------------------------------------------------

    def _put(self, op: str, payload: Any) -> None:
        if self._closed:
            raise RuntimeError(f"journal {self.path} is closed")
        self._writer.put(op, payload)

    def record_order(self, order: Order) -> None:
        """Insert or replace by client_id: the latest recorded state wins."""
        self._put("order", order)

    def record_fill(self, fill: Fill) -> None:
        """Insert unless a fill with this fill_id is already journaled."""
        self._put("fill", fill)

    def record_trade(self, trade: ClosedTrade) -> None:
        self._put("trade", trade)

    def record_equity(
        self,
        ts: datetime,
        equity: Decimal,
        cash: Decimal,
        unrealized: Decimal,
        realized: Decimal,
        drawdown: Decimal,
    ) -> None:
        self._put("equity", (ts, equity, cash, unrealized, realized, drawdown))

    def record_alert(
        self, ts: datetime, level: AlertLevel, code: str, message: str, key: str = "", alert_id: str = ""
    ) -> None:
        self._put("alert", (ts, level, code, message, key, alert_id))

    def record_alert_ack(self, alert_id: str, ts: datetime, operator: str) -> None:
        """Mark the alert acknowledged (the first acknowledgement wins)."""
        self._put("alert_ack", (ts, operator, alert_id))

    def record_denial(self, ts: datetime, intent: OrderIntent, code: str, message: str) -> None:
        self._put("denial", (ts, intent, code, message))

    def record_incident(self, ts: datetime, venue: str, kind: str, message: str) -> None:
        """Connection incidents and venue errors."""
        self._put("incident", (ts, venue, kind, message))

    def _next_state_seq(self) -> int:
        """Call order, as wall-clock nanoseconds (so another process writing the same key, like the
        command line, is ordered too), never going backwards within this journal."""
        with self._seq_lock:
            self._state_seq = max(self._state_seq + 1, time.time_ns())
            return self._state_seq

    def set_state(self, key: str, value: Any) -> None:
        """Persist a JSON-serialisable value (Decimals come back as strings). A later call for the
        same key wins, whether queued or written at once by `write_state_now`."""
        text = canonical_json(value)
        self._put("state", [key, text, self._next_state_seq()])

    def record_approval(
        self,
        request_id: str,
        ts: datetime,
        status: str,
        symbol: str = "",
        side: Side | None = None,
        qty: Decimal | None = None,
        notional: Decimal | None = None,
        operator: str = "",
        latency_s: float | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert or update by request_id, so a request ends up with its final status."""
        row = schema.approval_row(
            request_id, ts, status, symbol, side, qty, notional, operator, latency_s, details
        )
        self._put("approval", row)

    def audit(
        self, ts: datetime, operator: str, action: str, reason: str, details: Mapping[str, Any] | None = None
    ) -> None:
        """Append a chained row; the id and hashes are assigned by the writer, in commit order."""
        self._put("audit", [dt_to_text(ts), operator, action, reason, canonical_json(dict(details or {}))])

    # --- flush, close -------------------------------------------------------------------------

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until everything enqueued before this call is committed.

        False on timeout, at once while writes are failing (see `failure`), or when a row was
        rejected meanwhile (see `errors`, `last_error`).
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError("flush() on the journal writer thread would wait for itself")
        return self._writer.flush(timeout)

    def close(self, timeout: float | None = None) -> dict[str, int]:
        """Write everything queued, stop the writer, close all connections. Idempotent.

        Returns the rows that could not be written, by kind (empty when nothing was lost); the
        same as `lost_rows()` afterwards. Without a timeout it waits for the writer to drain (the
        buffer is bounded); with one, rows still unwritten when it expires are reported as lost.
        """
        with self._close_lock:
            if self._closed:
                return self.lost_rows() or self._lost_at_close
            self._closed = True
        self._writer.stop()
        atexit.unregister(self.close)
        with self._readers_lock:  # readers first, so the writer is last and folds the WAL back
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        with self._direct_lock:
            if self._direct is not None:
                self._direct.close()
                self._direct = None
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._lost_at_close = self._writer.unwritten()
                log.error("journal writer for %s did not finish within %.1fs: %s rows not written",
                          self.path, timeout or 0, self._lost_at_close)  # fmt: skip
                return self._lost_at_close
        lost = self.lost_rows()
        if lost:
            log.error("journal %s closed with rows that could not be written: %s", self.path, lost)
        return lost

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- the audit chain ------------------------------------------------------------------------

    def verify_chain(self) -> AuditVerdict:
        """Check this journal's chain with its key and anchor (call at engine start: broken -> HALTED)."""
        return verify_chain(self.path, self._audit_key, self._anchor_path)

    # --- the writer thread ----------------------------------------------------------------------

    def _run(self, started: threading.Event) -> None:
        try:
            conn = self._connect_writer()
        except BaseException as exc:
            self._startup_error = exc
            started.set()
            return
        started.set()
        try:
            self._writer.serve(conn)
        finally:
            conn.close()

    def _connect_writer(self) -> sqlite3.Connection:
        try:
            prepare_journal_file(self.path)
            conn = sqlite3.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise classify_sqlite_error(exc, self.path) from None
        try:
            self._setup(conn)
        except JournalError:
            conn.close()
            raise
        except (OSError, sqlite3.Error) as exc:
            conn.close()
            raise classify_sqlite_error(exc, self.path) from None
        except BaseException:
            conn.close()
            raise
        return conn

    def _setup(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA busy_timeout = 5000")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot put {self.path} in WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous = NORMAL")
        prepare_journal_file(self.path)  # the -wal and -shm files SQLite just made: 0600 too
        meta = schema.ensure_schema(sqlite_utils.Database(conn, execute_plugins=False), self._new_journal_id)
        self.journal_id = meta["journal_id"]
        top = conn.execute("SELECT MAX(seq) FROM state").fetchone()[0]
        self._state_seq = int(top or 0)  # a reopened journal keeps the newest-wins order of state rows
        if self._audit_key is not None and self._anchor_path is not None:
            keeper = AnchorKeeper(self._anchor_path, self._audit_key, self.journal_id)
            keeper.prepare(conn, audit_anchored_before=meta.get("audit_anchored") == "1")
            self.anchor_note = keeper.note
            if keeper.active:
                if meta.get("audit_anchored") != "1":  # not a write at every open (think of a full disk)
                    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('audit_anchored', '1')")
                self._anchor = keeper
                self._writer.set_anchor(keeper)
