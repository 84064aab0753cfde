"""A risk limit changed in the wizard binds at once, through the window (not at the next start).

Measured before: the wizard set attributes on the settings, but the risk checks and the breakers
read them only when built: after setting a 1% daily loss limit, a 3% loss left the engine ACTIVE.
(Here 2.5%, above every size-schedule step, then a 3% loss.)
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from console.wizard_common import Page
from engine.core.model import TradingState
from tests.test_wizard import FINISH, Runner, console, evidence, pick, run, until  # noqa: F401  (run: fixture)

pytestmark = [pytest.mark.gui, pytest.mark.timeout(120)]


def test_a_daily_loss_limit_set_in_the_wizard_binds_without_a_restart(run: Runner, tmp_path: Path) -> None:  # noqa: F811
    async def scenario() -> None:
        async with console(tmp_path) as (engine, window):
            if window.wizard.wizard is None:
                window.wizard_action.trigger()
            wiz = window.wizard.wizard
            assert wiz is not None
            if wiz.currentId() == Page.WELCOME:
                wiz.welcome_page.ack.setChecked(True)
                wiz.next()
            pick(wiz, "simulated", "simulated")
            wiz.next()
            assert wiz.currentId() == Page.RISK
            wiz.risk_page.daily_loss.setValue(2.5)  # percent, as the operator types it (above every size step)
            wiz.next()
            await evidence(wiz)
            wiz.next()
            wiz.button(FINISH).click()
            await until(lambda: not wiz.isVisible(), "the wizard to finish")
            assert engine.risk.cfg.daily_loss_limit == pytest.approx(0.025)
            gauge = next(r for r in engine.rule_values() if r.name == "daily_loss")
            assert gauge.limit == pytest.approx(0.025)
            # a 3% loss since the day's open, as the engine reports equity to the breakers on each batch
            engine.breakers.on_equity(Decimal(-3000), Decimal(100_000), Decimal("0.03"))
            assert engine.risk.state is TradingState.HALTED
            engine.journal.flush()
            assert any(r["action"] == "update_risk_limits" for r in engine.journal.audit_rows())

    run(scenario())
