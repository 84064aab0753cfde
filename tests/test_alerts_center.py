"""The AlertCenter itself: de-duplication with a cooldown on the engine clock, an id for every
published alert, the keys that are never suppressed, and acknowledgement (journaled, audited,
published; a journal from before alert ids still takes them).
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from engine.core.events import AlertAcknowledged, AlertEvent, MarketEvent
from engine.core.model import MarketTick, TradingState
from engine.persistence.journal import Journal
from tests.alert_rig import CRITICAL, EMERGENCY, INFO, T0, WARNING, Rig
from tests.engine_rig import make_engine

pytestmark = pytest.mark.timeout(120)


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
