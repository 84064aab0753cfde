"""`trading-console status|halt|close-all|resume|approvals` against running engines, as an operator types them."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

from engine.app.certs import server_ssl_context
from engine.app.control_files import endpoint_path, ensure_token
from engine.app.server import ControlServer
from engine.core.model import TradingState
from engine.core.paths import AppPaths
from tests.engine_rig import make_engine, started, stop, until
from tests.headless_rig import env_for, serve_headless


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 120))


async def cli(home: Path, *args: str) -> tuple[int, str, str]:
    """The real command line in its own process, while this loop keeps serving the engine."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "console", *args, env=env_for(home),
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


def paths_in(home: Path) -> AppPaths:
    return AppPaths(home / "config", home / "data", home / "logs").ensure()


def test_halt_resume_close_all_on_this_machine(tmp_path: Path) -> None:
    async def scenario() -> None:
        paths = paths_in(tmp_path)
        engine = await started(make_engine(paths.data_dir))
        server = ControlServer(engine, port=0, token=ensure_token(paths), paths=paths)
        await server.start()
        code, out, err = await cli(tmp_path, "halt", "--reason", "maintenance", "--operator", "alice")
        assert code == 0, err
        assert engine.risk.state is TradingState.HALTED and "halted" in out
        code, out, _ = await cli(tmp_path, "status", "--json")
        status = json.loads(out)
        assert code == 0 and status["state"] == "HALTED" and status["reason"] == "maintenance"
        code, out, _ = await cli(tmp_path, "status")
        assert code == 0 and "HALTED" in out and "equity" in out
        code, out, _ = await cli(tmp_path, "resume", "--reason", "maintenance over")
        assert code == 0 and engine.risk.state is TradingState.ACTIVE, out
        code, out, _ = await cli(tmp_path, "resume", "--reason", "again")
        assert code == 1 and "REFUSED" in out and "not halted" in out  # refused by the engine
        code, out, _ = await cli(tmp_path, "close-all", "--reason", "end of day", "--json")
        assert code == 0 and json.loads(out)["details"]["state"] == "HALTED"
        await until(lambda: not engine.close_in_progress(), what="close all done")
        assert engine.portfolio.open_count() == 0
        code, out, _ = await cli(tmp_path, "approvals", "list", "--json")
        assert code == 0 and json.loads(out) == []
        code, out, _ = await cli(tmp_path, "approvals", "reject", "nope", "--reason", "no")
        assert code == 1 and "nope" in out
        assert engine.journal.flush()
        who = {r["action"]: r["operator"] for r in engine.journal.audit_rows()}
        assert who["emergency_stop"] == "alice"
        await server.stop()
        code, _, err = await cli(tmp_path, "status")
        assert code == 3 and "no running engine" in err
        await stop(engine)

    run(scenario())


def test_exit_codes_for_usage_unreachable_and_authentication(tmp_path: Path) -> None:
    async def scenario() -> None:
        paths = paths_in(tmp_path)
        engine = await started(make_engine(paths.data_dir))
        server = ControlServer(engine, port=0, token=ensure_token(paths), paths=paths)
        await server.start()
        bad = tmp_path / "wrong-token"
        bad.write_text("not-the-token")
        code, _, err = await cli(tmp_path, "halt", "--engine", server.url, "--token-file", str(bad))
        assert code == 4 and "refused our credentials" in err
        code, _, err = await cli(tmp_path, "halt", "--token", "x")  # a token without an engine URL
        assert code == 2
        assert engine.risk.state is TradingState.ACTIVE
        code, _, _ = await cli(tmp_path, "halt", "--engine", server.url, "--token-file",
                               str(paths.config_dir / "control-token"))  # fmt: skip
        assert code == 0 and engine.risk.state is TradingState.HALTED
        await server.stop()
        code, _, err = await cli(tmp_path, "status", "--engine", server.url, "--token", "x", "--timeout", "1")
        assert code == 3 and "cannot reach" in err
        await stop(engine)

    run(scenario())


def test_halt_and_status_through_mutual_tls(tmp_path: Path) -> None:
    async def scenario() -> None:
        paths = paths_in(tmp_path / "engine")
        code, out, err = await cli(tmp_path / "desk", "certs", "--dir", str(tmp_path / "certs"), "--host", "127.0.0.1",
                                   "--operator", "alice")  # fmt: skip
        assert code == 0, err
        certs = tmp_path / "certs"
        ctx = server_ssl_context(certs / "server.pem", certs / "server-key.pem", certs / "ca.pem")
        engine = await started(make_engine(paths.data_dir))
        server = ControlServer(engine, host="127.0.0.1", port=0, ssl_context=ctx, paths=paths)
        await server.start()
        tls = ["--engine", server.url, "--cert", str(certs / "client.pem"), "--key", str(certs / "client-key.pem"),
               "--ca", str(certs / "ca.pem")]  # fmt: skip
        code, out, err = await cli(tmp_path / "desk", "halt", "--reason", "over TLS", *tls)
        assert code == 0, err
        assert engine.risk.state is TradingState.HALTED
        code, out, err = await cli(tmp_path / "desk", "status", "--json", *tls)
        assert code == 0 and json.loads(out)["state"] == "HALTED", err
        code, out, err = await cli(tmp_path / "desk", "resume", "--reason", "TLS resume", *tls)
        assert code == 0 and engine.risk.state is TradingState.ACTIVE, out + err
        code, out, err = await cli(tmp_path / "desk", "close-all", *tls)
        assert code == 0 and engine.risk.state is TradingState.HALTED, out + err
        no_cert = ["--engine", server.url, "--token", "anything"]
        code, _, err = await cli(tmp_path / "desk", "status", *no_cert)
        assert code == 4, err
        await server.stop()
        await stop(engine)

    run(scenario())


def test_a_headless_engine_serves_by_default_and_halts_from_the_command_line(tmp_path: Path) -> None:
    proc, paths = serve_headless(tmp_path, stdout=subprocess.PIPE)
    try:
        halt = subprocess.run([sys.executable, "-m", "console", "halt", "--reason", "from a test"],
                              env=env_for(tmp_path), capture_output=True, text=True, timeout=60)  # fmt: skip
        assert halt.returncode == 0, halt.stderr
        status = subprocess.run([sys.executable, "-m", "console", "status", "--json"], env=env_for(tmp_path),
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        assert json.loads(status.stdout)["state"] == "HALTED"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "control API on http://127.0.0.1:" in out
    assert not endpoint_path(paths).exists(), "a stopped engine removes its endpoint file"


def test_a_halt_survives_a_sigkill_right_after_the_command_returns(tmp_path: Path) -> None:
    proc, _paths = serve_headless(tmp_path)
    try:
        halt = subprocess.run([sys.executable, "-m", "console", "halt", "--reason", "then the host dies"],
                              env=env_for(tmp_path), capture_output=True, text=True, timeout=60)  # fmt: skip
        proc.kill()  # SIGKILL the moment the acknowledgement is in: no shutdown, no flush
        proc.wait(timeout=30)
        assert halt.returncode == 0, halt.stderr
        dead = subprocess.run([sys.executable, "-m", "console", "status"], env=env_for(tmp_path),
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert dead.returncode == 3 and "cannot reach" in dead.stderr
        proc, _paths = serve_headless(tmp_path)
        status = subprocess.run([sys.executable, "-m", "console", "status", "--json"], env=env_for(tmp_path),
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["state"] == "HALTED", "the acknowledged halt was durable"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)
