"""The journal cannot fail silently: a write error or a full queue halts trading with an EMERGENCY alert.

The journal calls back on its writer thread (or the enqueuing one); the halt hops to the loop. Rows are
held in memory and written when the disk allows; operator commands keep working meanwhile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.core.model import AlertLevel, TradingState

if TYPE_CHECKING:
    from engine.app.kernel import Engine


class JournalWatch:
    def __init__(self, engine: Engine) -> None:
        self.e = engine
        engine.journal.on_failure(self._failing)
        engine.journal.on_recovery(self._recovered)

    def _failing(self, reason: str) -> None:
        loop = self.e._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._halt, reason)

    def _recovered(self) -> None:
        loop = self.e._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(
                self.e.alert, AlertLevel.WARNING, "journal_recovered",
                "The journal writes again; every held row was written. Trading stays HALTED until resumed.",
                "journal",
            )  # fmt: skip

    def _halt(self, reason: str) -> None:
        """Trading without a record is trading blind: halt (operator commands keep working) and say why."""
        self.e.risk.set_state(TradingState.HALTED, f"journal cannot write: {reason}", "system")
        self.e.alert(AlertLevel.EMERGENCY, "journal_failed",
                     f"JOURNAL FAILURE: {reason}. Trading HALTED; nothing is dropped, rows are held in memory "
                     "and written when the disk allows.", key="journal")  # fmt: skip
