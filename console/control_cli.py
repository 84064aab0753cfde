"""Commands that reach a running engine: status, halt, close-all, resume, approvals, watch, certs.

Local by default (the engine on this machine is found through the 0600 endpoint file its
control server writes); `--engine URL` with `--token`/`--token-file` or
`--cert/--key/--ca` reaches another host. Exit codes: 0 done, 1 refused by the engine,
2 usage, 3 the engine cannot be reached, 4 authentication failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
from pathlib import Path
from typing import Any

from console.remote_client import ControlClient, Endpoint, RemoteError, default_operator
from engine.app.operator_api import CommandResult
from engine.core.control_config import ControlConfig
from engine.core.paths import AppPaths

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_AUTH = 0, 1, 2, 3, 4
_EXIT_FOR = {RemoteError.USAGE: EXIT_USAGE, RemoteError.UNREACHABLE: EXIT_UNREACHABLE, RemoteError.AUTH: EXIT_AUTH}
COMMANDS = ("status", "halt", "close-all", "resume", "watch", "certs")


def add_connection_options(p: argparse.ArgumentParser, with_operator: bool = True) -> None:
    g = p.add_argument_group("which engine (default: the one running on this machine)")
    g.add_argument("--engine", metavar="URL", action="append", help="the engine's control URL"
                   + (" (repeat to watch several)" if p.prog.endswith("watch") else ""))  # fmt: skip
    g.add_argument("--token", help="the engine's control token (prefer --token-file: argv is visible to others)")
    g.add_argument("--token-file", metavar="FILE", help="a file holding the engine's control token")
    g.add_argument("--cert", metavar="PEM", help="client certificate (mutual TLS)")
    g.add_argument("--key", metavar="PEM", help="client key (mutual TLS)")
    g.add_argument("--ca", metavar="PEM", help="the CA that signed the engine's certificate")
    g.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the engine (default 10)")
    if with_operator:
        g.add_argument("--operator", default="", help="who gives the command (default: the login name)")


def add_commands(sub: Any) -> None:
    st = sub.add_parser("status", help="the running engine's state, equity and P&L")
    st.add_argument("--json", action="store_true", help="one JSON object")
    add_connection_options(st, with_operator=False)
    for name, text, reason_required in (
        ("halt", "EMERGENCY STOP a running engine: HALTED, working entries cancelled, stops kept", False),
        ("close-all", "flatten everything the engine owns and end HALTED", False),
        ("resume", "resume trading after a halt (refused while a breaker holds)", True),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--reason", required=reason_required, default=None, help="why (journaled and audited)")
        p.add_argument("--json", action="store_true", help="the engine's result as JSON")
        add_connection_options(p)
    w = sub.add_parser("watch", help="the dead-man alarm without a window: alert when an engine goes silent")
    w.add_argument("--silent-after", type=float, default=15.0, metavar="SECONDS",
                   help="alert when an engine says nothing for this long (default 15)")  # fmt: skip
    w.add_argument("--duration", type=float, help="stop watching after this many seconds")
    add_connection_options(w, with_operator=False)
    c = sub.add_parser("certs", help="make a CA, a server and a client certificate for mutual TLS")
    c.add_argument("--dir", type=Path, help="where (default: <config>/certs)")
    c.add_argument("--host", action="append", help="a name or address the console dials (repeat)")
    c.add_argument("--operator", default="", help="the operator named in the client certificate")
    c.add_argument("--client", default="client", help="file name of the client pair (default client)")


def endpoints_from(args: argparse.Namespace, paths: AppPaths) -> list[Endpoint]:
    urls = getattr(args, "engine", None) or []
    if not urls:
        if args.token or args.token_file or args.cert or args.key or args.ca:
            raise RemoteError(RemoteError.USAGE, "--token, --token-file and --cert/--key/--ca need --engine URL")
        return [Endpoint.local(paths)]
    return [Endpoint.from_options(u, args.token, args.token_file, args.cert, args.key, args.ca) for u in urls]


def run(args: argparse.Namespace, paths: AppPaths) -> int:
    """Entry point for every command in COMMANDS."""
    if args.command == "certs":
        from engine.app.certs import run_certs_command

        hosts = args.host or ["localhost", "127.0.0.1", socket.gethostname()]
        return run_certs_command(args.dir or paths.config_dir / "certs", hosts, args.operator or default_operator(),
                                 args.client)  # fmt: skip
    try:
        endpoints = endpoints_from(args, paths)
        if args.command == "watch":
            return asyncio.run(_watch(endpoints, args, paths))
        return asyncio.run(_one_engine(endpoints[0], args))
    except RemoteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return _EXIT_FOR.get(exc.kind, EXIT_UNREACHABLE)
    except KeyboardInterrupt:
        return 130


async def _one_engine(endpoint: Endpoint, args: argparse.Namespace) -> int:
    async with ControlClient(endpoint, timeout_s=args.timeout) as client:
        if args.command == "status":
            status = await client.status()
            print(json.dumps(status, sort_keys=True) if args.json else format_status(status))
            return EXIT_OK
        name, default_reason = {
            "halt": ("emergency_stop", "halt from the command line"),
            "close-all": ("close_all", "close all from the command line"),
            "resume": ("resume", ""),
        }[args.command]
        reason = args.reason if args.reason is not None else default_reason
        result = await client.command(name, operator=args.operator, reason=reason, deadline_s=args.timeout)
        return _print_result(result, args.json)


def _print_result(result: CommandResult, as_json: bool) -> int:
    if as_json:
        print(json.dumps(result.to_json(), sort_keys=True, default=str))
    else:
        state = result.details.get("state")
        print(f"{'done' if result.ok else 'REFUSED'}: {result.message}" + (f" (state {state})" if state else ""))
    return EXIT_OK if result.ok else EXIT_REFUSED


def format_status(s: dict[str, Any]) -> str:
    def money(key: str) -> str:
        try:
            return f"{float(s.get(key) or 0):,.2f}"
        except ValueError:
            return str(s.get(key))

    reason = f"  ({s['reason']})" if s.get("reason") else ""
    pnl = float(s.get("day_pnl") or 0)
    return (
        f"{s.get('name', '?')}  {s.get('state', '?')}{reason}\n"
        f"  stage {s.get('stage', '?')}  equity {money('equity')}  cash {money('cash')}  "
        f"day P&L {pnl:+,.2f} ({float(s.get('day_pnl_pct') or 0):+.2f}%)\n"
        f"  positions {s.get('open_positions', 0)}  working orders {s.get('working_orders', 0)}  "
        f"pending approvals {s.get('pending_approvals', 0)}  unacknowledged alerts {s.get('unacknowledged_alerts', 0)}"
        + ("" if s.get("connected", True) else "  VENUE DISCONNECTED")
    )


# --- approvals: through the control server when an engine runs, else the journal ----------------


def approvals(args: argparse.Namespace, paths: AppPaths) -> int | None:
    """Decide through the running engine; None when no engine serves (the caller uses the journal)."""
    try:
        endpoint = endpoints_from(args, paths)[0]
    except RemoteError as exc:
        if getattr(args, "engine", None) or exc.kind != RemoteError.UNREACHABLE:
            print(f"error: {exc}", file=sys.stderr)
            return _EXIT_FOR.get(exc.kind, EXIT_UNREACHABLE)
        return None
    try:
        return asyncio.run(_approvals(endpoint, args))
    except RemoteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return _EXIT_FOR.get(exc.kind, EXIT_UNREACHABLE)


async def _approvals(endpoint: Endpoint, args: argparse.Namespace) -> int:
    async with ControlClient(endpoint, timeout_s=args.timeout) as client:
        action = args.approvals_action
        if action == "list":
            pending = (await client.snapshot()).get("approvals", [])
            if args.json:
                print(json.dumps(pending, sort_keys=True))
            elif not pending:
                print("no pending approvals")
            for a in [] if args.json else pending:
                i = a["intent"]
                print(f"{a['request_id']:<20} {i['side']:<4} {a['qty']:>14} {i['symbol']:<10} "
                      f"{a['seconds_left']:>6.0f} s left  {i.get('reason', '')}")  # fmt: skip
            return EXIT_OK
        extra: dict[str, Any] = {"request_id": args.request_id}
        if action == "approve" and getattr(args, "qty", None) is not None:
            extra["qty"] = args.qty
        if action == "reject":
            extra["reason"] = args.reason or ""
        result = await client.command(action, operator=args.operator, deadline_s=args.timeout, **extra)
        return _print_result(result, False)


# --- watch: the dead-man alarm without a window --------------------------------------------------


async def _watch(endpoints: list[Endpoint], args: argparse.Namespace, paths: AppPaths) -> int:
    from console.deadman import DeadManMonitor
    from console.remote_engine import RemoteEngine
    from engine.alerts.notify.dispatcher import AlertDispatcher
    from engine.core.config import ConfigError, load_settings
    from engine.core.events import AlertEvent, EventBus

    try:
        settings = load_settings(paths.config_file)
    except ConfigError as exc:
        raise RemoteError(RemoteError.USAGE, f"configuration error: {exc}") from None
    bus = EventBus()

    def print_alert(ev: AlertEvent) -> None:
        print(f"{ev.ts.astimezone():%H:%M:%S} {ev.level.name:<8} {ev.message}", flush=True)

    bus.subscribe(print_alert, AlertEvent)

    def store():  # type: ignore[no-untyped-def]
        from engine.persistence.secrets import CredentialStore

        return CredentialStore(paths.data_dir)

    def own_alert(level: Any, code: str, message: str, key: str) -> None:  # channel failures, from the dispatcher
        from datetime import UTC, datetime

        bus.publish(AlertEvent(datetime.now(UTC), level, code, message, key))

    dispatcher = AlertDispatcher.from_settings(settings.alerts, bus, own_alert, store)
    dispatcher.start()
    engines = [RemoteEngine(ep, name=ep.name or ep.url) for ep in endpoints]

    def on_change(engine: RemoteEngine, what: str) -> None:
        if what == "link":
            print(f"{engine.name}: {engine.link} {engine.link_error}".rstrip(), flush=True)

    for engine in engines:
        engine.listeners.append(on_change)
        engine.start()
    monitor = DeadManMonitor(engines, bus.publish, silent_after_s=args.silent_after)
    monitor.start()
    print(f"watching {len(engines)} engine(s); alarm after {args.silent_after:g} s of silence; channels: "
          f"{', '.join(dispatcher.channel_names) or 'none configured (this terminal only)'}", flush=True)  # fmt: skip
    try:
        if args.duration is not None:
            await asyncio.sleep(args.duration)
        else:
            await asyncio.Event().wait()
    finally:
        monitor.stop()
        for engine in engines:
            await engine.stop()
        await dispatcher.aclose()
    return EXIT_OK


# --- options of the headless engine (serve, heartbeat) and of the window (attach) ---------------


def add_top_level_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("control server (headless runs serve on 127.0.0.1 by default)")
    g.add_argument("--no-control", action="store_true", help="do not serve the control API ([control] enabled)")
    g.add_argument("--control-host", help="bind address ([control] host, 127.0.0.1); beyond loopback needs mutual TLS")
    g.add_argument("--control-port", type=int, help="port ([control] port; 8765, or a free one when that is taken)")
    g.add_argument("--control-cert", type=Path, help="server certificate (from `trading-console certs`)")
    g.add_argument("--control-key", type=Path, help="server key")
    g.add_argument("--control-ca", type=Path, help="the CA whose client certificates may connect")
    g.add_argument("--heartbeat-url", help="dead-man ping URL (healthchecks-style), pinged while the engine runs")
    g.add_argument("--heartbeat-secret", metavar="NAME",
                   help="the same URL from the keyring (`trading-console secrets set NAME`), unseen by ps")  # fmt: skip
    g.add_argument("--heartbeat-every", type=float, metavar="SECONDS", help="ping interval ([control], 60)")
    a = p.add_argument_group("attach the window to running engines instead of embedding one")
    a.add_argument("--attach", metavar="URL", action="append",
                   help="an engine's control URL, or 'local' (repeat for a fleet)")  # fmt: skip
    a.add_argument("--attach-token-file", metavar="FILE", help="token for the attached engines")
    a.add_argument("--attach-cert", metavar="PEM", help="client certificate for the attached engines")
    a.add_argument("--attach-key", metavar="PEM")
    a.add_argument("--attach-ca", metavar="PEM")
    a.add_argument("--silent-after", type=float, default=15.0, metavar="SECONDS",
                   help="dead-man alarm: an attached engine silent this long is CRITICAL (15)")  # fmt: skip


def control_options_from(args: argparse.Namespace, cfg: ControlConfig | None = None) -> Any:
    """The config's [control] section, each flag given on the command line taking its place."""
    from engine.app.control_setup import ControlOptions

    cfg = cfg or ControlConfig()

    def pick(flag: Any, configured: Any) -> Any:
        return flag if flag is not None else configured

    def path(flag: Path | None, configured: str | None) -> Path | None:
        return flag if flag is not None else (Path(configured).expanduser() if configured else None)

    return ControlOptions(
        enabled=cfg.enabled and not args.no_control, host=pick(args.control_host, cfg.host),
        port=pick(args.control_port, cfg.port), cert=path(args.control_cert, cfg.cert),
        key=path(args.control_key, cfg.key), ca=path(args.control_ca, cfg.ca), heartbeat_url=args.heartbeat_url,
        heartbeat_secret=pick(args.heartbeat_secret, cfg.heartbeat_secret),
        heartbeat_every_s=pick(args.heartbeat_every, cfg.heartbeat_every_s),
    )  # fmt: skip


def attach_endpoints(args: argparse.Namespace, paths: AppPaths) -> list[Endpoint]:
    out = []
    for url in args.attach or []:
        if url == "local":
            out.append(Endpoint.local(paths))
        else:
            out.append(Endpoint.from_options(url, None, args.attach_token_file, args.attach_cert, args.attach_key,
                                             args.attach_ca))  # fmt: skip
    return out
