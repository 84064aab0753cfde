"""An AlertCenter on its own bus and SimClock, for the alert tests that feed it events directly."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.alerts.center import AlertCenter, Sources
from engine.core.alerts_config import AlertRulesConfig
from engine.core.clock import SimClock
from engine.core.events import AlertEvent, EventBus
from engine.core.model import AlertLevel, Position

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
INFO, WARNING, CRITICAL, EMERGENCY = AlertLevel.INFO, AlertLevel.WARNING, AlertLevel.CRITICAL, AlertLevel.EMERGENCY


class Rig:
    """An AlertCenter on its own bus and SimClock, reading plain positions and tick times."""

    def __init__(self, **rules: Any) -> None:
        self.clock = SimClock(T0)
        self.bus = EventBus()
        self.got: list[AlertEvent] = []
        self.bus.subscribe(self.got.append, AlertEvent)
        self.positions: dict[str, Position] = {}
        self.symbols: list[str] = []
        self.ticks: dict[str, datetime] = {}
        sources = Sources(positions=lambda: list(self.positions.values()), symbols=lambda: self.symbols,
                          last_tick=self.ticks.get)  # fmt: skip
        self.center = AlertCenter(self.bus, self.clock, AlertRulesConfig(**rules), sources=sources)

    def after(self, seconds: float) -> datetime:
        return self.clock.advance(seconds)

    def take(self) -> list[AlertEvent]:
        out = list(self.got)
        self.got.clear()
        return out

    def codes(self) -> list[str]:
        return [a.code for a in self.take()]
