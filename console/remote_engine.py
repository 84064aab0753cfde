"""RemoteEngine: an engine on another host (or process), seen through its control server.

It presents what the console uses of a local engine: the OperatorAPI's method names
(coroutines here, returning the same `CommandResult`), and a `bus` on which the engine's
own event types are published as they arrive, so `console.bridge.EngineBridge` runs
unchanged. On every (re)connect the server's snapshot *replaces* what was known; numbered
updates follow, and a gap in the numbers forces a reconnect and a new snapshot rather than
a guess. A link that drops is retried with backoff; the time of the last message is kept
so a window can say exactly since when its data is stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp

from console.remote_client import ControlClient, Endpoint, RemoteError
from engine.app.operator_api import CommandResult
from engine.app.wire import WireError, event_from_json, from_json
from engine.core.events import AlertAcknowledged, AlertEvent, EquityEvent, EventBus, StateChanged
from engine.core.model import Order, Position

log = logging.getLogger(__name__)

LINK_LOST_AFTER_S = 3.5  # the server sends a heartbeat every second
BACKOFF_S = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)

Listener = Callable[["RemoteEngine", str], None]  # (engine, what changed: "snapshot" | "status" | "link")


class RemoteEngine:
    def __init__(self, endpoint: Endpoint, operator: str = "", name: str = "") -> None:
        self.endpoint = endpoint
        self.url = endpoint.url
        self.operator = operator
        self.name = name or endpoint.name or endpoint.url
        self.bus = EventBus()
        self.client = ControlClient(endpoint)
        self.snapshot: dict[str, Any] | None = None
        self.status: dict[str, Any] = {}
        self.link = "connecting"  # connecting | connected | disconnected | refused
        self.link_error = ""
        self.last_message_mono: float | None = None
        self.last_message_at: datetime | None = None  # wall time, for "stale since HH:MM:SS"
        self.snapshots = 0
        self.listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.bus.subscribe(self._follow_status, StateChanged, EquityEvent, AlertEvent, AlertAcknowledged)

    # --- life cycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"remote:{self.url}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        await self.client.close()

    def drop_link(self) -> None:
        """Close the stream as a network fault would (tests, and 'reconnect now')."""
        if self._ws is not None:
            asyncio.get_running_loop().create_task(self._ws.close())

    async def wait_connected(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.link != "connected":
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.url}: {self.link} {self.link_error}")
            await asyncio.sleep(0.01)

    @property
    def connected(self) -> bool:
        return self.link == "connected"

    def silent_for(self) -> float:
        """Seconds since the engine last said anything (heartbeats included)."""
        return 0.0 if self.last_message_mono is None else time.monotonic() - self.last_message_mono

    def stale_since(self) -> str:
        return self.last_message_at.astimezone().strftime("%H:%M:%S") if self.last_message_at else "never"

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._follow_stream()
                failures = 0 if self.snapshots else failures
            except RemoteError as exc:
                self._set_link("refused" if exc.kind == RemoteError.AUTH else "disconnected", str(exc))
            except (aiohttp.ClientError, OSError, TimeoutError, WireError, ValueError) as exc:
                self._set_link("disconnected", f"{type(exc).__name__}: {exc}"[:200])
            else:
                self._set_link("disconnected", "the engine closed the stream")
            delay = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
            failures += 1
            await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))  # jitter: a fleet does not reconnect in step

    async def _follow_stream(self) -> None:
        session = self.client.session
        try:
            ws = await session.ws_connect(f"{self.url}/v1/stream", headers=self.endpoint.headers, ssl=self.endpoint.ssl,
                                          heartbeat=5.0, max_msg_size=16 * 1024 * 1024)  # fmt: skip
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status in (401, 403, 429):
                raise RemoteError(RemoteError.AUTH, f"refused our credentials ({exc.status})") from None
            raise
        except aiohttp.ClientSSLError as exc:
            raise RemoteError(RemoteError.AUTH, f"TLS refused: {exc}") from None
        self._ws = ws
        expected = 1
        try:
            while True:
                msg = await ws.receive(timeout=LINK_LOST_AFTER_S)
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING,
                                aiohttp.WSMsgType.ERROR):  # fmt: skip
                    return
                data = msg.json()
                if data.get("seq") != expected:  # a gap: never guess, start over with a snapshot
                    raise WireError(f"update {data.get('seq')} arrived where {expected} was due")
                expected += 1
                self._touch()
                kind = data.get("type")
                if kind == "snapshot":
                    self._replace(data["data"])
                elif kind == "event":
                    self.bus.publish(event_from_json(data["event"]))
                elif kind == "heartbeat":
                    self.status = dict(data["status"])
                    self._notify("status")
        finally:
            self._ws = None
            await ws.close()

    def _touch(self) -> None:
        self.last_message_mono = time.monotonic()
        self.last_message_at = datetime.now(UTC)

    def _replace(self, snap: dict[str, Any]) -> None:
        self.snapshot = snap
        self.status = {k: v for k, v in snap.items() if not isinstance(v, list | dict)}
        self.snapshots += 1
        if snap.get("name") and self.name == self.url:
            self.name = str(snap["name"])
        self._set_link("connected", "")
        self._notify("snapshot")

    def _set_link(self, link: str, error: str) -> None:
        changed = link != self.link or error != self.link_error
        self.link, self.link_error = link, error
        if changed:
            self._notify("link")

    def _notify(self, what: str) -> None:
        for listener in list(self.listeners):
            try:
                listener(self, what)
            except Exception:
                log.exception("remote engine listener failed")

    def _follow_status(self, ev: Any) -> None:
        """Keep the figures the fleet shows current between heartbeats."""
        s = self.status
        if isinstance(ev, StateChanged):
            s["state"], s["reason"] = ev.new.value, ev.reason
        elif isinstance(ev, EquityEvent):
            s["equity"], s["day_pnl"] = str(ev.equity), str(ev.day_pnl)
        elif isinstance(ev, AlertEvent):
            s["unacknowledged_alerts"] = int(s.get("unacknowledged_alerts", 0)) + 1
        elif isinstance(ev, AlertAcknowledged):
            s["unacknowledged_alerts"] = max(0, int(s.get("unacknowledged_alerts", 0)) - len(ev.alert_ids))
        self._notify("status")

    # --- what the window reads --------------------------------------------------------------------
    @property
    def state(self) -> str:
        return str(self.status.get("state", "UNKNOWN"))

    @property
    def state_reason(self) -> str:
        return str(self.status.get("reason", ""))

    def resume_refusal(self) -> str | None:
        return self.status.get("resume_refusal")

    def positions(self) -> list[Position]:
        return [from_json(Position, p) for p in (self.snapshot or {}).get("positions", [])]

    def working_orders(self) -> list[Order]:
        return [from_json(Order, o) for o in (self.snapshot or {}).get("orders", [])]

    def figure(self, key: str) -> Decimal | None:
        value = self.status.get(key)
        return None if value is None else Decimal(str(value))

    async def preview_close_all(self) -> dict[str, Any]:
        return await self.client.preview_close_all()

    # --- the OperatorAPI, over the wire ---------------------------------------------------------
    async def _command(self, name: str, operator: str, command_id: str | None, **args: Any) -> CommandResult:
        return await self.client.command(name, operator=operator or self.operator, command_id=command_id, **args)

    async def emergency_stop(self, reason: str = "emergency stop", operator: str = "", command_id: str | None = None,
                             pull_stops: bool = False) -> CommandResult:  # fmt: skip
        return await self._command("emergency_stop", operator, command_id, reason=reason, pull_stops=pull_stops)

    async def close_all(self, reason: str = "close all", operator: str = "",
                        command_id: str | None = None) -> CommandResult:  # fmt: skip
        return await self._command("close_all", operator, command_id, reason=reason)

    async def resume(self, reason: str, operator: str = "", command_id: str | None = None) -> CommandResult:
        return await self._command("resume", operator, command_id, reason=reason)

    async def cancel(self, client_id: str, operator: str = "", command_id: str | None = None) -> CommandResult:
        return await self._command("cancel", operator, command_id, client_id=client_id)

    async def close_position(self, symbol: str, operator: str = "", reason: str = "",
                             command_id: str | None = None) -> CommandResult:  # fmt: skip
        return await self._command("close_position", operator, command_id, symbol=symbol, reason=reason)

    async def approve(self, request_id: str, operator: str = "", qty: Decimal | None = None,
                      command_id: str | None = None) -> CommandResult:  # fmt: skip
        return await self._command("approve", operator, command_id, request_id=request_id,
                                   qty=None if qty is None else str(qty))  # fmt: skip

    async def reject(self, request_id: str, operator: str = "", reason: str = "",
                     command_id: str | None = None) -> CommandResult:  # fmt: skip
        return await self._command("reject", operator, command_id, request_id=request_id, reason=reason)

    async def promote(self, reason: str, operator: str = "", command_id: str | None = None) -> CommandResult:
        return await self._command("promote", operator, command_id, reason=reason)

    async def demote(self, reason: str, operator: str = "", command_id: str | None = None) -> CommandResult:
        return await self._command("demote", operator, command_id, reason=reason)

    async def update_risk_limits(self, changes: dict[str, Any], reason: str, operator: str = "",
                                 command_id: str | None = None) -> CommandResult:  # fmt: skip
        return await self._command("update_risk_limits", operator, command_id, changes=changes, reason=reason)

    async def acknowledge(self, alert_ids: list[str] | None, operator: str = "",
                          command_id: str | None = None) -> CommandResult:  # fmt: skip
        return await self._command("acknowledge", operator, command_id, alert_ids=alert_ids)
