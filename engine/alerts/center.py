"""AlertCenter: every alert passes through here before anyone sees it.

`Engine.alert()` and the bus's handler-error reports hand their alerts to the center,
which de-duplicates them, gives each published one a unique `alert_id` and publishes it
as an AlertEvent (the journal, the console feed and the delivery channels subscribe to
that, so they only ever see what the center let through). The operator acknowledges
alerts here: journaled on the alert's row, audited, published as AlertAcknowledged.

De-duplication is by key (the code when no key is given), measured on the engine's
Clock so simulated time works: a repeat of a key within `alerts.rules.cooldown_s` of the
last published alert of that key is suppressed and counted, and the next one that gets
through says "(repeated N times)". A different key goes through at once. EMERGENCY
alerts, the codes in NEVER_SUPPRESSED and alerts raised with `dedupe=False` always go
through.

The rules that watch the engine live in engine.alert_rules; the rule list with levels
and thresholds is in docs/architecture.md ("Alerts").
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.alerts.rules import AlertRules
from engine.core.alerts_config import AlertRulesConfig
from engine.core.clock import Clock
from engine.core.events import AlertAcknowledged, AlertEvent, EventBus
from engine.core.model import AlertLevel, Position

if TYPE_CHECKING:
    from engine.activation.stages import Evaluation
    from engine.persistence.journal import Journal

log = logging.getLogger(__name__)

# The daily summary comes once a day and must arrive. A halt only ends by a deliberate resume, so
# it cannot flood, and a second halt soon after a resume must not leave "ACTIVE" as the last word.
NEVER_SUPPRESSED = frozenset({"daily_summary", "state_halted"})
MAX_UNACKNOWLEDGED = 10_000  # the oldest unacknowledged alerts are forgotten past this
CHECK_EVERY_S = 1.0  # wall-clock period of the periodic rules (stale data, positions)
_FORGET_REPEATS_S = 86_400.0  # a key with counted repeats that never fires again is dropped after a day

AuditFn = Callable[[str, str, dict[str, Any], str], None]  # action, reason, details, operator


@dataclass(slots=True)
class _Seen:
    last: datetime  # when this key was last published
    repeats: int = 0  # suppressed since then


@dataclass(slots=True)
class Sources:
    """What the periodic rules read: the engine's live state, or plain values in tests."""

    positions: Callable[[], Iterable[Position]] = tuple
    symbols: Callable[[], Iterable[str]] = tuple
    last_tick: Callable[[str], datetime | None] = lambda _symbol: None
    evaluate_stage: Callable[[], Awaitable[Evaluation]] | None = None
    stage_every_s: Callable[[], float] = lambda: 60.0


class AlertCenter:
    def __init__(
        self,
        bus: EventBus,
        clock: Clock,
        rules: Callable[[], AlertRulesConfig] | AlertRulesConfig | None = None,
        journal: Journal | None = None,
        audit: AuditFn | None = None,
        sources: Sources | None = None,
    ) -> None:
        self.bus = bus
        self.clock = clock
        if rules is None or isinstance(rules, AlertRulesConfig):
            fixed = rules or AlertRulesConfig()
            rules = lambda: fixed  # noqa: E731
        self._config = rules
        self.journal = journal
        self._audit = audit
        self.sources = sources or Sources()
        self._seen: dict[str, _Seen] = {}
        self._unacked: OrderedDict[str, AlertEvent] = OrderedDict()
        self._prefix = f"al{secrets.token_hex(3)}"  # ids stay unique across restarts of the same journal
        self._ids = itertools.count(1)
        self.published = 0
        self.suppressed = 0
        bus.alert_sink = self.submit
        self.rules = AlertRules(self)

    @property
    def config(self) -> AlertRulesConfig:
        return self._config()

    # --- raising ----------------------------------------------------------------------
    def raise_alert(
        self, level: AlertLevel, code: str, message: str, key: str = "", dedupe: bool = True
    ) -> AlertEvent | None:
        """Publish the alert unless it repeats its key within the cooldown. Returns what was published."""
        return self.submit(AlertEvent(self.clock.now(), AlertLevel(level), code, message, key or code), dedupe)

    def submit(self, ev: AlertEvent, dedupe: bool = True) -> AlertEvent | None:
        key = ev.key or ev.code
        now = self.clock.now()
        seen = self._seen.get(key)
        exempt = not dedupe or ev.level >= AlertLevel.EMERGENCY or ev.code in NEVER_SUPPRESSED
        if seen is not None and not exempt and (now - seen.last).total_seconds() < self.config.cooldown_s:
            seen.repeats += 1
            self.suppressed += 1
            log.debug("alert %s suppressed (repeat %d within the cooldown)", key, seen.repeats)
            return None
        message = ev.message
        if seen is not None and seen.repeats:
            message += f" (repeated {seen.repeats} time{'s' if seen.repeats != 1 else ''})"
        self._seen[key] = _Seen(now)
        out = dataclasses.replace(ev, key=key, message=message, alert_id=f"{self._prefix}-{next(self._ids)}")
        self._unacked[out.alert_id] = out
        if len(self._unacked) > MAX_UNACKNOWLEDGED:
            self._unacked.popitem(last=False)
        self.published += 1
        self.bus.publish(out)
        return out

    def cooling(self, key: str) -> bool:
        """Would a non-EMERGENCY alert with this key be suppressed right now?"""
        seen = self._seen.get(key)
        return seen is not None and (self.clock.now() - seen.last).total_seconds() < self.config.cooldown_s

    def count_repeat(self, key: str) -> None:
        """Count a repeat that was not raised at all (the operator's picture was already right)."""
        seen = self._seen.get(key)
        if seen is not None:
            seen.repeats += 1
            self.suppressed += 1

    # --- acknowledgement ----------------------------------------------------------------
    def unacknowledged(self) -> list[AlertEvent]:
        return list(self._unacked.values())

    def acknowledge(self, alert_id: str, operator: str) -> bool:
        """Acknowledge one alert: journaled on its row, audited, published. False when unknown or done."""
        return bool(self.acknowledge_many([alert_id], operator))

    def acknowledge_all(self, operator: str) -> list[str]:
        return self.acknowledge_many(list(self._unacked), operator, everything=True)

    def acknowledge_many(self, alert_ids: Iterable[str], operator: str, everything: bool = False) -> list[str]:
        """One audit row for the lot (an "acknowledge all" is one act of the operator)."""
        done = [self._unacked.pop(a) for a in dict.fromkeys(alert_ids) if a in self._unacked]
        if not done:
            return []
        now = self.clock.now()
        if self.journal is not None:
            for ev in done:
                self.journal.record_alert_ack(ev.alert_id, now, operator)
        ids = [ev.alert_id for ev in done]
        if self._audit is not None:
            if len(done) == 1 and not everything:
                ev = done[0]
                details = {"alert_id": ev.alert_id, "code": ev.code, "level": ev.level.name, "message": ev.message}
                self._audit("alert_acknowledged", f"acknowledged {ev.level.name} {ev.code}", details, operator)
            else:
                what = "every unacknowledged alert" if everything else f"{len(ids)} alerts"
                self._audit("alerts_acknowledged", f"acknowledged {what}", {"alert_ids": ids, "all": everything},
                            operator)  # fmt: skip
        self.bus.publish(AlertAcknowledged(now, tuple(ids), operator))
        return ids

    # --- periodic work --------------------------------------------------------------------
    def check(self) -> None:
        """The clock-driven rules (stale market data, positions up or stale at a loss)."""
        now = self.clock.now()
        self.rules.check(now)
        self._forget(now)

    def _forget(self, now: datetime) -> None:
        cooldown = self.config.cooldown_s
        for key in [k for k, s in self._seen.items() if _expired(s, now, cooldown)]:
            del self._seen[key]

    async def evaluate_stage(self) -> None:
        if self.sources.evaluate_stage is not None:
            self.rules.on_evaluation(await self.sources.evaluate_stage())

    def tasks(self) -> list[asyncio.Task[None]]:
        return [
            asyncio.create_task(self._every(lambda: CHECK_EVERY_S, self._check_async), name="alert_rules"),
            asyncio.create_task(self._every(self.sources.stage_every_s, self.evaluate_stage), name="alert_stage"),
        ]

    async def _check_async(self) -> None:
        self.check()

    @staticmethod
    async def _every(period: Callable[[], float], work: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(period())
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("alert rule check failed")


def _expired(seen: _Seen, now: datetime, cooldown: float) -> bool:
    keep = max(cooldown, _FORGET_REPEATS_S) if seen.repeats else cooldown  # counted repeats wait for a next
    return (now - seen.last).total_seconds() >= keep
