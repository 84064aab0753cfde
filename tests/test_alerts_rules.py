"""The alert rules, fed plain events, positions and tick times on a SimClock: emergency stop and
close all, connection edges, stale market data, profit take and old losing positions, expired
approvals, stage criteria. A condition that starts and ends alerts on both edges, and the
operator's last alert matches the present.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from engine.activation.stages import Criterion, Evaluation
from engine.core.events import ApprovalEvent, ConnectionEvent, ProgressEvent
from engine.core.model import OrderIntent, Position, Side
from tests.alert_rig import CRITICAL, EMERGENCY, INFO, T0, WARNING, Rig

pytestmark = pytest.mark.timeout(120)


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
