"""The alert rules that live where things happen (breakers, stop loss, rejections, approvals, the
big buttons, the clock rules), driven through a real engine on the simulated venue.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from engine.core.events import AlertEvent
from engine.core.model import Fill, Order, OrderStatus, OrderType, OrderUpdate, Side, TradingState
from tests.alert_rig import CRITICAL, EMERGENCY, INFO, T0, WARNING
from tests.engine_rig import buy, make_engine, settings_for, started, stop, until

pytestmark = pytest.mark.timeout(120)


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 90))


# --- through the engine: rules that live where things happen -----------------------------------------


def test_breaker_warning_and_trip_pass_through_the_center(tmp_path: Path) -> None:
    e = make_engine(tmp_path, settings_for(daily_loss_limit=0.05))
    got: list[AlertEvent] = []
    e.bus.subscribe(got.append, AlertEvent)
    try:
        e.breakers.on_equity(D("-3999"), D("100000"), D("0"))  # just below 80% of the limit
        assert got == []
        e.breakers.on_equity(D("-4001"), D("100000"), D("0"))
        [warning] = got
        assert (warning.level, warning.code) == (WARNING, "breaker_warning:daily_loss") and warning.alert_id
        e.breakers.on_equity(D("-5000"), D("100000"), D("0"))
        assert e.risk.state is TradingState.HALTED
        assert (CRITICAL, "breaker_trip:daily_loss") in [(a.level, a.code) for a in got]
        assert e.journal.flush()
        assert "breaker_trip:daily_loss" in [a.code for a in e.journal.alerts() if a.alert_id]
    finally:
        e.journal.close()


def _order(cid: str, side: Side, role: str, qty: str = "1") -> Order:
    return Order(cid, "BTC/USDT", side, OrderType.MARKET, D(qty), created_at=T0, role=role)


def _filled(e: Any, order: Order, price: str) -> None:
    e.book.register(order)  # as if this engine had placed it
    fill = Fill(f"f-{order.client_id}", order.client_id, order.symbol, order.side, order.qty, D(price), D(0),
                e.clock.now())  # fmt: skip
    done = order.evolve(status=OrderStatus.FILLED, filled_qty=order.qty, avg_fill_price=D(price))
    e.on_order_update(OrderUpdate(done, fill))


def test_a_fill_of_the_stop_leg_is_a_stop_loss_hit_and_a_rejection_an_execution_failure(tmp_path: Path) -> None:
    async def scenario() -> None:
        e = make_engine(tmp_path)
        got: list[AlertEvent] = []
        e.bus.subscribe(got.append, AlertEvent)
        try:
            _filled(e, _order("t-1", Side.BUY, "entry"), "100")
            _filled(e, _order("t-2", Side.SELL, "exit", "0.5"), "101")
            assert "stop_loss_hit" not in [a.code for a in got]  # fills of other legs are not stop losses
            _filled(e, _order("t-3", Side.SELL, "stop_loss", "0.5"), "97")
            [hit] = [a for a in got if a.code == "stop_loss_hit"]
            assert hit.level is WARNING and "BTC/USDT" in hit.message and "97" in hit.message
            rejected = _order("t-4", Side.BUY, "entry")
            e.book.register(rejected)
            e.on_order_update(OrderUpdate(rejected.evolve(status=OrderStatus.REJECTED, reason="insufficient balance")))
            [failure] = [a for a in got if a.code == "order_rejected"]
            assert failure.level is WARNING and "insufficient balance" in failure.message
        finally:
            e.journal.close()

    run(scenario())


def test_approval_pending_and_expired_through_the_gate(tmp_path: Path) -> None:
    async def scenario() -> None:
        s = settings_for()
        s.approvals.policy = "all"
        e = await started(make_engine(tmp_path, s))
        got: list[AlertEvent] = []
        e.bus.subscribe(got.append, AlertEvent)
        assert e.submit_intent(buy(e, "BTC/USDT")) is None  # waits for a human
        [pending] = [a for a in got if a.code == "approval_requested"]
        assert pending.level is WARNING
        [req] = e.approval_gate.pending()
        e.approval_gate.expire(req.request_id)
        [expired] = [a for a in got if a.code == "approval_expired"]
        assert expired.level is WARNING and req.request_id in expired.message
        await stop(e)

    run(scenario())


def test_emergency_stop_and_close_all_alert_when_started_and_when_finished(tmp_path: Path) -> None:
    async def scenario() -> None:
        e = await started(make_engine(tmp_path))
        got: list[AlertEvent] = []
        e.bus.subscribe(got.append, AlertEvent)
        for s in e.symbols:
            assert e.submit_intent(buy(e, s, "300", limit_below="0.02")) is not None
        await until(lambda: e.book.working_count() == 3 and not e.execution.inflight, what="3 resting orders")
        assert await e.emergency_stop("test", "alice") is True
        codes = [(a.level, a.code) for a in got]
        assert codes.index((EMERGENCY, "emergency_stop")) < codes.index((INFO, "emergency_stop_finished"))
        [finished] = [a for a in got if a.code == "emergency_stop_finished"]
        assert "3 orders cancelled" in finished.message
        ok, _ = e.resume("alice", "test over")
        assert ok
        got.clear()
        e.submit_intent(buy(e, "BTC/USDT", "1000"))
        await until(lambda: e.portfolio.open_count() == 1 and not e.execution.inflight, what="a position")
        summary = await e.close_all("flatten for the test", "alice")
        assert summary["ok"]
        codes = [(a.level, a.code) for a in got]
        assert (EMERGENCY, "close_all") in codes and (INFO, "close_all_finished") in codes
        assert not any(code.endswith("_incomplete") for _, code in codes)
        [flat] = [a for a in got if a.code == "close_all_finished"]
        assert "flat, 1 positions closed" in flat.message
        await stop(e)

    run(scenario())


def test_a_running_engine_checks_the_clock_rules_by_itself(tmp_path: Path) -> None:
    async def scenario() -> None:
        s = settings_for()
        s.alerts.rules.market_data_stale_s = 1.0
        e = await started(make_engine(tmp_path, s))
        got: list[AlertEvent] = []
        e.bus.subscribe(got.append, AlertEvent)
        e.symbols.append("NOPE/USDT")  # subscribed, never ticks
        await until(lambda: any(a.code == "market_data_stale" for a in got), what="a stale-data alert")
        [stale] = [a for a in got if a.code == "market_data_stale"]
        assert "NOPE/USDT" in stale.message and e.risk.state is not TradingState.HALTED
        await stop(e)

    run(scenario())
