"""A journal that vanished, came back empty or was swapped is never a silent fresh start;
damaged, read-only and full journals each get their own one-line error."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.core.paths import AppPaths
from engine.persistence import errors
from engine.persistence.errors import (
    JournalCorruptError,
    JournalIdentityError,
    JournalNotADatabaseError,
    JournalReadOnlyError,
)
from engine.persistence.journal import Journal
from engine.persistence.journal_identity import open_journal, read_sidecar, start_new_journal, verify_journal
from tests.journal_rig import at, make_fill
from tests.test_secrets import memory_keyring  # noqa: F401  (the fixture, used through pytestmark)

pytestmark = pytest.mark.usefixtures("memory_keyring")  # never the operator's keyring


def _is_root() -> bool:
    return getattr(os, "geteuid", lambda: -1)() == 0


@pytest.fixture
def paths(tmp_path: Path) -> AppPaths:
    return AppPaths(tmp_path / "config", tmp_path / "data", tmp_path / "logs")


def first_run(paths: AppPaths) -> str:
    with open_journal(paths) as j:
        j.record_fill(make_fill("f1"))
        j.audit(at(0), "op", "emergency_stop", "test")
        j.set_state("trading_state", "halted")
        assert j.flush()
        return j.journal_id


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- identity ------------------------------------------------------------------------------------


def test_the_first_open_records_the_identity_and_a_reopen_is_the_same_journal(paths: AppPaths) -> None:
    journal_id = first_run(paths)
    sidecar = read_sidecar(paths.journal_sidecar)
    assert sidecar is not None and sidecar.journal_id == journal_id
    assert mode(paths.journal_sidecar) == 0o600 and mode(paths.config_dir) == 0o700
    with open_journal(paths) as j:
        assert j.journal_id == journal_id and j.get_state("trading_state") == "halted"


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (lambda p: p.unlink(), "is missing"),
        (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    ],
    ids=["deleted", "zero-bytes"],
)
def test_a_vanished_or_emptied_journal_refuses_to_start_and_keeps_the_evidence(
    paths: AppPaths, damage: object, said: str
) -> None:
    journal_id = first_run(paths)
    for suffix in ("-wal", "-shm"):
        Path(f"{paths.journal_file}{suffix}").unlink(missing_ok=True)
    damage(paths.journal_file)  # type: ignore[operator]
    before = paths.journal_file.exists() and paths.journal_file.stat().st_size
    with pytest.raises(JournalIdentityError) as info:
        open_journal(paths)
    message = str(info.value)
    assert said in message and journal_id in message and "--new-journal" in message and "\n" not in message
    assert (paths.journal_file.exists() and paths.journal_file.stat().st_size) == before  # nothing created
    verdict = verify_journal(paths)  # `audit verify` does not call it intact either
    assert not verdict.ok


def test_another_journal_in_its_place_is_refused(paths: AppPaths, tmp_path: Path) -> None:
    first_run(paths)
    other = tmp_path / "other.sqlite"
    with Journal(other) as j:
        other_id = j.journal_id
    paths.journal_file.unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"{paths.journal_file}{suffix}").unlink(missing_ok=True)
    other.replace(paths.journal_file)
    with pytest.raises(JournalIdentityError, match=f"is journal {other_id}"):
        open_journal(paths)


def test_a_journal_without_an_id_where_one_was_recorded_is_refused(paths: AppPaths) -> None:
    first_run(paths)
    conn = sqlite3.connect(paths.journal_file)
    conn.execute("DELETE FROM meta WHERE key = 'journal_id'")
    conn.commit()
    conn.close()
    with pytest.raises(JournalIdentityError, match="has no journal id"):
        open_journal(paths)


def test_a_new_journal_is_started_only_explicitly_and_the_old_one_is_archived(paths: AppPaths) -> None:
    old_id = first_run(paths)
    paths.journal_file.write_bytes(b"")  # the state that needs a decision
    with open_journal(paths, new_journal=True) as j:
        assert j.journal_id != old_id and j.fills() == [] and j.get_state("trading_state") is None
        new_id = j.journal_id
    archived = list(paths.archive_dir.iterdir())
    assert len(archived) == 1
    names = {p.name for p in archived[0].iterdir()}
    assert {paths.journal_file.name, paths.journal_sidecar.name, paths.audit_anchor.name} <= names
    assert read_sidecar(paths.journal_sidecar).journal_id == new_id  # type: ignore[union-attr]
    with open_journal(paths) as j:
        assert j.journal_id == new_id


def test_start_new_journal_with_nothing_there_archives_nothing(paths: AppPaths) -> None:
    assert start_new_journal(paths.ensure()) is None


def test_a_journal_from_before_identities_is_adopted(paths: AppPaths) -> None:
    paths.ensure()
    with Journal(paths.journal_file) as j:  # written by a version without sidecar or keyed audit
        j.audit(at(0), "op", "old", "r")
    conn = sqlite3.connect(paths.journal_file)
    conn.execute("DROP TABLE meta")
    conn.commit()
    conn.close()
    with open_journal(paths) as j:
        assert j.journal_id and read_sidecar(paths.journal_sidecar).journal_id == j.journal_id  # type: ignore[union-attr]
        j.audit(at(1), "op", "new", "r")
        assert j.flush()
    assert verify_journal(paths).ok


# --- file modes ----------------------------------------------------------------------------------


def test_journal_and_its_wal_and_shm_files_are_owner_only(paths: AppPaths) -> None:
    first_run(paths)
    with open_journal(paths) as j:
        j.record_fill(make_fill("f2"))
        assert j.flush()
        for p in (paths.journal_file, Path(f"{paths.journal_file}-wal"), Path(f"{paths.journal_file}-shm")):
            assert mode(p) == 0o600, p
    assert mode(paths.audit_anchor) == 0o600 and mode(paths.data_dir) == 0o700


def test_an_older_world_readable_journal_is_tightened_at_open(paths: AppPaths) -> None:
    first_run(paths)
    os.chmod(paths.journal_file, 0o644)
    os.chmod(paths.data_dir, 0o755)
    with open_journal(paths):
        assert mode(paths.journal_file) == 0o600
    assert mode(paths.data_dir) == 0o700


# --- damaged journals ------------------------------------------------------------------------------


def test_a_file_that_is_not_sqlite_is_named_as_such(paths: AppPaths) -> None:
    paths.ensure()
    paths.journal_file.write_text("these are my notes, not a journal\n" * 20)
    with pytest.raises(JournalNotADatabaseError, match="not an SQLite journal") as info:
        open_journal(paths)
    assert "\n" not in str(info.value)
    with pytest.raises(JournalNotADatabaseError):
        Journal(paths.journal_file)


def test_a_truncated_journal_is_named_as_such(paths: AppPaths) -> None:
    first_run(paths)
    with open_journal(paths) as j:  # make it big enough to cut in the middle
        for i in range(2000):
            j.record_fill(make_fill(f"g{i}"))
    size = paths.journal_file.stat().st_size
    with open(paths.journal_file, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(JournalCorruptError, match="truncated"):
        open_journal(paths)
    with open(paths.journal_file, "r+b") as f:
        f.truncate(50)
    with pytest.raises(JournalCorruptError, match="truncated"):
        Journal(paths.journal_file)


@pytest.mark.skipif(_is_root(), reason="root writes read-only files anyway")
def test_a_read_only_journal_file_or_folder_is_named_as_such(paths: AppPaths) -> None:
    first_run(paths)
    os.chmod(paths.journal_file, 0o400)
    with pytest.raises(JournalReadOnlyError, match="read-only"):
        open_journal(paths)
    os.chmod(paths.journal_file, 0o600)
    os.chmod(paths.data_dir, 0o500)
    try:
        with pytest.raises(JournalReadOnlyError, match="read-only"):
            open_journal(paths)
    finally:
        os.chmod(paths.data_dir, 0o700)


@pytest.fixture
def read_only_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "ro"
    mount.mkdir()
    if not _is_root():
        pytest.skip("mounting needs root (the chmod test covers this case otherwise)")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_journal_on_a_read_only_filesystem_is_named_as_such(read_only_disk: Path) -> None:
    paths = AppPaths(read_only_disk / "config", read_only_disk / "data", read_only_disk / "logs")
    first_run(paths)
    subprocess.run(["mount", "-o", "remount,ro", str(read_only_disk)], check=True)
    with pytest.raises(JournalReadOnlyError, match="read-only") as info:
        Journal(paths.journal_file)
    assert "\n" not in str(info.value)


def test_every_known_failure_has_its_own_exit_code() -> None:
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.JournalError)]
    codes = [c.exit_code for c in classes]
    assert len(classes) >= 9 and len(set(codes)) == len(codes)
