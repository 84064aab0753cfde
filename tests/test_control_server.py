"""The control server with the real aiohttp client and server on 127.0.0.1, on a real engine."""

from __future__ import annotations

import asyncio
import contextlib
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from console.remote_client import ControlClient, Endpoint, RemoteError
from engine.app.certs import make_all, server_ssl_context
from engine.app.control_files import endpoint_path, ensure_token, token_path
from engine.app.server import ControlServer, ControlServerError
from engine.app.server_auth import FailedAuthGuard
from engine.app.server_stream import ClientFeed
from engine.core.events import AlertEvent, EventBus, MarketEvent
from engine.core.model import AlertLevel, MarketTick, TradingState
from engine.core.paths import AppPaths
from tests.engine_rig import START, make_engine, started, stop, until


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 90))


def paths_in(tmp: Path) -> AppPaths:
    return AppPaths(tmp / "config", tmp / "data", tmp / "logs").ensure()


@contextlib.asynccontextmanager
async def served(tmp: Path, **kw: object) -> AsyncIterator[tuple[ControlServer, str]]:
    paths = paths_in(tmp)
    engine = await started(make_engine(tmp / "data"))
    token = ensure_token(paths)
    server = ControlServer(engine, port=0, token=token, paths=paths, **kw)  # type: ignore[arg-type]
    await server.start()
    try:
        yield server, token
    finally:
        await server.stop()
        await stop(engine)


def audit_actions(server: ControlServer) -> list[str]:
    assert server.engine.journal.flush()
    return [r["action"] for r in server.engine.journal.audit_rows()]


def test_snapshot_then_numbered_updates(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with served(tmp_path) as (server, token), aiohttp.ClientSession() as s:
            ws = await s.ws_connect(f"{server.url}/v1/stream", headers={"Authorization": f"Bearer {token}"})
            first = await ws.receive_json(timeout=5)
            assert first["type"] == "snapshot" and first["seq"] == 1
            snap = first["data"]
            assert snap["state"] == "ACTIVE" and snap["symbols"] == server.engine.symbols
            assert {"equity", "cash", "day_pnl", "positions", "orders", "approvals", "alerts", "risk"} <= set(snap)
            server.api.emergency_stop("test halt", "alice", "cid-1")
            seqs, types = [1], set()
            while "StateChanged" not in types or "MarketEvent" not in types:
                msg = await ws.receive_json(timeout=5)
                seqs.append(msg["seq"])
                if msg["type"] == "event":
                    types.add(msg["event"]["type"])
                    if msg["event"]["type"] == "StateChanged":
                        assert msg["event"]["new"] == "HALTED" and msg["event"]["operator"] == "alice"
            assert seqs == list(range(1, len(seqs) + 1)), "updates are numbered without gaps"
            await ws.close()

    run(scenario())


def test_every_command_works(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with served(tmp_path) as (server, token):
            engine = server.engine
            async with ControlClient(Endpoint(server.url, token)) as c:
                r = await c.command("emergency_stop", operator="alice", reason="from the test")
                assert r.ok and engine.risk.state is TradingState.HALTED
                r = await c.command("resume", operator="alice", reason="all clear")
                assert r.ok and engine.risk.state is TradingState.ACTIVE, r.message
                r = await c.command("close_all", operator="alice", reason="flatten")
                assert r.ok and engine.risk.state is TradingState.HALTED
                await until(lambda: not engine.close_in_progress(), what="close all finished")
                refused = await c.command("resume", operator="alice", reason="")
                assert not refused.ok and engine.risk.state is TradingState.HALTED  # a reason is required
                assert not (await c.command("cancel", operator="alice", client_id="nope")).ok
                assert not (await c.command("close_position", operator="alice", symbol="BTC/USDT")).ok
                assert not (await c.command("approve", operator="alice", request_id="nope", qty="1")).ok
                assert not (await c.command("reject", operator="alice", request_id="nope", reason="no")).ok
                assert (await c.command("acknowledge", operator="alice", alert_ids=None)).ok
                assert engine.alert_center.unacknowledged() == []
                r = await c.command("update_risk_limits", operator="alice", reason="tighter",
                                    changes={"max_concurrent_positions": 3})  # fmt: skip
                assert r.ok and engine.settings.risk.max_concurrent_positions == 3, r.message
                r = await c.command("demote", operator="alice", reason="test")
                assert r.command == "demote"
                r = await c.command("promote", operator="alice", reason="test")
                assert r.command == "promote"
                with pytest.raises(RemoteError) as bad:
                    await c.command("format_disk", operator="alice")
                assert bad.value.kind == RemoteError.USAGE
                with pytest.raises(RemoteError) as bad:
                    await c.command("approve", operator="alice", request_id="x", qty="NaN")
                assert bad.value.kind == RemoteError.USAGE
                status = await c.status()
                assert status["state"] == "HALTED"
            assert audit_actions(server).count("emergency_stop") == 1

    run(scenario())


def test_wrong_or_missing_token_is_refused_and_executes_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with served(tmp_path) as (server, token), aiohttp.ClientSession() as s:
            body = {"command_id": "x1", "operator": "mallory", "reason": "evil"}
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
                async with s.post(f"{server.url}/v1/commands/emergency_stop", json=body, headers=headers) as r:
                    assert r.status == 401
            with pytest.raises(aiohttp.WSServerHandshakeError) as ws_err:
                await s.ws_connect(f"{server.url}/v1/stream", headers={"Authorization": "Bearer wrong"})
            assert ws_err.value.status == 401
            assert server.engine.risk.state is TradingState.ACTIVE
            assert "emergency_stop" not in audit_actions(server)
            incidents = [i for i in server.engine.journal.incidents() if i.kind == "auth_failed"]
            assert len(incidents) == 4 and "127.0.0.1" in incidents[0].message
            assert token not in " ".join(i.message for i in incidents)

    run(scenario())


def test_failed_authentication_is_rate_limited_per_peer(tmp_path: Path) -> None:
    async def scenario() -> None:
        guard = FailedAuthGuard(max_failures=3, window_s=60, lockout_s=60)
        async with served(tmp_path, guard=guard) as (server, token):
            async with ControlClient(Endpoint(server.url, "wrong")) as c:
                for _ in range(3):
                    with pytest.raises(RemoteError) as err:
                        await c.status()
                    assert err.value.kind == RemoteError.AUTH, str(err.value)
            async with ControlClient(Endpoint(server.url, token)) as c:  # locked out, even with the right token
                with pytest.raises(RemoteError, match="too many failed"):
                    await c.command("emergency_stop", operator="alice", reason="x")
            assert server.engine.risk.state is TradingState.ACTIVE
            assert server.engine.journal.flush()
            assert any("locked out" in i.message for i in server.engine.journal.incidents())

    run(scenario())


class DropFirstReply:
    """A TCP proxy that forwards the first request but hangs up before its reply reaches the client."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.dropped = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        drop = self.dropped == 0
        self.dropped += 1

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, cut: bool) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    if cut:  # the engine answered: the client never hears it
                        break
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_w, False), pipe(up_r, writer, drop), return_exceptions=True)


def test_command_retried_after_a_dropped_connection_executes_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with served(tmp_path) as (server, token):
            proxy = DropFirstReply(server.port)
            port = await proxy.start()
            async with ControlClient(Endpoint(f"http://127.0.0.1:{port}", token)) as c:
                r = await c.command("emergency_stop", operator="alice", reason="retry me", command_id="once-1")
            assert r.ok and r.command_id == "once-1"
            assert proxy.dropped >= 2, "the first reply was dropped and the command resent"
            assert audit_actions(server).count("emergency_stop") == 1
            assert proxy.server is not None
            proxy.server.close()

    run(scenario())


def test_plain_non_loopback_bind_is_refused_at_start(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    server = ControlServer(engine, host="0.0.0.0", port=0, token="t")
    with pytest.raises(ControlServerError, match="without TLS"):
        run(server.start())
    engine.journal.close()


def test_a_taken_port_is_named(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with served(tmp_path) as (server, token):
            second = ControlServer(server.engine, port=server.port, token=token)
            with pytest.raises(ControlServerError, match=f"{server.port}.*already in use"):
                await second.start()

    run(scenario())


def test_token_and_endpoint_files_are_private(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with served(tmp_path) as (server, _token):
            paths = server.paths
            assert paths is not None
            for f in (token_path(paths), endpoint_path(paths)):
                assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
            assert Endpoint.local(paths).url == server.url
        assert not endpoint_path(paths).exists(), "a stopped server leaves no endpoint behind"

    run(scenario())


def test_mutual_tls_lets_our_certificate_in_and_refuses_any_other(tmp_path: Path) -> None:
    async def scenario() -> None:
        ours = make_all(tmp_path / "certs", ["127.0.0.1", "localhost"], "alice")
        theirs = make_all(tmp_path / "other", ["127.0.0.1"], "mallory")
        for key in (ours.ca_key, ours.server_key, ours.client_key()):
            assert stat.S_IMODE(key.stat().st_mode) == 0o600
        ctx = server_ssl_context(ours.server_cert, ours.server_key, ours.ca_cert)
        async with served(tmp_path / "engine", ssl_context=ctx) as (server, _token):
            assert server.url.startswith("https://127.0.0.1:")

            def endpoint(files, ca):  # type: ignore[no-untyped-def]
                return Endpoint.from_options(server.url, cert=str(files.client_cert()),
                                             key=str(files.client_key()), ca=str(ca))  # fmt: skip

            async with ControlClient(endpoint(theirs, ours.ca_cert)) as c:
                with pytest.raises(RemoteError) as err:
                    await c.command("emergency_stop", operator="mallory", reason="x", deadline_s=1)
                assert err.value.kind == RemoteError.AUTH, str(err.value)
            async with ControlClient(Endpoint(server.url, None, None)) as c:  # no certificate, system CAs
                with pytest.raises(RemoteError) as err:
                    await c.status()
                assert err.value.kind == RemoteError.AUTH, str(err.value)
            assert server.engine.risk.state is TradingState.ACTIVE
            async with ControlClient(endpoint(ours, ours.ca_cert)) as c:
                r = await c.command("emergency_stop", reason="over mutual TLS")  # operator from the certificate
                assert r.ok and server.engine.risk.state is TradingState.HALTED
            assert server.engine.journal.flush()
            rows = [r for r in server.engine.journal.audit_rows() if r["action"] == "emergency_stop"]
            assert len(rows) == 1 and "alice" in rows[0]["operator"], "the certificate's name is audited"

    run(scenario())


def test_a_slow_client_never_holds_the_bus_and_gets_a_fresh_snapshot() -> None:
    async def scenario() -> None:
        bus = EventBus()
        feed = ClientFeed(bus, queue_limit=10)
        tick = MarketTick("BTC/USDT", START, 1, 2, 1)  # type: ignore[arg-type]
        for _ in range(1000):
            bus.publish(MarketEvent(START, tick))
        assert feed.backlog == 1, "market data keeps only the latest per symbol"
        for i in range(50):
            bus.publish(AlertEvent(START, AlertLevel.INFO, "x", f"alert {i}"))
        assert feed.overflowed and feed.backlog <= 10
        feed.close()

    run(scenario())
