"""The audit chain's head, kept outside the journal and sealed with the audit key.

A 0600 JSON file in the config folder: the journal id, how many rows the chain had, the
hash of the last one, and how many leading rows predate keying. It is rewritten (atomically)
after every committed batch holding audit rows, and never moves backwards. Its own HMAC means
it cannot be edited to match a shortened chain without the key.

A crash between a commit and the anchor update leaves the anchor a few rows behind: that is
fine, because rows past the anchor are still keyed and must chain onto the anchored head.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.persistence.journal_schema import canonical_json
from engine.persistence.private_files import write_private_file

_VERSION = 1


class AnchorError(Exception):
    """The anchor file exists but is unreadable, or its seal does not match."""


@dataclass(frozen=True, slots=True)
class Anchor:
    journal_id: str
    rows: int
    head: str
    legacy_rows: int


def _seal(key: bytes, anchor: Anchor) -> str:
    body = canonical_json({"version": _VERSION, **asdict(anchor)})
    return hmac.new(key, body.encode("utf-8"), hashlib.sha256).hexdigest()


def read_anchor(path: Path, key: bytes) -> Anchor | None:
    """The anchor, None when there is no file; AnchorError when it is damaged or not sealed by `key`."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise AnchorError(f"the audit anchor {path} is unreadable ({type(exc).__name__})") from None
    try:
        anchor = Anchor(str(doc["journal_id"]), int(doc["rows"]), str(doc["head"]), int(doc["legacy_rows"]))
        seal = str(doc["mac"])
    except (KeyError, TypeError, ValueError):
        raise AnchorError(f"the audit anchor {path} is not an anchor file") from None
    if not hmac.compare_digest(seal, _seal(key, anchor)):
        raise AnchorError(f"the audit anchor {path} was altered, or sealed with another key")
    return anchor


def write_anchor(path: Path, key: bytes, anchor: Anchor) -> None:
    doc = {"version": _VERSION, **asdict(anchor), "mac": _seal(key, anchor)}
    write_private_file(path, json.dumps(doc, sort_keys=True))


class AnchorKeeper:
    """Moves the anchor forward after commits; shared by the writer thread and synchronous appends.

    Anchoring is off (`active` False) when the anchor found at open does not fit this journal:
    rewriting it would hide exactly what `verify_chain` must report.
    """

    def __init__(self, path: Path, key: bytes, journal_id: str) -> None:
        self.path = Path(path)
        self._key = key
        self._journal_id = journal_id
        self._lock = threading.Lock()
        self._anchor: Anchor | None = None
        self.active = False
        self.note = ""  # what prepare() found, for the start-up log

    def prepare(self, conn: sqlite3.Connection, audit_anchored_before: bool) -> None:
        """At open, on the writer's connection: adopt the anchor, or create it for a new/legacy chain."""
        try:
            found = read_anchor(self.path, self._key)
        except AnchorError as exc:
            self.note = str(exc)
            return
        rows, head = _head(conn)
        if found is not None:
            if found.journal_id != self._journal_id:
                self.note = f"the audit anchor belongs to journal {found.journal_id}"
                return
            self._anchor, self.active = found, True
            return
        keyed = conn.execute("SELECT COUNT(*) FROM audit WHERE scheme = 'hmac-sha256'").fetchone()[0]
        if keyed or audit_anchored_before:
            self.note = f"the audit anchor {self.path} is missing"
            return
        self._anchor = Anchor(self._journal_id, rows, head, legacy_rows=rows)
        write_anchor(self.path, self._key, self._anchor)
        self.active = True
        if rows:
            self.note = f"audit chain keyed from row {rows + 1}: the {rows} earlier rows stay a plain SHA-256 chain"

    def advance(self, conn: sqlite3.Connection) -> None:
        """After a commit holding audit rows: record the new head, never an older one."""
        if not self.active:
            return
        rows, head = _head(conn)
        with self._lock:
            current = self._anchor
            if current is None or rows <= current.rows:
                return
            anchor = Anchor(self._journal_id, rows, head, current.legacy_rows)
            write_anchor(self.path, self._key, anchor)
            self._anchor = anchor


def _head(conn: sqlite3.Connection) -> tuple[int, str]:
    row = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    return (0, "0" * 64) if row is None else (int(row[0]), str(row[1]))
