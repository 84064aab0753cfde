"""Which REST-acknowledged orders the private stream still owes a report, and since when.

A stream that is subscribed but slow (or silent) would leave fills waiting; the
stream loop asks for the orders overdue past the grace and polls them at once.
A report can come before the REST answer (always so when that answer was lost and the
order had to be looked up): an order the stream already reported is owed nothing.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

SEEN_KEPT = 4096  # client ids the stream reported, remembered so a late REST answer owes nothing


class AckWatch:
    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self._since: dict[str, float] = {}  # client id -> loop time its REST ack came back
        self._seen: OrderedDict[str, None] = OrderedDict()  # reported by the stream, newest last

    def expect(self, client_id: str) -> None:
        if client_id in self._seen:
            return  # the stream was first: it owes nothing, and is not silent
        self._since[client_id] = asyncio.get_running_loop().time()

    def saw(self, client_id: str) -> None:
        self._since.pop(client_id, None)
        self._seen[client_id] = None
        self._seen.move_to_end(client_id)
        if len(self._seen) > SEEN_KEPT:
            self._seen.popitem(last=False)

    def forget(self) -> None:
        """Polling covers every order: the stream, once back, owes only the ones acknowledged after."""
        self._since.clear()

    def overdue(self) -> list[str]:
        """Client ids unreported past the grace; each is returned once."""
        deadline = asyncio.get_running_loop().time() - self.grace_s
        late = [cid for cid, at in self._since.items() if at <= deadline]
        for cid in late:
            del self._since[cid]
        return late
