"""Glue between the journal and the performance view.

The figures are `engine.analytics.metrics.report` over the journal's trades and equity curve with the
trading-day zone, exactly what `trading-console report` computes; a period keeps the trades
closed, and the equity recorded, since its start on the engine's clock. The journal is read
incrementally (only rows newer than the last read) into arrays, and the work runs on one
worker thread, every 2 s while the view is visible and soon after a position closes.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from PySide6.QtCore import QObject, QTimer, Signal

from engine.analytics import metrics
from engine.core.events import EventBus, PositionEvent
from engine.core.model import ClosedTrade, Fill
from widgets.performance_view import PerformanceView

if TYPE_CHECKING:
    from engine.core.config import Settings
    from engine.persistence.journal import Journal

log = logging.getLogger(__name__)

REFRESH_S = 2.0
_POLL_MS = 250  # how soon a closed position (or a new period) shows
_DAYS = {"7d": 7, "30d": 30}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def period_start(period: str, now: datetime, tz: str) -> datetime | None:
    """Start of a period on the engine clock: today's local midnight, now minus 7 or 30 days, or None."""
    if period == "all":
        return None
    if period == "today":
        local = now.astimezone(ZoneInfo(tz)).date()
        return datetime.combine(local, day_time(0), tzinfo=ZoneInfo(tz)).astimezone(UTC)
    return now - timedelta(days=_DAYS[period])


def _us(ts: datetime) -> int:
    return (ts - _EPOCH) // timedelta(microseconds=1)


@dataclass
class JournalCache:
    """The journal's trades, fills and equity curve, read a little more each time (on the worker thread).

    Fills are kept so "total fees" counts every fill (an open position's entry fee too), as the
    daily summary does, rather than the closed trades' fees only."""

    trades: list[ClosedTrade] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    ts_us: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    equity: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.float64))

    def load_new(self, journal: Journal) -> None:
        since = self.trades[-1].closed_at if self.trades else None
        new = journal.trades(since=since)  # `since` is inclusive: rows at that instant come again
        while since is not None and self.trades and self.trades[-1].closed_at >= since:
            self.trades.pop()
        self.trades.extend(new)
        fills_since = self.fills[-1].ts if self.fills else None
        new_fills = journal.fills(since=fills_since)  # inclusive too
        while fills_since is not None and self.fills and self.fills[-1].ts >= fills_since:
            self.fills.pop()
        self.fills.extend(new_fills)
        last = int(self.ts_us[-1]) if len(self.ts_us) else None
        points = journal.equity_curve(since=None if last is None else _EPOCH + timedelta(microseconds=last))
        if last is not None:
            keep = int(np.searchsorted(self.ts_us, last, side="left"))
            self.ts_us, self.equity = self.ts_us[:keep], self.equity[:keep]
        if points:
            self.ts_us = np.concatenate([self.ts_us, np.fromiter((_us(p.ts) for p in points), np.int64, len(points))])
            self.equity = np.concatenate([self.equity, np.fromiter((float(p.equity) for p in points), np.float64)])


@dataclass(frozen=True)
class PerformanceResult:
    period: str
    report: dict[str, Any]
    trades: list[ClosedTrade]
    ts_us: np.ndarray
    equity: np.ndarray
    as_of: datetime


def compute(cache: JournalCache, period: str, now: datetime, tz: str) -> PerformanceResult:
    """The report for a period. The period's curve opens with the equity it started with."""
    start = period_start(period, now, tz)
    trades, fills, ts, eq = cache.trades, cache.fills, cache.ts_us, cache.equity
    if start is not None:
        trades = [t for t in trades if t.closed_at >= start]
        fills = [f for f in fills if f.ts >= start]
        s = _us(start)
        i = int(np.searchsorted(ts, s, side="left"))
        if i > 0 and (i == len(ts) or ts[i] > s):  # a loss overnight counts in today, as the breaker sees it
            ts, eq = np.concatenate([[s], ts[i:]]), np.concatenate([[eq[i - 1]], eq[i:]])
        else:
            ts, eq = ts[i:], eq[i:]
    index = pd.DatetimeIndex(ts.astype("datetime64[us]")).tz_localize(UTC)
    report = metrics.report(trades, pd.Series(eq, index=index, dtype=float), section="all", fills=fills, tz=tz)
    return PerformanceResult(period, report, list(trades), ts, eq, now)


class _CollectorHold:
    """Keeps Python's cycle collector off while the worker computes; the Qt thread resumes it.

    The collector runs in whichever thread happens to allocate, and pandas allocates plenty. If
    it ran on the worker and found a Qt object only it still held (a closed window in a reference
    cycle), Qt would delete that object off its thread, leaving its timers dangling: a crash at
    the next tick. Held here and resumed on the Qt thread, the collection happens there.
    """

    def __init__(self) -> None:
        self.holds = 0
        self.was_enabled = True

    def hold(self) -> None:
        if self.holds == 0:
            self.was_enabled = gc.isenabled()
            gc.disable()
        self.holds += 1

    def resume(self) -> None:
        self.holds = max(0, self.holds - 1)
        if self.holds == 0 and self.was_enabled:
            gc.enable()


_gc = _CollectorHold()  # one for the process: the collector's switch is global


def _release(held: dict[str, bool]) -> None:
    if held["held"]:
        held["held"] = False
        _gc.resume()


class PerformanceDock(QObject):
    """Owns the view; `view` goes into the main window's Performance dock.

    The worker thread touches only Python objects (the cache, the journal's reads); the Qt
    thread's timer picks its result up. No signal crosses threads, so deleting the window
    while a computation runs is safe.
    """

    refreshed = Signal()

    def __init__(
        self,
        journal: Journal,
        settings: Settings,
        now: Callable[[], datetime],
        bus: EventBus | None = None,
        parent: QObject | None = None,
        active: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(parent)
        self.journal = journal
        self.tz = settings.engine.trading_day_tz
        risk = settings.risk
        self.limits = {"max_drawdown": risk.max_drawdown, "daily_loss_limit": risk.daily_loss_limit,
                       "warn_at": risk.warn_at}  # fmt: skip
        self.now = now
        self.active = active or (lambda: True)  # False once the engine stops: the journal is about to close
        self.view = PerformanceView()
        self.view.periodChanged.connect(self._period_changed)
        self._cache = JournalCache()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="performance")
        self._future: Future[PerformanceResult] | None = None
        self._held = held = {"held": False}
        self.destroyed.connect(lambda *_: _release(held))  # deleted mid-computation: never left off
        self._dirty = True
        self._last = 0.0
        self._closed = False
        self._unsubscribe = bus.subscribe(self._on_position, PositionEvent) if bus is not None else None
        self._timer = QTimer(self)
        self._timer.setInterval(_POLL_MS)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    def _on_position(self, ev: PositionEvent) -> None:
        if ev.position.qty == 0:  # a round trip closed (a bus handler only sets a flag)
            self._dirty = True

    def _period_changed(self, _period: str) -> None:
        self._dirty = True
        self._tick()

    def _tick(self) -> None:
        fut = self._future
        if fut is not None:
            if not fut.done():
                return
            self._release()
            self._show(fut)
        if self.journal.closed:
            self._timer.stop()  # the engine is gone: nothing more to read
            return
        if self._closed or not self.active() or not self.view.isVisible():
            return
        if self._dirty or time.monotonic() - self._last >= REFRESH_S:
            self.refresh()

    def _work(self, period: str, now: datetime) -> PerformanceResult:
        self._cache.load_new(self.journal)
        return compute(self._cache, period, now, self.tz)

    def refresh(self) -> Future[PerformanceResult]:
        """Recompute on the worker thread; the timer shows the result when it is done."""
        self._dirty, self._last = False, time.monotonic()
        self._hold()
        fut = self._future = self._executor.submit(self._work, self.view.period(), self.now())
        return fut

    def _hold(self) -> None:
        if not self._held["held"]:
            self._held["held"] = True
            _gc.hold()

    def _release(self) -> None:
        self._future = None
        _release(self._held)

    def _show(self, fut: Future[PerformanceResult]) -> None:
        if self.journal.closed:
            return  # shutting down: a read cut short by the journal closing is no news
        try:
            result = fut.result()
        except Exception:
            log.exception("performance figures could not be computed")
            return
        self.apply(result)

    def refresh_now(self) -> PerformanceResult:
        """The same computation, waited for (tests, and a caller that needs the figures at once)."""
        if self._future is not None:
            self._future.result()  # one computation at a time: the cache is not shared
        self._hold()
        try:
            result = self._executor.submit(self._work, self.view.period(), self.now()).result()
        finally:
            self._release()
        self.apply(result)
        return result

    def apply(self, result: PerformanceResult) -> None:
        if result.period != self.view.period():
            self._dirty = True  # the operator switched period meanwhile: compute the new one
            return
        self.view.set_trades(result.trades)
        self.view.set_equity(result.ts_us, result.equity)
        self.view.set_report(result.report, self.limits, result.as_of)
        self.refreshed.emit()

    def close(self) -> None:
        self._closed = True
        self._timer.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._release()
