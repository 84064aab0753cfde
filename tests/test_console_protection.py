"""The console keeps protection and tells the truth about it (issue 13), on a real engine.

Simulated venue, qasync, offscreen. The big buttons go through the OperatorAPI: EMERGENCY
STOP leaves each position's protection in place, "also pull resting stops" is its own
confirmed act, a refused close-all shows the venue's words and offers Retry / Stop, and
closing the window while close-all runs asks again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from console.close_policy import QuitDialog
from engine.core.model import TradingState
from tests.test_stop_through_dialogs import Runner, console, open_long, run, until

__all__ = ["run"]  # the fixture, imported for pytest
pytestmark = [pytest.mark.gui, pytest.mark.timeout(120)]
REFUSAL = "Account has insufficient balance for requested action."


def protected(engine: object, symbol: str) -> str:
    pos = next((p for p in engine.portfolio.positions() if p.symbol == symbol), None)  # type: ignore[attr-defined]
    return "" if pos is None else str(pos.protection)


def test_emergency_stop_keeps_each_position_protected(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            sym = engine.symbols[0]
            open_long(engine, sym)
            await until(lambda: protected(engine, sym) in ("venue", "watched"), "the stop to be armed")
            before = protected(engine, sym)
            legs_before = [o for o in engine.orders.values() if o.role == "stop_loss"]
            await until(lambda: window.positions.row(sym) is not None, "the position row")
            await until(lambda: "all protected" in window.big_buttons.unprotected_label.text(), "the count")
            window.big_buttons.emergency_button.click()
            assert engine.risk.state is TradingState.HALTED
            await until(lambda: window.big_buttons.progress_result == "ok", "the venue confirms the stop")
            assert engine.portfolio.open_count() == 1  # stopping is not closing
            assert protected(engine, sym) == before  # ... and it leaves the protection where it was
            assert [o.client_id for o in engine.orders.values() if o.role == "stop_loss"] == [
                o.client_id for o in legs_before
            ]
            shown = window.positions.cell_text(sym, "protection")
            assert shown.startswith("stop @" if before == "venue" else "watched @"), shown
            assert window.price_chart.levels(sym).stop is not None  # the SL line stays: it is real

    run(scenario())


def test_pulling_the_stops_is_a_separate_confirmed_stop(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            sym = engine.symbols[0]
            open_long(engine, sym)
            await until(lambda: protected(engine, sym) in ("venue", "watched"), "the stop to be armed")
            window.big_buttons.pull_stops_button.click()
            dlg = window.operator_actions.pull_stops_dialog
            assert dlg is not None and dlg.isVisible()
            assert engine.risk.state is TradingState.ACTIVE  # asking is not stopping
            dlg.cancel_button.click()
            assert engine.risk.state is TradingState.ACTIVE
            window.big_buttons.pull_stops_button.click()
            dlg = window.operator_actions.pull_stops_dialog
            assert dlg is not None
            dlg.understood.setChecked(True)
            dlg.confirm_button.click()
            assert engine.risk.state is TradingState.HALTED
            assert "resting stops pulled too" in engine.risk.state_reason
            await until(lambda: window.big_buttons.progress_result in ("ok", "fail"), "the stop finishes")
            assert not [o for o in engine.orders.values() if o.role == "stop_loss"]  # nothing rests any more

    run(scenario())


def test_a_refused_close_all_shows_the_venues_words_and_retry_flattens(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            sym = engine.symbols[0]
            open_long(engine, sym)
            await until(lambda: engine.portfolio.open_count() == 1, "an open position")
            engine.venue.faults.reject_next_submits(50, REFUSAL)  # type: ignore[attr-defined]
            window.big_buttons.close_all_button.click()
            window.close_all_dialog.close_button.click()  # type: ignore[union-attr]
            assert engine.risk.state is TradingState.HALTED
            buttons = window.big_buttons
            await until(lambda: REFUSAL in buttons.failure_label.text(), "the venue's refusal on screen", 40)
            assert sym in buttons.failure_label.text()
            await until(lambda: not window.operator_actions.api.close_all_in_progress(), "close-all to give up", 60)
            await until(lambda: buttons.progress_result == "fail", "its outcome on screen")  # events arrive queued
            assert buttons.retry_button.isVisible() and buttons.stop_trying_button.isVisible()
            assert engine.portfolio.open_count() == 1
            engine.venue.faults.clear()  # type: ignore[attr-defined]  # the venue accepts again
            buttons.retry_button.click()
            await until(lambda: engine.portfolio.open_count() == 0, "flat after Retry", 40)
            await until(lambda: buttons.progress_result == "ok", "close-all finished")
            assert not buttons.failure_label.isVisible() and not buttons.retry_button.isVisible()

    run(scenario())


def test_stop_trying_leaves_what_is_left_halted_and_says_so(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            open_long(engine, engine.symbols[0])
            await until(lambda: engine.portfolio.open_count() == 1, "an open position")
            engine.venue.faults.reject_next_submits(50, REFUSAL)  # type: ignore[attr-defined]
            window.big_buttons.close_all_button.click()
            window.close_all_dialog.close_button.click()  # type: ignore[union-attr]
            buttons = window.big_buttons
            await until(lambda: buttons.stop_trying_button.isVisible(), "Stop offered", 40)
            buttons.stop_trying_button.click()
            assert "stopped by the operator: 1 position left, HALTED" in buttons.progress_message.text()
            assert engine.risk.state is TradingState.HALTED and engine.portfolio.open_count() == 1
            engine.venue.faults.clear()  # type: ignore[attr-defined]

    run(scenario())


def test_quitting_while_close_all_runs_asks_again(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            open_long(engine, engine.symbols[0])
            await until(lambda: engine.portfolio.open_count() == 1, "an open position")
            engine.venue.faults.reject_next_submits(50, REFUSAL)  # type: ignore[attr-defined]  # it keeps running
            chosen: list[str] = []
            window.shutdownRequested.connect(chosen.append)
            window.big_buttons.close_all_button.click()
            window.close_all_dialog.close_button.click()  # type: ignore[union-attr]
            assert window.operator_actions.api.close_all_in_progress()
            window.close()
            box = window.message_box
            assert box is not None and box.isVisible()
            assert "Close all is still running: 1 position left. Quit anyway?" in box.text()  # type: ignore[union-attr]
            assert box.defaultButton().objectName() == "closeall_stay"  # type: ignore[union-attr]
            box.defaultButton().click()  # type: ignore[union-attr]  # Enter: stay
            await until(lambda: not box.isVisible(), "the question closes")
            assert chosen == [] and window.isVisible()
            window.close()
            box = window.message_box
            quit_anyway = next(b for b in box.buttons() if b.objectName() == "closeall_quit")  # type: ignore[union-attr]
            quit_anyway.click()
            await until(lambda: isinstance(window.message_box, QuitDialog), "the quit question follows")
            quit_dialog = window.message_box
            assert isinstance(quit_dialog, QuitDialog) and quit_dialog.isVisible()
            quit_dialog.default_button().click()
            await until(lambda: chosen == ["keep"], "quit, keeping the position and its protection")
            engine.venue.faults.clear()  # type: ignore[attr-defined]

    run(scenario())
