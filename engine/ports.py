"""Ports: what the parts are given by the kernel, as Protocols. No part imports the kernel.

Each service names the narrowest port it needs; the kernel (engine.app.kernel.Engine)
satisfies them all structurally. Types here are imported for annotations only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from engine.core.clock import Clock
    from engine.core.config import Settings
    from engine.core.events import EventBus
    from engine.core.model import AlertEvent, AlertLevel, Fill, Instrument, MarketTick, Order
    from engine.oms.execution import Execution
    from engine.oms.order_book import OrderBook
    from engine.oms.portfolio import Portfolio
    from engine.oms.protection import Protection
    from engine.persistence.journal import Journal
    from engine.risk.breakers import Breakers
    from engine.risk.risk_engine import RiskEngine
    from engine.venues.base import Venue


class Recorder(Protocol):
    """The journal, the audit trail and the alerts: where every part reports."""

    settings: Settings
    clock: Clock
    journal: Journal
    bus: EventBus

    def alert(self, level: AlertLevel, code: str, message: str, key: str = "") -> AlertEvent | None: ...

    def audit(self, action: str, reason: str, details: dict[str, Any] | None = None, operator: str = "") -> None: ...


class AccountView(Protocol):
    portfolio: Portfolio
    risk: RiskEngine

    @property
    def new_positions_today(self) -> int: ...


class MarketView(Protocol):
    symbols: list[str]

    @property
    def instruments(self) -> dict[str, Instrument]: ...

    @property
    def ticks(self) -> dict[str, MarketTick]: ...


class StageView(Protocol):
    @property
    def stage(self) -> str: ...


class RiskHost(Recorder, AccountView, Protocol):
    """Risk gauges and stage changes: the account, the breakers, the venue in use and the recorder."""

    breakers: Breakers
    started_at: datetime | None
    venue: Venue


class ApprovalHost(Recorder, AccountView, MarketView, Protocol):
    book: OrderBook
    execution: Execution
    protection: Protection
    stage_manager: StageView


class AccountBaseline(Protocol):
    def baseline_for(self, symbol: str) -> Decimal: ...


class ReconcileHost(Recorder, AccountView, MarketView, Protocol):
    """Reconciliation reads the venue and writes through the one order path."""

    venue: Venue
    book: OrderBook
    account: AccountBaseline

    def apply_update(self, update: Order, fills: Sequence[Fill] = ()) -> Order: ...

