"""AlertDispatcher: alerts from the bus to webhooks and e-mail, off the trading path.

The bus is synchronous and the order path publishes on it, so the bus handler only routes
(level, channel) and appends to a bounded per-channel queue; it never awaits and never does
I/O. Each channel has its own task that drains its queue, so a webhook that hangs holds up
only its own queue. A full queue drops its oldest alert and counts the drop.

A channel that gives up raises an ``alert_delivery_failed`` WARNING (naming the channel,
never its URL or password). That alert goes to the other channels but never back to the
one that failed, and a failure to deliver such an alert is shown in the app only: no loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from engine.alerts.notify.channel import Channel, DeliveryFailed
from engine.alerts.notify.formats import DAILY_SUMMARY, DELIVERY_FAILED
from engine.core.alerts_config import AlertsConfig
from engine.core.events import AlertEvent, EventBus
from engine.core.model import AlertLevel

if TYPE_CHECKING:
    from engine.persistence.secrets import CredentialStore

log = logging.getLogger(__name__)

RaiseAlert = Callable[[AlertLevel, str, str, str], object]  # level, code, message, key (Engine.alert)
RELAY = ":relay"  # key suffix of a failure to deliver a failure alert: the app shows it, no channel sends it


@dataclass(slots=True)
class ChannelStats:
    delivered: int = 0
    failed: int = 0
    dropped: int = 0  # oldest alerts pushed out of a full queue
    retries: int = 0
    queued: int = 0
    last_error: str = ""


@dataclass(slots=True)
class _Lane:
    channel: Channel
    queue: asyncio.Queue[AlertEvent]
    stats: ChannelStats = field(default_factory=ChannelStats)
    task: asyncio.Task[None] | None = None
    busy: bool = False
    last_failure_alert: float | None = None
    unreported: int = 0

    @property
    def failure_key(self) -> str:
        return f"{DELIVERY_FAILED}:{self.channel.name}"


class AlertDispatcher:
    def __init__(
        self,
        bus: EventBus,
        channels: Sequence[Channel],
        raise_alert: RaiseAlert,
        *,
        send_daily_summary: bool = True,
        queue_size: int = 200,
        grace_s: float = 3.0,
        failure_alert_interval_s: float = 60.0,
        problems: Sequence[str] = (),
    ) -> None:
        self.bus = bus
        self._raise = raise_alert
        self.send_daily_summary = send_daily_summary
        self.grace_s = grace_s
        self.failure_alert_interval_s = failure_alert_interval_s
        self.problems = list(problems)
        self._lanes = [_Lane(c, asyncio.Queue(maxsize=queue_size)) for c in channels]
        self._reporting: tuple[str, bool] | None = None  # (channel, relay) while we publish a failure
        self._unsubscribe = bus.subscribe(self._on_alert, AlertEvent) if self._lanes else None
        self._started = False

    # --- construction ---------------------------------------------------------------------------
    @classmethod
    def from_settings(
        cls,
        alerts: AlertsConfig,
        bus: EventBus,
        raise_alert: RaiseAlert,
        store_factory: Callable[[], CredentialStore] | None,
    ) -> AlertDispatcher:
        from engine.alerts.notify.named_secrets import resolve_named_secret

        def resolver(name: str) -> Callable[[], str]:
            return lambda: resolve_named_secret(name, store_factory)

        channels: list[Channel] = []
        problems: list[str] = []
        if alerts.webhooks:
            from engine.alerts.notify.webhook import WebhookChannel

            channels += [WebhookChannel(w, resolver(w.url_secret)) for w in alerts.webhooks]
        if alerts.email.enabled:
            from engine.alerts.notify.email import EmailChannel

            email = EmailChannel(alerts.email, resolver(alerts.email.password_secret) if alerts.email.password_secret
                                 else None)  # fmt: skip
            problems += email.problems()
            if not problems:
                channels.append(email)
        return cls(bus, channels, raise_alert, send_daily_summary=alerts.daily_summary.send, problems=problems)

    # --- life cycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start one drain task per channel (on the running loop); report unusable config once."""
        if self._started:
            return
        self._started = True
        for lane in self._lanes:
            lane.task = asyncio.create_task(self._drain(lane), name=f"notify:{lane.channel.name}")
        for p in self.problems:
            self._raise(AlertLevel.WARNING, "alert_channel_config", f"Alert channel not used: {p}",
                        "alert_channel_config")  # fmt: skip

    async def aclose(self, grace_s: float | None = None) -> None:
        """Stop taking alerts, give queued ones ``grace_s`` to go out, then stop the tasks."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.grace_s if grace_s is None else grace_s)
        running = [lane for lane in self._lanes if lane.task is not None]
        while any(lane.busy or not lane.queue.empty() for lane in running) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for lane in running:
            assert lane.task is not None
            lane.task.cancel()
        await asyncio.gather(*(lane.task for lane in running if lane.task is not None), return_exceptions=True)
        for lane in self._lanes:
            lane.task = None
            with contextlib.suppress(Exception):
                await lane.channel.aclose()
        self._started = False

    # --- reads for the console ----------------------------------------------------------------
    @property
    def channel_names(self) -> list[str]:
        return [lane.channel.name for lane in self._lanes]

    def stats(self) -> dict[str, ChannelStats]:
        """delivered / failed / dropped / retries / queued per channel (copies)."""
        return {
            lane.channel.name: replace(lane.stats, retries=lane.channel.retries, queued=lane.queue.qsize())
            for lane in self._lanes
        }

    # --- the bus handler: route and enqueue, nothing else -------------------------------------------
    def _on_alert(self, ev: AlertEvent) -> None:
        for lane in self._lanes:
            if self._wants(lane, ev):
                q = lane.queue
                if q.full():
                    q.get_nowait()
                    lane.stats.dropped += 1
                q.put_nowait(ev)

    def _wants(self, lane: _Lane, ev: AlertEvent) -> bool:
        if ev.code == DAILY_SUMMARY:
            return self.send_daily_summary
        if ev.code == DELIVERY_FAILED:
            if self._reporting is not None:
                failed, relay = self._reporting
                if relay or failed == lane.channel.name:
                    return False
            if ev.key.endswith(RELAY) or ev.key == lane.failure_key:
                return False
        return ev.level >= lane.channel.min_level

    # --- the drain task ------------------------------------------------------------------------------
    async def _drain(self, lane: _Lane) -> None:
        while True:
            ev = await lane.queue.get()
            lane.busy = True
            try:
                await lane.channel.send(ev)
                lane.stats.delivered += 1
            except DeliveryFailed as exc:
                self._failed(lane, ev, exc.reason)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug in a channel must not end its lane
                log.error("%s: unexpected %s while delivering", lane.channel.name, type(exc).__name__)
                self._failed(lane, ev, f"unexpected {type(exc).__name__}")
            finally:
                lane.busy = False

    def _failed(self, lane: _Lane, ev: AlertEvent, reason: str) -> None:
        lane.stats.failed += 1
        lane.stats.last_error = reason
        name = lane.channel.name
        log.warning("%s: alert %s not delivered: %s", name, ev.code, reason)
        now = asyncio.get_running_loop().time()
        last = lane.last_failure_alert
        if last is not None and now - last < self.failure_alert_interval_s:
            lane.unreported += 1  # said once a minute at most, with the count of what it hides
            return
        lane.last_failure_alert = now
        more = f" ({lane.unreported} more undelivered since the last report)" if lane.unreported else ""
        lane.unreported = 0
        relay = ev.code == DELIVERY_FAILED
        message = f"Alert delivery to {name} failed: {reason}. Not delivered: {ev.code}{more}"
        self._reporting = (name, relay)
        try:
            self._raise(AlertLevel.WARNING, DELIVERY_FAILED, message, lane.failure_key + (RELAY if relay else ""))
        finally:
            self._reporting = None
