"""Approvals on a real engine and the simulated venue: approve, reject, reduce, timeout, after a halt."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.activation.approvals import ApprovalGate
from engine.core.events import ApprovalEvent
from engine.core.model import OrderIntent, Side, TradingState
from engine.core.paths import AppPaths
from engine.persistence.journal import Journal
from tests.engine_rig import buy, make_engine, settings_for, started, stop, until


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))


def approving(policy: str = "all", timeout_s: float = 1e6, **kw: Any) -> Any:
    s = settings_for()
    s.approvals.policy = policy  # type: ignore[assignment]
    s.approvals.timeout_s = timeout_s
    for k, v in kw.items():
        setattr(s.approvals, k, v)
    return s


async def _engine(tmp_path: Path, **kw: Any) -> Any:
    e = await started(make_engine(tmp_path, approving(**kw)))
    events: list[ApprovalEvent] = []
    e.bus.subscribe(events.append, ApprovalEvent)
    return e, events


def _journal_row(tmp_path: Path, rid: str) -> Any:
    with Journal(tmp_path / "journal.sqlite") as j:
        rows = [r for r in j.approvals() if r.request_id == rid]
        audit = [r for r in j.audit_rows() if r["action"].startswith("approval_")]
    return rows[0], audit


def test_approve_submits_the_order_and_journals_who_and_how_fast(tmp_path: Path) -> None:
    async def go() -> None:
        e, events = await _engine(tmp_path)
        try:
            intent = buy(e, "BTC/USDT")
            assert e.submit_intent(intent) is None  # held for a human
            [req] = e.approval_gate.pending()
            assert e.venue.submits == [] and not e.book.working()
            d = req.details
            assert d["symbol"] == "BTC/USDT" and d["side"] == "buy" and Decimal(d["qty"]) == intent.qty
            assert Decimal(d["notional"]) > 0 and 0 < d["equity_share"] < 1
            assert d["stop_loss"] == str(intent.stop_loss) and "state" in d["checks_passed"]
            ok, msg = e.approval_gate.approve(req.request_id, "alice")
            assert ok, msg
            await until(lambda: e.portfolio.qty("BTC/USDT") == intent.qty, what="the approved fill")
            assert [s[0] for s in e.venue.submits][:1] == ["entry"]
            assert [ev.status for ev in events] == ["pending", "approved"]
            assert not e.approval_gate.approve(req.request_id, "alice")[0]  # decided once only
        finally:
            await stop(e)
        row, audit = _journal_row(tmp_path, req.request_id)
        assert row.status == "approved" and row.operator == "alice" and row.latency_s is not None
        assert [a["action"] for a in audit] == ["approval_requested", "approval_approved"]
        assert audit[-1]["operator"] == "alice" and "latency_s" in audit[-1]["details"]

    run(go())


def test_reject_submits_nothing(tmp_path: Path) -> None:
    async def go() -> None:
        e, events = await _engine(tmp_path)
        try:
            e.submit_intent(buy(e, "ETH/USDT"))
            [req] = e.approval_gate.pending()
            assert e.approval_gate.reject(req.request_id, "bob", "not now") == (True, "rejected")
            await asyncio.sleep(0)
            assert e.venue.submits == [] and e.approval_gate.pending() == []
            assert events[-1].status == "rejected"
        finally:
            await stop(e)
        row, _ = _journal_row(tmp_path, req.request_id)
        assert row.status == "rejected" and row.details["decision_reason"] == "not now"

    run(go())


def test_approve_with_a_reduced_quantity_never_a_larger_one(tmp_path: Path) -> None:
    async def go() -> None:
        e, _ = await _engine(tmp_path)
        try:
            intent = buy(e, "BTC/USDT", notional="4000")
            e.submit_intent(intent)
            [req] = e.approval_gate.pending()
            ok, msg = e.approval_gate.approve(req.request_id, "alice", qty=req.qty * 2)
            assert not ok and "never raised" in msg and e.approval_gate.pending()
            half = e.instruments["BTC/USDT"].round_qty(req.qty / 2)
            ok, msg = e.approval_gate.approve(req.request_id, "alice", qty=half)
            assert ok and "reduced" in msg
            await until(lambda: e.portfolio.qty("BTC/USDT") == half, what="the reduced fill")
        finally:
            await stop(e)
        row, _ = _journal_row(tmp_path, req.request_id)
        assert row.qty == half and row.details["requested_qty"] == str(req.qty)

    run(go())


def test_the_timeout_counts_real_seconds_when_the_simulator_runs_fast(tmp_path: Path) -> None:
    async def go() -> None:
        e, _events = await _engine(tmp_path, timeout_s=120)
        try:
            e.submit_intent(buy(e, "BTC/USDT"))
            [req] = e.approval_gate.pending()
            e.clock.advance(3600)  # an hour of simulated market passes in an instant
            assert e.approval_gate.expire_due() == []
            assert 0 < req.seconds_left() <= 120  # what the dialog counts down: the operator still has time
            assert e.approval_gate.pending() == [req]
        finally:
            await stop(e)

    run(go())


def test_timeout_rejects_never_approves(tmp_path: Path) -> None:
    async def go() -> None:
        e, events = await _engine(tmp_path, timeout_s=0.2)
        try:
            e.submit_intent(buy(e, "SOL/USDT"))
            [req] = e.approval_gate.pending()
            await until(lambda: not e.approval_gate.pending(), what="the timeout")
            assert events[-1].status == "expired"
            assert e.approval_gate.approve(req.request_id, "late")[0] is False
            await asyncio.sleep(0.05)
            assert e.venue.submits == [] and e.portfolio.qty("SOL/USDT") == 0
        finally:
            await stop(e)
        row, _ = _journal_row(tmp_path, req.request_id)
        assert row.status == "expired" and row.qty == 0

    run(go())


def test_an_approval_after_a_halt_is_refused(tmp_path: Path) -> None:
    async def go() -> None:
        e, events = await _engine(tmp_path)
        try:
            e.submit_intent(buy(e, "BTC/USDT"))
            [req] = e.approval_gate.pending()
            e.emergency_stop("test", "ops")
            ok, msg = e.approval_gate.approve(req.request_id, "alice")
            assert not ok and "HALTED" in msg
            assert e.risk.state is TradingState.HALTED
            await asyncio.sleep(0.05)
            assert e.venue.submits == [] and not e.approval_gate.pending()
            assert events[-1].status == "rejected"
        finally:
            await stop(e)

    run(go())


def test_policies(tmp_path: Path) -> None:
    async def go() -> None:
        e, _ = await _engine(tmp_path, policy="new_positions")
        gate: ApprovalGate = e.approval_gate
        try:
            intent = buy(e, "BTC/USDT")
            price = e.ticks["BTC/USDT"].last
            assert gate.needs_approval(intent, intent.qty, price, "entry")
            sell = OrderIntent("BTC/USDT", Side.SELL, intent.qty, reduce_only=True)
            assert not gate.needs_approval(sell, intent.qty, price, "exit")  # exits never wait
            e.settings.approvals.policy = "notional_above"
            e.settings.approvals.notional_threshold = 2500
            assert not gate.needs_approval(intent, intent.qty, price, "entry")  # about 2,000
            assert gate.needs_approval(intent, intent.qty * 2, price, "entry")
            e.settings.approvals.policy = "by_stage"
            assert e.stage_manager.stage == "paper"
            assert not gate.needs_approval(intent, intent.qty, price, "entry")  # paper trades freely
            e.stage_manager.enter("live_micro", e.clock.now())
            assert gate.needs_approval(intent, intent.qty, price, "entry")  # on by default for live
            e.settings.approvals.enabled = False
            assert not gate.needs_approval(intent, intent.qty, price, "entry")
            # by_stage on paper: the order goes straight through
            e.settings.approvals.enabled = True
            e.stage_manager.enter("paper", e.clock.now())
            assert e.submit_intent(buy(e, "ETH/USDT")) is not None
            # new_positions: adding to a held position needs no approval
            e.settings.approvals.policy = "new_positions"
            await until(lambda: e.portfolio.qty("ETH/USDT") > 0, what="the ETH fill")
            assert e.submit_intent(buy(e, "ETH/USDT")) is not None
            assert e.submit_intent(buy(e, "SOL/USDT")) is None
            assert e.submit_intent(buy(e, "SOL/USDT")) is None and len(gate.pending()) == 1  # joins the first
        finally:
            await stop(e)

    run(go())


def test_cli_approves_through_the_journal(tmp_path: Path) -> None:
    from console.cli import approvals

    paths = AppPaths(tmp_path / "config", tmp_path, tmp_path / "logs")  # journal at tmp_path/journal.sqlite

    async def go() -> None:
        e, _ = await _engine(tmp_path)
        try:
            intent = buy(e, "BTC/USDT")
            e.submit_intent(intent)
            [req] = e.approval_gate.pending()
            await asyncio.to_thread(e.journal.flush)
            assert await asyncio.to_thread(approvals, paths, "list") == 0
            rc = await asyncio.to_thread(approvals, paths, "approve", req.request_id, None, "", "carol", False, 10.0)
            assert rc == 0
            await until(lambda: e.portfolio.qty("BTC/USDT") == intent.qty, what="the CLI-approved fill")
            rc = await asyncio.to_thread(approvals, paths, "reject", req.request_id, None, "", "carol", False, 0)
            assert rc == 1  # no longer pending
        finally:
            await stop(e)
        row, _ = _journal_row(tmp_path, req.request_id)
        assert row.status == "approved" and row.operator == "carol"

    run(go())
