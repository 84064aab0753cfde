"""Start and stop the control server and the heartbeat for a headless engine.

Headless runs serve by default, on loopback with the per-install token. The default port
may be taken (a second engine on the same host): then the server takes a free port and
says which; `trading-console status` finds it through the endpoint file either way. A
port asked for explicitly that is taken, or a non-loopback address without mutual TLS, is
an error the operator sees before the engine touches the venue.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.app.control_files import ensure_token
from engine.app.heartbeat import HeartbeatPinger
from engine.app.server import DEFAULT_PORT, ControlServer, ControlServerError
from engine.app.snapshot import engine_status
from engine.core.model import AlertLevel

if TYPE_CHECKING:
    from engine.app.kernel import Engine
    from engine.core.paths import AppPaths


@dataclass
class ControlOptions:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int | None = None  # None: DEFAULT_PORT, or any free port when that is taken
    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    heartbeat_url: str | None = None
    heartbeat_secret: str | None = None  # keyring name of the URL (it embeds the check's secret)
    heartbeat_every_s: float = 60.0


@dataclass
class ControlRuntime:
    server: ControlServer | None = None
    heartbeat: HeartbeatPinger | None = None

    async def stop(self) -> None:
        if self.heartbeat is not None:
            await self.heartbeat.stop()
        if self.server is not None:
            await self.server.stop()


async def start_control(engine: Engine, paths: AppPaths, opts: ControlOptions) -> ControlRuntime:
    """Serve and ping as configured; raises ControlServerError with the operator's message."""
    runtime = ControlRuntime()
    if opts.enabled:
        runtime.server = await _serve(engine, paths, opts)
    url = opts.heartbeat_url
    if opts.heartbeat_secret and not url:
        url = await _secret_url(opts.heartbeat_secret, paths)
    if url:
        try:
            pinger = HeartbeatPinger(
                url, opts.heartbeat_every_s, status=lambda: engine_status(engine),
                warn=lambda msg: engine.alert(AlertLevel.WARNING, "heartbeat_failing", msg, key="heartbeat_failing"),
            )  # fmt: skip
        except ValueError as exc:
            await runtime.stop()
            raise ControlServerError(str(exc)) from None
        pinger.start()
        runtime.heartbeat = pinger
    return runtime


async def _secret_url(name: str, paths: AppPaths) -> str:
    """The heartbeat URL from the credential store (or TRADING_CONSOLE_SECRET_<NAME>), off the loop."""
    import asyncio

    from engine.alerts.notify.named_secrets import SecretUnavailable, resolve_named_secret
    from engine.persistence.secrets import CredentialStore

    try:
        return await asyncio.to_thread(resolve_named_secret, name, lambda: CredentialStore(paths.data_dir))
    except SecretUnavailable as exc:
        raise ControlServerError(f"heartbeat: {exc}") from None


async def _serve(engine: Engine, paths: AppPaths, opts: ControlOptions) -> ControlServer:
    context = None
    if opts.cert or opts.key or opts.ca:
        if not (opts.cert and opts.key and opts.ca):
            raise ControlServerError("mutual TLS needs all three of --control-cert, --control-key and --control-ca")
        from engine.app.certs import server_ssl_context

        try:
            context = server_ssl_context(opts.cert, opts.key, opts.ca)
        except (OSError, ValueError) as exc:
            raise ControlServerError(f"cannot load the control server's certificates: {exc}") from None
    token = ensure_token(paths) if context is None else None
    port = DEFAULT_PORT if opts.port is None else opts.port
    server = ControlServer(engine, host=opts.host, port=port, token=token, ssl_context=context, paths=paths)
    try:
        await server.start()
    except ControlServerError:
        if opts.port is not None:
            raise
        server = ControlServer(engine, host=opts.host, port=0, token=token, ssl_context=context, paths=paths)
        await server.start()
        print(f"control port {DEFAULT_PORT} is already in use (another engine?): serving on {server.url} instead; "
              "`trading-console status` finds it, or fix the port with --control-port", file=sys.stderr, flush=True)
    return server
