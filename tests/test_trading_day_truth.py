"""A day of trading with restarts on the Binance and Alpaca fakes: journal, engine and venue agree to the unit.

Issue #15 ("Venue truth"): against operator-like accounts (1,000 in cash, holdings from before the
engine) the engine trades a compressed day over five lifetimes on one journal: entries with stop
legs (stop-limit where the venue refuses stop-market), adds, partial exits, limits resting across
restarts and filled while the engine is down, a close through the OperatorAPI, a crash with an exit
on its way, and a close-all at the end. After every session the venue's holdings and cash, the
engine's book and the journal's fill rows agree exactly; what the account held before is never sold.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal as D
from pathlib import Path

import pytest

from engine.core.clock import SystemClock
from engine.core.model import OrderStatus, OrderType, TradingState
from engine.oms.execution import UNSUPPORTED_TYPE
from engine.venues.alpaca_venue import AlpacaVenue, fill_id
from engine.venues.ccxt_venue import CcxtEndpoints, CcxtVenue
from tests.fakes import binance_wire as wire
from tests.fakes.alpaca import FakeAlpaca
from tests.fakes.binance import FakeBinance
from tests.fakes.faults import Fault, FaultKind
from tests.fakes.harness import guard_loopback, run
from tests.trading_day_rig import FAST, Day, VenueSide, never_sold_what_it_held_before


@pytest.fixture(autouse=True)
def only_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    guard_loopback(monkeypatch, ("127.0.0.1", "localhost"))


@dataclass(frozen=True)
class Sizes:
    a: str  # the symbol built up in steps and partly sold
    b: str  # the symbol closed through the OperatorAPI
    b_qty: D  # the first entry on b
    add: D  # a second entry on a
    add_b: D  # and on b
    part: D  # a partial exit of a
    part_b: D  # and of b
    limit_b: D  # a limit buy filled while the engine is down
    limit_a: D  # one resting far below until close-all
    refuses_stop_market: bool  # the venue answers a stop-market leg "not supported" (the chain steps down)
    legs: dict[str, OrderType]  # per symbol, the stop type that rests: stop-limit where stop-market is not taken


BINANCE = Sizes("BTC/USDT", "ETH/USDT", b_qty=D("0.03"), add=D("0.001"), add_b=D("0.01"), part=D("0.002"),
                part_b=D("0.02"), limit_b=D("0.02"), limit_a=D("0.001"), refuses_stop_market=False,
                legs={"BTC/USDT": OrderType.STOP_MARKET, "ETH/USDT": OrderType.STOP_LIMIT})  # fmt: skip
ALPACA = Sizes("AAPL", "MSFT", b_qty=D(1), add=D(1), add_b=D(1), part=D(1), part_b=D(1), limit_b=D(1), limit_a=D(1),
               refuses_stop_market=True, legs={"AAPL": OrderType.STOP_LIMIT, "MSFT": OrderType.STOP_LIMIT})  # fmt: skip


@asynccontextmanager
async def binance_day(home: Path) -> AsyncIterator[tuple[Day, FakeBinance]]:
    async with FakeBinance.real_like(api_key="day-key", api_secret="day-secret-1") as fake:
        symbols = list(fake.instruments)
        ep = CcxtEndpoints(rest_public=fake.rest_url, ws_public=fake.ws_url, ws_private=fake.ws_api_url)

        def held(symbol: str) -> D:
            bal = fake.matching.balances().get(fake.instruments[symbol].base)
            return bal.total if bal is not None else D(0)

        def touch(symbol: str, price: D) -> None:
            fake.push_tick(symbol, price - fake.instruments[symbol].tick_size, price, volume=D(1000))

        side = VenueSide(
            symbols=symbols, baseline={"ETH/USDT": D(10), "BTC/USDT": D(0)},
            make_venue=lambda: CcxtVenue(SystemClock(), "day-key", "day-secret-1", symbols=symbols, endpoints=ep,
                                         **FAST),  # type: ignore[arg-type]
            holding=held, cash=lambda: fake.matching.balances()["USDT"].total, step=fake.step, touch=touch,
            trade_ids=lambda: {f"{wire.market_id(f.symbol)}-{tid}" for tid, f in fake._trades},
            trades=fake.matching.fills_since,
            placed=lambda cid: fake.placed[cid] > 0, open_orders=fake.matching.open_orders,
            hold_orders=lambda n, s: fake.faults.add("/api/v3/order", Fault(FaultKind.DELAY, delay_s=s), n, "POST"),
            held=lambda: len(fake.faults.injected), while_down=lambda: fake.matching.deposit("DOGE", D(500)),
        )  # fmt: skip
        day = Day(side, home)
        day.start()
        try:
            yield day, fake
        finally:
            await day.finish()


@asynccontextmanager
async def alpaca_day(home: Path) -> AsyncIterator[tuple[Day, FakeAlpaca]]:
    symbols = ["AAPL", "MSFT"]
    async with FakeAlpaca.real_like(api_key="PKDAY", secret_key="day-secret-2", symbols=symbols) as fake:
        rng = random.Random(15)
        mids = {s: D(200) for s in symbols}

        def step() -> None:  # the fake has no clock of its own: a small seeded random walk
            for s in symbols:
                mids[s] += D(rng.randint(-3, 3)) / 100
                fake.push_tick(s, mids[s] - D("0.05"), mids[s] + D("0.05"))

        def cash() -> D:
            return fake.matching.balances()["USD"].total

        side = VenueSide(
            symbols=symbols, baseline={"AAPL": D(5), "MSFT": D(0)},
            make_venue=lambda: AlpacaVenue(SystemClock(), "PKDAY", "day-secret-2", url_override=fake.url,
                                           data_url=fake.url, symbols=symbols, **FAST),  # type: ignore[arg-type]
            holding=lambda s: fake.positions().get(s, D(0)), cash=cash, step=step,
            touch=lambda s, price: fake.push_tick(s, price - D("0.10"), price, volume=D(1000)),
            trade_ids=lambda: {fill_id(a["order_id"], D(a["cum_qty"])) for a in fake.activities},
            trades=fake.matching.fills_since,
            placed=lambda cid: fake.placed[cid] > 0, open_orders=fake.open_orders,
            hold_orders=lambda n, s: fake.faults.add("/v2/orders", Fault(FaultKind.DELAY, delay_s=s), n, "POST"),
            held=lambda: len(fake.faults.injected),
        )  # fmt: skip
        day = Day(side, home)
        day.start()
        try:
            yield day, fake
        finally:
            await day.finish()


async def trading_day(day: Day, z: Sizes) -> None:
    a, b, side = z.a, z.b, day.side
    # --- session 1, a fresh journal: entries (one sized by the engine), an add, a partial exit, a close through
    # the OperatorAPI, then a limit left resting on the flat symbol; clean stop
    e = await day.open()
    assert e.portfolio.cash == side.cash() == D(1000)  # the account's cash, not the config's 100,000
    await day.filled(e, await day.sized_entry(e, a, "0.02"))
    await day.filled(e, day.entry(e, b, z.b_qty, "0.02"))
    await day.settle(e, "session 1 entries")
    await day.filled(e, day.entry(e, a, z.add, "0.015"))
    await day.settle(e, "session 1 add")
    await day.filled(e, day.exit(e, a, z.part))
    await day.settle(e, "session 1 partial exit")
    assert e.api.close_position(b, "tester", "done with it").ok
    await day.wait(lambda: e.portfolio.qty(b) == 0, f"{b} closed")
    limit_b = day.resting_buy(e, b, z.limit_b, "0.006", "0.02")
    await day.resting(e, limit_b)
    await day.settle(e, "session 1")
    await day.stop(e)
    side.touch(b, limit_b.price)  # type: ignore[arg-type]  # while down the price comes to the limit
    side.while_down()  # and, on Binance, a coin the engine does not trade arrives
    assert limit_b.client_id not in {o.client_id for o in side.open_orders()}

    # --- session 2: the fill from while down, protected at its planned stop; a limit far below; a crash as
    # an add on b fills, its new stop leg still on the wire (the venue takes it after the engine is gone)
    e = await day.open()
    await day.settle(e, "session 2 start")
    assert e.portfolio.position(b).protection_price == day.stops[limit_b.client_id]  # type: ignore[union-attr]
    far = day.resting_buy(e, a, z.limit_a, "0.03", "0.02")  # rests through two restarts, one a crash
    await day.resting(e, far)
    await day.settle(e, "session 2")
    held = side.held()
    side.hold_orders(2, 0.3)  # the add, then its stop leg (straight to the type the venue took for b before)
    await day.sized_entry(e, b, "0.02")
    await day.wait(lambda: side.held() == held + 2, "the add filled and its stop leg on the wire")
    await day.crash(e)
    await day.wait(lambda: _stops_at_venue(day, b) == 1, "the leg placed while the engine is down")

    # --- session 3, after the crash: the leg is the plan's; a partial exit; a crash with an entry on the wire
    e = await day.open()
    await day.settle(e, "session 3 start")
    await day.filled(e, day.exit(e, b, z.part_b))
    await day.settle(e, "session 3")
    held = side.held()
    side.hold_orders(1, 0.3)
    late = day.entry(e, a, z.add, "0.015")
    await day.wait(lambda: side.held() == held + 1, "the entry on the wire")
    await day.crash(e)
    await day.wait(lambda: side.placed(late.client_id), "the entry filled while the engine is down")

    # --- session 4: the entry booked once and protected; the far limit still rests; close all ends the day
    e = await day.open()
    await day.settle(e, "session 4 start")
    assert e.book.get(late.client_id).status is OrderStatus.FILLED  # type: ignore[union-attr]
    assert e.book.get(far.client_id).status.is_working  # type: ignore[union-attr]
    summary = await e.close_all("end of day", "tester")
    assert summary["ok"], summary
    await day.settle(e, "session 4 close all")
    assert all(e.portfolio.qty(s) == 0 for s in side.symbols) and not e.book.working() and not side.open_orders()
    await day.stop(e)

    # --- session 5: a last restart finds the account as the journal left it
    e = await day.open()
    await day.settle(e, "session 5")
    assert e.risk.state is TradingState.HALTED  # close-all halted the engine, and a restart keeps it so
    assert e.reconciler is not None and e.reconciler.last_report is not None
    assert e.reconciler.last_report.mismatches == () and e.reconciler.last_report.adopted_orders == ()
    never_sold_what_it_held_before(side)
    legs = [o for o in e.journal.orders() if o.role == "stop_loss"]
    for symbol, kind in z.legs.items():  # the chain stepped down to what the venue takes, and only for that
        assert {o.order_type for o in legs if o.symbol == symbol and o.status is not OrderStatus.REJECTED} == {kind}
    refused = [o for o in legs if o.status is OrderStatus.REJECTED]
    assert all(o.reason.startswith(UNSUPPORTED_TYPE) for o in refused) and bool(refused) == z.refuses_stop_market
    await day.stop(e)
    assert day.sessions == 5


def _stops_at_venue(day: Day, symbol: str) -> int:
    return sum(1 for o in day.side.open_orders() if o.symbol == symbol and o.order_type.value.startswith("stop"))


def test_binance_day_with_restarts_agrees_to_the_unit(tmp_path: Path) -> None:
    async def main() -> None:
        async with binance_day(tmp_path) as (day, fake):
            await trading_day(day, BINANCE)
            balances = fake.matching.balances()  # the coins from before and the one deposited: all still there
            assert balances["ETH"].total >= D(10) and balances["BNB"].total == D("0.5")
            assert balances["DOGE"].total == D(500)

    run(main, timeout=60)


def test_alpaca_day_with_restarts_agrees_to_the_unit(tmp_path: Path) -> None:
    async def main() -> None:
        async with alpaca_day(tmp_path) as (day, fake):
            await trading_day(day, ALPACA)
            assert fake.positions().get("AAPL") == D(5)

    run(main, timeout=60)
