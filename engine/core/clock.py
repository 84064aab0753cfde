"""Injected time: nothing in the engine calls datetime.now() directly."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

log = logging.getLogger(__name__)


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class SimClock:
    """A clock the simulator (or a test) moves forward explicitly."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("SimClock needs a timezone-aware start")
        self._epoch = self._now

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return (self._now - self._epoch).total_seconds()

    def set(self, when: datetime) -> None:
        if when > self._now:
            self._now = when

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now


Work = Callable[[], Awaitable[None] | None]


@dataclass(slots=True)
class _Job:
    name: str
    period: Callable[[], float]
    work: Work
    due: float


class Timers:
    """Periodic work scheduled on the engine clock, so a fast simulator runs it on simulated time.

    With a real clock, `run()` wakes the due jobs as time passes. With a simulated clock, the
    market pump calls `run_due()` after each batch (time only moves when the simulator moves it),
    and awaits the jobs in order: two runs with one seed then do the same work at the same
    simulated instants. A failing job is logged and reported; it never stops the others.
    """

    def __init__(self, clock: Clock, on_error: Callable[[str, Exception], None] | None = None) -> None:
        self.clock = clock
        self._jobs: list[_Job] = []
        self._next_due = float("inf")
        self._on_error = on_error

    def every(self, name: str, period_s: float | Callable[[], float], work: Work) -> None:
        period = period_s if callable(period_s) else (lambda p=float(period_s): p)
        self._jobs.append(_Job(name, period, work, self.clock.monotonic() + max(0.001, period())))
        self._next_due = min(j.due for j in self._jobs)

    def names(self) -> list[str]:
        return [j.name for j in self._jobs]

    def any_due(self) -> bool:
        """Cheap check for the market pump, every batch: is anything due (no coroutine made when nothing is)?"""
        return self.clock.monotonic() >= self._next_due

    async def run_due(self) -> int:
        """Run every job whose time has come; returns how many ran."""
        now = self.clock.monotonic()
        ran = 0
        for job in self._jobs:
            if now < job.due:
                continue
            job.due = now + max(0.001, job.period())
            ran += 1
            try:
                out = job.work()
                if inspect.isawaitable(out):
                    await out
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("periodic job %s failed", job.name)
                if self._on_error is not None:
                    self._on_error(job.name, exc)
        self._next_due = min((j.due for j in self._jobs), default=float("inf"))
        return ran

    async def run(self, resolution_s: float = 0.25) -> None:
        """Real time: wake at the next due job (at most every resolution_s) until cancelled."""
        while True:
            await self.run_due()
            now = self.clock.monotonic()
            nxt = min((j.due for j in self._jobs), default=now + resolution_s)
            await asyncio.sleep(min(resolution_s, max(0.0, nxt - now)))
