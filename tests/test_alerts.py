"""Alert rules, de-duplication with a cooldown, and acknowledgement.

Pure rule tests feed events (and plain positions/ticks) to an AlertCenter on a SimClock;
the rules that live where things happen (breakers, stop loss, approvals, the big buttons)
are driven through a real engine on the simulated venue.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from engine.activation.stages import Criterion, Evaluation
from engine.alerts.center import AlertCenter, Sources
from engine.core.alerts_config import AlertRulesConfig
from engine.core.clock import SimClock
from engine.core.events import (
    AlertAcknowledged,
    AlertEvent,
    ApprovalEvent,
    ConnectionEvent,
    EventBus,
    MarketEvent,
    ProgressEvent,
)
from engine.core.model import (
    AlertLevel,
    Fill,
    MarketTick,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    Side,
    TradingState,
)
from engine.persistence.journal import Journal
from tests.engine_rig import buy, make_engine, settings_for, started, stop, until

pytestmark = pytest.mark.timeout(120)

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
INFO, WARNING, CRITICAL, EMERGENCY = AlertLevel.INFO, AlertLevel.WARNING, AlertLevel.CRITICAL, AlertLevel.EMERGENCY


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 90))


class Rig:
    """An AlertCenter on its own bus and SimClock, reading plain positions and tick times."""

    def __init__(self, **rules: Any) -> None:
        self.clock = SimClock(T0)
        self.bus = EventBus()
        self.got: list[AlertEvent] = []
        self.bus.subscribe(self.got.append, AlertEvent)
        self.positions: dict[str, Position] = {}
        self.symbols: list[str] = []
        self.ticks: dict[str, datetime] = {}
        sources = Sources(positions=lambda: list(self.positions.values()), symbols=lambda: self.symbols,
                          last_tick=self.ticks.get)  # fmt: skip
        self.center = AlertCenter(self.bus, self.clock, AlertRulesConfig(**rules), sources=sources)

    def after(self, seconds: float) -> datetime:
        return self.clock.advance(seconds)

    def take(self) -> list[AlertEvent]:
        out = list(self.got)
        self.got.clear()
        return out

    def codes(self) -> list[str]:
        return [a.code for a in self.take()]


# --- de-duplication ------------------------------------------------------------------------------


def test_cooldown_suppresses_repeats_lets_other_keys_through_and_the_key_again_after_it() -> None:
    r = Rig(cooldown_s=300)
    c = r.center
    first = c.raise_alert(WARNING, "venue_error", "submit failed", key="venue_error:submit")
    assert first is not None and [a.message for a in r.take()] == ["submit failed"]
    r.after(10)
    assert c.raise_alert(WARNING, "venue_error", "submit failed", key="venue_error:submit") is None
    assert c.raise_alert(WARNING, "venue_error", "cancel failed", key="venue_error:cancel") is not None
    assert [a.message for a in r.take()] == ["cancel failed"]  # a different key goes through at once
    r.after(289.999)  # 299.999 s after the first: still within the cooldown
    assert c.raise_alert(WARNING, "venue_error", "submit failed", key="venue_error:submit") is None
    assert r.take() == []
    r.after(0.001)  # exactly the cooldown after the last published one
    again = c.raise_alert(WARNING, "venue_error", "submit failed", key="venue_error:submit")
    assert again is not None and again.message == "submit failed (repeated 2 times)"
    assert [a.message for a in r.take()] == ["submit failed (repeated 2 times)"]
    r.after(300)
    assert c.raise_alert(WARNING, "venue_error", "submit failed", key="venue_error:submit").message == "submit failed"
    assert c.suppressed == 2


def test_the_key_defaults_to_the_code_and_every_published_alert_has_its_own_id() -> None:
    r = Rig(cooldown_s=60)
    ids = set()
    for i in range(5):
        ev = r.center.raise_alert(INFO, f"code{i}", "m")
        assert ev is not None and ev.key == f"code{i}"
        ids.add(ev.alert_id)
    assert len(ids) == 5 and all(ids)
    assert {a.alert_id for a in r.take()} == ids


def test_emergency_alerts_and_the_daily_summary_are_never_suppressed() -> None:
    r = Rig(cooldown_s=300)
    for _ in range(3):
        assert r.center.raise_alert(EMERGENCY, "emergency_stop", "EMERGENCY STOP by alice") is not None
        assert r.center.raise_alert(INFO, "daily_summary", "Day closed") is not None
        r.after(1)
    assert r.codes() == ["emergency_stop", "daily_summary"] * 3


def test_every_halt_is_reported_but_a_flapping_reducing_state_is_not(tmp_path: Path) -> None:
    e = make_engine(tmp_path)
    got: list[AlertEvent] = []
    e.bus.subscribe(got.append, AlertEvent)
    try:
        for _ in range(2):  # halted, resumed, halted again within the cooldown
            e.risk.set_state(TradingState.HALTED, "operator", "alice")
            e.risk.set_state(TradingState.ACTIVE, "resumed", "alice")
        for _ in range(2):
            e.risk.set_state(TradingState.REDUCING, "stale data", "breaker")
            e.risk.set_state(TradingState.ACTIVE, "data back", "breaker")
        assert [a.code for a in got] == ["state_halted", "state_active", "state_halted", "state_reducing"]
    finally:
        e.journal.close()


def test_a_cooldown_of_zero_suppresses_nothing() -> None:
    r = Rig(cooldown_s=0)
    for _ in range(3):
        r.center.raise_alert(WARNING, "x", "again")
    assert r.codes() == ["x", "x", "x"]


def test_a_failing_event_handler_is_reported_once_through_the_center() -> None:
    r = Rig(cooldown_s=300)

    def broken(ev: MarketEvent) -> None:
        raise RuntimeError("bug")

    r.bus.subscribe(broken, MarketEvent)
    tick = MarketTick("BTC/USDT", T0, D(1), D(1), D(1))
    for _ in range(50):
        r.bus.publish(MarketEvent(T0, tick))
    [alert] = r.take()
    assert alert.code == "handler_error" and alert.alert_id and "RuntimeError: bug" in alert.message
    assert r.center.suppressed == 49


# --- emergency stop, close all ---------------------------------------------------------------------


def progress(op: str, ok: bool, **details: Any) -> ProgressEvent:
    return ProgressEvent(T0, op, "done" if ok else "orders may still be open at the venue", 1, 1, True, ok, details)


def test_emergency_stop_and_close_all_report_how_they_finished() -> None:
    r = Rig(cooldown_s=300)
    r.bus.publish(ProgressEvent(T0, "emergency_stop", "cancelling 3 open orders", 0, 3))  # not finished
    assert r.take() == []
    r.bus.publish(progress("emergency_stop", True, phase="cancel", orders=3, still_open=0))
    [done] = r.take()
    assert (done.level, done.code) == (INFO, "emergency_stop_finished")
    assert "3 orders cancelled" in done.message
    r.bus.publish(progress("emergency_stop", True, phase="cancel", orders=0, still_open=0))
    assert r.codes() == ["emergency_stop_finished"]  # a second stop is reported too, within the cooldown
    r.bus.publish(progress("emergency_stop", False, phase="cancel", orders=3, still_open=2))
    [failed] = r.take()
    assert (failed.level, failed.code) == (EMERGENCY, "emergency_stop_incomplete")
    assert "may still be open" in failed.message

    r.bus.publish(progress("close_all", True, phase="cancel", orders=1, still_open=0))
    assert r.take() == []  # close all reports once it is flat, not after its cancelling phase
    r.bus.publish(progress("close_all", True, positions_closed=2, positions_left={}, realized_pnl="-12.5"))
    [flat] = r.take()
    assert (flat.level, flat.code) == (INFO, "close_all_finished")
    assert "flat, 2 positions closed" in flat.message and "-12.5" in flat.message
    r.bus.publish(progress("close_all", False, positions_closed=1, positions_left={"ETH/USDT": "0.5"}))
    [not_flat] = r.take()
    assert (not_flat.level, not_flat.code) == (EMERGENCY, "close_all_incomplete")
    assert "NOT flat" in not_flat.message and "ETH/USDT" in not_flat.message


# --- connection ------------------------------------------------------------------------------------


def conn(r: Rig, connected: bool) -> None:
    r.bus.publish(ConnectionEvent(r.clock.now(), "binance", connected, message="" if connected else "reset"))


def test_connection_lost_and_restored_with_how_long_it_was_down() -> None:
    r = Rig(cooldown_s=300)
    conn(r, True)
    conn(r, True)
    assert r.take() == []
    r.after(1)
    conn(r, False)
    [lost] = r.take()
    assert (lost.level, lost.code) == (CRITICAL, "connection_lost") and "binance" in lost.message
    r.after(1)
    conn(r, False)  # still down: no second alert
    assert r.take() == []
    r.after(41)
    conn(r, True)
    [back] = r.take()
    assert (back.level, back.code) == (INFO, "connection_restored")
    assert "after 42 s" in back.message


def test_a_flapping_connection_ends_with_the_operator_seeing_the_present_state() -> None:
    r = Rig(cooldown_s=300)
    conn(r, True)
    conn(r, False)
    r.after(5)
    conn(r, True)
    assert r.codes() == ["connection_lost", "connection_restored"]
    r.after(5)
    conn(r, False)  # within the cooldown: suppressed...
    assert r.take() == []
    for _ in range(289):
        r.after(1)
        conn(r, False)
    assert r.take() == []
    r.after(1)
    conn(r, False)  # ...and delivered once the cooldown is over, because it still holds
    [late] = r.take()
    assert late.code == "connection_lost" and "(repeated 1 time)" in late.message
    conn(r, True)  # restored again within its own cooldown: held back...
    assert r.take() == []
    r.after(1)
    conn(r, False)  # ...then lost again: what the operator already sees, so nothing is owed
    r.after(400)
    conn(r, False)
    assert r.take() == []
    conn(r, True)
    assert r.codes() == ["connection_restored"]


def test_a_restore_held_back_by_the_cooldown_is_delivered_once_it_is_over() -> None:
    r = Rig(cooldown_s=60)
    conn(r, True)
    conn(r, False)  # t=0: lost
    r.after(30)
    conn(r, True)  # t=30: restored
    r.after(1)
    for _ in range(30):  # t=31..60: lost again; held back until the lost alert's cooldown is over
        conn(r, False)
        r.after(1)
    conn(r, False)
    assert r.codes() == ["connection_lost", "connection_restored", "connection_lost"]
    r.after(1)
    conn(r, True)  # t=62: restored again, within the restored alert's cooldown (since t=30)
    assert r.take() == []
    for _ in range(28):  # t=90 is the first moment it may go out; it still holds, so it does
        r.after(1)
        conn(r, True)
    [back] = r.take()
    assert back.code == "connection_restored" and "(repeated 1 time)" in back.message
    r.after(100)
    conn(r, True)
    assert r.take() == []


# --- market data -----------------------------------------------------------------------------------


def test_market_data_stale_at_its_threshold_and_restored_when_ticks_resume() -> None:
    r = Rig(market_data_stale_s=30)
    r.symbols = ["BTC/USDT", "ETH/USDT"]
    r.ticks["BTC/USDT"] = r.ticks["ETH/USDT"] = T0
    r.center.check()
    r.after(29.999)
    r.ticks["ETH/USDT"] = r.clock.now()
    r.center.check()
    assert r.take() == []  # just below the threshold
    r.after(0.001)
    r.center.check()
    [stale] = r.take()
    assert (stale.level, stale.code) == (WARNING, "market_data_stale") and "BTC/USDT" in stale.message
    r.after(10)
    r.ticks["ETH/USDT"] = r.clock.now()
    r.center.check()
    assert r.take() == []  # still stale: no repeat
    r.after(5)
    r.ticks["BTC/USDT"] = r.clock.now()
    r.center.check()
    [back] = r.take()
    assert (back.level, back.code) == (INFO, "market_data_restored") and "after 15 s" in back.message


def test_a_symbol_that_never_ticked_goes_stale_from_when_watching_began() -> None:
    r = Rig(market_data_stale_s=30)
    r.symbols = ["SOL/USDT"]
    r.center.check()
    r.after(29)
    r.center.check()
    assert r.take() == []
    r.after(1)
    r.center.check()
    assert r.codes() == ["market_data_stale"]


# --- positions -------------------------------------------------------------------------------------


def pos(symbol: str, last: str, qty: str = "2", avg: str = "100", opened: datetime = T0) -> Position:
    return Position(symbol, D(qty), D(avg), D(last), opened_at=opened)


def test_profit_take_at_the_threshold_once_until_it_falls_back() -> None:
    r = Rig(profit_take_pct=20, cooldown_s=60)
    r.positions["BTC/USDT"] = pos("BTC/USDT", "119.99")
    r.center.check()
    assert r.take() == []  # 19.99%: just below
    r.positions["BTC/USDT"] = pos("BTC/USDT", "120")
    r.center.check()
    [up] = r.take()
    assert (up.level, up.code) == (INFO, "profit_take")
    assert "up 20.0%" in up.message and "consider taking profit" in up.message
    for last in ("125", "119", "121"):  # stays up, dips a little, rises again: once per position
        r.after(120)
        r.positions["BTC/USDT"] = pos("BTC/USDT", last)
        r.center.check()
    assert r.take() == []
    r.positions["BTC/USDT"] = pos("BTC/USDT", "117.9")  # fell back under 18%: re-armed
    r.center.check()
    r.positions["BTC/USDT"] = pos("BTC/USDT", "120.5")
    r.center.check()
    assert r.codes() == ["profit_take"]


def test_profit_take_counts_shorts_and_a_new_position_starts_afresh() -> None:
    r = Rig(profit_take_pct=20, cooldown_s=0)
    r.positions["ETH/USDT"] = pos("ETH/USDT", "80.01", qty="-1")  # short: up 19.99%
    r.center.check()
    assert r.take() == []
    r.positions["ETH/USDT"] = pos("ETH/USDT", "80", qty="-1")
    r.center.check()
    assert r.codes() == ["profit_take"]
    r.positions.clear()
    r.center.check()
    r.positions["ETH/USDT"] = pos("ETH/USDT", "80", qty="-1", opened=T0 + timedelta(hours=1))
    r.center.check()
    assert r.codes() == ["profit_take"]


def test_a_position_held_30_days_at_a_loss_is_reported_once() -> None:
    r = Rig(stale_loser_days=30)
    r.positions["SOL/USDT"] = pos("SOL/USDT", "95")
    r.positions["ETH/USDT"] = pos("ETH/USDT", "105")  # held as long, but at a gain
    r.after(30 * 86400 - 1)
    r.center.check()
    assert r.take() == []  # one second short of 30 days
    r.after(1)
    r.center.check()
    [loser] = r.take()
    assert (loser.level, loser.code) == (WARNING, "stale_loser")
    assert "SOL/USDT held 30 days at a loss" in loser.message
    r.after(3 * 86400)
    r.center.check()
    assert r.take() == []


# --- approvals -------------------------------------------------------------------------------------


def test_an_expired_approval_is_reported() -> None:
    r = Rig()
    intent = OrderIntent("BTC/USDT", Side.BUY, D("0.1"))
    for status in ("pending", "approved", "rejected"):
        r.bus.publish(ApprovalEvent(T0, "ap-a1", status, intent, {"qty": "0.1"}))
    assert r.take() == []  # pending is raised by the ApprovalGate itself (see the engine test)
    r.bus.publish(
        ApprovalEvent(
            T0, "ap-a1", "expired", intent, {"requested_qty": "0.1", "decision_reason": "no decision within 60 s"}
        )
    )
    [expired] = r.take()
    assert (expired.level, expired.code) == (WARNING, "approval_expired")
    assert "ap-a1" in expired.message and "no decision within 60 s" in expired.message


# --- stage criteria --------------------------------------------------------------------------------


def evaluation(since: datetime, now: datetime, **passed: bool) -> Evaluation:
    criteria = tuple(
        Criterion(name, 1.0 if ok else 0.0, 1.0, ok, ">=", name.replace("_", " "), "count")
        for name, ok in passed.items()
    )
    return Evaluation("paper", criteria, all(passed.values()), (), now, since)


def test_stage_criteria_alert_when_newly_met_or_newly_failed_never_on_the_first_evaluation() -> None:
    r = Rig(cooldown_s=0)
    rules = r.center.rules
    rules.on_evaluation(evaluation(T0, T0, days=False, win_rate=True, closed_trades=False))
    assert r.take() == []  # the first evaluation is the baseline
    rules.on_evaluation(evaluation(T0, T0, days=False, win_rate=True, closed_trades=False))
    assert r.take() == []  # nothing changed
    rules.on_evaluation(evaluation(T0, T0, days=True, win_rate=False, closed_trades=False))
    alerts = {a.code: a for a in r.take()}
    assert set(alerts) == {"stage_criterion_met", "stage_criterion_failed"}
    assert alerts["stage_criterion_met"].level is INFO and "days" in alerts["stage_criterion_met"].message
    assert alerts["stage_criterion_failed"].level is WARNING
    assert "win rate" in alerts["stage_criterion_failed"].message
    rules.on_evaluation(evaluation(T0, T0, days=True, win_rate=True, closed_trades=True))
    assert sorted(r.codes()) == ["stage_criterion_met", "stage_criterion_met", "stage_ready"]
    later = T0 + timedelta(days=3)  # a promotion restarts the evidence: a new baseline
    rules.on_evaluation(evaluation(later, later, days=False, win_rate=False, closed_trades=False))
    assert r.take() == []


# --- acknowledgement -------------------------------------------------------------------------------


def test_acknowledgement_is_journaled_audited_and_published(tmp_path: Path) -> None:
    e = make_engine(tmp_path)
    acks: list[AlertAcknowledged] = []
    e.bus.subscribe(acks.append, AlertAcknowledged)
    try:
        one = e.alert(WARNING, "order_rejected", "BTC/USDT buy rejected")
        two = e.alert(CRITICAL, "reconcile_failed", "venue unreachable")
        three = e.alert(INFO, "reconciled", "2 fills booked")
        assert one and two and three
        assert e.alert_center.acknowledge(one.alert_id, "alice") is True
        assert e.alert_center.acknowledge(one.alert_id, "alice") is False  # already acknowledged
        assert e.alert_center.acknowledge("no-such-alert", "alice") is False
        assert e.alert_center.acknowledge_all("bob") == [two.alert_id, three.alert_id]
        assert e.alert_center.unacknowledged() == []
        assert [(a.alert_ids, a.operator) for a in acks] == [
            ((one.alert_id,), "alice"),
            ((two.alert_id, three.alert_id), "bob"),
        ]
        assert e.journal.flush()
        rows = {a.alert_id: a for a in e.journal.alerts()}
        assert rows[one.alert_id].acked_by == "alice" and rows[one.alert_id].acked_at == e.clock.now()
        assert rows[two.alert_id].acked_by == rows[three.alert_id].acked_by == "bob"
        audit = [(r["action"], r["operator"], r["details"]) for r in e.journal.audit_rows()]
        assert ("alert_acknowledged", "alice",
                {"alert_id": one.alert_id, "code": "order_rejected", "level": "WARNING",
                 "message": "BTC/USDT buy rejected"}) in audit  # fmt: skip
        assert ("alerts_acknowledged", "bob", {"alert_ids": [two.alert_id, three.alert_id], "all": True}) in audit
    finally:
        e.journal.close()


def test_a_journal_from_before_alert_ids_opens_and_takes_acknowledgements(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # the alerts table as the first schema wrote it
        db.execute('CREATE TABLE alerts (id INTEGER PRIMARY KEY, ts TEXT, level INTEGER, code TEXT, '
                   'message TEXT, "key" TEXT)')  # fmt: skip
        db.execute("INSERT INTO alerts VALUES (1, '2026-01-05T09:00:00.000000+00:00', 20, 'old', 'before', 'old')")
    db.close()
    with Journal(path) as j:
        j.record_alert(T0, WARNING, "new", "after", "new", "al1-1")
        j.record_alert_ack("al1-1", T0 + timedelta(seconds=5), "alice")
        assert j.flush()
        old, new = j.alerts()
        assert (old.code, old.alert_id, old.acked_at) == ("old", "", None)
        assert (new.alert_id, new.acked_by, new.acked_at) == ("al1-1", "alice", T0 + timedelta(seconds=5))


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
