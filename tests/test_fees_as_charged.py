"""Fees booked in the asset the venue charged: base-asset fees shrink the position, BNB fees are valued.

The matching engine's "binance_spot" fee model charges like Binance spot (a buy
in the base asset, a sell in the quote asset, everything in BNB when BNB pays);
the portfolio books those fills so the round trip closes flat and its P&L equals
what the account's balances gained.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from engine.core.model import Fill, Instrument, MarketTick, Order, OrderType, Side
from engine.oms.portfolio import Portfolio
from engine.venues.matching import MatchingEngine

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
BTC = Instrument("BTC/USDT", "BTC", "USDT", D("0.01"), D("0.00001"), D("0.00001"), D(5))


def tick(bid: str, ask: str, n: int = 0) -> MarketTick:
    return MarketTick("BTC/USDT", T0 + timedelta(seconds=n), D(bid), D(ask), D(bid), D(100))


def market(cid: str, side: Side, qty: str) -> Order:
    return Order(cid, "BTC/USDT", side, OrderType.MARKET, D(qty))


def account_value(m: MatchingEngine, btc_price: D, bnb_price: D = D(0)) -> D:
    bal = m.balances()
    get = lambda a: bal[a].total if a in bal else D(0)  # noqa: E731
    return get("USDT") + get("BTC") * btc_price + get("BNB") * bnb_price


def round_trip(m: MatchingEngine, pf: Portfolio) -> list[Fill]:
    m.on_tick(tick("60000.00", "60000.00"))
    fills = [u.fill for u in m.submit(market("buy", Side.BUY, "0.01"), None, T0) if u.fill]
    for f in fills:
        pf.apply_fill(f)
    held = pf.qty("BTC/USDT")
    m.on_tick(tick("61000.00", "61000.00", 1))
    sells = [u.fill for u in m.submit(market("sell", Side.SELL, str(held)), None, T0) if u.fill]
    for f in sells:
        pf.apply_fill(f)
    return fills + sells


def test_binance_spot_buy_fee_is_taken_in_base_and_the_round_trip_closes_flat() -> None:
    m = MatchingEngine({"BTC/USDT": BTC}, {"USDT": D(1000)}, maker_fee=D("0.001"), taker_fee=D("0.001"),
                       fee_model="binance_spot", impact=0)  # fmt: skip
    pf = Portfolio(D(1000))
    before = account_value(m, D(60000))
    buy, sell = round_trip(m, pf)
    assert (buy.fee_currency, buy.fee_charged) == ("BTC", D("0.00001"))  # 0.1% of 0.01 BTC, in BTC
    assert m.balances()["BTC"].total == 0  # the account holds nothing: what the book sold was all there was
    assert sell.qty == D("0.00999") and sell.fee_currency == "USDT"
    assert pf.qty("BTC/USDT") == 0 and pf.position("BTC/USDT") is None
    assert len(pf.closed_trades) == 1
    gained = account_value(m, D(61000)) - before
    assert pf.realized == gained == pf.closed_trades[0].pnl
    assert pf.cash == m.balances()["USDT"].total
    assert pf.fees_charged == {"BTC": D("0.00001"), "USDT": sell.fee_charged}


def test_bnb_paid_fees_are_valued_at_the_bnb_mark_and_counted() -> None:
    m = MatchingEngine({"BTC/USDT": BTC}, {"USDT": D(1000), "BNB": D(1)}, maker_fee=D("0.001"),
                       taker_fee=D("0.001"), fee_model="binance_spot", bnb_pays=True,
                       asset_prices={"BNB": D(600)}, impact=0)  # fmt: skip
    pf = Portfolio(D(1000))
    pf.mark_asset("BNB", D(600))
    before = account_value(m, D(60000), D(600))
    buy, sell = round_trip(m, pf)
    assert buy.fee_currency == sell.fee_currency == "BNB"
    assert buy.fee_charged == D("0.00075")  # 0.1% of 600 USDT at a 25% discount, at 600 USDT per BNB
    assert pf.qty("BTC/USDT") == 0 and len(pf.closed_trades) == 1
    fees = buy.fee_charged * 600 + sell.fee_charged * 600
    assert pf.closed_trades[0].fees == fees > 0  # not booked as 0
    gained = account_value(m, D(61000), D(600)) - before
    assert pf.realized == gained


def test_a_bnb_fee_without_a_mark_is_flagged_unpriced() -> None:
    pf = Portfolio(D(1000))
    fill = Fill("f1", "o1", "BTC/USDT", Side.BUY, D("0.01"), D(60000), D(0), T0, fee_currency="BNB",
                fee_charged=D("0.001"))  # fmt: skip
    result = pf.apply_fill(fill)
    assert result.fee_unpriced and result.fee_value == 0
    assert pf.fees_charged == {"BNB": D("0.001")}


def test_quote_fee_model_stays_as_before() -> None:
    m = MatchingEngine({"BTC/USDT": BTC}, {"USDT": D(1000)}, maker_fee=D("0.001"), taker_fee=D("0.001"), impact=0)
    pf = Portfolio(D(1000))
    buy, _sell = round_trip(m, pf)
    assert buy.fee_currency == "USDT" and buy.fee == D("0.6") and buy.qty == D("0.01")
    assert pf.qty("BTC/USDT") == 0


def test_legacy_fill_with_a_base_currency_but_no_charged_amount_keeps_the_quantity() -> None:
    """Journal rows from before fee_charged existed: their fee is already in quote."""
    pf = Portfolio(D(1000))
    pf.apply_fill(Fill("f1", "o1", "BTC/USDT", Side.BUY, D("0.01"), D(60000), D("0.6"), T0, fee_currency="BTC"))
    assert pf.qty("BTC/USDT") == D("0.01") and pf.cash == D(1000) - D(600) - D("0.6")


def test_priced_gives_a_bnb_fee_its_quote_value_for_the_journal() -> None:
    pf = Portfolio(D(1000))
    fill = Fill("f1", "o1", "BTC/USDT", Side.BUY, D("0.01"), D(60000), D(0), T0, fee_currency="BNB",
                fee_charged=D("0.001"))  # fmt: skip
    assert pf.priced(fill) is fill  # no mark yet: left as the venue said
    pf.mark_asset("BNB", D(600))
    priced = pf.priced(fill)
    assert (priced.fee, priced.fee_charged, priced.fee_currency) == (D("0.6"), D("0.001"), "BNB")
    assert pf.apply_fill(priced).fee_value == D("0.6")
    quote_fill = Fill("f2", "o2", "BTC/USDT", Side.SELL, D("0.01"), D(60000), D("0.6"), T0, fee_currency="USDT")
    assert pf.priced(quote_fill) is quote_fill
