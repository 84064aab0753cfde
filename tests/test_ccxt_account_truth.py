"""Account truth on Binance spot (real ccxt against the fake on 127.0.0.1): fees in the asset charged,
balances with holdings from before, per-symbol stop types and the fake's Binance habits."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from engine.core.clock import SystemClock
from engine.core.model import Order, OrderStatus, OrderType, Side
from engine.oms.portfolio import Portfolio
from engine.venues.account import baseline_from_balances
from engine.venues.base import (
    OrderTypeUnsupported,
)
from engine.venues.ccxt_venue import CcxtEndpoints, CcxtVenue
from tests.ccxt_rig import (
    FAST,
    KEY,
    SECRET,
    SYMBOLS,
    market,
    rig,
)
from tests.fakes.binance import FakeBinance
from tests.fakes.harness import guard_loopback, run


@pytest.fixture(autouse=True)
def only_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    guard_loopback(monkeypatch)


# -- fees in their real asset ------------------------------------------------------------------


def test_binance_fees_in_base_and_bnb_close_the_round_trip_and_match_the_account() -> None:
    async def main() -> None:
        start = {"USDT": D(1000), "BNB": D(0)}
        async with rig({"balances": start, "fee_model": "binance_spot"}) as (_fake, venue, _):
            await venue.connect()
            pf = Portfolio(D(1000))
            buy = await venue.place(market("fee-buy", qty="0.01"))
            (fill,) = buy.fills
            assert fill.fee_currency == "BTC" and fill.fee_charged == D("0.00001")
            pf.apply_fill(fill)
            assert pf.qty("BTC/USDT") == (await venue.positions())["BTC/USDT"] == D("0.00999")
            sell = await venue.place(market("fee-sell", Side.SELL, str(pf.qty("BTC/USDT"))))
            for f in sell.fills:
                assert f.fee_currency == "USDT"
                pf.apply_fill(f)
            assert pf.qty("BTC/USDT") == 0 and len(pf.closed_trades) == 1
            usdt = (await venue.balances())["USDT"].total
            assert pf.cash == usdt and pf.realized == usdt - D(1000)

    run(main)


def test_bnb_paid_fees_arrive_with_their_amount_and_asset() -> None:
    async def main() -> None:
        fake_kw = {"balances": {"USDT": D(1000), "BNB": D(1)}, "fee_model": "binance_spot", "bnb_pays": True,
                   "asset_prices": {"BNB": D(600)}}  # fmt: skip
        async with rig(fake_kw) as (_fake, venue, _):
            await venue.connect()
            (fill,) = (await venue.place(market("bnb-1"))).fills
            assert fill.fee_currency == "BNB" and fill.fee_charged and fill.fee_charged > 0
            assert fill.fee == 0  # unpriced at the venue layer: the portfolio values it at BNB's mark
            pf = Portfolio(D(1000))
            pf.mark_asset("BNB", D(600))
            assert pf.apply_fill(fill).fee_value == fill.fee_charged * 600

    run(main)


# -- account truth -----------------------------------------------------------------------------


def test_a_small_account_with_holdings_gives_balances_equity_and_a_baseline() -> None:
    async def main() -> None:
        async with rig({"balances": {"USDT": D(1000), "ETH": D(10)}}) as (fake, venue, _):
            await venue.connect()
            balances = await venue.balances()
            assert balances["USDT"].total == 1000 and balances["ETH"].total == 10
            eth = fake.matching.last_tick("ETH/USDT")
            assert eth is not None
            assert await venue.equity() == 1000 + 10 * eth.last
            baseline = baseline_from_balances(balances, "USDT")
            assert baseline.assets == {"ETH": D(10)} and baseline.cash == 1000
            insts = await venue.instruments()
            assert baseline.by_symbol(insts) == {"ETH/USDT": D(10)}
            assert baseline.engine_quantity(insts["ETH/USDT"], D("10.5")) == D("0.5")

    run(main)


# -- stop types per symbol ---------------------------------------------------------------------


def test_stop_types_follow_exchange_info_and_a_refused_type_is_distinct() -> None:
    async def main() -> None:
        types = {"ETH/USDT": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT"]}
        async with rig({"order_types": types, "balances": {"USDT": D(1000), "ETH": D(10)}}) as (fake, venue, _):
            await venue.connect()
            caps = venue.capabilities()
            assert caps.stop_types("BTC/USDT") == [OrderType.STOP_MARKET, OrderType.STOP_LIMIT]
            assert caps.stop_types("ETH/USDT") == [OrderType.STOP_LIMIT]
            tick = fake.matching.last_tick("ETH/USDT")
            assert tick is not None
            stop = tick.bid - D(20)
            sent = len(fake.requests)
            with pytest.raises(OrderTypeUnsupported) as info:
                await venue.submit(Order("sl-1", "ETH/USDT", Side.SELL, OrderType.STOP_MARKET, D(1), stop_price=stop))
            assert info.value.order_type is OrderType.STOP_MARKET and len(fake.requests) == sent
            leg = Order("sl-2", "ETH/USDT", Side.SELL, OrderType.STOP_LIMIT, D(1), price=stop - D(5), stop_price=stop)
            acked = await venue.submit(leg)
            assert acked.status is OrderStatus.OPEN and acked.order_type is OrderType.STOP_LIMIT
            assert acked.stop_price == stop and acked.price == stop - D(5)
            fake.push_tick("ETH/USDT", stop - 1, stop - D("0.5"), last=stop - 1, volume=D(5))
            filled = await venue.lookup(leg)
            assert filled is not None and filled.status is OrderStatus.FILLED

    run(main)


def test_the_fake_refuses_an_unlisted_type_with_binances_message() -> None:
    """Even when ccxt's market data were stale, the venue's own refusal maps to OrderTypeUnsupported."""

    async def main() -> None:
        async with rig({"order_types": {"BTC/USDT": ["LIMIT", "MARKET", "STOP_LOSS_LIMIT"]}}) as (_fake, venue, _):
            await venue.connect()
            venue._capabilities.clear()  # pretend we did not know
            venue.exchange.markets["BTC/USDT"]["info"]["orderTypes"].append("STOP_LOSS")  # nor did ccxt
            with pytest.raises(OrderTypeUnsupported) as info:
                await venue.submit(Order("sl-3", "BTC/USDT", Side.SELL, OrderType.STOP_MARKET, D("0.01"),
                                         stop_price=D(1000)))  # fmt: skip
            assert "not supported for this symbol" in str(info.value)

    run(main)


def test_the_real_like_fake_is_a_small_account_with_binance_habits() -> None:
    async def main() -> None:
        async with FakeBinance.real_like(api_key=KEY, api_secret=SECRET) as fake:
            endpoints = CcxtEndpoints(rest_public=fake.rest_url, ws_public=fake.ws_url, ws_private=fake.ws_api_url)
            venue = CcxtVenue(SystemClock(), KEY, SECRET, symbols=SYMBOLS, endpoints=endpoints, **FAST)
            try:
                await venue.connect()
                balances = await venue.balances()
                assert {a: b.total for a, b in balances.items()} == {"USDT": 1000, "ETH": 10, "BNB": D("0.5")}
                assert venue.capabilities().stop_types("ETH/USDT") == [OrderType.STOP_LIMIT]
                (fill,) = (await venue.place(market("rl-1", qty="0.001"))).fills
                assert fill.fee_currency == "BTC"
            finally:
                await venue.close()

    run(main)


def test_a_fee_assets_price_comes_from_the_venue_for_the_portfolio() -> None:
    async def main() -> None:
        async with FakeBinance(api_key=KEY, api_secret=SECRET, symbols=("BTC/USDT", "BNB/USDT")) as fake:
            endpoints = CcxtEndpoints(rest_public=fake.rest_url, ws_public=fake.ws_url, ws_private=fake.ws_api_url)
            venue = CcxtVenue(SystemClock(), KEY, SECRET, symbols=["BTC/USDT"], endpoints=endpoints, **FAST)
            try:
                await venue.connect()
                prices = await venue.asset_prices(["BNB", "XYZ"], "USDT")
                bnb = fake.matching.last_tick("BNB/USDT")
                assert bnb is not None and prices == {"BNB": bnb.last}
            finally:
                await venue.close()

    run(main)
