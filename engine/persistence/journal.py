"""SQLite journal: orders, fills, trades, equity, alerts, denials, incidents, approvals, state, audit.

The asyncio loop must never wait on the disk, so every write is an O(1) put on a queue
drained by exactly one writer thread. The writer commits whatever has accumulated in one
transaction; a batch holding a fill or an audit row is committed with `synchronous=FULL`
(it survives a power cut), the rest with NORMAL (WAL keeps it consistent, the last moments
may be lost). Readers use their own per-thread connections, so a UI or metrics thread reads
a committed snapshot while the writer keeps going.

A failed write is logged, counted in `errors` (with `last_error`) and reported through
`on_error`; it never stops the writer.
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import json
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlite_utils

from engine.core.model import AlertLevel, ClosedTrade, Fill, Order, OrderIntent, Side
from engine.persistence import journal_schema as schema
from engine.persistence.audit import GENESIS_HASH, AuditVerdict, append_audit, verify_audit
from engine.persistence.journal_schema import (
    FILL,
    ORDER,
    TRADE,
    AlertRecord,
    ApprovalRecord,
    DenialRecord,
    EquityPoint,
    IncidentRecord,
    canonical_json,
    dt_to_text,
    text_to_dt,
)

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

_DURABLE = frozenset({"fill", "audit"})  # batches holding these commit with synchronous=FULL
_ATTEMPTS = 3  # a batch that fails as a whole (busy, I/O) is retried before it is counted lost
_CONTROL = frozenset({"flush", "stop"})


class Journal:
    def __init__(
        self,
        path: Path,
        *,
        on_error: Callable[[str], None] | None = None,
        max_batch: int = 10_000,
    ) -> None:
        """Open (creating if needed) the journal; `on_error` is called on the writer thread."""
        self.path = Path(path)
        self._on_error = on_error
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._put_lock = threading.Lock()
        self._closed = False
        self._error_lock = threading.Lock()
        self._errors = 0
        self._last_error: str | None = None
        self._sync = ""
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._startup_error: BaseException | None = None
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name=f"journal-writer:{self.path.name}", daemon=True
        )
        self._thread.start()
        started.wait()
        if self._startup_error is not None:
            self._thread.join()
            raise self._startup_error
        atexit.register(self.close)  # a forgotten close() must not lose the queued rows

    # --- health -------------------------------------------------------------------------------

    @property
    def errors(self) -> int:
        """Rows that could not be written since opening."""
        return self._errors

    @property
    def last_error(self) -> str | None:
        return self._last_error

    @property
    def backlog(self) -> int:
        """Approximate number of queued items not yet taken by the writer."""
        return self._queue.qsize()

    @property
    def closed(self) -> bool:
        return self._closed

    # --- writes (enqueue only) ----------------------------------------------------------------

    def _put(self, op: str, payload: Any) -> None:
        with self._put_lock:  # nothing may slip in behind the stop marker
            if self._closed:
                raise RuntimeError(f"journal {self.path} is closed")
            self._queue.put((op, payload))

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

    def set_state(self, key: str, value: Any) -> None:
        """Persist a JSON-serialisable value (Decimals come back as strings)."""
        self._put("state", [key, canonical_json(value)])

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
        """Append a hash-chained row; the id and hashes are assigned by the writer, in queue order."""
        self._put("audit", [dt_to_text(ts), operator, action, reason, canonical_json(dict(details or {}))])

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything enqueued before this call is committed.

        False on timeout, or when a write failed meanwhile (see `errors`, `last_error`).
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError("flush() on the journal writer thread would wait for itself")
        done = threading.Event()
        errors_before = self._errors
        with self._put_lock:
            if self._closed:
                return not self._thread.is_alive() and self._errors == errors_before
            self._queue.put(("flush", done))
        return done.wait(timeout) and self._errors == errors_before

    def close(self, timeout: float = 10.0) -> None:
        """Commit everything queued, stop the writer and close all connections. Idempotent."""
        with self._put_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(("stop", None))
        atexit.unregister(self.close)
        with self._readers_lock:  # readers first, so the writer is last and folds the WAL back
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("journal writer for %s did not stop within %.1fs", self.path, timeout)

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- the writer thread --------------------------------------------------------------------

    def _run(self, started: threading.Event) -> None:
        try:
            conn = self._connect_writer()
        except BaseException as exc:
            self._startup_error = exc
            started.set()
            return
        started.set()
        try:
            self._serve(conn)
        finally:
            conn.close()

    def _connect_writer(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot put {self.path} in WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._sync = "NORMAL"
            schema.ensure_schema(sqlite_utils.Database(conn, execute_plugins=False))
        except BaseException:
            conn.close()
            raise
        return conn

    def _serve(self, conn: sqlite3.Connection) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            rows = [item for item in batch if item[0] not in _CONTROL]
            try:
                if rows:
                    self._write(conn, rows)
            except Exception as exc:  # a bug in one batch must not end the journal
                self._fail("journal writer", exc, lost=len(rows))
                self._rollback(conn)
            stop = False
            for op, payload in batch:
                if op == "flush":
                    payload.set()
                elif op == "stop":
                    stop = True
            if stop:
                return

    def _write(self, conn: sqlite3.Connection, rows: list[tuple[str, Any]]) -> None:
        stmts: list[tuple[str, list[Any]]] = []
        for op, payload in rows:
            try:
                stmts.append((op, schema.ENCODERS[op](payload)))
            except Exception as exc:
                self._fail(f"journal {op} not written", exc)
        if not stmts:
            return
        durable = any(op in _DURABLE for op, _ in stmts)
        skipped: set[int] = set()
        failure: BaseException | None = None
        for _attempt in range(_ATTEMPTS):
            try:
                self._transaction(conn, stmts, durable, skipped)
                return
            except sqlite3.Error as exc:
                failure = exc
                self._rollback(conn)
        self._fail("journal batch lost", failure, lost=len(stmts) - len(skipped))

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        # A transaction left open would make every later BEGIN fail: the writer would be dead.
        with contextlib.suppress(sqlite3.Error):
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    def _transaction(
        self, conn: sqlite3.Connection, stmts: list[tuple[str, list[Any]]], durable: bool, skipped: set[int]
    ) -> None:
        want = "FULL" if durable else "NORMAL"
        if want != self._sync:  # cannot change inside a transaction
            conn.execute(f"PRAGMA synchronous = {want}")
            self._sync = want
        conn.execute("BEGIN IMMEDIATE")
        for index, (op, params) in enumerate(stmts):
            if index in skipped:
                continue
            try:
                if op == "audit":  # hashed here, inside the transaction, so rows chain in queue order
                    append_audit(conn, schema.SQL["audit"], params)
                else:
                    conn.execute(schema.SQL[op], params)
            except Exception as exc:
                if not conn.in_transaction:  # SQLite abandoned the whole transaction (I/O, full disk)
                    raise
                skipped.add(index)  # this row alone is bad: drop it, keep the rest of the batch
                self._fail(f"journal {op} not written", exc)
        conn.execute("COMMIT")

    def _fail(self, what: str, exc: BaseException | None, lost: int = 1) -> None:
        message = f"{what}: {type(exc).__name__}: {exc}"
        with self._error_lock:
            self._errors += lost
            self._last_error = message
        log.error(message, exc_info=exc)
        if self._on_error is not None:
            try:
                self._on_error(message)
            except Exception:
                log.exception("journal on_error callback failed")

    # --- reads (any thread) -------------------------------------------------------------------

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        if self._closed:
            raise RuntimeError(f"journal {self.path} is closed")
        db: sqlite_utils.Database | None = getattr(self._local, "db", None)
        if db is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 5000")
            conn.execute("PRAGMA query_only = 1")
            with self._readers_lock:
                self._readers.append(conn)
            db = self._local.db = sqlite_utils.Database(conn, execute_plugins=False)
        return list(db.query(sql, params))

    @staticmethod
    def _since(column: str, since: datetime | None) -> tuple[str, list[Any]]:
        return ("", []) if since is None else (f' WHERE "{column}" >= ?', [dt_to_text(since)])

    def orders(self, open_only: bool = False) -> list[Order]:
        """All orders (or only working ones) in the order they were first recorded."""
        if open_only:
            marks = ", ".join("?" for _ in schema.WORKING_STATUSES)
            rows = self._query(
                f"SELECT * FROM orders WHERE status IN ({marks}) ORDER BY rowid", schema.WORKING_STATUSES
            )
        else:
            rows = self._query("SELECT * FROM orders ORDER BY rowid")
        return [ORDER.decode(row) for row in rows]

    def order(self, client_id: str) -> Order | None:
        rows = self._query("SELECT * FROM orders WHERE client_id = ?", [client_id])
        return ORDER.decode(rows[0]) if rows else None

    def fills(self, since: datetime | None = None) -> list[Fill]:
        where, params = self._since("ts", since)
        return [FILL.decode(r) for r in self._query(f"SELECT * FROM fills{where} ORDER BY ts, rowid", params)]

    def last_fill_ts(self) -> datetime | None:
        value = self._query("SELECT MAX(ts) AS ts FROM fills")[0]["ts"]
        return None if value is None else text_to_dt(value)

    def trades(self, since: datetime | None = None) -> list[ClosedTrade]:
        """Closed trades, by close time; `since` filters on closed_at."""
        where, params = self._since("closed_at", since)
        rows = self._query(f"SELECT * FROM trades{where} ORDER BY closed_at, id", params)
        return [TRADE.decode(r) for r in rows]

    def equity_curve(self, since: datetime | None = None) -> list[EquityPoint]:
        where, params = self._since("ts", since)
        rows = self._query(f"SELECT ts, equity, drawdown FROM equity{where} ORDER BY ts, id", params)
        return [EquityPoint(text_to_dt(r["ts"]), Decimal(r["equity"]), Decimal(r["drawdown"])) for r in rows]

    def equity_samples(self, since: datetime, until: datetime, *, before: bool = False) -> list[dict[str, Any]]:
        """Whole equity rows (ts, equity, cash, unrealized, realized, drawdown) with since <= ts < until.

        With `before`, only the last row before `since` (a day opens at the previous day's close).
        """
        if before:
            sql, params = "SELECT * FROM equity WHERE ts < ? ORDER BY ts DESC, id DESC LIMIT 1", [since]
        else:
            sql, params = "SELECT * FROM equity WHERE ts >= ? AND ts < ? ORDER BY ts, id", [since, until]
        rows = self._query(sql, [dt_to_text(t) for t in params])
        return [
            {"ts": text_to_dt(r["ts"]), **{k: Decimal(r[k]) for k in schema.EQUITY_VALUES}} for r in rows
        ]

    def alerts_between(self, since: datetime, until: datetime) -> list[AlertRecord]:
        """Every alert with since <= ts < until, oldest first."""
        rows = self._query(
            "SELECT * FROM alerts WHERE ts >= ? AND ts < ? ORDER BY ts, id", [dt_to_text(since), dt_to_text(until)]
        )
        return [AlertRecord.from_row(r) for r in rows]

    def _latest(self, table: str, limit: int) -> list[dict[str, Any]]:
        newest = f"SELECT * FROM {table} ORDER BY id DESC LIMIT ?"
        return self._query(f"SELECT * FROM ({newest}) ORDER BY id", [limit])

    def alerts(self, limit: int = 200) -> list[AlertRecord]:
        """The latest `limit` alerts, oldest first."""
        return [AlertRecord.from_row(r) for r in self._latest("alerts", limit)]

    def denials(self, limit: int = 200) -> list[DenialRecord]:
        """The latest `limit` risk denials, oldest first, each with the intent as it was refused."""
        return [DenialRecord.from_row(r) for r in self._latest("denials", limit)]

    def incidents(self, since: datetime | None = None) -> list[IncidentRecord]:
        where, params = self._since("ts", since)
        rows = self._query(f"SELECT * FROM incidents{where} ORDER BY ts, id", params)
        return [IncidentRecord.from_row(r) for r in rows]

    def approvals(self, status: str | None = None) -> list[ApprovalRecord]:
        if status is None:
            rows = self._query("SELECT * FROM approvals ORDER BY ts, rowid")
        else:
            status = status.value if isinstance(status, enum.Enum) else status
            rows = self._query("SELECT * FROM approvals WHERE status = ? ORDER BY ts, rowid", [status])
        return [ApprovalRecord.from_row(r) for r in rows]

    def get_state(self, key: str, default: Any = None) -> Any:
        rows = self._query("SELECT value FROM state WHERE key = ?", [key])
        return json.loads(rows[0]["value"]) if rows else default

    def audit_rows(self) -> list[dict[str, Any]]:
        """Audit rows in chain order; `ts` as datetime and `details` as a dict."""
        rows = self._query("SELECT * FROM audit ORDER BY id")
        return [{**r, "ts": text_to_dt(r["ts"]), "details": json.loads(r["details"])} for r in rows]

    def audit_head(self) -> tuple[int, str]:
        """(id, hash) of the newest audit row: keep it elsewhere to detect cut-off history."""
        rows = self._query("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1")
        return (rows[0]["id"], rows[0]["hash"]) if rows else (0, GENESIS_HASH)
