"""The engine as a console first sees it: one JSON-ready dict.

A remote console replaces everything it shows with this on every (re)connect, then
applies numbered updates; a snapshot is never merged into stale data. Money stays a
string (Decimal), so nothing is rounded on the way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.app.wire import to_json

if TYPE_CHECKING:
    from engine.app.kernel import Engine

SNAPSHOT_VERSION = 1


def engine_name(engine: Engine) -> str:
    """A short name for the fleet strip: the venue and its mode (e.g. 'binance testnet')."""
    mode: Any = engine.venue.mode
    mode = str(getattr(mode, "value", mode))
    return engine.venue.name if mode == engine.venue.name else f"{engine.venue.name} {mode}"


def engine_status(engine: Engine) -> dict[str, Any]:
    """The few figures the fleet strip, `status` and the heartbeat need (cheap: no lists)."""
    pf = engine.portfolio
    mode: Any = engine.venue.mode
    return {
        "version": SNAPSHOT_VERSION,
        "name": engine_name(engine),
        "venue": engine.venue.name,
        "mode": str(getattr(mode, "value", mode)),
        "state": engine.risk.state.value,
        "reason": engine.risk.state_reason,
        "stage": engine.stage_manager.stage,
        "equity": str(pf.equity),
        "cash": str(pf.cash),
        "day_pnl": str(pf.day_pnl),
        "day_pnl_pct": str(pf.day_pnl_pct),
        "open_positions": pf.open_count(),
        "working_orders": len(_working_orders(engine)),
        "pending_approvals": len(engine.approval_gate.pending()),
        "unacknowledged_alerts": len(engine.alert_center.unacknowledged()),
        "resume_refusal": engine.resume_refusal(),
        "connected": bool(engine.connected),
        "ts": engine.clock.now().isoformat(),
        "running": not engine.stopped.is_set(),
    }


def engine_snapshot(engine: Engine) -> dict[str, Any]:
    """Status plus every list a window shows: positions, orders, approvals, alerts, risk, connection."""
    snap = engine_status(engine)
    pf = engine.portfolio
    snap.update(
        unrealized=str(pf.unrealized),
        realized=str(pf.realized),
        drawdown=str(pf.drawdown),
        peak_equity=str(pf.peak_equity),
        positions=[to_json(p) for p in pf.positions()],
        orders=[to_json(o) for o in _working_orders(engine)],
        approvals=[_approval(a) for a in engine.approval_gate.pending()],
        alerts=[to_json(a) for a in engine.alert_center.unacknowledged()],
        risk=[to_json(r) for r in engine.rule_values()],
        connection={
            "venue": engine.venue.name,
            "connected": bool(engine.connected),
            "ticks": {s: to_json(t) for s, t in engine.ticks.items()},
        },
        symbols=list(engine.symbols),
    )
    return snap


def _working_orders(engine: Engine) -> list[Any]:
    working = getattr(getattr(engine, "book", None), "working", None)  # the OrderBook, the one owner of orders
    if callable(working):
        return list(working())
    return list(engine.orders.values())


def _approval(a: Any) -> dict[str, Any]:
    return {
        "request_id": a.request_id,
        "intent": to_json(a.intent),
        "qty": str(a.qty),
        "role": a.role,
        "created": a.created.isoformat(),
        "deadline": a.deadline.isoformat(),
        "seconds_left": round(a.seconds_left(), 1),
        "details": to_json(a.details),
        "status": str(a.status),
    }


def status_line(engine: Engine) -> str:
    """One line for a headless run's log: time, state, prices, equity, positions, trades."""
    pf = engine.portfolio
    prices = "  ".join(f"{s} {t.last}" for s, t in engine.ticks.items())
    trades = pf.closed_trades
    wins = sum(1 for t in trades if t.pnl > 0)
    rate = f"{wins / len(trades):.0%}" if trades else "-"
    return (
        f"{engine.clock.now():%Y-%m-%d %H:%M:%S} {engine.risk.state.value:<8} {prices} | equity {pf.equity:,.2f} "
        f"| positions {pf.open_count()} | unrealised {pf.unrealized:+,.2f} | trades {len(trades)} win {rate}"
    )
