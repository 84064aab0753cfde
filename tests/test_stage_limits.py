"""A stage's capital cap, size schedule and symbol limits reach the RiskEngine and bind."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from engine.core.config import StagesConfig
from engine.core.model import OrderIntent, Side
from engine.risk.stage_limits import stage_limits
from tests.engine_rig import START, make_engine, settings_for, started, stop, until
from tests.test_risk_rules import buy, ci, make

MICRO = StagesConfig().live_micro  # [0.5%, 1%] over 14 days, cap 1000, one symbol


@pytest.mark.parametrize(
    ("days", "step", "risk"), [(0, 0, 0.005), (6.99, 0, 0.005), (7, 1, 0.01), (30, 1, 0.01)]
)
def test_size_schedule_ramps_in_equal_slices_of_the_stage(days: float, step: int, risk: float) -> None:
    lim = stage_limits("live_micro", MICRO, START, START + timedelta(days=days))
    assert (lim.step, lim.risk_per_trade) == (step, risk)
    assert lim.next_step_at == (START + timedelta(days=7) if step == 0 else None)
    assert lim.capital_cap == D("1000") and lim.max_symbols == 1


def test_operator_risk_per_trade_stays_a_ceiling_over_the_schedule() -> None:
    r = make(risk_per_trade=0.005)
    r.stage = stage_limits("live_scaling", StagesConfig().live_scaling, START, START)  # schedule 1.5%
    assert r.risk_per_trade == 0.005
    r2 = make(risk_per_trade=0.02)
    r2.stage = stage_limits("live_micro", MICRO, START, START)
    assert r2.risk_per_trade == 0.005  # the schedule's first step binds


def micro_risk(**cfg: object):  # type: ignore[no-untyped-def]
    r = make(risk_per_trade=0.02, max_position_notional=0.9, **cfg)
    r.stage = stage_limits("live_micro", MICRO, START, START)
    return r


def test_sizing_uses_the_capital_cap_not_the_whole_account() -> None:
    d = micro_risk().check(ci(buy(stop="95")))
    # 0.5% of min(100000 equity, 1000 cap) = 5 at risk over a 5 stop distance: 1 unit, not 100
    assert d.approved and d.qty == D("1.0000")


@pytest.mark.parametrize(("exposure", "ok"), [("800", True), ("900", True), ("900.01", False)])
def test_capital_cap_at_under_and_over(exposure: str, ok: bool) -> None:
    # the order: 1 unit at 100 ask = 100 notional; exposure + 100 against the 1000 cap
    d = micro_risk().check(ci(buy(qty="1", stop="99.5"), exposure=D(exposure)))
    assert d.approved is ok
    if not ok:
        assert d.code == "stage_capital" and "capital cap 1,000.00" in d.message


def test_one_symbol_at_first_but_the_held_symbol_can_grow_and_shrink() -> None:
    r = micro_risk()
    held = frozenset({"ETH/USDT"})
    d = r.check(ci(buy(qty="1", stop="99.5"), position_symbols=held))
    assert not d.approved and d.code == "stage_symbols" and "ETH/USDT held" in d.message
    grow = r.check(ci(buy(qty="1", stop="99.5"), position_symbols=frozenset({"BTC/USDT"}), position_qty=D("1")))
    assert grow.approved
    sell = OrderIntent("BTC/USDT", Side.SELL, D("1"), reduce_only=True)
    assert r.check(ci(sell, position_symbols=held | {"BTC/USDT"}, position_qty=D("1"))).approved


def test_stage_allowlist_refuses_other_symbols_for_new_exposure_only() -> None:
    cfg = MICRO.model_copy(update={"symbol_allowlist": ["ETH/USDT"]})
    r = make(risk_per_trade=0.02, max_position_notional=0.9)
    r.stage = stage_limits("live_micro", cfg, START, START)
    d = r.check(ci(buy(qty="1", stop="99.5")))
    assert not d.approved and d.code == "stage_symbol"


def test_engine_applies_the_current_stage_and_steps_up_with_time(tmp_path: Path) -> None:
    asyncio.run(asyncio.wait_for(_engine_applies_stage(tmp_path), 60))


async def _engine_applies_stage(tmp_path: Path) -> None:
    settings = settings_for(risk_per_trade=0.02, max_position_notional=0.9)
    settings.stages.initial = "live_micro"
    settings.approvals.enabled = False
    e = await started(make_engine(tmp_path, settings, symbols=["BTC/USDT", "ETH/USDT"]))
    try:
        assert e.risk.stage is not None and e.risk.stage.stage == "live_micro"
        assert e.risk.risk_per_trade == 0.005
        assert any(g.name == "stage_capital" for g in e.rule_values())
        e.clock.advance(7 * 86400)  # the simulator's clock: a week in the stage
        await until(lambda: e.risk.risk_per_trade == 0.01, what="size step 2")
        await asyncio.to_thread(e.journal.flush)
        assert [a for a in e.journal.audit_rows() if a["action"] == "stage_size_step"]
    finally:
        await stop(e)
