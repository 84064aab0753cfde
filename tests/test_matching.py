"""The simulated matching engine: fills, fees, locks and rejections as a trader would see them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from engine.core.model import Instrument, Liquidity, MarketTick, Order, OrderStatus, OrderType, Side
from engine.venues.matching import MatchingEngine

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
BTC = Instrument("BTC/USDT", "BTC", "USDT", D("0.01"), D("0.00001"), D("0.00001"), D(5))
ETH = Instrument("ETH/USDT", "ETH", "USDT", D("0.01"), D("0.0001"), D("0.0001"), D(5))
MAKER, TAKER = D("0.0008"), D("0.001")


def tick(bid: str, ask: str, last: str | None = None, volume: str = "1", n: int = 0) -> MarketTick:
    return MarketTick("BTC/USDT", T0 + timedelta(seconds=n), D(bid), D(ask), D(last or bid), D(volume))


def order(cid: str, side: Side, qty: str, kind: OrderType = OrderType.MARKET, **kw: object) -> Order:
    extra = {k: D(v) if k in ("price", "stop_price") else v for k, v in kw.items()}
    return Order(cid, str(extra.pop("symbol", "BTC/USDT")), side, kind, D(qty), **extra)  # type: ignore[arg-type]


def engine(
    usdt: str = "100000", btc: str = "0", allow_short: bool = False, volume: str = "1"
) -> MatchingEngine:
    m = MatchingEngine(
        {"BTC/USDT": BTC, "ETH/USDT": ETH},
        {"USDT": D(usdt), "BTC": D(btc)},
        maker_fee=MAKER,
        taker_fee=TAKER,
        allow_short=allow_short,
    )
    m.on_tick(tick("60000.00", "60001.00", volume=volume))
    return m


def test_small_market_buy_fills_at_the_ask_and_pays_taker_fee() -> None:
    m = engine(volume="1000")  # tiny against the traded volume: no slippage
    ups = m.submit(order("a", Side.BUY, "0.01"), None, T0)
    assert [u.order.status for u in ups] == [OrderStatus.OPEN, OrderStatus.FILLED]
    fill = ups[-1].fill
    assert fill is not None and fill.price == D("60001.00") and fill.liquidity is Liquidity.TAKER
    assert fill.fee == D("0.60001000")
    bal = m.balances()
    assert bal["BTC"].free == D("0.01")
    assert bal["USDT"].free == D(100000) - D("600.01") - D("0.60001")
    assert m.positions() == {"BTC/USDT": D("0.01")}


def test_market_slippage_grows_with_size_and_with_spread() -> None:
    small = engine(usdt="10000000").submit(order("a", Side.BUY, "0.01"), None, T0)[-1].order.avg_fill_price
    big = engine(usdt="10000000").submit(order("a", Side.BUY, "20"), None, T0)[-1].order.avg_fill_price
    assert small is not None and big is not None and big > small
    wide = engine(usdt="10000000")
    wide.on_tick(tick("59990.00", "60010.00", volume="1", n=1))
    wide_px = wide.submit(order("a", Side.BUY, "20"), None, T0)[-1].order.avg_fill_price
    assert wide_px is not None and wide_px - D("60010.00") > big - D("60001.00")
    sold = engine(btc="5").submit(order("s", Side.SELL, "5"), None, T0)[-1].order.avg_fill_price
    assert sold is not None and sold < D("60000.00")


def test_limit_that_crosses_on_arrival_is_a_taker_at_the_touch() -> None:
    m = engine(volume="1000")
    ups = m.submit(order("a", Side.BUY, "0.01", OrderType.LIMIT, price="60100.00"), None, T0)
    assert ups[-1].order.status is OrderStatus.FILLED
    fill = ups[-1].fill
    assert fill is not None and fill.price == D("60001.00") and fill.liquidity is Liquidity.TAKER
    assert m.balances()["USDT"].locked == 0


def test_resting_limit_fills_as_maker_at_its_price_when_the_market_trades_through() -> None:
    m = engine()
    ups = m.submit(order("a", Side.BUY, "0.01", OrderType.LIMIT, price="59900.00"), None, T0)
    assert [u.order.status for u in ups] == [OrderStatus.OPEN]
    assert m.balances()["USDT"].locked > D("599")
    assert m.on_tick(tick("59950.00", "59951.00", n=1)) == []  # not reached yet
    ups = m.on_tick(tick("59880.00", "59890.00", n=2))
    assert len(ups) == 1 and ups[0].order.status is OrderStatus.FILLED
    fill = ups[0].fill
    assert fill is not None and fill.price == D("59900.00") and fill.liquidity is Liquidity.MAKER
    assert fill.fee == D("599.00") * MAKER
    bal = m.balances()
    assert bal["USDT"].locked == 0 and bal["USDT"].free == D(100000) - D("599.00") - fill.fee
    assert m.open_orders() == []


def test_big_resting_limit_fills_over_several_ticks() -> None:
    m = engine(btc="2")
    m.submit(order("s", Side.SELL, "1", OrderType.LIMIT, price="60100.00"), None, T0)
    statuses, filled = [], []
    for n in range(1, 10):
        for u in m.on_tick(tick("60150.00", "60151.00", volume="1", n=n)):
            statuses.append(u.order.status)
            filled.append(u.order.filled_qty)
    assert statuses == [OrderStatus.PARTIALLY_FILLED] * 3 + [OrderStatus.FILLED]
    assert filled == [D("0.25"), D("0.50"), D("0.75"), D("1.00")]
    bal = m.balances()
    assert bal["BTC"].total == D(1) and bal["BTC"].locked == 0
    assert bal["USDT"].free == D(100000) + D(60100) - D(60100) * MAKER


def test_stop_market_triggers_when_last_crosses_and_fills_like_a_market_order() -> None:
    m = engine(btc="0.5")
    ups = m.submit(order("sl", Side.SELL, "0.5", OrderType.STOP_MARKET, stop_price="59000.00"), None, T0)
    assert ups[-1].order.status is OrderStatus.OPEN
    assert m.balances()["BTC"].locked == D("0.5")
    assert m.on_tick(tick("59001.00", "59002.00", last="59001.00", n=1)) == []
    ups = m.on_tick(tick("58990.00", "58991.00", last="58995.00", volume="0.01", n=2))
    assert ups[-1].order.status is OrderStatus.FILLED
    fill = ups[-1].fill
    assert fill is not None and fill.liquidity is Liquidity.TAKER and fill.price <= D("58990.00")
    assert m.balances()["BTC"].total == 0


def test_fees_differ_for_maker_and_taker() -> None:
    m = engine(btc="1")
    taker = m.submit(order("t", Side.SELL, "0.1"), None, T0)[-1].fill
    m.submit(order("m", Side.SELL, "0.1", OrderType.LIMIT, price="60050.00"), None, T0)
    maker = m.on_tick(tick("60060.00", "60061.00", n=1))[-1].fill
    assert taker is not None and maker is not None
    assert taker.fee / taker.notional == TAKER and maker.fee / maker.notional == MAKER


@pytest.mark.parametrize(
    ("o", "why"),
    [
        (order("a", Side.BUY, "2"), "insufficient funds"),
        (order("b", Side.BUY, "2", OrderType.LIMIT, price="59000.00"), "insufficient funds"),
        (order("c", Side.SELL, "0.1"), "insufficient funds"),
        (order("d", Side.SELL, "0.1", OrderType.STOP_MARKET, stop_price="59000.00"), "insufficient funds"),
        (order("e", Side.BUY, "0.1", symbol="DOGE/USDT"), "unknown symbol"),
        (order("f", Side.BUY, "0.000001"), "lot size"),
        (order("g", Side.BUY, "0.01", OrderType.LIMIT, price="59000.005"), "tick size"),
        (order("h", Side.BUY, "0.00005"), "notional"),
        (order("i", Side.SELL, "0.1", reduce_only=True), "reduce"),
    ],
)
def test_rejections_carry_a_reason_and_leave_balances_alone(o: Order, why: str) -> None:
    m = engine(usdt="50000")
    before = m.balances()
    ups = m.submit(o, None, T0)
    assert len(ups) == 1 and ups[0].order.status is OrderStatus.REJECTED
    assert why in ups[0].order.reason
    assert m.balances() == before and m.open_orders() == []


def test_allow_short_lets_the_base_go_negative() -> None:
    m = engine(allow_short=True)
    ups = m.submit(order("s", Side.SELL, "0.5"), None, T0)
    assert ups[-1].order.status is OrderStatus.FILLED
    assert m.positions() == {"BTC/USDT": D("-0.5")}
    assert m.balances()["USDT"].free > D(100000)


def test_duplicate_client_id_reports_the_existing_order_and_never_places_a_second() -> None:
    m = engine()
    first = m.submit(order("dup", Side.BUY, "0.01", OrderType.LIMIT, price="59000.00"), None, T0)[-1].order
    locked = m.balances()["USDT"].locked
    again = m.submit(order("dup", Side.BUY, "0.01", OrderType.LIMIT, price="59000.00"), None, T0)
    assert [u.order for u in again] == [first] and all(u.fill is None for u in again)
    assert len(m.open_orders()) == 1 and m.balances()["USDT"].locked == locked
    filled = m.submit(order("mkt", Side.BUY, "0.01"), None, T0)[-1].order
    assert m.submit(order("mkt", Side.BUY, "0.01"), None, T0)[0].order == filled
    assert len(m.fills_since(None)) == 1


def test_cancel_and_cancel_all_unlock_funds() -> None:
    m = engine(btc="1")
    m.submit(order("b1", Side.BUY, "0.1", OrderType.LIMIT, price="59000.00"), None, T0)
    m.submit(order("b2", Side.BUY, "0.1", OrderType.LIMIT, price="58000.00"), None, T0)
    m.submit(order("s1", Side.SELL, "0.4", OrderType.LIMIT, price="61000.00"), None, T0)
    assert m.balances()["BTC"].locked == D("0.4") and m.balances()["USDT"].locked > 0
    update = m.cancel("b1", T0)
    assert update is not None and update.order.status is OrderStatus.CANCELED
    assert m.cancel("b1", T0) == update  # cancelling again only reports the final state
    assert m.cancel("nope", T0) is None
    assert {u.order.client_id for u in m.cancel_all("BTC/USDT", T0)} == {"b2", "s1"}
    bal = m.balances()
    assert bal["USDT"] == bal["USDT"].__class__("USDT", D(100000), D(0))
    assert bal["BTC"].free == 1 and bal["BTC"].locked == 0
    assert m.open_orders() == []


def test_protective_legs_share_the_coins_and_one_cancels_the_other() -> None:
    m = engine(btc="0.5")
    legs = {"parent_id": "entry-1"}
    sl = m.submit(
        order("sl", Side.SELL, "0.5", OrderType.STOP_MARKET, stop_price="59000.00", role="stop_loss", **legs),
        None,
        T0,
    )
    tp = m.submit(
        order("tp", Side.SELL, "0.5", OrderType.LIMIT, price="60500.00", role="take_profit", **legs), None, T0
    )
    assert sl[-1].order.status is OrderStatus.OPEN and tp[-1].order.status is OrderStatus.OPEN
    assert m.balances()["BTC"].locked == D("0.5")
    ups = m.on_tick(tick("60600.00", "60601.00", volume="0.8", n=1))  # take-profit fills 0.2
    by_id = {u.order.client_id: u.order for u in ups}
    assert by_id["tp"].filled_qty == D("0.2") and by_id["sl"].qty == D("0.3")
    ups = m.on_tick(tick("60600.00", "60601.00", volume="10", n=2))
    by_id = {u.order.client_id: u.order for u in ups}
    assert by_id["tp"].status is OrderStatus.FILLED and by_id["sl"].status is OrderStatus.CANCELED
    bal = m.balances()
    assert bal["BTC"].total == 0 and bal["BTC"].locked == 0 and m.open_orders() == []


def test_fill_ids_are_unique_and_fills_since_filters_by_time() -> None:
    m = engine(btc="1")
    m.submit(order("a", Side.SELL, "0.1"), None, T0)
    m.submit(order("b", Side.SELL, "0.1"), None, T0 + timedelta(seconds=5))
    fills = m.fills_since(None)
    assert len({f.fill_id for f in fills}) == 2 and all(f.fill_id.startswith("sim-") for f in fills)
    assert [f.client_id for f in m.fills_since(T0 + timedelta(seconds=1))] == ["b"]
    again = engine(btc="1")
    again.submit(order("a", Side.SELL, "0.1"), None, T0)
    assert again.fills_since(None)[0].fill_id == fills[0].fill_id


def test_a_big_marketable_limit_never_fills_worse_than_its_limit() -> None:
    m = engine(usdt="10000000")
    ups = m.submit(order("a", Side.BUY, "50", OrderType.LIMIT, price="60002.00"), None, T0)
    fill = ups[-1].fill
    assert fill is not None and fill.qty == D(50) and fill.price == D("60002.00")
    market = engine(usdt="10000000").submit(order("b", Side.BUY, "50"), None, T0)[-1].fill
    assert market is not None and market.price > D("60002.00")  # the same size at market slips further


def test_buy_stop_triggers_on_a_rise_and_gives_up_what_it_cannot_pay_for() -> None:
    m = engine(usdt="3100")
    ups = m.submit(order("bs", Side.BUY, "0.05", OrderType.STOP_MARKET, stop_price="61000.00"), None, T0)
    assert ups[-1].order.status is OrderStatus.OPEN and m.balances()["USDT"].locked > D(3050)
    assert m.on_tick(tick("60990.00", "60991.00", last="60990.00", n=1)) == []
    ups = m.on_tick(
        tick("62000.00", "62001.00", last="62001.00", n=2)
    )  # gapped: 0.05 now costs more than 3100
    final = ups[-1].order
    assert final.status is OrderStatus.CANCELED and "insufficient funds" in final.reason
    assert D(0) < final.filled_qty < D("0.05")
    bal = m.balances()
    assert bal["USDT"].locked == 0 and D(0) <= bal["USDT"].free < D(100)
