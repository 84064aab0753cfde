"""The journal never fails silently: full disk, read-only file, full queue, rejected rows, the halt.

Faults are made the way SQLite meets them: `max_page_count` on the writer's connection gives
the very SQLITE_FULL a full disk gives, `query_only` the SQLITE_READONLY of a read-only file,
another connection holding the write lock a stuck writer. A real full tmpfs is used as well
where this machine lets the test mount one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.persistence.errors import JournalDiskFullError, JournalWriteError
from engine.persistence.journal import Journal
from tests.journal_rig import at, make_fill


def wait_until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.005)


def fill_disk(journal: Journal) -> None:
    """From the writer's next batch on, the file cannot grow: SQLITE_FULL, as on a full disk."""
    journal._writer.call_on_writer(
        lambda conn: conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
    )


def free_disk(journal: Journal) -> None:
    journal._writer.call_on_writer(lambda conn: conn.execute("PRAGMA max_page_count = 1073741823"))


def json_state(path: Path, key: str) -> object:
    import json

    conn = sqlite3.connect(path)
    try:
        return json.loads(conn.execute("SELECT value FROM state WHERE key = ?", [key]).fetchone()[0])
    finally:
        conn.close()


def count(path: Path, table: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def _is_root() -> bool:
    return getattr(os, "geteuid", lambda: -1)() == 0


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "journal.sqlite"


class Recorder:
    def __init__(self, journal: Journal) -> None:
        self.failures: list[str] = []
        self.threads: list[str] = []
        self.recovered = threading.Event()
        journal.on_failure(self.failed)
        journal.on_recovery(self.recovered.set)

    def failed(self, reason: str) -> None:
        self.failures.append(reason)
        self.threads.append(threading.current_thread().name)


# --- a full disk while trading ---------------------------------------------------------------------


def test_a_full_disk_calls_failure_once_holds_every_row_and_writes_them_when_space_returns(path: Path) -> None:
    with Journal(path, retry_s=0.02) as j:
        seen = Recorder(j)
        j.record_fill(make_fill("before"))
        assert j.flush()
        fill_disk(j)
        for i in range(300):
            j.record_fill(make_fill(f"f{i}"))
        assert j.flush(timeout=10) is False  # returns as soon as the write fails, not at the timeout
        wait_until(lambda: seen.failures)
        assert "full" in seen.failures[0] and seen.threads[0].startswith("journal-writer")
        assert not j.healthy and j.failure is not None and "full" in j.failure
        assert j.unwritten_rows() == {"fill": 300} and j.lost_rows() == {}
        j.record_equity(at(5), *([j.backlog] * 5))  # type: ignore[arg-type]
        assert j.flush(timeout=0.2) is False
        assert len(seen.failures) == 1  # retries failing again are not new failures
        free_disk(j)
        assert seen.recovered.wait(10)
        assert j.flush()
        assert j.healthy and j.failure is None and j.unwritten_rows() == {}
        assert [f.fill_id for f in j.fills()] == ["before", *(f"f{i}" for i in range(300))]
        assert len(j.equity_curve()) == 1


def test_close_while_the_disk_stays_full_returns_every_unwritten_row_by_kind(path: Path) -> None:
    j = Journal(path, retry_s=60)  # no retry in time: only the final attempt at close
    seen = Recorder(j)
    fill_disk(j)
    for i in range(200):  # more than the free room left in the pages the file already has
        j.record_fill(make_fill(f"f{i}"))
    j.audit(at(0), "op", "emergency_stop", "disk test")
    j.set_state("k", 1)
    wait_until(lambda: seen.failures)
    lost = j.close()
    assert lost == {"fill": 200, "audit": 1, "state": 1}
    assert j.lost_rows() == lost and j.close() == lost and not j.healthy
    with Journal(path) as again:
        assert again.fills() == [] and again.audit_rows() == []


def test_a_read_only_journal_while_running_is_a_failure_and_recovers(path: Path) -> None:
    with Journal(path, retry_s=0.02) as j:
        seen = Recorder(j)
        j._writer.call_on_writer(lambda conn: conn.execute("PRAGMA query_only = 1"))
        j.record_fill(make_fill("a"))
        wait_until(lambda: seen.failures)
        assert "read-only" in seen.failures[0], seen.failures
        j._writer.call_on_writer(lambda conn: conn.execute("PRAGMA query_only = 0"))
        assert seen.recovered.wait(10) and j.flush()
        assert [f.fill_id for f in j.fills()] == ["a"]


def test_a_rejected_row_is_lost_by_name_and_announced_once(path: Path) -> None:
    from datetime import datetime

    with Journal(path) as j:
        seen = Recorder(j)
        j.record_fill(make_fill("naive1", ts=datetime(2024, 1, 1)))  # a bug upstream: no timezone
        j.record_fill(make_fill("naive2", ts=datetime(2024, 1, 1)))
        j.record_fill(make_fill("good"))
        assert j.flush() is False
        assert j.lost_rows() == {"fill": 2} and not j.healthy
        assert len(seen.failures) == 1 and "rejected" in seen.failures[0]
        assert [f.fill_id for f in j.fills()] == ["good"]


# --- the bound and backpressure --------------------------------------------------------------------


def test_a_full_queue_is_announced_at_once_on_the_enqueuing_thread_and_nothing_is_dropped(path: Path) -> None:
    with Journal(path, capacity=50) as j:
        seen = Recorder(j)
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the writer is stuck behind another process's lock
        try:
            for i in range(100):
                j.record_fill(make_fill(f"f{i}"))
            assert len(seen.failures) == 1 and "queue full" in seen.failures[0]
            assert seen.threads == [threading.current_thread().name]  # known at the call that filled it
            assert not j.healthy and not j.has_room
        finally:
            blocker.execute("COMMIT")
            blocker.close()
        assert j.flush(timeout=30)
        assert seen.recovered.wait(10) and j.healthy
        assert len(j.fills()) == 100 and j.lost_rows() == {}


def test_a_producer_that_awaits_room_never_fills_the_queue(path: Path) -> None:
    async def produce(j: Journal) -> int:
        peak = 0
        for i in range(20_000):
            await j.wait_for_room()
            j.record_equity(at(i), *([i] * 5))  # type: ignore[arg-type]
            peak = max(peak, j.backlog)
        return peak

    with Journal(path, capacity=200) as j:
        seen = Recorder(j)
        peak = asyncio.run(produce(j))
        assert j.flush(timeout=30)
        assert seen.failures == [] and peak <= j.capacity
        assert count(path, "equity") == 20_000


def test_wait_for_room_waits_while_writes_fail_and_resumes_when_they_succeed(path: Path) -> None:
    async def scenario(j: Journal) -> None:
        fill_disk(j)
        for i in range(200):
            j.record_fill(make_fill(f"f{i}"))
        waiting = asyncio.create_task(j.wait_for_room())
        deadline = time.monotonic() + 10
        while j.failure is None:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert not waiting.done()  # a simulator does not run ahead of a journal that cannot write
        free_disk(j)
        await asyncio.wait_for(waiting, 10)

    with Journal(path, capacity=10, retry_s=0.02) as j:
        asyncio.run(scenario(j))
        assert j.flush() and len(j.fills()) == 200


# --- the halt: synchronous, durable, first ------------------------------------------------------


def test_write_state_now_commits_before_returning_and_an_older_queued_value_never_overwrites_it(
    path: Path,
) -> None:
    with Journal(path, retry_s=0.02) as j:
        seen = Recorder(j)
        fill_disk(j)  # only the writer's connection is limited: the queue backs up behind it
        j.set_state("trading_state", "active")
        for i in range(50):
            j.record_fill(make_fill(f"f{i}"))
        wait_until(lambda: seen.failures)
        j.write_state_now("trading_state", "halted")
        conn = sqlite3.connect(path)  # another process sees it at once
        assert conn.execute("SELECT value FROM state WHERE key = 'trading_state'").fetchone()[0] == '"halted"'
        conn.close()
        free_disk(j)
        assert seen.recovered.wait(10) and j.flush()
        assert j.get_state("trading_state") == "halted"
        j.set_state("trading_state", "active")  # a later call still wins
        assert j.flush() and j.get_state("trading_state") == "active"


def test_newest_state_wins_across_a_reopen(path: Path) -> None:
    with Journal(path) as j:
        for i in range(5):
            j.set_state("k", i)
        j.write_state_now("k", "direct")
    with Journal(path) as j:
        j.set_state("k", "after reopen")
        assert j.flush() and j.get_state("k") == "after reopen"


def test_audit_now_commits_before_returning_and_keeps_one_chain_with_queued_rows(path: Path) -> None:
    from engine.persistence.audit import verify_audit

    with Journal(path) as j:
        j.audit(at(0), "op", "queued1", "r")
        row_id = j.audit_now(at(1), "op", "emergency_stop", "operator pressed F12")
        conn = sqlite3.connect(path)
        assert conn.execute("SELECT action FROM audit WHERE id = ?", [row_id]).fetchone()[0] == "emergency_stop"
        conn.close()
        j.audit(at(2), "op", "queued2", "r")
        assert j.flush()
        assert sorted(r["action"] for r in j.audit_rows()) == ["emergency_stop", "queued1", "queued2"]
    assert verify_audit(path).ok and verify_audit(path).rows == 3


def test_write_state_now_on_a_closed_journal_raises_a_known_error(path: Path) -> None:
    j = Journal(path)
    j.close()
    with pytest.raises(JournalWriteError, match="closed"):
        j.write_state_now("trading_state", "halted")


# --- a real full disk ----------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs, where this machine lets the tests mount one (root in a container)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if not _is_root() or shutil.which("mount") is None:
        pytest.skip("mounting a small filesystem needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_real_full_disk_halts_keeps_every_fill_and_catches_up_when_space_is_freed(tiny_disk: Path) -> None:
    filler = tiny_disk / "filler"
    filler.write_bytes(b"\0" * 1_000_000)  # other files on the same disk, deleted later by the operator
    path = tiny_disk / "journal.sqlite"
    made = 0
    with Journal(path, retry_s=0.02) as j:
        seen = Recorder(j)
        while not seen.failures and made < 100_000:
            for _ in range(200):
                j.record_fill(make_fill(f"f{made}", venue_order_id="v" * 200))
                made += 1
            j.flush(timeout=10)
        assert seen.failures and "full" in seen.failures[0], seen.failures
        last_bytes = fill_up(tiny_disk / "last-bytes")  # not even one more page
        # The halt is small: it may still fit in the -wal file's reused frames. Either it is committed
        # (another connection reads it) or the caller is told, by a known error: never a silent loss.
        try:
            j.write_state_now("trading_state", "halted")
        except JournalWriteError as exc:
            assert isinstance(exc.cause, JournalDiskFullError)
        else:
            assert json_state(path, "trading_state") == "halted"
        with pytest.raises(JournalWriteError) as info:  # what cannot fit is refused by name
            j.write_state_now("big", "x" * 2_000_000)
        assert isinstance(info.value.cause, JournalDiskFullError) and "full" in str(info.value)
        assert sum(j.unwritten_rows().values()) > 0 and j.lost_rows() == {}
        filler.unlink()
        last_bytes.unlink()
        assert seen.recovered.wait(10) and j.flush(timeout=10)
        assert len(j.fills()) == made and j.healthy


def fill_up(filler: Path) -> Path:
    with contextlib.suppress(OSError), open(filler, "wb") as f:
        while True:
            f.write(b"\0" * 4096)
            f.flush()
    return filler


def test_opening_a_journal_on_a_full_disk_is_a_known_error(tiny_disk: Path) -> None:
    fill_up(tiny_disk / "filler")
    with pytest.raises(JournalDiskFullError, match="full"):
        Journal(tiny_disk / "journal.sqlite")


def test_the_later_write_wins_between_two_processes_sharing_the_journal(path: Path) -> None:
    with Journal(path) as engine:
        engine.set_state("k", "engine-1")
        assert engine.flush()
        with Journal(path) as command_line:  # e.g. `approvals approve` while the engine runs
            command_line.set_state("k", "cli")
            assert command_line.flush() and engine.get_state("k") == "cli"
            engine.set_state("k", "engine-2")
            assert engine.flush() and command_line.get_state("k") == "engine-2"


def test_the_halt_survives_sigkill_right_after_write_state_now_returns(path: Path) -> None:
    """Killed at the worst moment: the halt and its audit row were committed before the call returned."""
    import signal
    import sys

    from engine.persistence.audit import verify_audit

    script = (
        "import sys, time\n"
        "from datetime import UTC, datetime\n"
        "from decimal import Decimal\n"
        "from engine.persistence.journal import Journal\n"
        "j = Journal(sys.argv[1])\n"
        "now = datetime.now(UTC)\n"
        "for i in range(5000):\n"
        "    j.record_equity(now, *([Decimal(i)] * 5))  # a backlog still queued\n"
        "j.write_state_now('trading_state', 'halted')\n"
        "j.audit_now(now, 'alice', 'emergency_stop', 'F12')\n"
        "print('returned', flush=True)\n"
        "time.sleep(60)\n"
    )
    path.parent.mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "returned"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    with Journal(path) as j:
        assert j.get_state("trading_state") == "halted"
        assert [r["action"] for r in j.audit_rows()] == ["emergency_stop"]
    assert verify_audit(path).ok
