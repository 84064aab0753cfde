"""When the daily summary is due, and the engine-side job that writes and sends it.

The summary of day D falls due at `alerts.daily_summary.at` (local time in
`engine.trading_day_tz`): on D itself for a time from noon on (the default 23:59
covers D up to 23:59), on the morning of D+1 for an earlier time (00:05 sends the
complete D). Time is the engine's Clock, so a simulator at high speed produces a
summary for every simulated day. The last summarised day is kept in the journal's
state table, so a restart never sends a day twice. Days that fell due while the
engine ran are all summarised; of those that fell due while it was stopped, only
the latest (one catch-up message after a weekend off, not one per day).
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from engine.alerts.daily_summary import DailySummary, build_daily_summary
from engine.core.model import AlertLevel

if TYPE_CHECKING:
    from engine.ports import RiskHost

log = logging.getLogger(__name__)

STATE_KEY = "daily_summary_last_day"
ALERT_CODE = "daily_summary"
_MAX_DAYS = 370  # never walk further back than this looking for missed days


def _hm(at: str) -> tuple[int, int]:
    h, m = at.split(":")
    return int(h), int(m)


def fire_time(day: date, at: str, tz: str) -> datetime:
    """The UTC instant the summary of `day` falls due."""
    h, m = _hm(at)
    local_day = day if h >= 12 else day + timedelta(days=1)
    return datetime.combine(local_day, time(h, m), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def due_days(now: datetime, last_day: date | None, started_at: datetime, at: str, tz: str) -> list[date]:
    """Days whose summary is due at `now` and not yet sent, oldest first (see the module notes)."""
    day = now.astimezone(ZoneInfo(tz)).date() + timedelta(days=1)
    while fire_time(day, at, tz) > now:
        day -= timedelta(days=1)
    out: list[date] = []
    for _ in range(_MAX_DAYS):
        if last_day is not None and day <= last_day:
            break
        if fire_time(day, at, tz) < started_at:
            if last_day is not None:  # a fresh journal has nothing to catch up on
                out.append(day)
            break
        out.append(day)
        day -= timedelta(days=1)
    return out[::-1]


def summary_paths(directory: Path, day: date) -> tuple[Path, Path]:
    return directory / f"{day.isoformat()}.txt", directory / f"{day.isoformat()}.json"


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # a reader sees the old file or the new one, never half of one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_summary_files(summary: DailySummary, directory: Path) -> tuple[Path, Path]:
    """`<directory>/YYYY-MM-DD.txt` and `.json`, each replaced atomically."""
    txt, js = summary_paths(directory, summary.day)
    _atomic_write(txt, summary.text())
    _atomic_write(js, summary.to_json())
    return txt, js


class DailySummaryScheduler:
    """Called once a second from the engine's housekeeping; does its work in a task, off the loop."""

    def __init__(self, engine: RiskHost) -> None:
        self.engine = engine
        self.directory = engine.journal.path.parent / "summaries"  # the data dir holds the journal
        self._last: date | None = None
        self._loaded = False
        self._task: asyncio.Task[None] | None = None
        self.sent: list[DailySummary] = []  # this run's summaries, newest last
        self.checked_at: datetime | None = None  # engine time of the latest check (tests wait on it)

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    def check(self, now: datetime) -> None:
        """Cheap when nothing is due: a comparison of times (the state is read once)."""
        self.checked_at = now
        cfg = self.engine.settings.alerts.daily_summary
        if not cfg.enabled or self.busy:
            return
        if not self._loaded:
            text = self.engine.journal.get_state(STATE_KEY)
            self._last = date.fromisoformat(text) if text else None
            self._loaded = True
        tz = self.engine.settings.engine.trading_day_tz
        days = due_days(now, self._last, self.engine.started_at or now, cfg.at, tz)
        if days:
            self._task = asyncio.get_running_loop().create_task(self._run(days), name="daily_summary")

    async def _run(self, days: list[date]) -> None:
        for day in days:
            try:
                await self.summarize(day)
            except Exception:
                log.exception("daily summary for %s failed", day)
                return  # state untouched: the next check tries again

    async def summarize(self, day: date) -> DailySummary:
        """Build from the journal, write the files, mark the day done, then send."""
        eng = self.engine
        cfg = eng.settings.alerts.daily_summary
        tz = eng.settings.engine.trading_day_tz
        until = fire_time(day, cfg.at, tz)
        await asyncio.to_thread(eng.journal.flush)  # the day's last fills and samples are on disk
        summary = await asyncio.to_thread(build_daily_summary, eng.journal, day, tz, until)
        txt, _js = await asyncio.to_thread(write_summary_files, summary, self.directory)
        # Marked before sending: a crash in between loses one message, never sends a day twice.
        eng.journal.set_state(STATE_KEY, day.isoformat())
        self._last = day
        self.sent.append(summary)
        if cfg.send:
            eng.alert(AlertLevel.INFO, ALERT_CODE, summary.text(), key=f"{ALERT_CODE}:{day.isoformat()}")
        else:
            eng.alert(AlertLevel.INFO, "daily_summary_written", f"Daily summary {day} written to {txt}",
                      key=f"daily_summary_written:{day.isoformat()}")  # fmt: skip
        return summary
