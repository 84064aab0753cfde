"""Every pre-trade rule at, just under and just over its limit."""

from decimal import Decimal as D

import pytest

from engine.core.config import RiskConfig
from engine.core.model import Instrument, OrderIntent, OrderType, Side, TradingState
from engine.risk.risk_engine import CheckInput, RiskEngine

BTC = Instrument("BTC/USDT", "BTC", "USDT", D("0.01"), D("0.0001"), D("0.0001"), D("10"))


def make(**cfg: object) -> RiskEngine:
    return RiskEngine(RiskConfig(**cfg), lambda *a: None)


def ci(intent: OrderIntent, **kw: object) -> CheckInput:
    base = dict(
        intent=intent,
        instrument=BTC,
        bid=D("99.99"),
        ask=D("100.00"),
        last=D("100.00"),
        equity=D("100000"),
        cash=D("100000"),
        position_qty=D(0),
        open_positions=0,
        new_positions_today=0,
        now=1000.0,
    )
    base.update(kw)
    return CheckInput(**base)  # type: ignore[arg-type]


def buy(qty: str | None = None, stop: str | None = "95", **kw: object) -> OrderIntent:
    return OrderIntent(
        "BTC/USDT", Side.BUY, D(qty) if qty else None, stop_loss=D(stop) if stop else None, **kw
    )


def test_sizing_from_stop_distance_and_risk_per_trade() -> None:
    r = make(risk_per_trade=0.005)
    d = r.check(ci(buy()))
    # 0.5% of 100000 = 500 at risk; stop distance 100 - 95 = 5 -> 100 units, capped by 25% notional = 250 units
    assert d.approved and d.qty == D("100.0000")


def test_sizing_capped_by_notional_and_rounded_to_lot() -> None:
    r = make(risk_per_trade=0.02, max_position_notional=0.1)
    d = r.check(ci(buy(stop="99.97")))
    # risk says 2000 / 0.03 = 66666 units, cap 10% of 100000 / 100 = 100 units
    assert d.qty == D("100.0000")
    r2 = make(risk_per_trade=0.005)
    d2 = r2.check(ci(buy(stop="96.9"), equity=D("1000"), cash=D("1000")))
    # 5 / 3.1 = 1.61290322... rounded down to lot 0.0001 -> 1.6129, then capped by 25% of 1000 / 100 = 2.5
    assert d2.qty == D("1.6129")


@pytest.mark.parametrize(("share", "ok"), [("0.249", True), ("0.25", True), ("0.251", False)])
def test_notional_share(share: str, ok: bool) -> None:
    r = make(max_position_notional=0.25, risk_per_trade=0.02)
    qty = D(share) * D("100000") / D("100.00")
    d = r.check(ci(buy(qty=str(qty), stop="99")))
    assert d.approved is ok
    if not ok:
        assert d.code == "notional"


@pytest.mark.parametrize(("qty", "ok"), [("99", True), ("100", True), ("101", False)])
def test_risk_per_trade(qty: str, ok: bool) -> None:
    # 100 units * 5 distance = 500 = 0.5% of 100000
    d = make(risk_per_trade=0.005).check(ci(buy(qty=qty, stop="95")))
    assert d.approved is ok
    assert ok or d.code == "risk_per_trade"


def test_stop_loss_required_for_new_exposure_not_for_exits() -> None:
    r = make()
    assert r.check(ci(buy(qty="1", stop=None))).code == "stop_loss_required"
    exit_ = OrderIntent("BTC/USDT", Side.SELL, D("1"), reduce_only=True)
    assert r.check(ci(exit_, position_qty=D("1"))).approved
    assert make(stop_loss_required=False).check(ci(buy(qty="1", stop=None))).approved


@pytest.mark.parametrize(("n", "ok"), [(3, True), (4, True), (5, False)])
def test_concurrent_positions(n: int, ok: bool) -> None:
    d = make(max_concurrent_positions=5).check(ci(buy(qty="1"), open_positions=n))
    assert d.approved is ok
    assert ok or d.code == "concurrent_positions"


@pytest.mark.parametrize(("n", "ok"), [(1, True), (2, True), (3, False)])
def test_new_positions_per_day(n: int, ok: bool) -> None:
    d = make(max_new_positions_per_day=3).check(ci(buy(qty="1"), new_positions_today=n))
    assert d.approved is ok
    assert ok or d.code == "new_positions_per_day"


def test_adding_to_an_open_position_is_not_a_new_position() -> None:
    d = make().check(ci(buy(qty="1"), position_qty=D("1"), open_positions=5, new_positions_today=3))
    assert d.approved


@pytest.mark.parametrize(("cash", "ok"), [("35001", True), ("35000", True), ("34999", False)])
def test_cash_reserve(cash: str, ok: bool) -> None:
    # 100 units @ 100 = 10000; reserve 25% of equity 100000 = 25000; cash after must stay >= 25000
    d = make(cash_reserve=0.25).check(ci(buy(qty="100"), cash=D(cash)))
    assert d.approved is ok
    assert ok or d.code == "cash_reserve"


@pytest.mark.parametrize(("price", "ok"), [("100.49", True), ("100.50", True), ("100.51", False)])
def test_price_collar(price: str, ok: bool) -> None:
    intent = buy(qty="1", order_type=OrderType.LIMIT, price=D(price))
    d = make(max_slippage=0.005).check(ci(intent))
    assert d.approved is ok
    assert ok or d.code == "price_collar"


def test_order_rate_per_second() -> None:
    """The window counts orders sent (any kind, stop legs too); new entries are refused when it is full."""
    r = make(max_orders_per_second=3)
    for t in (1000.0, 1000.1, 1000.2):
        assert r.check(ci(buy(qty="1"), now=t)).approved
        r.note_sent(t)
    assert r.check(ci(buy(qty="1"), now=1000.3)).code == "order_rate"  # 4th inside one second
    assert r.wait_for_rate(1000.3) > 0  # a protective order waits for a slot instead
    assert r.check(ci(buy(qty="1"), now=1001.05)).approved  # the first left the window
    assert r.wait_for_rate(1001.05) == 0


def test_allow_list() -> None:
    r = make(symbol_allowlist=["ETH/USDT"])
    assert r.check(ci(buy(qty="1"))).code == "symbol_not_allowed"
    assert make(symbol_allowlist=["BTC/USDT"]).check(ci(buy(qty="1"))).approved


@pytest.mark.parametrize(("qty", "code"), [("0.00015", None), ("0.05", "precision"), ("0.1", None)])
def test_precision_and_min_notional(qty: str, code: str | None) -> None:
    # 0.00015 rounds to the lot (0.0001) -> notional 0.01 < 10 minimum; 0.05 -> 5 < 10; 0.1 -> 10 ok
    d = make().check(ci(buy(qty=qty, stop="99.99")))
    if qty == "0.00015":
        assert d.code == "precision"
    elif code is None:
        assert d.approved
    else:
        assert d.code == code


def test_limit_price_off_tick_is_refused() -> None:
    d = make().check(ci(buy(qty="1", order_type=OrderType.LIMIT, price=D("100.005"))))
    assert d.code == "precision" and "tick size" in d.message


def test_states() -> None:
    r = make()
    r.set_state(TradingState.REDUCING, "test")
    assert r.check(ci(buy(qty="1"))).code == "reducing_only"
    exit_ = OrderIntent("BTC/USDT", Side.SELL, D("1"), reduce_only=True)
    assert r.check(ci(exit_, position_qty=D("2"))).approved
    r.set_state(TradingState.HALTED, "test")
    assert r.check(ci(buy(qty="1"))).code == "halted"  # no new risk
    assert r.check(ci(exit_, position_qty=D("2"))).approved  # a protective exit only shrinks: it passes
    opening_sell = OrderIntent("BTC/USDT", Side.SELL, D("1"))
    assert r.check(ci(opening_sell, position_qty=D("0"))).code == "halted"  # not reduce-only: refused
    # a reduce-only order larger than the position would flip it: refused
    big = OrderIntent("BTC/USDT", Side.SELL, D("3"), reduce_only=True)
    r.set_state(TradingState.ACTIVE, "test")
    assert r.check(ci(big, position_qty=D("2"))).code == "not_reducing"
