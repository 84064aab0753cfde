"""Journal commands of the command line: report and audit."""

from __future__ import annotations

import json
import sys

from engine.paths import AppPaths


def report(paths: AppPaths, section: str, as_json: bool) -> int:
    from engine import metrics, metrics_text
    from engine.journal import Journal

    if not paths.journal_file.exists():
        print(f"no journal at {paths.journal_file}: run the engine first", file=sys.stderr)
        return 1
    with Journal(paths.journal_file) as j:
        trades = j.trades()
        curve = [(p.ts, p.equity) for p in j.equity_curve()]
        orders = j.orders()
        fills = j.fills()
    rep = metrics.report(trades, curve, section=section, orders=orders, fills=fills)
    if as_json:
        print(json.dumps(rep, allow_nan=False, sort_keys=True))
    else:
        print(metrics_text.format_report(rep))
    return 0


def audit(paths: AppPaths, action: str) -> int:
    from engine.audit import verify_audit

    if not paths.journal_file.exists():
        print(f"no journal at {paths.journal_file}", file=sys.stderr)
        return 1
    if action == "show":
        from engine.journal import Journal

        with Journal(paths.journal_file) as j:
            for row in j.audit_rows():
                print(f"{row['id']:>6} {row['ts']} {row['operator']:<10} {row['action']:<18} {row['reason']}")
        return 0
    verdict = verify_audit(paths.journal_file)
    print(verdict.message)
    return 0 if verdict.ok else 1
