"""The alert rules that watch the engine: bus events, the clock, the stage's evidence.

Rules raise through the AlertCenter, which de-duplicates. Alerts that other modules
already raise where the thing happens (breakers, emergency stop and close-all started,
stop loss hit, order rejected, venue errors, approval requested, red flags) reach the
center through `Engine.alert()` and are not repeated here.

A condition that starts and ends (connection lost, market data stale, a stage criterion
failing) is a `Condition`: one alert when it starts, one when it ends. When the cooldown
suppresses one of those, it is delivered later if its state still holds once the
cooldown is over, so the last alert the operator saw always ends up matching the present.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from engine.activation.stages import STAGE_LABELS, Criterion, Evaluation
from engine.core.events import ApprovalEvent, ConnectionEvent, ProgressEvent
from engine.core.model import AlertLevel, Position

if TYPE_CHECKING:
    from engine.alerts.center import AlertCenter

OPERATIONS = {"emergency_stop": "Emergency stop", "close_all": "Close all", "shutdown": "Shutdown"}
REARM_BELOW = Decimal("0.9")  # the profit alert re-arms once the gain falls under 90% of the threshold


class Condition:
    """Per subject: an alert when the condition starts, another when it ends."""

    def __init__(self, center: AlertCenter, on: tuple[AlertLevel, str], off: tuple[AlertLevel, str]) -> None:
        self.c = center
        self._on, self._off = on, off
        self.since: dict[str, datetime] = {}  # subjects in the condition now, since when
        self._shown: dict[str, bool] = {}  # the state the operator was last told, per subject
        self._owed: dict[str, tuple[AlertLevel, str, str, str]] = {}  # suppressed, still to deliver

    def baseline(self, subject: str, on: bool, now: datetime) -> None:
        """Take the present state as known without an alert (a first evaluation)."""
        if on:
            self.since[subject] = now
        self._shown[subject] = on

    def update(self, subject: str, on: bool, now: datetime, describe: Callable[[bool, float], str]) -> None:
        """`describe(on, seconds)` words the alert; `seconds` is how long the condition lasted when it ends."""
        if on == (subject in self.since):
            owed = self._owed.get(subject)
            if owed is not None and not self.c.cooling(owed[3]):
                del self._owed[subject]
                self._raise(subject, on, *owed)
            return
        lasted = 0.0 if on else (now - self.since.pop(subject)).total_seconds()
        if on:
            self.since[subject] = now
        level, code = self._on if on else self._off
        key = f"{code}:{subject}"
        self._owed.pop(subject, None)
        if self._shown.get(subject, False) == on:  # flapped back to what the operator already sees
            self.c.count_repeat(key)
            return
        self._raise(subject, on, level, code, describe(on, lasted), key)

    def _raise(self, subject: str, on: bool, level: AlertLevel, code: str, message: str, key: str) -> None:
        if self.c.raise_alert(level, code, message, key) is None:
            self._owed[subject] = (level, code, message, key)
        else:
            self._shown[subject] = on


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class AlertRules:
    def __init__(self, center: AlertCenter) -> None:
        self.c = center
        self.connection = Condition(center, (AlertLevel.CRITICAL, "connection_lost"),
                                    (AlertLevel.INFO, "connection_restored"))  # fmt: skip
        self.market_data = Condition(center, (AlertLevel.WARNING, "market_data_stale"),
                                     (AlertLevel.INFO, "market_data_restored"))  # fmt: skip
        self._data_watch_since: datetime | None = None
        self._positions: dict[str, tuple[datetime | None, bool, bool]] = {}  # symbol -> opened, armed, told
        self._stage: tuple[str, datetime | None] | None = None
        self._criteria = self._new_criteria()
        self._stage_passed = False
        center.bus.subscribe(self.on_progress, ProgressEvent)
        center.bus.subscribe(self.on_connection, ConnectionEvent)
        center.bus.subscribe(self.on_approval, ApprovalEvent)

    # --- emergency stop, close all, shutdown: how they ended -----------------------------
    def on_progress(self, ev: ProgressEvent) -> None:
        if not ev.finished:
            return
        label = OPERATIONS.get(ev.operation, ev.operation.replace("_", " ").capitalize())
        d = ev.details
        if "positions_closed" in d:  # close all, after flattening
            if ev.ok:
                closed, pnl = d["positions_closed"], d.get("realized_pnl", "?")
                message = f"{label} finished: flat, {closed} positions closed, realised P&L {pnl}"
            else:
                left = d.get("positions_left") or {}
                message = f"{label} finished NOT flat: {len(left)} positions left ({', '.join(left)})"
        else:  # the cancelling phase
            if ev.operation == "close_all" and ev.ok:
                return  # its flattening follows and reports the outcome
            orders = d.get("orders")
            if ev.ok:
                counted = f"{orders} orders cancelled; " if orders is not None else ""
                message = f"{label} finished: {counted}the venue confirms none open"
            else:
                message = f"{label} NOT finished: orders may still be open at the venue ({ev.message})"
        outcome = "finished" if ev.ok else "incomplete"
        level = AlertLevel.INFO if ev.ok else AlertLevel.EMERGENCY  # orders/positions may be live: never muted
        self.c.raise_alert(level, f"{ev.operation}_{outcome}", message, dedupe=False)

    # --- the venue connection --------------------------------------------------------------
    def on_connection(self, ev: ConnectionEvent) -> None:
        def describe(lost: bool, seconds: float) -> str:
            if lost:
                return f"Connection to {ev.venue} lost" + (f": {ev.message}" if ev.message else "")
            return f"Connection to {ev.venue} restored after {_duration(seconds)} down"

        self.connection.update(ev.venue, not ev.connected, ev.ts, describe)

    # --- approvals ---------------------------------------------------------------------------
    def on_approval(self, ev: ApprovalEvent) -> None:
        if ev.status != "expired":
            return  # "pending" is raised by the ApprovalGate itself
        d = ev.details
        qty = d.get("requested_qty") or d.get("qty") or ev.intent.qty
        why = d.get("decision_reason") or "no decision in time"
        self.c.raise_alert(
            AlertLevel.WARNING,
            "approval_expired",
            f"Approval {ev.request_id} expired ({why}): {ev.intent.side.value} {qty} {ev.intent.symbol} not placed",
            key=f"approval_expired:{ev.request_id}",
        )

    # --- the clock: market data, positions ------------------------------------------------
    def check(self, now: datetime) -> None:
        self._check_market_data(now)
        self._check_positions(now)

    def _check_market_data(self, now: datetime) -> None:
        limit = self.c.config.market_data_stale_s
        start = self._data_watch_since = self._data_watch_since or now  # never ticked: stale from here
        src = self.c.sources
        for symbol in src.symbols():
            age = (now - (src.last_tick(symbol) or start)).total_seconds()

            def describe(stale: bool, seconds: float, symbol: str = symbol, age: float = age) -> str:
                if stale:
                    return f"No market data for {symbol} for {_duration(age)} (limit {limit:g} s)"
                return f"Market data for {symbol} flowing again after {_duration(seconds)}"

            self.market_data.update(symbol, age >= limit, now, describe)

    def _check_positions(self, now: datetime) -> None:
        cfg = self.c.config
        threshold = Decimal(repr(cfg.profit_take_pct))
        held_limit = timedelta(days=cfg.stale_loser_days)
        state: dict[str, tuple[datetime | None, bool, bool]] = {}
        for p in self.c.sources.positions():
            if not p.qty:
                continue
            opened, armed, told = self._positions.get(p.symbol, (p.opened_at, True, False))
            if opened != p.opened_at:  # a new position on the symbol
                opened, armed, told = p.opened_at, True, False
            pct = p.unrealized_pct
            if pct >= threshold and armed:
                armed = False
                self._profit(p, pct)
            elif pct < threshold * REARM_BELOW:
                armed = True
            if not told and p.opened_at is not None and p.unrealized_pnl < 0 and now - p.opened_at >= held_limit:
                told = True
                self._stale_loser(p, pct, now)
            state[p.symbol] = (opened, armed, told)
        self._positions = state  # closed positions are forgotten: a new one starts afresh

    def _profit(self, p: Position, pct: Decimal) -> None:
        self.c.raise_alert(
            AlertLevel.INFO,
            "profit_take",
            f"{p.symbol} is up {pct:.1f}% on its cost ({p.unrealized_pnl:+,.2f}): consider taking profit",
            key=f"profit_take:{p.symbol}",
        )

    def _stale_loser(self, p: Position, pct: Decimal, now: datetime) -> None:
        assert p.opened_at is not None
        days = (now - p.opened_at).total_seconds() / 86400
        self.c.raise_alert(
            AlertLevel.WARNING,
            "stale_loser",
            f"{p.symbol} held {days:.0f} days at a loss ({pct:.1f}%, {p.unrealized_pnl:+,.2f}): review it",
            key=f"stale_loser:{p.symbol}",
        )

    # --- the stage's criteria -------------------------------------------------------------
    def _new_criteria(self) -> Condition:
        return Condition(self.c, (AlertLevel.WARNING, "stage_criterion_failed"),
                         (AlertLevel.INFO, "stage_criterion_met"))  # fmt: skip

    def on_evaluation(self, ev: Evaluation) -> None:
        """Alert on each criterion whose passed flag changed since the previous evaluation of this stage."""
        now = ev.now or self.c.clock.now()
        label = STAGE_LABELS.get(ev.stage, ev.stage)
        if self._stage != (ev.stage, ev.since):  # first evaluation, or a new stage: the baseline
            self._stage = (ev.stage, ev.since)
            self._criteria = self._new_criteria()
            for c in ev.criteria:
                self._criteria.baseline(c.name, not c.passed, now)
            self._stage_passed = ev.passed
            return
        for c in ev.criteria:

            def describe(failed: bool, _s: float, c: Criterion = c) -> str:
                return f"{label} criterion {'no longer met' if failed else 'now met'}: {c.explain()}"

            self._criteria.update(c.name, not c.passed, now, describe)
        if ev.passed and not self._stage_passed:
            self.c.raise_alert(AlertLevel.INFO, "stage_ready",
                               f"{label}: every criterion passes; promotion can be requested",
                               key=f"stage_ready:{ev.stage}")  # fmt: skip
        self._stage_passed = ev.passed
