"""Acknowledging alerts in the window reaches the engine's AlertCenter and the journal (GUI, offscreen)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.core.model import AlertLevel
from tests.test_console_window import Runner, console, run, until

__all__ = ["run"]  # the qasync runner fixture, shared with the console window tests

pytestmark = pytest.mark.timeout(120)


def test_acknowledging_in_the_window_is_journaled_and_audited(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path, speed=50, strategy=False) as (engine, window, _bridge):
            center = engine.alert_center
            one = engine.alert(AlertLevel.WARNING, "test_one", "First thing to look at")
            two = engine.alert(AlertLevel.CRITICAL, "test_two", "Second thing to look at")
            three = engine.alert(AlertLevel.INFO, "test_three", "Third thing")
            assert one and two and three
            feed = window.alerts
            # alerts reach the window at the next turn of the loop (never inside the engine's call stack)
            await until(lambda: feed.alert(three.alert_id) is not None, "the alerts in the feed")
            assert feed.alert(one.alert_id) is not None  # the feed shows the center's ids

            feed.table.button_clicked(one.alert_id, "ack")  # the row's Acknowledge button
            await until(lambda: one.alert_id not in {a.alert_id for a in center.unacknowledged()},
                        "the acknowledgement to reach the engine")  # fmt: skip
            feed.ack_all_button.click()
            mine = {one.alert_id, two.alert_id, three.alert_id}
            await until(lambda: not mine & {a.alert_id for a in center.unacknowledged()},
                        "acknowledge all to reach the engine")  # fmt: skip

            await asyncio.to_thread(engine.journal.flush)
            rows = {a.alert_id: a for a in engine.journal.alerts()}
            operator = engine.operator
            assert all(rows[a.alert_id].acked_by == operator for a in (one, two, three))
            actions = [r["action"] for r in engine.journal.audit_rows()]
            assert actions.count("alert_acknowledged") == 1
            assert actions.count("alerts_acknowledged") == 1  # "acknowledge all" is one act

            # acknowledged elsewhere (the engine side): the feed marks it too
            four = engine.alert(AlertLevel.WARNING, "test_four", "Fourth")
            assert four is not None
            await until(lambda: feed.alert(four.alert_id) is not None, "the fourth alert in the feed")
            assert feed.alert(four.alert_id)["acknowledged"] is False
            center.acknowledge(four.alert_id, "cli")
            await until(lambda: feed.alert(four.alert_id)["acknowledged"] is True, "the acknowledgement in the feed")

    run(scenario())
