"""Control server round trips, each beside a reference measured in the same run.

1. halt over HTTP: a ControlClient POST /v1/commands/emergency_stop -> HALTED and durable ->
   the reply, alternating with resumes (N each), against a live engine on the simulated venue;
   references: a plain aiohttp POST echo on the same host, and the same OperatorAPI call made
   in process (what the halt itself costs: it is journaled durably before it returns).
2. the CLI: `trading-console halt` / `resume` as processes (interpreter start included);
   reference: `trading-console --version` (the same interpreter and imports, no command).
3. attached-console event latency: an event published on the engine's bus -> received on the
   RemoteEngine's bus over the WebSocket; reference: a plain aiohttp WebSocket message, server
   to client. Market events are coalesced to ~20 Hz by design and are not measured here.

Prints a table and, on its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from aiohttp import web

from console.remote_client import ControlClient, Endpoint
from console.remote_engine import RemoteEngine
from engine.app.control_files import ensure_token
from engine.app.server import ControlServer
from engine.core.events import AlertEvent
from engine.core.model import AlertLevel, TradingState
from engine.core.paths import AppPaths
from tests.engine_rig import make_engine, started, stop, until


def summary(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, max(0, round(0.99 * len(ordered)) - 1))]
    return {"n": len(ordered), "median_ms": round(statistics.median(ordered), 3), "p99_ms": round(p99, 3)}


async def timed(n: int, step: Callable[[int], Awaitable[Any]]) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        await step(i)
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def echo_server() -> tuple[web.AppRunner, int, list[web.WebSocketResponse]]:
    sockets: list[web.WebSocketResponse] = []

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(await request.json())

    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        sockets.append(sock)
        async for _ in sock:
            pass
        return sock

    app = web.Application()
    app.router.add_post("/echo", echo)
    app.router.add_get("/ws", ws)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, runner.addresses[0][1], sockets


async def run_cli(home: Path, *args: str) -> int:
    env = {**os.environ, "TRADING_CONSOLE_HOME": str(home)}
    env.pop("DISPLAY", None)
    out, err_pipe = asyncio.subprocess.DEVNULL, asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "console", *args, env=env, stdout=out,
                                                stderr=err_pipe)  # fmt: skip
    _, err = await proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"{args}: exit {proc.returncode}: {err.decode()[-300:]}")
    return proc.returncode or 0


async def measure(home: Path, n: int, cli_n: int, events: int) -> dict[str, Any]:
    paths = AppPaths(home / "config", home / "data", home / "logs").ensure()
    engine = await started(make_engine(paths.data_dir, speed=20.0))
    server = ControlServer(engine, port=0, token=ensure_token(paths), paths=paths)
    await server.start()
    runner, port, sockets = await echo_server()
    results: dict[str, Any] = {}
    try:
        async with ControlClient(Endpoint.local(paths)) as client, aiohttp.ClientSession() as plain:

            async def halt_or_resume(i: int) -> None:
                if i % 2 == 0:
                    r = await client.command("emergency_stop", operator="bench", reason="bench")
                    assert r.ok and engine.risk.state is TradingState.HALTED
                else:
                    r = await client.command("resume", operator="bench", reason="bench")
                    assert r.ok, r.message

            samples = await timed(2 * n, halt_or_resume)
            results["http_halt"] = summary(samples[0::2])
            results["http_resume"] = summary(samples[1::2])

            async def echo(_i: int) -> None:
                async with plain.post(f"http://127.0.0.1:{port}/echo", json={"command_id": "x", "reason": "r"}) as r:
                    await r.json()

            results["ref_http_echo"] = summary(await timed(2 * n, echo))

            async def in_process(i: int) -> None:  # the same command without the wire: the durable halt itself
                if i % 2 == 0:
                    assert engine.api.emergency_stop("bench", "bench").ok
                else:
                    assert engine.api.resume("bench", "bench").ok
                await asyncio.sleep(0)

            inproc = await timed(2 * n, in_process)
            results["ref_inprocess_halt"] = summary(inproc[0::2])

        async def cli_step(i: int) -> None:
            if i % 2 == 0:
                await run_cli(home, "halt", "--reason", "bench")
            else:
                await run_cli(home, "resume", "--reason", "bench")

        cli = await timed(2 * cli_n, cli_step)
        results["cli_halt"] = summary(cli[0::2])
        results["cli_resume"] = summary(cli[1::2])
        results["ref_cli_version"] = summary(await timed(cli_n, lambda _i: run_cli(home, "--version")))

        remote = RemoteEngine(Endpoint.local(paths), operator="bench")
        arrivals: dict[str, float] = {}
        remote.bus.subscribe(lambda ev: arrivals.setdefault(ev.code, time.perf_counter()), AlertEvent)
        remote.start()
        await remote.wait_connected()
        latencies = []
        for i in range(events):
            code = f"bench_{i}"
            t0 = time.perf_counter()
            engine.bus.publish(AlertEvent(engine.clock.now(), AlertLevel.INFO, code, "latency probe", key=code))
            await until(lambda c=code: c in arrivals, what="the event at the remote console")  # type: ignore[misc]
            latencies.append((arrivals[code] - t0) * 1000)
        results["event_latency"] = summary(latencies)
        await remote.stop()

        async with aiohttp.ClientSession() as plain, plain.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
            await until(lambda: bool(sockets), what="the reference socket")
            ref = []
            for i in range(events):
                t0 = time.perf_counter()
                await sockets[0].send_json({"seq": i, "type": "event"})
                await ws.receive_json()
                ref.append((time.perf_counter() - t0) * 1000)
            results["ref_ws_message"] = summary(ref)
    finally:
        await runner.cleanup()
        await server.stop()
        await stop(engine)
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=50, help="halts (and as many resumes) over HTTP")
    p.add_argument("--cli-n", type=int, default=20, help="halts (and resumes) through the CLI process")
    p.add_argument("--events", type=int, default=200, help="events for the latency measure")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="tc-bench-control-") as tmp:
        results = asyncio.run(measure(Path(tmp), args.n, args.cli_n, args.events))
    print(f"{'measure':<18} {'n':>4} {'median ms':>10} {'p99 ms':>9}   reference")
    pairs = [("http_halt", "ref_http_echo"), ("http_halt", "ref_inprocess_halt"), ("http_resume", "ref_http_echo"),
             ("cli_halt", "ref_cli_version"), ("cli_resume", "ref_cli_version"),
             ("event_latency", "ref_ws_message")]  # fmt: skip
    for key, ref in pairs:
        r, q = results[key], results[ref]
        print(f"{key:<18} {r['n']:>4} {r['median_ms']:>10.3f} {r['p99_ms']:>9.3f}   "
              f"{ref} median {q['median_ms']:.3f} p99 {q['p99_ms']:.3f}")  # fmt: skip
    print(json.dumps(results, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
