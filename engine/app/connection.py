"""Connection health: which links to the venue are up, and an incident when one goes down.

A venue reports its links (the market stream, the order stream) through `Venue.report_link`;
the engine's housekeeping reports the REST link from its ping. A link going down is journaled
once as a `disconnect` incident (the stage criteria count those) and published as a
ConnectionEvent; coming back is published too, with how long it was down.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from engine.core.events import ConnectionEvent
from engine.core.model import VenueMode

if TYPE_CHECKING:
    from engine.app.kernel import Engine

log = logging.getLogger(__name__)


class ConnectionHealth:
    def __init__(self, engine: Engine) -> None:
        self.e = engine
        self._down: dict[str, tuple[datetime, str]] = {}  # link -> since, why

    @property
    def connected(self) -> bool:
        return not self._down

    def down_links(self) -> dict[str, str]:
        return {name: why for name, (_since, why) in self._down.items()}

    def link(self, name: str, up: bool, message: str = "") -> None:
        e = self.e
        now = e.clock.now()
        if not up and name not in self._down:
            self._down[name] = (now, message)
            text = f"{name} link lost: {message}" if message else f"{name} link lost"
            log.warning("%s: %s", e.venue.name, text)
            e.journal.record_incident(now, e.venue.name, "disconnect", text)
            self._publish(now, text)
        elif up and name in self._down:
            since, _why = self._down.pop(name)
            text = f"{name} link restored after {(now - since).total_seconds():.0f} s"
            log.info("%s: %s", e.venue.name, text)
            self._publish(now, text)

    def on_ping(self, ping_ms: float | None) -> None:
        if self.e.venue.mode is VenueMode.SIMULATED:
            return  # in process: there is no link to lose
        self.link("rest", ping_ms is not None, "the venue did not answer a ping" if ping_ms is None else "")

    def _publish(self, now: datetime, message: str) -> None:
        self.e.connected = self.connected
        self.e.bus.publish(ConnectionEvent(now, self.e.venue.name, self.connected, None, None, message))
