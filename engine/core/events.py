"""Immutable events and the synchronous EventBus that carries them.

The bus is synchronous on purpose: handlers run in publish order on the loop
thread, which keeps the engine deterministic for a given seed. A failing
subscriber is logged and reported as an AlertEvent; it never stops the bus.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.core.model import (
    AlertLevel,
    Fill,
    MarketTick,
    Order,
    OrderIntent,
    Position,
    RuleValue,
    TradingState,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    ts: datetime


@dataclass(frozen=True, slots=True)
class MarketEvent(Event):
    tick: MarketTick


@dataclass(frozen=True, slots=True)
class OrderEvent(Event):
    order: Order


@dataclass(frozen=True, slots=True)
class FillEvent(Event):
    fill: Fill
    order: Order


@dataclass(frozen=True, slots=True)
class PositionEvent(Event):
    position: Position  # qty == 0 means the position was closed


@dataclass(frozen=True, slots=True)
class EquityEvent(Event):
    equity: Decimal
    cash: Decimal
    unrealized: Decimal
    realized: Decimal
    day_pnl: Decimal
    day_pnl_pct: Decimal
    peak_equity: Decimal
    drawdown: Decimal  # fraction of peak, 0..1


@dataclass(frozen=True, slots=True)
class IntentDenied(Event):
    intent: OrderIntent
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class StateChanged(Event):
    old: TradingState
    new: TradingState
    reason: str
    operator: str


@dataclass(frozen=True, slots=True)
class AlertEvent(Event):
    level: AlertLevel
    code: str
    message: str
    key: str = ""  # de-duplication key; defaults to code
    alert_id: str = ""


@dataclass(frozen=True, slots=True)
class AlertAcknowledged(Event):
    """The operator acknowledged alerts (journaled and audited by the AlertCenter)."""

    alert_ids: tuple[str, ...]
    operator: str


@dataclass(frozen=True, slots=True)
class ProgressEvent(Event):
    """Progress of an emergency stop or close-all, shown until it is done."""

    operation: str  # "emergency_stop" | "close_all"
    message: str
    done: int
    total: int
    finished: bool = False
    ok: bool = True
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RiskEvent(Event):
    rules: tuple[RuleValue, ...]


@dataclass(frozen=True, slots=True)
class ConnectionEvent(Event):
    venue: str
    connected: bool
    latency_ms: float | None = None
    data_age_s: float | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class ApprovalEvent(Event):
    """An approval request changed: pending, approved, rejected, expired."""

    request_id: str
    status: str
    intent: OrderIntent
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StageEvent(Event):
    stage: str
    previous: str
    reason: str


Handler = Callable[[Any], None]


class EventBus:
    def __init__(self) -> None:
        self._by_type: dict[type, list[Handler]] = {}
        self._all: list[Handler] = []
        self._dispatch_cache: dict[type, tuple[Handler, ...]] = {}
        self._reporting_failure = False
        self.published = 0
        # set by the AlertCenter so a failing handler's alert is de-duplicated like any other
        self.alert_sink: Callable[[AlertEvent], object] | None = None

    def subscribe(self, handler: Handler, *event_types: type[Event]) -> Callable[[], None]:
        """Subscribe to the given types (all events when none). Returns an unsubscribe function."""
        if event_types:
            for t in event_types:
                self._by_type.setdefault(t, []).append(handler)
        else:
            self._all.append(handler)
        self._dispatch_cache.clear()

        def unsubscribe() -> None:
            for lst in [*self._by_type.values(), self._all]:
                if handler in lst:
                    lst.remove(handler)
            self._dispatch_cache.clear()

        return unsubscribe

    def _handlers_for(self, t: type) -> tuple[Handler, ...]:
        handlers = self._dispatch_cache.get(t)
        if handlers is None:
            found: list[Handler] = []
            for klass in t.__mro__:
                found.extend(self._by_type.get(klass, ()))
            found.extend(self._all)
            handlers = self._dispatch_cache[t] = tuple(found)
        return handlers

    def wants(self, t: type[Event]) -> bool:
        """Whether anyone listens to events of type `t`: a hot path skips building events nobody reads."""
        return bool(self._handlers_for(t))

    def publish(self, event: Event) -> None:
        self.published += 1
        for handler in self._handlers_for(type(event)):
            try:
                handler(event)
            except Exception as exc:  # a subscriber's bug must not stop trading
                log.exception("event handler %r failed on %s", handler, type(event).__name__)
                self._report_failure(event, handler, exc)

    def _report_failure(self, event: Event, handler: Handler, exc: Exception) -> None:
        if self._reporting_failure:
            return  # an alert handler that fails must not recurse forever
        self._reporting_failure = True
        try:
            name = getattr(handler, "__qualname__", repr(handler))
            (self.alert_sink or self.publish)(
                AlertEvent(
                    ts=event.ts,
                    level=AlertLevel.WARNING,
                    code="handler_error",
                    message=f"{name} failed on {type(event).__name__}: {type(exc).__name__}: {exc}",
                    key=f"handler_error:{name}",
                )
            )
        finally:
            self._reporting_failure = False
