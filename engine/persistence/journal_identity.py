"""Which journal belongs here: a journal that vanished, or came back empty, is never a fresh start.

Every journal has a random id (the `meta` table). The first open records it in a sidecar file
in the config folder (kept apart from the data folder). From then on `open_journal` refuses,
with `JournalIdentityError`, a journal file that is missing, 0 bytes, without an id, or with
another id, until the operator starts a new journal explicitly (`start_new_journal`, the
console's ``--new-journal``), which moves the old journal, sidecar and anchor to the archive.

`open_journal` is also where the audit chain gets its key (see `secrets.load_audit_key`) and
its anchor, so the engine and ``audit verify`` see the same chain.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.core.paths import AppPaths
from engine.persistence.audit import KEYED, AuditVerdict, open_read_only, verify_chain
from engine.persistence.errors import AuditKeyError, JournalIdentityError, classify_sqlite_error
from engine.persistence.journal import Journal
from engine.persistence.journal_files import SIDE_FILES, check_journal_file
from engine.persistence.private_files import ensure_private_dir, write_private_file
from engine.persistence.secrets import load_audit_key

log = logging.getLogger(__name__)

NEW_JOURNAL_FLAG = "--new-journal"


@dataclass(frozen=True, slots=True)
class Sidecar:
    journal_id: str
    journal_path: str
    created_at: str


def read_sidecar(path: Path) -> Sidecar | None:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        return Sidecar(str(doc["journal_id"]), str(doc["journal_path"]), str(doc.get("created_at", "")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        raise JournalIdentityError(
            f"the journal identity file {path} is unreadable: restore it, or start a new journal with "
            f"{NEW_JOURNAL_FLAG}"
        ) from None


def write_sidecar(path: Path, journal_id: str, journal_path: Path) -> None:
    doc = {"journal_id": journal_id, "journal_path": str(journal_path), "created_at": datetime.now(UTC).isoformat()}
    write_private_file(path, json.dumps(doc, sort_keys=True))


@dataclass(frozen=True, slots=True)
class JournalFacts:
    """What a read-only look at an existing journal file found."""

    journal_id: str | None
    keyed_rows: bool


def inspect_journal(path: Path) -> JournalFacts:
    """Read the id and whether the chain is keyed, without writing anything (nor -wal/-shm files)."""
    try:
        conn = open_read_only(path)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            journal_id = None
            if "meta" in tables:
                row = conn.execute("SELECT value FROM meta WHERE key = 'journal_id'").fetchone()
                journal_id = str(row[0]) if row and row[0] else None
            keyed = False
            if "audit" in tables and "scheme" in {r[1] for r in conn.execute("PRAGMA table_info(audit)")}:
                keyed = conn.execute("SELECT 1 FROM audit WHERE scheme = ? LIMIT 1", [KEYED]).fetchone() is not None
            return JournalFacts(journal_id, keyed)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise classify_sqlite_error(exc, path) from None


def open_journal(paths: AppPaths, *, new_journal: bool = False, **journal_options: Any) -> Journal:
    """Open the engine's journal after checking it is the one this installation was using.

    `new_journal`: archive the current journal (if any) and start an empty one (the operator's
    explicit choice). Raises JournalIdentityError, AuditKeyError or a damaged-journal JournalError;
    each message is one line saying what was found and what to do.
    """
    paths.ensure()
    if new_journal:
        start_new_journal(paths)
    file = paths.journal_file
    sidecar = read_sidecar(paths.journal_sidecar)
    status = check_journal_file(file)
    facts = inspect_journal(file) if status == "ok" else JournalFacts(None, False)
    if sidecar is not None:
        _check_identity(paths, sidecar, status, facts)
    journal_id = facts.journal_id or uuid.uuid4().hex
    key, where = load_audit_key(journal_id, paths.audit_key_dir, create=not facts.keyed_rows)
    journal = Journal(file, audit_key=key, anchor_path=paths.audit_anchor, new_journal_id=journal_id,
                      **journal_options)  # fmt: skip
    if journal.journal_id != journal_id:  # cannot happen unless the file changed under us
        journal.close()
        raise JournalIdentityError(f"the journal {file} changed while it was being opened: try again")
    if sidecar is None:
        write_sidecar(paths.journal_sidecar, journal_id, file)
        log.info("journal %s: identity %s recorded in %s (audit key in %s)", file, journal_id,
                    paths.journal_sidecar, where)  # fmt: skip
    return journal


def _check_identity(paths: AppPaths, sidecar: Sidecar, status: str, facts: JournalFacts) -> None:
    file = paths.journal_file
    remembered = f"{paths.journal_sidecar} records journal {sidecar.journal_id}"
    if sidecar.created_at:
        remembered += f" (first opened {sidecar.created_at[:19]})"
    fix = f"restore the file from a backup, or start a new journal with {NEW_JOURNAL_FLAG}"
    if status == "missing":
        raise JournalIdentityError(f"the journal {file} is missing but {remembered}: {fix}")
    if status == "empty":
        raise JournalIdentityError(f"the journal {file} is empty (0 bytes) but {remembered}: {fix}")
    if facts.journal_id is None:
        raise JournalIdentityError(f"the journal {file} has no journal id but {remembered}: {fix}")
    if facts.journal_id != sidecar.journal_id:
        raise JournalIdentityError(f"the journal {file} is journal {facts.journal_id} but {remembered}: {fix}")


def start_new_journal(paths: AppPaths) -> Path | None:
    """Move the journal (and its -wal/-shm), its sidecar and its anchor to a dated archive folder.

    The audit key stays where it is, so the archived chain can still be verified. Returns the
    archive folder, or None when there was nothing to archive.
    """
    moving = [paths.journal_file, *(Path(f"{paths.journal_file}{s}") for s in SIDE_FILES),
              paths.journal_sidecar, paths.audit_anchor]  # fmt: skip
    present = [p for p in moving if p.exists()]
    if not present:
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = ensure_private_dir(paths.archive_dir / stamp)
    for item in present:
        item.replace(folder / item.name)
    log.warning("new journal: the previous journal, identity and anchor were moved to %s", folder)
    return folder


def verify_journal(paths: AppPaths) -> AuditVerdict:
    """`audit verify`: the chain of this installation's journal, with its key and anchor."""
    file = paths.journal_file
    if not file.is_file():
        return AuditVerdict(False, 0, None, f"no journal at {file}")
    if file.stat().st_size == 0:
        return AuditVerdict(False, 0, None, f"the journal {file} is empty (0 bytes): its history is gone")
    try:
        facts = inspect_journal(file)
    except Exception as exc:  # a damaged file: say so, the verdict is the answer
        return AuditVerdict(False, 0, None, str(exc))
    sidecar = None
    with contextlib.suppress(JournalIdentityError):
        sidecar = read_sidecar(paths.journal_sidecar)
    if sidecar is not None and facts.journal_id != sidecar.journal_id:
        text = f"the journal {file} is journal {facts.journal_id} but {paths.journal_sidecar} records journal "
        return AuditVerdict(False, 0, None, text + sidecar.journal_id)
    if facts.journal_id is None:
        return verify_chain(file, None, None)
    try:
        key, _where = load_audit_key(facts.journal_id, paths.audit_key_dir, create=False)
    except AuditKeyError as exc:
        if facts.keyed_rows:
            return AuditVerdict(False, 0, None, str(exc))
        return verify_chain(file, None, None)  # never keyed: a plain chain, nothing anchored yet
    return verify_chain(file, key, paths.audit_anchor)
