"""The engine's control server: the OperatorAPI over versioned JSON and one WebSocket.

    GET  /v1/status                 the few figures of `trading-console status`
    GET  /v1/snapshot               everything a console shows
    GET  /v1/close-all/preview      what CLOSE ALL would do
    POST /v1/commands/<name>        {command_id, operator, ...arguments} -> CommandResult
    GET  /v1/stream  (WebSocket)    a snapshot, then numbered updates (events, heartbeats)

Every command is an OperatorAPI method, so a retried command id executes once. Loopback
binds take the per-install token; any other bind only mutual TLS (refused at start
otherwise). A failed authentication never executes anything, is counted per peer and
journaled as an incident.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import inspect
import logging
import ssl
import weakref
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from engine.app.control_files import remove_endpoint, write_endpoint
from engine.app.server_auth import FailedAuthGuard, peer_common_name, token_matches
from engine.app.server_stream import ClientFeed
from engine.app.snapshot import engine_name, engine_snapshot, engine_status
from engine.app.wire import event_to_json, to_json
from engine.core.control_config import is_loopback
from engine.core.model import AlertLevel

if TYPE_CHECKING:
    from engine.app.kernel import Engine
    from engine.app.operator_api import OperatorAPI
    from engine.core.paths import AppPaths

log = logging.getLogger(__name__)

API_VERSION = "v1"
DEFAULT_PORT = 8765
COMMANDS = (
    "emergency_stop", "close_all", "resume", "cancel", "close_position", "approve", "reject",
    "promote", "demote", "update_risk_limits", "acknowledge",
)  # fmt: skip
HEARTBEAT_S = 1.0  # a console calls an engine silent when these stop
SEND_TIMEOUT_S = 10.0


class ControlServerError(RuntimeError):
    """The server cannot start as configured; str() tells the operator what to change."""


def operator_api_for(engine: Engine) -> OperatorAPI:
    api = getattr(engine, "api", None)
    if api is not None:
        return api
    from engine.app.operator_api import OperatorAPI

    api = OperatorAPI(engine)
    engine.api = api  # type: ignore[attr-defined]  # one API per engine: its command-id memory is shared
    return api


class ControlServer:
    def __init__(
        self,
        engine: Engine,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        paths: AppPaths | None = None,
        name: str | None = None,
        guard: FailedAuthGuard | None = None,
    ) -> None:
        self.engine = engine
        self.api = operator_api_for(engine)
        self.host = host
        self.port = port
        self.token = token
        self.ssl_context = ssl_context
        self.paths = paths
        self.name = name or engine_name(engine)
        self.guard = guard or FailedAuthGuard()
        self.failed_auth = 0
        self._runner: web.AppRunner | None = None
        self._sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self.feeds: list[ClientFeed] = []

    # --- life cycle -----------------------------------------------------------------------------
    def check_config(self) -> None:
        tls = self.ssl_context is not None
        if tls and self.ssl_context.verify_mode != ssl.CERT_REQUIRED:  # type: ignore[union-attr]
            raise ControlServerError("the control server's TLS must require client certificates (mutual TLS)")
        if not is_loopback(self.host) and not tls:
            raise ControlServerError(
                f"refusing to serve the control API on {self.host} without TLS: a non-loopback address needs "
                "mutual TLS (--control-cert, --control-key, --control-ca; make them with `trading-console certs`), "
                "or keep 127.0.0.1 and connect through an SSH port-forward"
            )
        if not tls and not self.token:
            raise ControlServerError("the control server needs a token on loopback")

    async def start(self) -> None:
        self.check_config()
        app = web.Application(middlewares=[self._authenticate], client_max_size=64 * 1024)
        app.router.add_get(f"/{API_VERSION}/status", self._status)
        app.router.add_get(f"/{API_VERSION}/snapshot", self._snapshot)
        app.router.add_get(f"/{API_VERSION}/close-all/preview", self._preview)
        app.router.add_post(f"/{API_VERSION}/commands/{{name}}", self._command)
        app.router.add_get(f"/{API_VERSION}/stream", self._stream)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=self.ssl_context)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise ControlServerError(
                    f"cannot serve the control API on {self.host}:{self.port}: the port is already in use "
                    "(another engine?); choose another with --control-port"
                ) from None
            raise ControlServerError(f"cannot serve the control API on {self.host}:{self.port}: {exc}") from None
        self._runner = runner
        self.port = runner.addresses[0][1]  # the real one when 0 asked for a free port
        if self.paths is not None and is_loopback(self.host):
            write_endpoint(self.paths, self.url, self.name, self.ssl_context is not None)
        self.engine.audit("control_server_start", f"control API on {self.url}", {"tls": self.ssl_context is not None})

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.ssl_context else 'http'}://{host}:{self.port}"

    async def stop(self) -> None:
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code=1001, message=b"engine shutting down"), 1.0)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.paths is not None:
            remove_endpoint(self.paths)

    # --- authentication --------------------------------------------------------------------------
    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Callable[[web.Request], Awaitable[Any]]) -> Any:
        peer = request.remote or "unknown"
        left = self.guard.locked(peer)
        if left:
            return web.json_response({"error": "too many failed authentications; try later"}, status=429,
                                     headers={"Retry-After": str(int(left) + 1)})  # fmt: skip
        if self._peer_certificate(request) or token_matches(request.headers.get("Authorization"), self.token):
            return await handler(request)
        self.failed_auth += 1
        locked = self.guard.fail(peer)
        msg = f"failed authentication from {peer} on {request.method} {request.path}"
        if locked:
            msg += f"; {peer} locked out for {int(self.guard.lockout_s)} s"
        self.engine.journal.record_incident(self.engine.clock.now(), "control", "auth_failed", msg)
        self.engine.alert(AlertLevel.WARNING, "control_auth_failed", msg.capitalize(), key=f"control_auth:{peer}")
        return web.json_response({"error": "authentication failed"}, status=401)

    @staticmethod
    def _peer_certificate(request: web.Request) -> dict | None:
        transport = request.transport
        if transport is None or transport.get_extra_info("sslcontext") is None:
            return None
        return transport.get_extra_info("peercert") or None  # verified by the handshake (CERT_REQUIRED)

    # --- reads -----------------------------------------------------------------------------------
    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response({**engine_status(self.engine), "name": self.name})

    async def _snapshot(self, request: web.Request) -> web.Response:
        return web.json_response({**engine_snapshot(self.engine), "name": self.name})

    async def _preview(self, request: web.Request) -> web.Response:
        return web.json_response(to_json(self.api.preview_close_all()))

    # --- commands --------------------------------------------------------------------------------
    async def _command(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in COMMANDS:
            return _refuse(f"unknown command {name!r}; known: {', '.join(COMMANDS)}", 404)
        try:
            body = await request.json()
        except ValueError:
            return _refuse("the body is not JSON")
        if not isinstance(body, dict):
            return _refuse("the body must be a JSON object")
        command_id, operator = body.pop("command_id", None), body.pop("operator", None)
        if not isinstance(command_id, str) or not 0 < len(command_id) <= 128:
            return _refuse("command_id is required (a unique string per command; a retry reuses it)")
        cert_name = peer_common_name(self._peer_certificate(request))
        if not isinstance(operator, str) or not operator.strip():
            if not cert_name:
                return _refuse("operator is required (who gives this command)")
            operator = cert_name
        elif cert_name and operator.strip() != cert_name:
            operator = f"{operator.strip()[:48]} (cert {cert_name})"  # the audit names the verified identity too
        method = getattr(self.api, name)
        try:
            kwargs = _arguments(method, body)
        except ValueError as exc:
            return _refuse(str(exc))
        try:
            result = method(command_id=command_id, operator=operator.strip()[:64], **kwargs)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:  # the engine refused in a way it did not foresee: say so, keep serving
            log.exception("command %s failed", name)
            body = {"ok": False, "command": name, "command_id": command_id, "message": f"{type(exc).__name__}: {exc}"}
            return web.json_response({**body, "details": {}}, status=500)
        return web.json_response(result.to_json())

    # --- the stream ------------------------------------------------------------------------------
    async def _stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=64 * 1024)
        await ws.prepare(request)
        self._sockets.add(ws)
        feed = ClientFeed(self.engine.bus)  # subscribe and snapshot with no await between: nothing is lost
        self.feeds.append(feed)
        seq = 0
        reader = asyncio.create_task(self._drain_incoming(ws))

        async def send(kind: str, **body: Any) -> None:
            nonlocal seq
            seq += 1
            await asyncio.wait_for(ws.send_json({"type": kind, "seq": seq, **body}), SEND_TIMEOUT_S)

        try:
            await send("snapshot", data={**engine_snapshot(self.engine), "name": self.name})
            loop = asyncio.get_running_loop()
            next_beat = loop.time() + HEARTBEAT_S
            while not ws.closed and not reader.done():
                events = await feed.next_batch(max(0.0, next_beat - loop.time()))
                if feed.overflowed:  # fell behind: a fresh picture replaces what it missed
                    feed.overflowed = False
                    await send("snapshot", data={**engine_snapshot(self.engine), "name": self.name})
                    continue
                for ev in events:
                    await send("event", event=event_to_json(ev))
                if loop.time() >= next_beat:
                    await send("heartbeat", status={**engine_status(self.engine), "name": self.name})
                    next_beat = loop.time() + HEARTBEAT_S
        except (ConnectionError, TimeoutError, RuntimeError):
            pass  # the client went away or stopped reading: it reconnects and gets a snapshot
        finally:
            feed.close()
            self.feeds.remove(feed)
            reader.cancel()
            with contextlib.suppress(Exception):
                await ws.close()
        return ws

    @staticmethod
    async def _drain_incoming(ws: web.WebSocketResponse) -> None:
        """The stream is one-way; reading keeps pings answered and notices the close."""
        async for msg in ws:
            if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break


def _refuse(message: str, status: int = 400) -> web.Response:
    return web.json_response({"ok": False, "message": message, "error": message}, status=status)


def _arguments(method: Callable[..., Any], body: dict[str, Any]) -> dict[str, Any]:
    """Keep only the method's own parameters, with the types JSON cannot carry (Decimal)."""
    params = inspect.signature(method).parameters
    unknown = sorted(set(body) - set(params))
    if unknown:
        raise ValueError(f"unknown argument(s): {', '.join(unknown)}")
    missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in body
               and n not in ("command_id", "operator")]  # fmt: skip
    if missing:
        raise ValueError(f"missing argument(s): {', '.join(missing)}")
    kwargs = dict(body)
    if kwargs.get("qty") is not None:
        try:
            qty = Decimal(str(kwargs["qty"]))
        except InvalidOperation:
            raise ValueError(f"qty {kwargs['qty']!r} is not a number") from None
        if not qty.is_finite() or qty <= 0:
            raise ValueError(f"qty {kwargs['qty']!r} must be a positive number")
        kwargs["qty"] = qty
    for key in ("reason", "client_id", "symbol", "request_id"):
        if key in kwargs and not isinstance(kwargs[key], str):
            raise ValueError(f"{key} must be a string")
    if "changes" in kwargs and not isinstance(kwargs["changes"], dict):
        raise ValueError("changes must be an object of risk settings")
    ids = kwargs.get("alert_ids")
    if ids is not None and not (isinstance(ids, list) and all(isinstance(a, str) for a in ids)):
        raise ValueError("alert_ids must be a list of alert ids, or null for every unacknowledged alert")
    if "pull_stops" in kwargs and not isinstance(kwargs["pull_stops"], bool):
        raise ValueError("pull_stops must be true or false")
    return kwargs
