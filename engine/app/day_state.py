"""Day state: the baselines the daily limits measure from, journaled so a restart changes none of them.

Without this, restarting the engine mid-day would reset today's P&L to zero, the
daily-loss gauge to 0%, the new-positions count and the loss streak: a way
round every daily limit. Saved at each equity sample, each closed trade and at
shutdown; restored on start when the saved day is still the current one (the
equity peak and the loss streak carry over across days too).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from engine.oms.portfolio import Portfolio
from engine.risk.breakers import Breakers

KEY = "day_state"


class StateStore(Protocol):
    def get_state(self, key: str, default: Any = None) -> Any: ...

    def set_state(self, key: str, value: Any) -> None: ...


class DayState:
    def __init__(self, store: StateStore, day_tz: str) -> None:
        self._store = store
        self._tz = day_tz
        self.new_positions = 0
        self._day_end: datetime | None = None  # end of the day the counters belong to

    def restored_today(self, now: datetime) -> bool:
        return self._day_end is not None and now < self._day_end

    def new_day(self, now: datetime) -> None:
        self.new_positions = 0
        self._day_end = None

    def count_new_position(self) -> None:
        self.new_positions += 1

    def save(self, pf: Portfolio, breakers: Breakers) -> None:
        end = pf.day_end
        if end is not None:
            self._day_end = end
        self._store.set_state(
            KEY,
            {
                "day_end": end.isoformat() if end is not None else None,
                "day_start_equity": str(pf.day_start_equity),
                "day_realized_start": str(pf.day_realized_start),
                "peak_equity": str(pf.peak_equity),
                "new_positions": self.new_positions,
                "consecutive_losses": breakers.consecutive_losses,
            },
        )

    def restore(self, pf: Portfolio, breakers: Breakers, now: datetime) -> bool:
        """Put back what the journal holds; True when the saved day is today's (baselines restored)."""
        saved = self._store.get_state(KEY)
        if not isinstance(saved, dict):
            return False
        peak = Decimal(str(saved.get("peak_equity") or pf.peak_equity))
        pf.peak_equity = max(pf.peak_equity, peak)
        breakers.restore_streak(int(saved.get("consecutive_losses") or 0))
        end_text = saved.get("day_end")
        if not end_text:
            return False
        end = datetime.fromisoformat(end_text)
        if now >= end:
            return False  # a new trading day began while the engine was down
        pf.restore_day(end, Decimal(str(saved["day_start_equity"])), Decimal(str(saved["day_realized_start"])))
        self.new_positions = int(saved.get("new_positions") or 0)
        self._day_end = end
        return True
