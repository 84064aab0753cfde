"""Reconciliation on start: an engine on the Binance fake (real ccxt) comes back to a venue that moved on."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from engine.app.kernel import Engine
from engine.core.clock import SystemClock
from engine.core.model import Order, OrderIntent, OrderStatus, OrderType, Side, TradingState
from engine.persistence.journal import Journal
from engine.venues.ccxt_venue import CcxtEndpoints, CcxtVenue
from tests.engine_rig import settings_for, until
from tests.fakes.binance import FakeBinance

KEY = "reconcile-key"
SECRET = "reconcile-secret-0b1c"
SYMBOLS = ["BTC/USDT", "ETH/USDT"]


def run(coro_fn: Callable[[], Awaitable[Any]], timeout: float = 40) -> Any:
    return asyncio.run(asyncio.wait_for(coro_fn(), timeout=timeout))


def venue_for(fake: FakeBinance) -> CcxtVenue:
    endpoints = CcxtEndpoints(rest_public=fake.rest_url, ws_public=fake.ws_url, ws_private=fake.ws_api_url)
    return CcxtVenue(SystemClock(), KEY, SECRET, symbols=SYMBOLS, endpoints=endpoints, timeout_s=1.0,
                     poll_interval_s=0.05, backoff_s=0.01, ws_retry_s=0.3)  # fmt: skip


def engine_on(fake: FakeBinance, home: Path, **conf: Any) -> Engine:
    settings = settings_for(stop_loss_required=False)  # no protective legs: one order per test
    settings.engine.venue = "binance"
    settings.venues["binance"] = {"mode": "testnet", "reconcile_interval_s": 0, "reconcile_backoff_s": 0.01, **conf}
    return Engine(settings, venue_for(fake), Journal(home / "journal.sqlite"), SystemClock(), symbols=SYMBOLS)


@contextlib.asynccontextmanager
async def running(fake: FakeBinance, home: Path, **conf: Any) -> AsyncIterator[Engine]:
    engine = engine_on(fake, home, **conf)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.shutdown("keep")
        engine.journal.close()


@contextlib.asynccontextmanager
async def other_client(fake: FakeBinance) -> AsyncIterator[CcxtVenue]:
    """Someone else on the same account (the operator on the exchange's website, another bot)."""
    venue = venue_for(fake)
    await venue.connect()
    try:
        yield venue
    finally:
        await venue.close()


def price_below(fake: FakeBinance, symbol: str = "BTC/USDT", below: str = "100") -> D:
    tick = fake.matching.last_tick(symbol)
    assert tick is not None
    return tick.bid - D(below)


async def rest_a_buy(engine: Engine, fake: FakeBinance, qty: str = "0.01") -> Order:
    """The engine places a resting limit buy and the venue acknowledges it."""
    await until(lambda: "BTC/USDT" in engine.ticks, what="first tick")
    intent = OrderIntent("BTC/USDT", Side.BUY, D(qty), order_type=OrderType.LIMIT, price=price_below(fake))
    order = engine.submit_intent(intent)
    assert order is not None, engine.journal.denials()
    await until(lambda: order.client_id in {o.client_id for o in fake.matching.open_orders()}, what="resting")
    await until(lambda: engine.book.get(order.client_id).status is OrderStatus.OPEN, what="acknowledged")
    return order


def alerts(home: Path, code: str) -> list[str]:
    with Journal(home / "journal.sqlite") as j:
        return [a.message for a in j.alerts() if a.code == code]


def test_a_fill_that_happened_while_the_engine_was_down_is_booked_exactly_once(tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeBinance(api_key=KEY, api_secret=SECRET, symbols=SYMBOLS) as fake:
            async with running(fake, tmp_path) as e:
                order = await rest_a_buy(e, fake)
            assert order.price is not None
            fake.push_tick("BTC/USDT", order.price - D("1"), order.price, volume=D("1"))  # fills while down
            assert fake.matching.open_orders() == []
            async with running(fake, tmp_path) as e:
                report = e.reconciler.last_report  # type: ignore[union-attr]
                assert report is not None and report.ok and len(report.applied_fills) == 1
                pos = e.portfolio.position("BTC/USDT")
                assert pos is not None and pos.qty == D("0.01")
                assert e.book.working_order(order.client_id) is None
                assert e.book.get(order.client_id).status is OrderStatus.FILLED
                assert e.risk.state is TradingState.ACTIVE
            async with running(fake, tmp_path) as e:  # a second restart finds nothing new
                report = e.reconciler.last_report  # type: ignore[union-attr]
                assert report is not None and report.clean, report
                pos = e.portfolio.position("BTC/USDT")
                assert pos is not None and pos.qty == D("0.01")
            with Journal(tmp_path / "journal.sqlite") as j:
                fills = j.fills()
                assert [f.qty for f in fills] == [D("0.01")] and fills[0].client_id == order.client_id
                assert j.order(order.client_id).status is OrderStatus.FILLED  # type: ignore[union-attr]

    run(main)


def test_an_order_placed_at_the_venue_by_someone_else_is_adopted_and_flagged_external(tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeBinance(api_key=KEY, api_secret=SECRET, symbols=SYMBOLS) as fake:
            async with other_client(fake) as someone:
                price = price_below(fake)
                await someone.submit(Order("by-hand-1", "BTC/USDT", Side.BUY, OrderType.LIMIT, D("0.02"), price))
            async with running(fake, tmp_path) as e:
                report = e.reconciler.last_report  # type: ignore[union-attr]
                assert report is not None and report.adopted_orders == ("by-hand-1",)
                adopted = e.book.get("by-hand-1")
                assert adopted.external and adopted.status is OrderStatus.OPEN and adopted.qty == D("0.02")
            assert any("by-hand-1" in m for m in alerts(tmp_path, "external_order"))
            async with running(fake, tmp_path) as e:  # known from now on: no second alert
                assert e.book.get("by-hand-1").external
                assert e.reconciler.last_report.adopted_orders == ()  # type: ignore[union-attr]
            assert len(alerts(tmp_path, "external_order")) == 1

    run(main)


def test_a_journaled_open_order_cancelled_at_the_venue_while_down_is_resolved(tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeBinance(api_key=KEY, api_secret=SECRET, symbols=SYMBOLS) as fake:
            async with running(fake, tmp_path) as e:
                order = await rest_a_buy(e, fake)
            async with other_client(fake) as someone:
                mine = (await someone.open_orders())[0]
                assert (await someone.cancel(mine)).status is OrderStatus.CANCELED
            with Journal(tmp_path / "journal.sqlite") as j:
                assert [o.client_id for o in j.orders(open_only=True)] == [order.client_id]
            async with running(fake, tmp_path) as e:
                report = e.reconciler.last_report  # type: ignore[union-attr]
                assert report is not None and report.resolved_orders == (order.client_id,)
                assert e.book.working() == []
                assert e.portfolio.position("BTC/USDT") is None
            with Journal(tmp_path / "journal.sqlite") as j:
                assert j.orders(open_only=True) == []
                assert j.order(order.client_id).status is OrderStatus.CANCELED  # type: ignore[union-attr]

    run(main)


def test_holdings_that_differ_from_the_engines_positions_raise_an_alert(tmp_path: Path) -> None:
    """Coins the account held before this journal are a baseline (no alert); coins that appear later are a
    mismatch the operator must see."""

    async def main() -> None:
        async with FakeBinance(api_key=KEY, api_secret=SECRET, symbols=SYMBOLS) as fake:
            fake.matching.deposit("BTC", D("0.2"))  # held before the engine ever ran: the baseline
            async with running(fake, tmp_path) as e:
                report = e.reconciler.last_report  # type: ignore[union-attr]
                assert report is not None and report.ok and report.mismatches == ()
                assert e.account.baseline_for("BTC/USDT") == D("0.2")
            fake.matching.deposit("ETH", D("1.5"))  # coins that moved in while the engine was down
            async with running(fake, tmp_path) as e:
                report = e.reconciler.last_report  # type: ignore[union-attr]
                assert report is not None and report.ok
                [m] = report.mismatches
                assert (m.symbol, m.engine_qty, m.venue_qty) == ("ETH/USDT", D(0), D("1.5"))
                assert e.risk.state is TradingState.ACTIVE  # shown, not halted: the operator decides
            [msg] = alerts(tmp_path, "position_mismatch")
            assert "ETH/USDT" in msg and "1.5" in msg
            with Journal(tmp_path / "journal.sqlite") as j:
                assert any(i.kind == "position_mismatch" for i in j.incidents())

    run(main)


def test_a_venue_that_cannot_answer_makes_the_engine_start_halted_and_say_why(tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeBinance(api_key=KEY, api_secret=SECRET, symbols=SYMBOLS) as fake:
            # It lists markets and balances (connect works), then every book read fails with a 503.
            for path in ("/api/v3/openOrders", "/api/v3/myTrades", "/api/v3/order", "/api/v3/allOrders"):
                fake.fail_next(path, "server_error", n=10_000, status=503)
            engine = engine_on(fake, tmp_path)
            await engine.start()
            try:
                report = engine.reconciler.last_report  # type: ignore[union-attr]
                assert report is not None and not report.ok and "503" in report.error
                assert engine.risk.state is TradingState.HALTED
                assert "reconciliation" in engine.risk.state_reason
                order = engine.submit_intent(OrderIntent("BTC/USDT", Side.BUY, D("0.01")))
                assert order is None  # nothing trades on a book nobody could check
            finally:
                await engine.shutdown("keep")
                engine.journal.close()
            assert alerts(tmp_path, "reconcile_failed")
            with Journal(tmp_path / "journal.sqlite") as j:
                assert j.get_state("trading_state") == "HALTED"

    run(main)


def test_periodic_reconciliation_spots_a_mismatch_while_running(tmp_path: Path) -> None:
    async def main() -> None:
        async with (
            FakeBinance(api_key=KEY, api_secret=SECRET, symbols=SYMBOLS) as fake,
            running(fake, tmp_path, reconcile_interval_s=0.2) as e,
        ):
            assert e.reconciler.last_report.clean  # type: ignore[union-attr]
            fake.matching.deposit("BTC", D("0.25"))
            await until(lambda: bool(e.reconciler.last_report.mismatches), what="periodic check")  # type: ignore[union-attr]
            assert e.reconciler.last_report.trigger == "periodic"  # type: ignore[union-attr]

    run(main)
