"""One client's share of the event stream: coalesced, bounded, never in the engine's way.

The bus is synchronous and the order path publishes on it, so the handler here does a
dict write or a deque append and returns. Market events keep only the latest per symbol
and go out at most ~20 times a second; every other event is queued in order. A client
that falls behind (queue full) loses the queue and is sent a fresh snapshot instead:
the engine never waits for a slow console, and a console never shows half a history.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any

from engine.core.events import Event, EventBus, MarketEvent

MARKET_INTERVAL_S = 0.05  # ~20 Hz, as the window's bridge flushes
QUEUE_LIMIT = 2000


class ClientFeed:
    def __init__(self, bus: EventBus, queue_limit: int = QUEUE_LIMIT, market_interval_s: float = MARKET_INTERVAL_S):
        self._market: dict[str, MarketEvent] = {}
        self._queue: deque[Event] = deque()
        self._limit = queue_limit
        self._interval = market_interval_s
        self._last_market = 0.0
        self.overflowed = False  # the client must get a new snapshot before anything else
        self.overflows = 0
        self._wake = asyncio.Event()
        self._unsubscribe = bus.subscribe(self._on_event)

    def close(self) -> None:
        self._unsubscribe()

    def _on_event(self, ev: Any) -> None:
        if isinstance(ev, MarketEvent):
            self._market[ev.tick.symbol] = ev
        elif len(self._queue) >= self._limit:
            self._queue.clear()
            self._market.clear()
            self.overflowed = True
            self.overflows += 1
        else:
            self._queue.append(ev)
        self._wake.set()

    async def next_batch(self, max_wait_s: float) -> list[Event]:
        """Events due now (possibly none after `max_wait_s`); check `overflowed` first."""
        deadline = time.monotonic() + max_wait_s
        while True:
            out: list[Event] = []
            if self._queue:
                out.extend(self._queue)
                self._queue.clear()
            now = time.monotonic()
            market_due = self._market and now - self._last_market >= self._interval
            if market_due:
                out.extend(self._market.values())
                self._market.clear()
                self._last_market = now
            if out or self.overflowed:
                return out
            wait = deadline - now
            if self._market:  # market data waits only for its next slot
                wait = min(wait, self._interval - (now - self._last_market))
            if wait <= 0:
                return out
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    @property
    def backlog(self) -> int:
        return len(self._queue) + len(self._market)
