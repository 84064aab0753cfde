"""The journal's one writer thread, its bounded buffer, and what happens when writing fails.

Callers (the asyncio loop) only append to a buffer; one thread commits what has accumulated
in one transaction. Nothing is ever dropped silently:

* The buffer has a capacity. Reaching it is a failure ("queue full"): the failure callbacks
  run, the row is still kept. A simulator avoids it by awaiting `wait_for_room()`.
* A batch that cannot be committed (disk full, read-only, I/O error, a lock held too long) is
  a failure: the rows stay in memory, in order, and are retried every `retry_s` until they
  commit; then the recovery callbacks run.
* A single row SQLite refuses inside a good transaction (a bug upstream) is rejected alone,
  counted in `lost_rows()`, and reported.
* Stopping drains everything; what could not be written is returned, by kind.

Failure callbacks run on the thread that detected the failure: the writer thread for write
errors, the thread that enqueued for a full buffer. They are never called with a lock held.
An asyncio user hops to its loop with `loop.call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.persistence import journal_schema as schema
from engine.persistence.audit import append_audit
from engine.persistence.audit_anchor import AnchorKeeper
from engine.persistence.errors import classify_sqlite_error

log = logging.getLogger("engine.persistence.journal")

DURABLE_OPS = frozenset({"fill", "audit"})  # batches holding these commit with synchronous=FULL
_BUSY_ATTEMPTS = 3  # a lock held by another process: retried this often before it counts as a failure
Stmt = tuple[str, list[Any]]
REJECTED = "rejected"  # a held placeholder for a row refused alone (already counted as lost)


class JournalWriter:
    def __init__(
        self,
        path: Path,
        *,
        capacity: int,
        max_batch: int,
        retry_s: float,
        audit_key: bytes | None,
        anchor: AnchorKeeper | None,
        on_error: Callable[[str], None] | None,
    ) -> None:
        self.path = path
        self.capacity = max(1, capacity)
        self.low_water = self.capacity // 2
        self._max_batch = max_batch
        self._retry_s = retry_s
        self._key = audit_key
        self._anchor = anchor
        self._on_error = on_error
        self._cond = threading.Condition()
        self._items: deque[tuple[str, Any]] = deque()
        # Taken, encoded, not yet committed (kept across failed attempts), one entry per accepted
        # item: a rejected one stays as a REJECTED placeholder until the rows around it commit.
        self._held: list[Stmt] = []
        self._chunk = max_batch  # rows per attempt: halved while failing, so what fits gets written
        self._enqueued = 0
        self._resolved = 0  # accepted items committed or rejected: always a prefix of the accepted ones
        self._stop = False
        self._stopped = False
        self._write_failed = False
        self._queue_full = False
        self._failure: str | None = None
        self._busy_streak = 0
        self._retry_at = 0.0
        self._lost: Counter[str] = Counter()
        self._rejection_reported = False
        self.errors = 0
        self.last_error: str | None = None
        self._failure_callbacks: list[Callable[[str], None]] = []
        self._recovery_callbacks: list[Callable[[], None]] = []
        self._room_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._hooks: deque[Callable[[sqlite3.Connection], None]] = deque()
        self._writer_idle = False  # waiting for rows: only then does a put need to wake it (enqueue stays cheap)
        self._sync = ""

    # --- state, from any thread ------------------------------------------------------------

    @property
    def failure(self) -> str | None:
        return self._failure

    @property
    def backlog(self) -> int:
        return len(self._items) + self._live_held()

    def _live_held(self) -> int:
        return sum(op != REJECTED for op, _ in self._held)

    def lost(self) -> dict[str, int]:
        with self._cond:
            return dict(self._lost)

    def unwritten(self) -> dict[str, int]:
        with self._cond:
            counts = Counter(op for op, _ in self._items)
            counts.update(op for op, _ in self._held if op != REJECTED)
        return dict(counts)

    def set_anchor(self, anchor: AnchorKeeper) -> None:
        """Before serving: the anchor to move forward after each batch holding audit rows."""
        self._anchor = anchor

    def add_failure_callback(self, callback: Callable[[str], None]) -> None:
        self._failure_callbacks.append(callback)

    def add_recovery_callback(self, callback: Callable[[], None]) -> None:
        self._recovery_callbacks.append(callback)

    # --- callers ---------------------------------------------------------------------------

    def put(self, op: str, payload: Any) -> None:
        fire: str | None = None
        with self._cond:
            if self._stop:
                raise RuntimeError(f"journal {self.path} is closed")
            self._items.append((op, payload))
            self._enqueued += 1
            if not self._queue_full and len(self._items) + len(self._held) >= self.capacity:
                self._queue_full = True
                fire = self._set_failure(
                    f"journal queue full: {self.capacity} rows wait for the writer (writes are too slow)"
                )
            if self._writer_idle:
                self._writer_idle = False
                self._cond.notify_all()
        if fire:
            self._fire_failure(fire)

    def flush(self, timeout: float | None) -> bool:
        """Everything accepted before this call committed (False on timeout, failure or rejection)."""
        with self._cond:
            target, errors_before = self._enqueued, self.errors
            self._cond.wait_for(
                lambda: self._resolved >= target or self._write_failed or self._stopped, timeout
            )
            return self._resolved >= target and self.errors == errors_before

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()

    def call_on_writer(self, hook: Callable[[sqlite3.Connection], None]) -> None:
        """Run `hook(connection)` on the writer thread before its next batch (tests simulate faults so)."""
        with self._cond:
            self._hooks.append(hook)
            self._cond.notify_all()

    async def wait_for_room(self) -> None:
        """Return once the backlog is at or below half the capacity (at once if it already is)."""
        if self.backlog <= self.low_water or self._stopped:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._cond:
            if self.backlog <= self.low_water or self._stopped:
                return
            self._room_waiters.append((loop, future))
        await future

    # --- the writer thread -----------------------------------------------------------------

    def serve(self, conn: sqlite3.Connection) -> dict[str, int]:
        """Commit until stopped and drained; returns what could not be written, by kind."""
        try:
            while True:
                raw = self._take(conn)
                if raw is None:
                    return self.lost()
                self._held.extend(self._encode(raw))
                if not self._held:
                    continue
                size = len(self._held) if not self._write_failed else min(len(self._held), self._chunk)
                error = self._attempt(conn, size)
                if error is None:
                    self._committed(size)
                elif self._after_failure(error):
                    return self.lost()
        finally:
            with self._cond:
                self._stopped = True
                self._cond.notify_all()
                self._wake_room_waiters()

    def _take(self, conn: sqlite3.Connection) -> list[tuple[str, Any]] | None:
        """The next items to write; None once stopped with nothing left to write."""
        with self._cond:
            while True:
                while self._hooks:
                    self._hooks.popleft()(conn)
                if self._stop and not self._items and not self._held:
                    return None
                if self._write_failed:
                    wait = self._retry_at - time.monotonic()
                    if wait <= 0 or self._stop:
                        break
                    self._cond.wait(wait)
                elif self._items or self._held:
                    break
                else:
                    self._writer_idle = True
                    self._cond.wait()
                    self._writer_idle = False
            if len(self._items) <= self._max_batch:  # the usual case: take them all, O(1) under the lock
                taken, self._items = self._items, deque()
                return list(taken)
            return [self._items.popleft() for _ in range(self._max_batch)]

    def _encode(self, raw: list[tuple[str, Any]]) -> list[Stmt]:
        stmts: list[Stmt] = []
        for op, payload in raw:
            try:
                stmts.append((op, schema.ENCODERS[op](payload)))
            except Exception as exc:
                self._reject(op, exc)
                stmts.append((REJECTED, []))
        return stmts

    def _attempt(self, conn: sqlite3.Connection, size: int) -> sqlite3.Error | None:
        """Write the first `size` held rows in one transaction."""
        rejected: set[int] = set()
        has_audit = False
        rows = self._held[:size]
        try:
            want = "FULL" if any(op in DURABLE_OPS for op, _ in rows) else "NORMAL"
            if want != self._sync:  # cannot change inside a transaction
                conn.execute(f"PRAGMA synchronous = {want}")
                self._sync = want
            conn.execute("BEGIN IMMEDIATE")
            for index, (op, params) in enumerate(rows):
                if op == REJECTED:
                    continue
                try:
                    if op == "audit":  # hashed here, inside the transaction, so rows chain in commit order
                        append_audit(conn, schema.SQL["audit"], params, self._key)
                        has_audit = True
                    else:
                        conn.execute(schema.SQL[op], params)
                except Exception as exc:
                    if not conn.in_transaction:  # SQLite abandoned the whole transaction (I/O, full disk)
                        raise
                    rejected.add(index)  # this row alone is bad: drop it, keep the rest of the batch
                    self._reject(op, exc)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback(conn)
            return exc
        finally:
            for index in rejected:  # counted once: a retry of the batch must not reject it again
                self._held[index] = (REJECTED, [])
        if has_audit and self._anchor is not None:
            try:
                self._anchor.advance(conn)
            except OSError as exc:  # the rows are committed; only the outside copy of the head lags
                self._report(f"audit anchor not updated: {type(exc).__name__}: {exc}", exc)
        return None

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        # A transaction left open would make every later BEGIN fail: the writer would be dead.
        with contextlib.suppress(sqlite3.Error):
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    def _committed(self, size: int) -> None:
        recovered = False
        with self._cond:
            self._resolved += size
            del self._held[:size]
            self._busy_streak = 0
            self._chunk = min(self._max_batch, self._chunk * 2)
            if self._held:  # a smaller chunk fitted: write the rest at once, not after retry_s
                self._retry_at = 0.0
                self._cond.notify_all()
                return
            self._write_failed = False
            if self._queue_full and len(self._items) <= self.low_water:
                self._queue_full = False
            if self._failure is not None and not self._write_failed and not self._queue_full:
                self._failure, recovered = None, True
            self._cond.notify_all()
            if self.backlog <= self.low_water:
                self._wake_room_waiters()
        if recovered:
            log.warning("journal %s: writes succeed again, nothing was lost", self.path)
            for callback in list(self._recovery_callbacks):
                self._safe_call(callback)

    def _after_failure(self, error: sqlite3.Error) -> bool:
        """Keep the rows for a retry; True when stopping, after which they count as lost."""
        busy = getattr(error, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED")
        classified = classify_sqlite_error(error, self.path, doing="writing")
        held = self._live_held()
        with self._cond:
            self._busy_streak = self._busy_streak + 1 if busy else 0
            self._chunk = max(1, min(self._chunk, len(self._held)) // 2)
            final = self._stop
            if final:
                counts = Counter(op for op, _ in self._held if op != REJECTED)
                counts.update(op for op, _ in self._items)
                self._lost.update(counts)
                self.errors += sum(counts.values())
                self._held.clear()
                self._items.clear()
            if busy and self._busy_streak < _BUSY_ATTEMPTS and not final:
                return False  # another process holds the lock: it usually lets go within the busy timeout
            self._write_failed = True
            self._retry_at = time.monotonic() + self._retry_s
            fire = self._set_failure(f"journal writes failing: {classified}; {held} rows held in memory")
            self._cond.notify_all()
        message = f"journal batch not written ({held} rows kept for retry): {classified}"
        if final:
            message = f"journal rows lost at close: {dict(self._lost)}: {classified}"
        self._report(message, error, quiet=fire is None and not final)
        if fire:
            self._fire_failure(fire)
        return final

    def _reject(self, op: str, exc: BaseException) -> None:
        with self._cond:
            self._lost[op] += 1
            self.errors += 1
            first = not self._rejection_reported
            self._rejection_reported = True
        self._report(f"journal {op} not written: {type(exc).__name__}: {exc}", exc)
        if first:
            self._fire_failure(f"journal {op} row rejected: {type(exc).__name__}: {exc}")

    # --- reporting -------------------------------------------------------------------------

    def _set_failure(self, reason: str) -> str | None:
        """Under the lock: enter the failed state; the reason to announce, or None if already failed."""
        if self._failure is not None:
            return None
        self._failure = reason
        return reason

    def _fire_failure(self, reason: str) -> None:
        log.critical("journal %s: %s", self.path, reason)
        for callback in list(self._failure_callbacks):
            self._safe_call(callback, reason)

    def _report(self, message: str, exc: BaseException | None, quiet: bool = False) -> None:
        self.last_error = message
        if quiet:  # a retry failing again: one line per failure, not one per second
            log.debug(message)
        else:
            log.error(message, exc_info=exc if not isinstance(exc, sqlite3.Error) else None)
        if self._on_error is not None:
            self._safe_call(self._on_error, message)

    @staticmethod
    def _safe_call(callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("journal callback %r failed", callback)

    def _wake_room_waiters(self) -> None:
        """Under the lock."""
        waiters, self._room_waiters = self._room_waiters, []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
