"""An order request whose outcome is unknown (timeout, 5xx, unreadable or lost answer) is settled by
looking it up, never by sending it again while the first could still arrive.

Binance accepts a reused client order id once the earlier order has filled ("Orders with the same
newClientOrderID can be accepted only when the previous one is filled"), so a market order resent
after a timeout trades twice when the held original arrives first. What makes a resend safe is the
venue's own receive window: a request older than `recvWindow` when it reaches the venue (or its
matching engine) is refused. So the order is looked up until it shows, or until that window has
closed on the request; only an order still absent after that never happened.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from engine.core.model import Order
from engine.venues.base import RateLimited, TransientVenueError, VenueError

CLOCK_MARGIN_S = 1.0  # Binance takes timestamps up to 1 s ahead of its clock: the window may close that late


@dataclass(frozen=True, slots=True)
class Settled:
    order: Order | None  # the venue's view of it, or None: it never took effect and may be sent again
    known: bool  # False: the look-ups failed until the window closed, so whether it traded is unknown


async def settle(lookup: Callable[[], Awaitable[Order | None]], sent_at: float, window_s: float,
                 interval_s: float, faults: list[VenueError]) -> Settled:  # fmt: skip
    """Look the order up every `interval_s` until it shows or `window_s` (+ margin) has passed since
    `sent_at` (loop time); a look-up's transient fault is collected in `faults` and the look-ups go on."""
    loop = asyncio.get_running_loop()
    closes = sent_at + window_s + CLOCK_MARGIN_S
    while True:
        last_look = loop.time() >= closes  # a look-up after the window closed has the last word
        try:
            found = await lookup()
        except RateLimited:
            raise
        except TransientVenueError as exc:
            faults.append(exc)
            if last_look:
                return Settled(None, known=False)
        else:
            if found is not None or last_look:
                return Settled(found, known=True)
        await asyncio.sleep(max(0.0, min(interval_s, closes - loop.time())))
