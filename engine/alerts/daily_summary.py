"""The daily summary: what one trading day did, as plain text and as JSON.

`build_daily_summary` is pure over what the journal holds, so the file the engine writes
at the end of the day, the message the channels deliver and `trading-console summary`
show the same figures. A trading day is a calendar day in the engine's trading-day zone,
the same days `engine.analytics.metrics.daily_pnl` and the daily loss breaker use:

  - starting equity is the last equity sample before the day (the previous close), or the
    day's first sample when there is none; ending equity, cash and unrealized P&L are the
    day's last sample. Day P&L = ending - starting equity, in percent of the starting equity.
  - fills are the day's executions; closed positions are the round trips closed that day
    (P&L net of both fees, exact in Decimal: a true breakeven is 0 and counts as neither won
    nor lost); open positions are the book at the end, replayed from every fill.
  - fees are every fill's fee of the day, open positions' entries included: the figure
    `metrics.report(..., fills=...)` gives as total_fees over the same day.
  - breaker events are the day's alerts whose code starts with "breaker_".
  - `until` cuts the day short (a summary sent at 23:59 covers the day up to 23:59).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from engine.core.model import ZERO, ClosedTrade, Fill, Position
from engine.oms.portfolio import Portfolio
from engine.persistence.journal_schema import AlertRecord, json_default

BREAKER_PREFIX = "breaker_"
EquityRow = dict[str, Any]  # ts (datetime) and Decimal equity, cash, unrealized, realized, drawdown


class DayReader(Protocol):
    """The journal reads the summary needs (engine.persistence.journal.Journal has them)."""

    def equity_samples(self, since: datetime, until: datetime, *, before: bool = False) -> list[EquityRow]: ...

    def fills(self, since: datetime | None = None) -> list[Fill]: ...

    def trades(self, since: datetime | None = None) -> list[ClosedTrade]: ...

    def alerts_between(self, since: datetime, until: datetime) -> list[AlertRecord]: ...


@dataclass(frozen=True, slots=True)
class DayData:
    """The journal's rows for a day; anything outside the window is ignored when summarising."""

    opening: EquityRow | None = None  # the last equity row before the day
    samples: Sequence[EquityRow] = ()  # equity rows of the day
    fills: Sequence[Fill] = ()  # every fill up to the end (open positions are replayed from them)
    trades: Sequence[ClosedTrade] = ()
    alerts: Sequence[AlertRecord] = ()


def day_window(day: date, tz: str) -> tuple[datetime, datetime]:
    """[start, end) of a trading day in UTC: local midnight to the next local midnight."""
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def load_day_data(journal: DayReader, start: datetime, end: datetime) -> DayData:
    before = journal.equity_samples(start, end, before=True)
    return DayData(
        opening=before[0] if before else None,
        samples=journal.equity_samples(start, end),
        fills=[f for f in journal.fills() if f.ts < end],
        trades=[t for t in journal.trades(since=start) if t.closed_at < end],
        alerts=journal.alerts_between(start, end),
    )


@dataclass(frozen=True, slots=True)
class DailySummary:
    day: date
    tz: str
    start: datetime  # UTC
    end: datetime  # UTC, exclusive: the next midnight, or just after `until`
    complete: bool  # the whole day, not cut short by `until`
    start_equity: Decimal | None
    end_equity: Decimal | None
    day_pnl: Decimal | None
    day_pnl_pct: float | None  # percent of the starting equity
    cash: Decimal | None
    unrealized: Decimal | None
    fills: tuple[Fill, ...]
    closed: tuple[ClosedTrade, ...]
    positions: tuple[Position, ...]
    breaker_events: tuple[AlertRecord, ...]

    @property
    def realized_pnl(self) -> Decimal:
        return sum((t.pnl for t in self.closed), ZERO)

    @property
    def fees(self) -> Decimal:
        return sum((f.fee for f in self.fills), ZERO)

    @property
    def wins(self) -> int:
        return sum(1 for t in self.closed if t.pnl > 0)

    @property
    def losses(self) -> int:
        return sum(1 for t in self.closed if t.pnl < 0)

    @property
    def breakeven(self) -> int:
        """Closed at exactly 0 after fees: neither a win nor a loss (as in engine.analytics.metrics)."""
        return sum(1 for t in self.closed if t.pnl == 0)

    def to_dict(self) -> dict[str, Any]:
        """Money as exact decimal strings, times as UTC ISO 8601 (as the journal stores them)."""
        raw: dict[str, Any] = {
            "day": self.day,
            "tz": self.tz,
            "start": self.start,
            "end": self.end,
            "complete": self.complete,
            "start_equity": self.start_equity,
            "end_equity": self.end_equity,
            "day_pnl": self.day_pnl,
            "day_pnl_pct": self.day_pnl_pct,
            "cash": self.cash,
            "unrealized": self.unrealized,
            "realized_pnl": self.realized_pnl,
            "fees": self.fees,
            "fills_count": len(self.fills),
            "closed_count": len(self.closed),
            "wins": self.wins,
            "losses": self.losses,
            "breakeven": self.breakeven,
            "fills": [dataclasses.asdict(f) for f in self.fills],
            "closed_positions": [dataclasses.asdict(t) for t in self.closed],
            "open_positions": [
                {"symbol": p.symbol, "qty": p.qty, "avg_price": p.avg_price, "opened_at": p.opened_at}
                for p in self.positions
            ],
            "breaker_events": [
                {"ts": a.ts, "level": a.level.name, "code": a.code, "message": a.message}
                for a in self.breaker_events
            ],
        }
        return json.loads(json.dumps(raw, default=json_default))  # type: ignore[no-any-return]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"

    def text(self, max_rows: int = 20) -> str:
        from engine.alerts.daily_summary_text import render

        return render(self, max_rows)


def build_daily_summary(
    source: DayReader | DayData, day: date, tz: str = "UTC", until: datetime | None = None
) -> DailySummary:
    """The summary of `day` (a calendar day in `tz`), from a journal or from its rows."""
    start, day_end = day_window(day, tz)
    end = day_end if until is None else max(start, min(day_end, until + timedelta(microseconds=1)))
    data = source if isinstance(source, DayData) else load_day_data(source, start, end)

    def inside(ts: datetime) -> bool:
        return start <= ts < end

    samples = [s for s in data.samples if inside(s["ts"])]
    opening = data.opening if data.opening is not None and data.opening["ts"] < start else None
    opening = opening or (samples[0] if samples else None)
    closing = samples[-1] if samples else opening
    start_eq = opening["equity"] if opening else None
    end_eq = closing["equity"] if closing else None
    pnl = end_eq - start_eq if start_eq is not None and end_eq is not None else None
    pct = float(pnl / start_eq * 100) if pnl is not None and start_eq else (0.0 if pnl is not None else None)

    book = Portfolio(ZERO)  # positions only: the cash figure comes from the equity sample
    for f in sorted((f for f in data.fills if f.ts < end), key=lambda f: f.ts):
        book.apply_fill(f)
    return DailySummary(
        day=day,
        tz=tz,
        start=start,
        end=end,
        complete=end == day_end,
        start_equity=start_eq,
        end_equity=end_eq,
        day_pnl=pnl,
        day_pnl_pct=pct,
        cash=closing["cash"] if closing else None,
        unrealized=closing["unrealized"] if closing else None,
        fills=tuple(sorted((f for f in data.fills if inside(f.ts)), key=lambda f: f.ts)),
        closed=tuple(sorted((t for t in data.trades if inside(t.closed_at)), key=lambda t: t.closed_at)),
        positions=tuple(sorted(book.positions(), key=lambda p: p.symbol)),
        breaker_events=tuple(a for a in data.alerts if inside(a.ts) and a.code.startswith(BREAKER_PREFIX)),
    )
