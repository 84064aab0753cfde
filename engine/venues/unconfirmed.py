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
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from engine.core.model import Order
from engine.venues.base import MalformedReply, OrderRejected, RateLimited, TransientVenueError, Venue, VenueError

log = logging.getLogger(__name__)
T = TypeVar("T")

CLOCK_MARGIN_S = 1.0  # Binance takes timestamps up to 1 s ahead of its clock: the window may close that late


@dataclass(frozen=True, slots=True)
class Settled:
    order: Order | None  # the venue's view of it, when it shows
    may_resend: bool  # absent and sending again cannot trade twice (False: whether it traded is unknown)


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
                return Settled(None, may_resend=False)
        else:
            if found is not None or last_look:
                return Settled(found, may_resend=True)
        await asyncio.sleep(max(0.0, min(interval_s, closes - loop.time())))


Settle = Callable[[float, list[VenueError]], Awaitable[Settled]]  # (loop time sent, faults) -> the outcome


async def submit_confirmed(venue: Venue, order: Order, send: Callable[[], Awaitable[T | None]],
                           settle_unknown: Settle, found: Callable[[Order], T], attempts: int, backoff_s: float,
                           duplicate: str) -> T:  # fmt: skip
    """The submit loop the real venues share. `send` returns the acknowledged result, or None for an
    unreadable answer; a refusal naming `duplicate` means an earlier attempt arrived. An unknown outcome
    is settled by `settle_unknown` (look-ups); the order is sent again only when that says it may be.
    The faults it gets past are reported as the venue's own; the last one is raised in the end."""
    loop = asyncio.get_running_loop()
    last_error: VenueError | None = None
    with venue.absorbing("submit", f"submit {order.client_id} ({order.symbol}) unconfirmed") as faults:
        for attempt in range(max(1, attempts)):
            if attempt:
                await asyncio.sleep(backoff_s * 2 ** (attempt - 1))
            sent_at = loop.time()
            try:
                result = await send()
                if result is not None:
                    return result
                last_error = MalformedReply(f"{venue.name}: unreadable acknowledgement")
                faults.append(last_error)
            except OrderRejected as exc:
                if duplicate not in str(exc):
                    raise
                last_error = exc  # an earlier attempt did arrive: find it below
            except RateLimited:
                raise  # nothing was placed; the caller waits as told
            except TransientVenueError as exc:
                last_error = exc
                faults.append(exc)
            log.warning("%s: submit %s unconfirmed (%s); looking it up", venue.name, order.client_id, last_error)
            settled = await settle_unknown(sent_at, faults)
            if settled.order is not None:
                return found(settled.order)
            if not settled.may_resend:
                break  # it may have traded: never send it again blind (the stream or reconciliation tells)
        assert last_error is not None
        raise last_error
