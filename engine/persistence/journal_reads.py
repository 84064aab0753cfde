"""The journal's reads: any thread, each on its own read-only connection (a committed snapshot)."""

from __future__ import annotations

import enum
import json
import sqlite3
import threading
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlite_utils

from engine.core.model import ClosedTrade, Fill, Order
from engine.persistence import journal_schema as schema
from engine.persistence.audit import GENESIS_HASH
from engine.persistence.journal_schema import (
    FILL,
    ORDER,
    TRADE,
    AlertRecord,
    ApprovalRecord,
    DenialRecord,
    EquityPoint,
    IncidentRecord,
    dt_to_text,
    text_to_dt,
)


class JournalReads:
    """Mixed into Journal; needs `path`, `closed`, `_local`, `_readers` and `_readers_lock`."""

    path: Path
    _local: threading.local
    _readers: list[sqlite3.Connection]
    _readers_lock: threading.Lock

    @property
    def closed(self) -> bool:
        raise NotImplementedError

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        if self.closed:
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
