"""Dead-man pings from the engine, the watcher's alarm, and the remote event stream (127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from console.remote_client import Endpoint
from console.remote_engine import RemoteEngine
from engine.app.control_files import ensure_token, token_path
from engine.app.control_setup import ControlOptions, start_control
from engine.app.heartbeat import HeartbeatPinger
from engine.app.server import ControlServer
from engine.core.events import StateChanged
from engine.core.model import TradingState
from engine.core.paths import AppPaths
from tests.engine_rig import make_engine, started, stop, until
from tests.fakes.webhook_receiver import Receiver
from tests.test_secrets import memory_keyring  # noqa: F401  (the fixture: never the operator's keyring)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 120))


class PingReceiver:
    """A healthchecks-style endpoint: records each ping, answers with `status`."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.pings: list[tuple[str, str]] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.pings.append((request.method, await request.text()))
        return web.Response(status=self.status, text="OK")

    async def __aenter__(self) -> PingReceiver:
        app = web.Application()
        app.router.add_route("*", "/ping/{check}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ping/5f3c-secret-check-id"


def test_the_engine_pings_its_heartbeat_url_with_its_status(tmp_path: Path) -> None:
    async def scenario() -> None:
        paths = AppPaths(tmp_path / "config", tmp_path / "data", tmp_path / "logs").ensure()
        engine = await started(make_engine(paths.data_dir))
        async with PingReceiver() as hc:
            runtime = await start_control(engine, paths, ControlOptions(port=0, heartbeat_url=hc.url,
                                                                        heartbeat_every_s=0.05))  # fmt: skip
            await until(lambda: len(hc.pings) >= 3, what="three pings")
            method, body = hc.pings[-1]
            assert method == "POST" and json.loads(body)["state"] == "ACTIVE"
            engine.api.emergency_stop("test", "alice", "hb-1")
            await until(lambda: json.loads(hc.pings[-1][1])["state"] == "HALTED", what="a ping saying HALTED")
            await runtime.stop()
            sent = len(hc.pings)
            await asyncio.sleep(0.2)
            assert len(hc.pings) == sent, "a stopped engine stops pinging: that silence is the alarm"
        await stop(engine)

    run(scenario())


@pytest.mark.usefixtures("memory_keyring")
def test_the_heartbeat_url_can_come_from_the_credential_store(tmp_path: Path) -> None:
    async def scenario() -> None:
        from engine.alerts.notify.named_secrets import store_named_secret
        from engine.persistence.secrets import CredentialStore

        paths = AppPaths(tmp_path / "config", tmp_path / "data", tmp_path / "logs").ensure()
        engine = await started(make_engine(paths.data_dir))
        async with PingReceiver() as hc:
            store_named_secret(CredentialStore(paths.data_dir), "hc-ping", hc.url)
            opts = ControlOptions(enabled=False, heartbeat_secret="hc-ping", heartbeat_every_s=0.05)
            runtime = await start_control(engine, paths, opts)
            await until(lambda: len(hc.pings) >= 2, what="pings to the stored URL")
            await runtime.stop()
        await stop(engine)

    run(scenario())


def test_failing_pings_warn_once_and_never_show_the_url() -> None:
    async def scenario() -> None:
        warnings: list[str] = []
        async with PingReceiver(status=503) as hc:
            pinger = HeartbeatPinger(hc.url, 0.02, method="GET", warn=warnings.append)
            pinger.start()
            await until(lambda: pinger.failures >= 5, what="five failed pings")
            await pinger.stop()
        assert len(warnings) == 1 and "HTTP 503" in warnings[0]
        assert "secret-check-id" not in warnings[0] + pinger.last_error
        assert all(m == "GET" for m, _ in hc.pings)

    run(scenario())


def test_remote_engine_republishes_engine_events_and_replaces_its_snapshot(tmp_path: Path) -> None:
    async def scenario() -> None:
        paths = AppPaths(tmp_path / "config", tmp_path / "data", tmp_path / "logs").ensure()
        engine = await started(make_engine(paths.data_dir))
        server = ControlServer(engine, port=0, token=ensure_token(paths), paths=paths)
        await server.start()
        remote = RemoteEngine(Endpoint.local(paths), operator="bob")
        seen: list[StateChanged] = []
        remote.bus.subscribe(seen.append, StateChanged)
        remote.start()
        await remote.wait_connected()
        assert remote.state == "ACTIVE" and remote.snapshots == 1
        result = await remote.emergency_stop("remote stop", command_id="r-1")
        assert result.ok and engine.risk.state is TradingState.HALTED
        await until(lambda: bool(seen), what="the StateChanged event on the remote bus")
        assert isinstance(seen[0], StateChanged) and seen[0].new is TradingState.HALTED
        assert seen[0].operator == "bob"
        remote.snapshot = {"positions": [{"stale": True}]}  # what a previous connection left behind
        remote.drop_link()
        await until(lambda: remote.snapshots == 2 and remote.connected, what="a reconnect with a new snapshot")
        assert remote.snapshot is not None and "stale" not in str(remote.snapshot["positions"])
        assert remote.state == "HALTED"
        await remote.stop()
        await server.stop()
        await stop(engine)

    run(scenario())


def test_watch_alerts_through_the_configured_channel_when_an_engine_dies(tmp_path: Path) -> None:
    async def scenario() -> None:
        paths = AppPaths(tmp_path / "config", tmp_path / "data", tmp_path / "logs").ensure()
        engine = await started(make_engine(paths.data_dir))
        server = ControlServer(engine, port=0, token=ensure_token(paths), paths=paths)
        await server.start()
        watcher_home = tmp_path / "watcher"
        (watcher_home / "config").mkdir(parents=True)
        (watcher_home / "config" / "config.toml").write_text(
            '[[alerts.webhooks]]\nname = "ops"\nformat = "json"\nurl_secret = "ops-hook"\nmin_level = "CRITICAL"\n'
        )
        async with Receiver() as hook:
            env: dict[str, Any] = {**os.environ, "TRADING_CONSOLE_HOME": str(watcher_home),
                                   "TRADING_CONSOLE_SECRET_OPS_HOOK": hook.url(), "PYTHON_KEYRING_BACKEND":
                                   "keyring.backends.null.Keyring"}  # fmt: skip
            env.pop("DISPLAY", None)
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "console", "watch", "--engine", server.url, "--token-file",
                str(token_path(paths)), "--silent-after", "1.5", "--duration", "30", env=env,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
            assert proc.stdout is not None
            lines: list[str] = []

            async def read() -> None:
                assert proc.stdout is not None
                async for line in proc.stdout:
                    lines.append(line.decode())

            reader = asyncio.create_task(read())
            await until(lambda: any("connected" in ln for ln in lines), what="the watcher connected", timeout=60)
            await server.stop()  # the engine goes away without a word
            await stop(engine)
            await until(lambda: any(b.get("code") == "engine_silent" for _, b in hook.delivered),
                        what="the dead-man alert on the webhook", timeout=30)  # fmt: skip
            assert any("CRITICAL" in ln and "silent" in ln for ln in lines)
            proc.terminate()
            await proc.wait()
            reader.cancel()

    run(scenario())
