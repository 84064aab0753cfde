"""The reject breaker: a storm of venue refusals halts trading before the exchange bans the key.

Measured before it existed: coins moved by hand left the venue holding less than the
engine believed; each refused exit re-armed a stop that was refused too, 417 refusals
in 30 s with the engine still ACTIVE. Every refusal counts here, stop legs and exits
included; N of them within the window halt with a CRITICAL alert.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from engine.core.model import AlertLevel, Order, TradingState


class RejectBreaker:
    def __init__(
        self,
        limit: Callable[[], int],
        window_s: Callable[[], float],
        monotonic: Callable[[], float],
        halt: Callable[[str], None],
        alert: Callable[..., object],
    ) -> None:
        self._limit = limit
        self._window = window_s
        self._now = monotonic
        self._halt = halt
        self._alert = alert
        self._times: deque[float] = deque()
        self.tripped = False

    def count(self) -> int:
        self._forget(self._now())
        return len(self._times)

    def on_rejected(self, order: Order) -> None:
        now = self._now()
        self._times.append(now)
        self._forget(now)
        n, limit = len(self._times), self._limit()
        if n >= limit and not self.tripped:
            self.tripped = True
            why = (f"reject storm: {n} orders refused by the venue within {self._window():g} s "
                   f"(limit {limit}); last: {order.symbol} {order.side} — {order.reason or 'no reason'}")  # fmt: skip
            self._halt(why)
            self._alert(AlertLevel.CRITICAL, "reject_storm", why, key="reject_storm")
        elif n < limit:
            self.tripped = False

    def _forget(self, now: float) -> None:
        window = self._window()
        while self._times and self._times[0] <= now - window:
            self._times.popleft()


def halt_with(set_state: Callable[[TradingState, str, str], object]) -> Callable[[str], None]:
    return lambda why: set_state(TradingState.HALTED, why, "system")
