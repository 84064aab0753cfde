"""Every known way the journal can refuse to open or to write, as one exception class each.

Each class carries a one-line message (no traceback needed to understand it) and a suggested
process exit code, so the console can map a start-up failure to a dialog or a distinct exit
status without parsing text. SQLite reports most of these as a generic `sqlite3.Error`;
`classify_sqlite_error` turns one into the right class using SQLite's own error name.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

# Below this many free bytes an I/O error is reported as a full disk: SQLite says "disk I/O
# error" when the -shm or -wal file cannot grow, which is the same condition for the operator.
_NEARLY_FULL_BYTES = 1 << 20


class JournalError(Exception):
    """Base of every journal failure the operator can act on; `str(exc)` is one line."""

    exit_code = 20


class JournalIdentityError(JournalError):
    """The journal the sidecar remembers is missing, empty, or replaced by another one."""

    exit_code = 21


class JournalNotADatabaseError(JournalError):
    """The journal file is not an SQLite database at all."""

    exit_code = 22


class JournalCorruptError(JournalError):
    """An SQLite file, but truncated or malformed."""

    exit_code = 23


class JournalReadOnlyError(JournalError):
    """The journal file or its folder cannot be written."""

    exit_code = 24


class JournalDiskFullError(JournalError):
    """No space left for the journal."""

    exit_code = 25


class JournalIOError(JournalError):
    """Any other error reading or writing the journal file."""

    exit_code = 26


class AuditKeyError(JournalError):
    """The key of the audit chain is missing or unreadable, so the chain cannot be extended or checked."""

    exit_code = 27


class JournalWriteError(JournalError):
    """A synchronous durable write (`write_state_now`, `audit_now`) did not commit.

    `cause` is the classified error (disk full, read-only...), also a JournalError.
    """

    exit_code = 28

    def __init__(self, message: str, cause: JournalError | None = None) -> None:
        super().__init__(message)
        self.cause = cause


def _free_bytes(path: Path) -> int | None:
    folder = path if path.is_dir() else path.parent
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def classify_sqlite_error(exc: BaseException, path: Path, doing: str = "opening") -> JournalError:
    """The JournalError subclass for an sqlite3 or OS error met while `doing` something to `path`."""
    path = Path(path)
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    text = str(exc)
    free = _free_bytes(path)
    nearly_full = free is not None and free < _NEARLY_FULL_BYTES
    if isinstance(exc, OSError) and not isinstance(exc, sqlite3.Error):
        import errno

        if exc.errno == errno.ENOSPC or (exc.errno == errno.EDQUOT if hasattr(errno, "EDQUOT") else False):
            return JournalDiskFullError(f"the disk holding the journal {path} is full ({doing}): {exc.strerror}")
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return JournalReadOnlyError(f"the journal {path} cannot be written ({doing}): {exc.strerror}")
        return JournalIOError(f"I/O error {doing} the journal {path}: {exc.strerror or exc}")
    if name == "SQLITE_FULL" or "disk is full" in text:
        return JournalDiskFullError(f"the disk holding the journal {path} is full ({doing})")
    if name.startswith("SQLITE_READONLY") or "readonly database" in text:
        return JournalReadOnlyError(f"the journal {path} or its folder is read-only ({doing})")
    if name == "SQLITE_NOTADB" or "file is not a database" in text:
        return JournalNotADatabaseError(f"{path} is not an SQLite journal (not a database file)")
    if name.startswith("SQLITE_CORRUPT") or "malformed" in text:
        return JournalCorruptError(f"the journal {path} is damaged (SQLite: {text})")
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        if nearly_full:
            return JournalDiskFullError(f"the disk holding the journal {path} is full ({doing})")
        return JournalReadOnlyError(f"the journal {path} cannot be opened for writing ({doing}): check the folder")
    if nearly_full and (name.startswith("SQLITE_IOERR") or "I/O error" in text):
        return JournalDiskFullError(f"the disk holding the journal {path} is full ({doing})")
    return JournalIOError(f"error {doing} the journal {path}: {text}")
