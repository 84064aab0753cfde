"""The engine as the console holds it (a Protocol): the kernel's class is imported by nothing outside
engine.app; the window, the bridge and the dialogs type their handle with this."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from engine.app.operator_api import OperatorAPI
    from engine.core.clock import Clock
    from engine.core.config import Settings
    from engine.core.events import EventBus
    from engine.core.model import Instrument, Order
    from engine.oms.portfolio import Portfolio
    from engine.oms.protection import Protection
    from engine.persistence.journal import Journal
    from engine.risk.risk_engine import RiskEngine
    from engine.venues.base import Venue


class ConsoleEngine(Protocol):
    """The engine as the console holds it: commands only through `api` (the OperatorAPI); the rest is read
    (values, the bus, the journal's reads) or the life cycle the application drives. The console types its
    handle with this, never with the kernel's class."""

    api: OperatorAPI
    settings: Settings
    clock: Clock
    bus: EventBus
    journal: Journal
    portfolio: Portfolio
    risk: RiskEngine
    venue: Venue
    operator: str
    stopped: Any
    stage_manager: Any
    approval_gate: Any
    alert_center: Any
    protection: Protection

    @property
    def orders(self) -> dict[str, Order]: ...

    @property
    def instruments(self) -> dict[str, Instrument]: ...

    def audit(self, action: str, reason: str, details: dict[str, Any] | None = None, operator: str = "") -> None: ...

    async def start(self) -> None: ...

    async def shutdown(self, policy: str | None = None) -> None: ...
