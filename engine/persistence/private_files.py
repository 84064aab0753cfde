"""Files only the owner can read: 0700 folders, 0600 files, written atomically.

A temporary file is created exclusively (a fresh random name, O_EXCL, mode 0600), written,
fsynced and renamed over the target, so a stale temporary left by a crash (or planted with
mode 0644) can never lend its mode or content to the new file, and a reader never sees
half a file.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def ensure_private_dir(path: Path) -> Path:
    """Create the folder (and missing parents) 0700, and tighten it if it exists looser."""
    path = Path(path)
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    tighten(path, DIR_MODE)
    return path


def tighten(path: Path, mode: int = FILE_MODE) -> None:
    """chmod to `mode` when the path exists and grants more than `mode` (never loosens)."""
    with contextlib.suppress(FileNotFoundError):
        current = stat.S_IMODE(os.stat(path).st_mode)
        if current & ~mode:
            os.chmod(path, current & mode)


def create_private_file(path: Path) -> bool:
    """Create an empty 0600 file if none exists (so a library that opens it later keeps 0600).

    True when this call created it.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        tighten(path)
        return False
    os.close(fd)
    return True


def write_private_file(path: Path, data: bytes | str) -> None:
    """Atomically replace `path` with `data`, mode 0600, durable (file and folder fsynced)."""
    path = Path(path)
    ensure_private_dir(path.parent)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # O_EXCL, 0600
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(raw)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
