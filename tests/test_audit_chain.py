"""The audit chain is keyed and anchored: an editor without the key cannot rewrite, insert,
cut off or empty it, nor drop its guard, without `audit verify` naming where."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from console.cli import audit as audit_command
from engine.core.paths import AppPaths
from engine.persistence.audit import GENESIS_HASH, audit_hash
from engine.persistence.journal import Journal
from engine.persistence.journal_identity import open_journal, verify_journal
from tests.journal_rig import at
from tests.test_secrets import MemoryKeyring, memory_keyring  # noqa: F401  (the fixture)

pytestmark = pytest.mark.usefixtures("memory_keyring")  # never the operator's keyring


@pytest.fixture
def paths(tmp_path: Path) -> AppPaths:
    return AppPaths(tmp_path / "config", tmp_path / "data", tmp_path / "logs")


def write_rows(paths: AppPaths, count: int, start: int = 0) -> None:
    with open_journal(paths) as j:
        for i in range(start, start + count):
            j.audit(at(i), "alice", f"action{i}", f"reason {i}", {"n": i})
        assert j.flush()


def edit(path: Path, *statements: str, params: list[tuple[object, ...]] | None = None) -> None:
    """What someone covering their tracks does: drop the guards, edit, put the guards back."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DROP TRIGGER IF EXISTS audit_no_update")
        conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
        for sql in statements:
            conn.execute(sql)
        for p in params or []:
            conn.execute(str(p[0]), p[1:])
        for name, when in (("audit_no_update", "BEFORE UPDATE"), ("audit_no_delete", "BEFORE DELETE")):
            conn.execute(f"CREATE TRIGGER {name} {when} ON audit BEGIN SELECT RAISE(ABORT, 'no'); END")
    conn.close()


def recompute_plain_hashes(path: Path, scheme: str) -> None:
    """Rewrite a row, then recompute every hash the way the public format says (no key)."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("SELECT * FROM audit ORDER BY id")]
    conn.close()
    rows[1]["reason"] = "nothing happened"
    statements = []
    prev = GENESIS_HASH
    for r in rows:
        digest = audit_hash(prev, r["id"], r["ts"], r["operator"], r["action"], r["reason"], r["details"])
        statements.append(("UPDATE audit SET reason = ?, prev_hash = ?, hash = ?, scheme = ? WHERE id = ?",
                           r["reason"], prev, digest, scheme, r["id"]))  # fmt: skip
        prev = digest
    edit(path, params=statements)


def the_keyring() -> MemoryKeyring:
    import keyring

    found = keyring.get_keyring()
    assert isinstance(found, MemoryKeyring)
    return found


def verdict_of(paths: AppPaths) -> tuple[bool, int | None, str]:
    v = verify_journal(paths)
    return v.ok, v.first_bad_id, v.message


def test_an_intact_chain_verifies_keyed_and_anchored(paths: AppPaths) -> None:
    kr = the_keyring()
    write_rows(paths, 5)
    ok, bad, message = verdict_of(paths)
    assert ok and bad is None and "5 rows, keyed, anchored at row 5" in message
    assert any(user.startswith("audit-key:") for _, user in kr.entries)  # the key is in the keyring
    assert b"audit-key" not in paths.journal_file.read_bytes()


@pytest.mark.parametrize("scheme", ["hmac-sha256", "sha256"])
def test_a_rewrite_with_recomputed_plain_hashes_is_detected_at_the_first_row(paths: AppPaths, scheme: str) -> None:
    write_rows(paths, 5)
    recompute_plain_hashes(paths.journal_file, scheme)
    ok, bad, message = verdict_of(paths)
    assert not ok and bad == 1, message


def test_an_inserted_row_is_detected(paths: AppPaths) -> None:
    write_rows(paths, 5)
    edit(
        paths.journal_file,
        "UPDATE audit SET id = id + 100 WHERE id >= 3",
        "UPDATE audit SET id = id - 99 WHERE id >= 100",
        "INSERT INTO audit (id, ts, operator, action, reason, details, prev_hash, hash, scheme) "
        "SELECT 3, ts, operator, 'resume', 'inserted', details, hash, hash, scheme FROM audit WHERE id = 2",
    )
    ok, bad, message = verdict_of(paths)
    assert not ok and bad == 3, message


def test_a_deleted_tail_is_detected_naming_the_first_missing_row(paths: AppPaths) -> None:
    write_rows(paths, 5)
    edit(paths.journal_file, "DELETE FROM audit WHERE id >= 4")
    ok, bad, message = verdict_of(paths)
    assert not ok and bad == 4 and "rows 4..5 are missing" in message


def test_deleting_every_row_is_detected(paths: AppPaths) -> None:
    write_rows(paths, 3)
    edit(paths.journal_file, "DELETE FROM audit")
    ok, bad, message = verdict_of(paths)
    assert not ok and bad == 1 and "missing" in message


def test_a_dropped_trigger_is_reported_and_not_silently_recreated(paths: AppPaths) -> None:
    write_rows(paths, 2)
    conn = sqlite3.connect(paths.journal_file)
    conn.execute("DROP TRIGGER audit_no_delete")
    conn.commit()
    conn.close()
    ok, _bad, message = verdict_of(paths)
    assert not ok and "audit_no_delete was dropped" in message
    with open_journal(paths) as j:  # a restart does not paper over it
        verdict = j.verify_chain()
    assert not verdict.ok and "dropped" in verdict.message


def test_an_edited_or_deleted_anchor_is_detected(paths: AppPaths) -> None:
    write_rows(paths, 4)
    edit(paths.journal_file, "DELETE FROM audit WHERE id = 4")
    doc = json.loads(paths.audit_anchor.read_text())
    doc.update(rows=3, head="f" * 64)  # made to fit the shortened chain, without the key
    paths.audit_anchor.write_text(json.dumps(doc))
    ok, _bad, message = verdict_of(paths)
    assert not ok and "altered" in message
    paths.audit_anchor.unlink()
    ok, _bad, message = verdict_of(paths)
    assert not ok and "anchor" in message and "missing" in message


def test_a_wrong_key_cannot_verify(paths: AppPaths) -> None:
    kr = the_keyring()
    write_rows(paths, 2)
    for name in list(kr.entries):
        kr.entries[name] = "11" * 32
    ok, _bad, message = verdict_of(paths)
    assert not ok and ("altered" in message or "sealed with another key" in message)


def test_a_missing_key_refuses_to_extend_the_chain(paths: AppPaths) -> None:
    kr = the_keyring()
    from engine.persistence.errors import AuditKeyError

    write_rows(paths, 2)
    kr.entries.clear()
    with pytest.raises(AuditKeyError, match="missing"):
        open_journal(paths)
    assert not verify_journal(paths).ok


def test_the_chain_continues_across_restarts_and_synchronous_appends(paths: AppPaths) -> None:
    write_rows(paths, 2)
    with open_journal(paths) as j:
        j.audit(at(10), "op", "queued", "r")
        j.audit_now(at(11), "op", "emergency_stop", "F12")
        assert j.flush()
        assert j.verify_chain().ok
    ok, _bad, message = verdict_of(paths)
    assert ok and "4 rows" in message and "anchored at row 4" in message


def test_an_old_unkeyed_chain_is_kept_as_legacy_and_keyed_from_then_on(paths: AppPaths) -> None:
    paths.ensure()
    with Journal(paths.journal_file) as j:  # as written before the chain was keyed
        for i in range(3):
            j.audit(at(i), "op", f"old{i}", "r")
    write_rows(paths, 2, start=3)
    ok, _bad, message = verdict_of(paths)
    assert ok and "the first 3 rows predate keying" in message
    recompute_plain_hashes(paths.journal_file, "sha256")  # plain hashes can no longer pass for the keyed rows
    ok, bad, message = verdict_of(paths)
    assert not ok and bad == 4, message


def test_audit_verify_command_uses_the_key_and_names_the_row(
    paths: AppPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    write_rows(paths, 5)
    assert audit_command(paths, "verify") == 0
    assert "keyed, anchored" in capsys.readouterr().out
    edit(paths.journal_file, "DELETE FROM audit WHERE id = 5")
    assert audit_command(paths, "verify") == 1
    assert "rows 5..5 are missing" in capsys.readouterr().out


def test_the_key_lives_in_a_private_file_where_no_keyring_runs(paths: AppPaths) -> None:
    import keyring
    from keyring.backends import fail

    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        write_rows(paths, 2)
        (key_file,) = paths.audit_key_dir.iterdir()
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert verify_journal(paths).ok
    finally:
        keyring.set_keyring(before)
    write_rows(paths, 1, start=2)  # a keyring service runs now: the key made before is still found
    assert verify_journal(paths).ok and "3 rows" in verify_journal(paths).message
