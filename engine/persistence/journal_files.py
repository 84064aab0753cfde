"""The journal file before SQLite sees it: damaged, truncated or unwritable files named as such.

SQLite alone reports these late and vaguely ("file is not a database" on the first query,
"unable to open database file"), or not at all: a truncated file opens and fails much later.
The checks here read the 100-byte header and the file's size, and ask the OS about write
access, so each case raises its own `JournalError` with a one-line message at open.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.persistence.errors import JournalCorruptError, JournalNotADatabaseError, JournalReadOnlyError
from engine.persistence.private_files import create_private_file, ensure_private_dir, tighten

_MAGIC = b"SQLite format 3\x00"
_HEADER = 100
SIDE_FILES = ("-wal", "-shm")


def check_journal_file(path: Path) -> str:
    """"missing", "empty" or "ok"; raises for a file that is not SQLite, truncated, or read-only."""
    path = Path(path)
    folder = path.parent
    if folder.exists() and not os.access(folder, os.W_OK):
        raise JournalReadOnlyError(
            f"the folder {folder} is read-only: the journal needs to write {path.name} and its -wal file there"
        )
    if not path.exists():
        return "missing"
    size = path.stat().st_size
    if size == 0:
        return "empty"
    if not os.access(path, os.W_OK):
        raise JournalReadOnlyError(f"the journal {path} is read-only: make it writable by this user")
    with open(path, "rb") as f:
        header = f.read(_HEADER)
    if not header.startswith(_MAGIC[: len(header)]) or len(header) < len(_MAGIC):
        raise JournalNotADatabaseError(f"{path} is not an SQLite journal ({size} bytes of something else)")
    if len(header) < _HEADER:
        raise JournalCorruptError(f"the journal {path} is truncated: {size} bytes, not even a whole header")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    header_valid = header[24:28] == header[92:96]  # SQLite's own rule for trusting the page count
    if header_valid and pages and size < pages * page_size:
        raise JournalCorruptError(
            f"the journal {path} is truncated: {size} bytes where its header says {pages * page_size}"
        )
    return "ok"


def prepare_journal_file(path: Path) -> None:
    """Owner-only folder and files: create the journal 0600 before SQLite does (its -wal and -shm
    files copy the journal's mode), and tighten files an older version left readable by others."""
    path = Path(path)
    ensure_private_dir(path.parent)
    create_private_file(path)
    for suffix in SIDE_FILES:
        tighten(Path(f"{path}{suffix}"))
