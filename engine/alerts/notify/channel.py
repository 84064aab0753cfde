"""What the dispatcher needs of an outbound channel (webhook, e-mail)."""

from __future__ import annotations

from typing import Protocol

from engine.core.events import AlertEvent
from engine.core.model import AlertLevel


class DeliveryFailed(Exception):
    """A channel gave up on one alert. ``reason`` is safe to show: no URL, no password."""

    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


class Channel(Protocol):
    name: str  # shown to the operator, e.g. "webhook 'ops-slack'" (never the URL)
    min_level: AlertLevel
    retries: int  # retries made so far (for the counters)

    async def send(self, ev: AlertEvent) -> None:
        """Deliver, retrying as the channel sees fit; raise DeliveryFailed when giving up."""
        ...

    async def aclose(self) -> None: ...


def scrub(text: str, *secrets: str) -> str:
    """Belt and braces for text that came from a library: every secret value becomes '***'."""
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text
