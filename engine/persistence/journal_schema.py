"""The journal's tables, and how values map to SQLite and back.

Decimals are stored as TEXT so they round-trip exactly; datetimes as fixed-width
ISO-8601 UTC text (microseconds always present) so text order is time order;
enums by value. The columns of the tables that hold model objects are derived
from the dataclass fields, so a field added to `engine.core.model` gets a column on
the next open instead of being silently dropped.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Generic, NamedTuple, TypeVar

import sqlite_utils

from engine.core.model import AlertLevel, ClosedTrade, Fill, Order, OrderIntent, OrderStatus, Side

SCHEMA_VERSION = 2  # 2: meta table (journal id), state.seq, audit.scheme
T = TypeVar("T")
_Codec = tuple[Callable[[Any], Any], Callable[[Any], Any], type]  # encode, decode, column type


# --- scalar conversions -------------------------------------------------------------------------


def dt_to_text(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: the journal stores timezone-aware UTC only")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def text_to_dt(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def dec_to_text(value: Decimal | int) -> str:
    if isinstance(value, float):  # a float here is a bug upstream: its text is not the intended value
        raise TypeError(f"float {value!r} where a Decimal was expected")
    return str(value)


def opt_dec(value: Decimal | None) -> str | None:
    return None if value is None else dec_to_text(value)


def text_to_dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def json_default(value: object) -> object:
    """Make engine values JSON-able: Decimal as exact text, datetimes as UTC ISO, enums by value."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return dt_to_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def canonical_json(value: object) -> str:
    """One spelling per value (sorted keys, no spaces), so the audit hash is reproducible."""
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=json_default,
    )


# --- dataclass <-> row --------------------------------------------------------------------------


def _codec_for(hint: Any) -> _Codec:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"unsupported union {hint}")
        enc, dec, col = _codec_for(inner[0])
        return (lambda v: None if v is None else enc(v)), (lambda v: None if v is None else dec(v)), col
    if origin is dict or hint is dict:
        return canonical_json, json.loads, str
    if hint is Decimal:
        return dec_to_text, Decimal, str
    if hint is datetime:
        return dt_to_text, text_to_dt, str
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        col = int if issubclass(hint, int) else str
        return (lambda v: hint(v).value), hint, col
    if hint is bool:
        return int, bool, int
    if hint in (int, float, str):
        return hint, hint, hint
    raise TypeError(f"no journal column type for {hint}")


class RowCodec(Generic[T]):
    """Encodes a frozen model dataclass into a row (in field order) and decodes it back."""

    def __init__(self, cls: type[T]) -> None:
        self.cls = cls
        hints = typing.get_type_hints(cls)
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        self.names = [f.name for f in fields]
        codecs = [_codec_for(hints[f.name]) for f in fields]
        self._enc = [c[0] for c in codecs]
        self._dec = [c[1] for c in codecs]
        self.columns: dict[str, type] = {f.name: c[2] for f, c in zip(fields, codecs, strict=True)}
        no_default = dataclasses.MISSING
        self._has_default = [
            f.default is not no_default or f.default_factory is not no_default for f in fields
        ]

    def encode(self, obj: T) -> list[Any]:
        return [enc(getattr(obj, name)) for name, enc in zip(self.names, self._enc, strict=True)]

    def decode(self, row: Mapping[str, Any]) -> T:
        kwargs: dict[str, Any] = {}
        for name, dec, has_default in zip(self.names, self._dec, self._has_default, strict=True):
            value = row.get(name)
            if value is None:
                if has_default:  # NULL in a column added after the row was written
                    continue
                kwargs[name] = None
            else:
                kwargs[name] = dec(value)
        return self.cls(**kwargs)


ORDER = RowCodec(Order)
FILL = RowCodec(Fill)
TRADE = RowCodec(ClosedTrade)
INTENT = RowCodec(OrderIntent)
WORKING_STATUSES = tuple(s.value for s in OrderStatus if s.is_working)


# --- records the journal returns besides the model types ----------------------------------------


class EquityPoint(NamedTuple):
    ts: datetime
    equity: Decimal
    drawdown: Decimal


@dataclasses.dataclass(frozen=True, slots=True)
class AlertRecord:
    id: int
    ts: datetime
    level: AlertLevel
    code: str
    message: str
    key: str
    alert_id: str = ""  # empty in rows written before alerts had ids
    acked_at: datetime | None = None
    acked_by: str = ""

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> AlertRecord:
        acked = r.get("acked_at")
        return cls(r["id"], text_to_dt(r["ts"]), AlertLevel(r["level"]), r["code"], r["message"], r["key"],
                   r.get("alert_id") or "", text_to_dt(acked) if acked else None, r.get("acked_by") or "")


@dataclasses.dataclass(frozen=True, slots=True)
class DenialRecord:
    id: int
    ts: datetime
    intent: OrderIntent
    code: str
    message: str

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> DenialRecord:
        return cls(r["id"], text_to_dt(r["ts"]), INTENT.decode(r), r["code"], r["message"])


@dataclasses.dataclass(frozen=True, slots=True)
class IncidentRecord:
    id: int
    ts: datetime
    venue: str
    kind: str
    message: str

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> IncidentRecord:
        return cls(r["id"], text_to_dt(r["ts"]), r["venue"], r["kind"], r["message"])


@dataclasses.dataclass(frozen=True, slots=True)
class ApprovalRecord:
    request_id: str
    ts: datetime
    status: str
    symbol: str
    side: Side | None
    qty: Decimal | None
    notional: Decimal | None
    operator: str
    latency_s: float | None
    details: dict[str, Any]

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> ApprovalRecord:
        side = None if r["side"] is None else Side(r["side"])
        return cls(
            r["request_id"],
            text_to_dt(r["ts"]),
            r["status"],
            r["symbol"] or "",
            side,
            text_to_dec(r["qty"]),
            text_to_dec(r["notional"]),
            r["operator"] or "",
            r["latency_s"],
            json.loads(r["details"] or "{}"),
        )


# --- tables -------------------------------------------------------------------------------------

_SERIAL = {"id": int}
EQUITY_VALUES = ("equity", "cash", "unrealized", "realized", "drawdown")
TABLES: dict[str, tuple[dict[str, type], str, tuple[str, ...]]] = {
    # name: (columns, primary key, indexed columns)
    "orders": (ORDER.columns, "client_id", ("status",)),
    "fills": (FILL.columns, "fill_id", ("ts", "client_id")),
    "trades": ({**_SERIAL, **TRADE.columns}, "id", ("closed_at",)),
    "equity": (
        {**_SERIAL, "ts": str, **dict.fromkeys(EQUITY_VALUES, str)},
        "id",
        ("ts",),
    ),
    "alerts": (  # alert_id, acked_at, acked_by: added as columns to older journals on open
        {**_SERIAL, "ts": str, "level": int, "code": str, "message": str, "key": str,
         "alert_id": str, "acked_at": str, "acked_by": str},
        "id",
        ("alert_id",),
    ),
    "denials": ({**_SERIAL, "ts": str, "code": str, "message": str, **INTENT.columns}, "id", ()),
    "incidents": ({**_SERIAL, "ts": str, "venue": str, "kind": str, "message": str}, "id", ("ts",)),
    "approvals": (
        {
            "request_id": str,
            "ts": str,
            "status": str,
            "symbol": str,
            "side": str,
            "qty": str,
            "notional": str,
            "operator": str,
            "latency_s": float,
            "details": str,
        },
        "request_id",
        ("status",),
    ),
    "state": ({"key": str, "value": str, "seq": int}, "key", ()),  # seq: the newest write wins, see SQL
    "meta": ({"key": str, "value": str}, "key", ()),  # journal_id, audit_triggers, audit_anchored
    "audit": (
        {
            "id": int,
            "ts": str,
            "operator": str,
            "action": str,
            "reason": str,
            "details": str,
            "prev_hash": str,
            "hash": str,
            "scheme": str,  # "hmac-sha256", or "sha256"/NULL for rows hashed before the chain was keyed
        },
        "id",
        (),
    ),
}

# Guards against the application (or a careless script) rewriting history; a determined
# editor can drop them, which is what the keyed chain, the anchor and verify_chain are for.
AUDIT_TRIGGERS = {
    "audit_no_update": "BEFORE UPDATE ON audit",
    "audit_no_delete": "BEFORE DELETE ON audit",
}


def ensure_schema(db: sqlite_utils.Database, new_journal_id: str | None = None) -> dict[str, str]:
    """Create missing tables, add columns for fields added to the model since, index, protect audit.

    Returns the `meta` table: every journal gets a random `journal_id` the first time it is opened.
    A trigger found missing in a journal that had them is NOT re-created: that would hide the
    tampering `verify_chain` reports.
    """
    for name, (columns, pk, indexes) in TABLES.items():
        table = db.table(name)
        if not table.exists():
            table.create(columns, pk=pk)
        else:
            existing = set(table.columns_dict)
            for col, col_type in columns.items():
                if col not in existing:
                    table.add_column(col, col_type)
        for col in indexes:
            table.create_index([col], index_name=f"idx_{name}_{col}", if_not_exists=True)
    meta = {str(r[0]): str(r[1]) for r in db.execute("SELECT key, value FROM meta").fetchall()}
    if meta.get("audit_triggers") != "1":
        for trigger, when in AUDIT_TRIGGERS.items():
            db.execute(
                f"CREATE TRIGGER IF NOT EXISTS {trigger} {when} "
                "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
            )
        meta["audit_triggers"] = _set_meta(db, "audit_triggers", "1")
    if not meta.get("journal_id"):
        meta["journal_id"] = _set_meta(db, "journal_id", new_journal_id or uuid.uuid4().hex)
    if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return meta


def _set_meta(db: sqlite_utils.Database, key: str, value: str) -> str:
    db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
               [key, value])  # fmt: skip
    return value


def _insert(table: str, columns: list[str], verb: str = "INSERT", conflict: str = "") -> str:
    cols = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    return f'{verb} INTO "{table}" ({cols}) VALUES ({marks}){conflict}'


def _upsert(table: str, columns: list[str], key: str) -> str:
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c != key)
    return _insert(table, columns, conflict=f' ON CONFLICT("{key}") DO UPDATE SET {updates}')


SQL = {
    "order": _upsert("orders", ORDER.names, "client_id"),
    "fill": _insert("fills", FILL.names, verb="INSERT OR IGNORE"),  # a fill is never counted twice
    "trade": _insert("trades", TRADE.names),
    "equity": _insert("equity", ["ts", *EQUITY_VALUES]),
    "alert": _insert("alerts", ["ts", "level", "code", "message", "key", "alert_id"]),
    "alert_ack": 'UPDATE "alerts" SET "acked_at" = ?, "acked_by" = ? WHERE "alert_id" = ? AND "acked_at" IS NULL',
    "denial": _insert("denials", ["ts", "code", "message", *INTENT.names]),
    "incident": _insert("incidents", ["ts", "venue", "kind", "message"]),
    # Queued and synchronous writes of one key may commit out of call order: the higher seq
    # (taken in call order) wins, so a halt written at once is never overwritten by an older queued row.
    "state": _upsert("state", ["key", "value", "seq"], "key")
    + ' WHERE "state"."seq" IS NULL OR excluded."seq" >= "state"."seq"',
    "approval": _upsert("approvals", list(TABLES["approvals"][0]), "request_id"),
    "audit": _insert("audit", list(TABLES["audit"][0])),
}


def approval_row(
    request_id: str,
    ts: datetime,
    status: str | enum.Enum,
    symbol: str,
    side: Side | str | None,
    qty: Decimal | None,
    notional: Decimal | None,
    operator: str,
    latency_s: float | None,
    details: Mapping[str, Any] | None,
) -> list[Any]:
    status_text = status.value if isinstance(status, enum.Enum) else str(status)
    side_text = None if side is None else Side(side).value
    details_text = canonical_json(dict(details or {}))
    return [
        request_id,
        dt_to_text(ts),
        status_text,
        symbol,
        side_text,
        opt_dec(qty),
        opt_dec(notional),
        operator,
        latency_s,
        details_text,
    ]


def _identity(row: list[Any]) -> list[Any]:
    return row


# Rows that arrive at high rates are encoded on the writer thread to keep enqueue cheap; the
# rare ones (state, approvals, audit) are encoded by the caller, who then sees a bad value at once.
ENCODERS: dict[str, Callable[[Any], list[Any]]] = {
    "order": ORDER.encode,
    "fill": FILL.encode,
    "trade": TRADE.encode,
    "equity": lambda p: [dt_to_text(p[0]), *map(dec_to_text, p[1:])],
    "alert": lambda p: [dt_to_text(p[0]), AlertLevel(p[1]).value, p[2], p[3], p[4], p[5]],
    "alert_ack": lambda p: [dt_to_text(p[0]), p[1], p[2]],
    "denial": lambda p: [dt_to_text(p[0]), p[2], p[3], *INTENT.encode(p[1])],
    "incident": lambda p: [dt_to_text(p[0]), p[1], p[2], p[3]],
    "state": _identity,
    "approval": _identity,
    "audit": _identity,
}
