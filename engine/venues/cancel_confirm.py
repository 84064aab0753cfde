"""A cancel is confirmed by the venue's own view of the order, never by the cancel's answer alone.

The answer can be unreadable, lost, timed out, "unknown order" (already finished, or a resend of a
DELETE whose first answer was lost) or "no longer cancelable" (it filled). Each of those is settled
by reading the order back; an order that still works is cancelled again. One loop for every venue:
the venue supplies how to send the cancel and how to read the order back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from engine.core.model import Order, OrderStatus
from engine.venues.base import OrderNotFound, RateLimited, TransientVenueError, Venue, VenueError

log = logging.getLogger(__name__)

Send = Callable[[], Awaitable[Order | None]]  # the venue's answer when it settles the cancel, else None


async def confirm_cancel(venue: Venue, order: Order, send: Send, lookup: Callable[[], Awaitable[Order | None]],
                         attempts: int, backoff_s: float) -> Order:  # fmt: skip
    """Send the cancel and confirm it; the faults it gets past are reported as the venue's own
    (`Venue.absorbing`). Raises OrderNotFound when the venue has no such order, RateLimited at once,
    and the last fault when the order could not be read back after every attempt. An order still
    working after every attempt is returned as it is: the caller sees the cancel did not take."""
    last_error: VenueError | None = None
    unknown = False  # a cancel answered "unknown order"
    with venue.absorbing("cancel", f"cancel {order.client_id} ({order.symbol}) unconfirmed") as faults:
        for attempt in range(max(1, attempts)):
            if attempt:
                await asyncio.sleep(backoff_s * 2 ** (attempt - 1))
            try:
                answer = await send()
                if answer is not None:
                    return answer
            except OrderNotFound:
                unknown = True
            except RateLimited:
                raise
            except TransientVenueError as exc:
                last_error = exc
                faults.append(exc)
                log.warning("%s: cancel %s unconfirmed (%s); reading it back", venue.name, order.client_id, exc)
            try:
                found = await lookup()
            except RateLimited:
                raise
            except TransientVenueError as exc:
                last_error = exc
                faults.append(exc)
                continue
            if found is None:
                raise OrderNotFound(f"{venue.name} has no order {order.client_id}")
            if not found.status.is_working:
                if unknown and not faults and found.status is OrderStatus.CANCELED:
                    # aiohttp resends a DELETE whose answer was lost: the resend meets "unknown order"
                    # (after a fault of our own seen first, that fault is the explanation)
                    faults.append(OrderNotFound(f"{venue.name}: the cancel was answered 'unknown order', yet the "
                                                "order is cancelled: its first answer was lost, or it was "
                                                "cancelled elsewhere"))  # fmt: skip
                return found
            if attempt == attempts - 1:
                return found  # still working after every attempt
        raise last_error or TransientVenueError(f"{venue.name}: cancel of {order.client_id} unconfirmed")
