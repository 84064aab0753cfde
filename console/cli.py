"""Journal commands of the command line: report and audit."""

from __future__ import annotations

import json
import sys

from engine.core.paths import AppPaths


def report(paths: AppPaths, section: str, as_json: bool) -> int:
    from engine.analytics import metrics, metrics_text
    from engine.persistence.journal import Journal

    if not paths.journal_file.exists():
        print(f"no journal at {paths.journal_file}: run the engine first", file=sys.stderr)
        return 1
    with Journal(paths.journal_file) as j:
        trades = j.trades()
        curve = [(p.ts, p.equity) for p in j.equity_curve()]
        orders = j.orders()
        fills = j.fills()
    rep = metrics.report(trades, curve, section=section, orders=orders, fills=fills, tz=_trading_day_tz(paths))
    if as_json:
        print(json.dumps(rep, allow_nan=False, sort_keys=True))
    else:
        print(metrics_text.format_report(rep))
    return 0


def _trading_day_tz(paths: AppPaths) -> str:
    """Daily figures split days where the engine does (a broken config is reported by the engine itself)."""
    from engine.core.config import ConfigError, load_settings

    try:
        return load_settings(paths.config_file).engine.trading_day_tz
    except ConfigError:
        return "UTC"


def summary(paths: AppPaths, day_text: str | None, as_json: bool) -> int:
    """The daily summary of one trading day (default: the journal's latest day)."""
    from datetime import UTC, date, datetime
    from zoneinfo import ZoneInfo

    from engine.alerts.daily_summary import build_daily_summary, day_window
    from engine.persistence.journal import Journal

    try:
        wanted = date.fromisoformat(day_text) if day_text else None
    except ValueError:
        print(f"{day_text!r} is not a day (YYYY-MM-DD)", file=sys.stderr)
        return 2
    if not paths.journal_file.exists():
        print(f"no journal at {paths.journal_file}: run the engine first", file=sys.stderr)
        return 1
    tz = _trading_day_tz(paths)
    with Journal(paths.journal_file) as j:
        # the engine's time as the journal last saw it (a simulated run keeps its own clock)
        far = datetime(9999, 1, 1, tzinfo=UTC)
        last = j.equity_samples(far, far, before=True)
        stamps = [r["ts"] for r in last] + [ts for ts in [j.last_fill_ts()] if ts is not None]
        now = max(stamps, default=datetime.now(UTC))
        day = wanted or now.astimezone(ZoneInfo(tz)).date()
        until = now if now < day_window(day, tz)[1] else None  # a day still running: "up to" its last record
        s = build_daily_summary(j, day, tz, until)
    if as_json:
        print(json.dumps(s.to_dict(), allow_nan=False, sort_keys=True))
    else:
        print(s.text(), end="")
    return 0


def audit(paths: AppPaths, action: str) -> int:
    from engine.persistence.journal_identity import verify_journal

    if not paths.journal_file.exists():
        print(f"no journal at {paths.journal_file}", file=sys.stderr)
        return 1
    if action == "show":
        from engine.persistence.journal import Journal

        with Journal(paths.journal_file) as j:
            for row in j.audit_rows():
                print(f"{row['id']:>6} {row['ts']} {row['operator']:<10} {row['action']:<18} {row['reason']}")
        return 0
    verdict = verify_journal(paths)  # with the audit key and the anchor kept outside the journal
    print(verdict.message)
    return 0 if verdict.ok else 1


# --- issue 5: activation stage and approvals for a headless engine ---------------------------


def _journal_now(journal: object, since: object) -> object:
    """The engine's time as the journal last saw it (a simulated run has its own clock)."""
    from datetime import UTC, datetime

    stamps = [p.ts for p in journal.equity_curve()[-1:]]  # type: ignore[attr-defined]
    stamps += [t.closed_at for t in journal.trades()[-1:]]  # type: ignore[attr-defined]
    if since is not None:
        stamps.append(since)
    return max(stamps) if stamps else datetime.now(UTC)


def stage(paths: AppPaths, as_json: bool) -> int:
    from engine.activation.stages import STAGE_LABELS, JournalData, evaluate, load_journal_data
    from engine.core.config import ConfigError, load_settings
    from engine.persistence.journal import Journal
    from engine.persistence.journal_schema import text_to_dt
    from engine.risk.stage_limits import stage_limits

    try:
        settings = load_settings(paths.config_file)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    cfg = settings.stages
    tz = settings.engine.trading_day_tz
    if paths.journal_file.exists():
        with Journal(paths.journal_file) as j:
            current = j.get_state("stage") or cfg.initial
            since_text = j.get_state("stage_since")
            since = text_to_dt(since_text) if since_text else None
            data = load_journal_data(j, since, j.get_state("paper_win_rate"))
            now = _journal_now(j, since)
    else:
        from datetime import UTC, datetime

        current, data, now, since = cfg.initial, JournalData(), datetime.now(UTC), None
    ev = evaluate(current, data, now, cfg, tz)  # type: ignore[arg-type]
    limits = stage_limits(current, cfg.stage(current), since or now, now)
    if as_json:
        out = ev.to_dict()
        out["limits"] = {
            "capital_cap": float(limits.capital_cap) if limits.capital_cap is not None else None,
            "risk_per_trade": limits.risk_per_trade,
            "size_step": limits.step + 1,
            "size_steps": limits.steps,
            "next_step_at": limits.next_step_at.isoformat() if limits.next_step_at else None,
            "symbol_allowlist": sorted(limits.allowlist),
            "max_symbols": limits.max_symbols,
        }
        print(json.dumps(out, allow_nan=False, sort_keys=True))
        return 0
    print(f"Stage: {STAGE_LABELS[ev.stage]} ({ev.stage}) since {ev.since or '-'}")
    print(f"  Limits: {limits.describe()}")
    for c in ev.criteria:
        print(f"  [{'PASS' if c.passed else 'FAIL'}] {c.description:<40} {c.explain()}")
    for c in ev.red_flags:
        print(f"  [RED FLAG] {c.explain()}")
    print("ready for promotion" if ev.passed else "not ready for promotion")
    return 0


def approvals(
    paths: AppPaths,
    action: str,
    request_id: str | None = None,
    qty: str | None = None,
    reason: str = "",
    operator: str = "",
    as_json: bool = False,
    wait_s: float = 5.0,
) -> int:
    """List pending requests, or queue a decision the running engine applies within a second."""
    import getpass
    import time
    from datetime import UTC, datetime
    from decimal import Decimal, InvalidOperation

    from engine.activation.approvals import DECISION_KEY
    from engine.persistence.journal import Journal

    if not paths.journal_file.exists():
        print(f"no journal at {paths.journal_file}: run the engine first", file=sys.stderr)
        return 1
    with Journal(paths.journal_file) as j:
        pending = j.approvals("pending")
        if action == "list":
            rows = [
                {"request_id": r.request_id, "created": r.ts.isoformat(), "symbol": r.symbol,
                 "side": r.side.value if r.side else None, "qty": str(r.qty) if r.qty is not None else None,
                 "notional": str(r.notional) if r.notional is not None else None,
                 "deadline": r.details.get("deadline"), "reason": r.details.get("reason", "")}
                for r in pending
            ]  # fmt: skip
            if as_json:
                print(json.dumps(rows, sort_keys=True))
            elif not rows:
                print("no pending approvals")
            else:
                for r in rows:
                    print(f"{r['request_id']:<20} {r['side']:<4} {r['qty']:>14} {r['symbol']:<10} "
                          f"notional {r['notional']:>14}  until {r['deadline']}  {r['reason']}")  # fmt: skip
            return 0
        if request_id not in {r.request_id for r in pending}:
            print(f"no pending approval {request_id}", file=sys.stderr)
            return 1
        if qty is not None:
            try:
                if Decimal(qty) <= 0:
                    raise InvalidOperation
            except InvalidOperation:
                print(f"quantity {qty!r} is not a positive number", file=sys.stderr)
                return 2
        decision = {
            "action": action,
            "operator": operator or getpass.getuser(),
            "qty": qty,
            "reason": reason,
            "ts": datetime.now(UTC).isoformat(),
        }
        j.set_state(DECISION_KEY + str(request_id), decision)
        j.flush()
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:  # the engine polls every second: report what it did
            rec = next((r for r in j.approvals() if r.request_id == request_id), None)
            if rec is not None and rec.status != "pending":
                print(f"{request_id}: {rec.status} ({rec.details.get('decision_reason', '')})")
                return 0 if rec.status == ("approved" if action == "approve" else "rejected") else 1
            time.sleep(0.1)
    print(f"{request_id}: decision queued; the engine applies it when it polls the journal")
    return 0


# --- issue 7: named secrets for the alert channels ---------------------------------------------


def secrets(paths: AppPaths, action: str, name: str) -> int:
    """``secrets set NAME`` / ``secrets delete NAME``: the value is never echoed or printed."""
    import getpass

    from engine.alerts.notify.named_secrets import delete_named_secret, store_named_secret
    from engine.persistence.secrets import CredentialError, CredentialStore

    def ask(prompt: str) -> str:  # hidden on a terminal; one line of stdin when piped
        return getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")

    store = CredentialStore(paths.data_dir)
    try:
        if store.needs_master_password:
            print("no keyring service here: using the encrypted credential file", file=sys.stderr)
            store.set_master_password(ask("Master password: "))
        if action == "delete":
            found = delete_named_secret(store, name)
            print(f"deleted secret {name!r}" if found else f"no secret {name!r} stored")
            return 0 if found else 1
        value = ask(f"Value of {name}: ").strip()
        if not value:
            print("no value given: nothing stored", file=sys.stderr)
            return 2
        store_named_secret(store, name, value)
    except CredentialError as exc:  # its messages never contain the value
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"stored secret {name!r} in the {store.backend} credential store")
    return 0
