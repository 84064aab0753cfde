"""The stage's evidence window, read from the journal incrementally.

The red flags and the criterion alerts are evaluated every `check_every_s` of engine time.
Reading the whole window each time is quadratic over a run: a simulated week at full speed
re-read hundreds of millions of equity rows. This cache reads only what was written since
the previous read (rows at the boundary are read again and de-duplicated), and starts over
when the window's start moves (a stage change).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from engine.activation.stages import JournalData
from engine.core.model import ClosedTrade, Fill
from engine.persistence.journal_schema import IncidentRecord

OVERLAP = timedelta(minutes=5)


class EvidenceWindow:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._since: datetime | None = None
        self._upto: datetime | None = None
        self._started = False
        self._trades: list[ClosedTrade] = []
        self._equity_ts: list[float] = []  # POSIX seconds and floats: a week of 5 s samples stays small
        self._equity_v: list[float] = []
        self._incidents: list[IncidentRecord] = []
        self._fills: list[Fill] = []
        self._fill_ids: set[str] = set()

    def load(self, journal: Any, since: datetime | None, paper_win_rate: float | None) -> JournalData:
        """Blocking (journal reads): call it off the loop, or inline when the loop may wait."""
        with self._lock:  # a promote's evaluation and the periodic one may overlap on two threads
            return self._load(journal, since, paper_win_rate)

    def _load(self, journal: Any, since: datetime | None, paper_win_rate: float | None) -> JournalData:
        if not self._started or since != self._since:
            self._reset()
            self._since, self._started = since, True
        start = since if self._upto is None else self._upto - OVERLAP  # rows stamped late are read again
        self._add_trades(journal.trades(start), start)
        self._add_equity([(p.ts, p.equity) for p in journal.equity_curve(start)])
        self._add_incidents(journal.incidents(start))
        for f in journal.fills(start):
            if f.fill_id not in self._fill_ids:
                self._fill_ids.add(f.fill_id)
                self._fills.append(f)
            self._advance(f.ts)
        if self._equity_ts:
            self._advance(datetime.fromtimestamp(self._equity_ts[-1], tz=UTC))
        orders = [o for o in journal.orders() if since is None or o.created_at is None or o.created_at >= since]
        return JournalData(trades=list(self._trades), equity=self._equity_series(), incidents=list(self._incidents),
                           orders=orders, fills=list(self._fills), since=since,
                           paper_win_rate=paper_win_rate)  # fmt: skip

    def _add_trades(self, rows: list[ClosedTrade], start: datetime | None) -> None:
        seen = {_trade_key(t) for t in self._trades if start is not None and t.closed_at >= start}
        for t in rows:
            if _trade_key(t) not in seen:
                self._trades.append(t)
            self._advance(t.closed_at)

    def _add_equity(self, rows: list[tuple[datetime, Decimal]]) -> None:
        last = self._equity_ts[-1] if self._equity_ts else None
        for ts, v in rows:
            t = ts.timestamp()
            if last is None or t > last:
                self._equity_ts.append(t)
                self._equity_v.append(float(v))
                last = t

    def _equity_series(self) -> Any:
        import pandas as pd  # only when evidence is measured

        index = pd.to_datetime(self._equity_ts, unit="s", utc=True)
        return pd.Series(self._equity_v, index=index, dtype=float)

    def _add_incidents(self, rows: list[IncidentRecord]) -> None:
        known = {r.id for r in self._incidents[-1000:]}
        for r in rows:
            if r.id not in known:
                self._incidents.append(r)
                self._advance(r.ts)

    def _advance(self, ts: datetime) -> None:
        if self._upto is None or ts > self._upto:
            self._upto = ts


def _trade_key(t: ClosedTrade) -> tuple[Any, ...]:
    return (t.symbol, t.closed_at, t.qty, t.pnl, t.opened_at)
