"""Protection never lapses: stop legs stay through an emergency stop, exits work while HALTED, the stop
falls back when the venue refuses its type, and a storm of refusals halts instead of spinning.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path

import pytest

from engine.app.kernel import Engine
from engine.core.clock import SystemClock
from engine.core.events import AlertEvent
from engine.core.model import AlertLevel, OrderIntent, OrderStatus, OrderType, ProtectionStatus, Side, TradingState
from engine.persistence.journal import Journal
from engine.venues.ccxt_venue import CcxtEndpoints, CcxtVenue
from tests.engine_rig import buy, make_engine, settings_for, started, stop, until
from tests.fakes.binance import NO_STOP_MARKET, FakeBinance
from tests.fakes.harness import guard_loopback, wait_for
from tests.fakes.harness import run as run_main

SYMBOLS = ["BTC/USDT", "ETH/USDT"]


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 90))
FAST = {"timeout_s": 1.0, "poll_interval_s": 0.05, "backoff_s": 0.01, "ws_retry_s": 0.3}


@pytest.fixture(autouse=True)
def only_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    guard_loopback(monkeypatch, ("127.0.0.1", "localhost"))


def _stop_legs(e: Engine, symbol: str) -> list[object]:
    return [o for o in e.book.working(symbol) if o.role == "stop_loss" and o.status is OrderStatus.OPEN]


def test_emergency_stop_keeps_every_resting_stop_leg_and_the_position_stays_protected(tmp_path: Path) -> None:
    async def scenario() -> None:
        e = await started(make_engine(tmp_path))
        for s in e.symbols:
            e.submit_intent(buy(e, s, "3000"))
        e.submit_intent(buy(e, "BTC/USDT", "300", limit_below="0.05"))  # a working entry: that one goes
        await until(lambda: all(_stop_legs(e, s) for s in e.symbols) and not e.execution.inflight,
                    what="three positions with resting stops")  # fmt: skip
        assert await e.emergency_stop("test", "alice")
        assert e.risk.state is TradingState.HALTED
        venue_open = await e.venue.open_orders()
        assert sorted(o.symbol for o in venue_open) == sorted(e.symbols)  # the entry went, the stops stayed
        assert all(o.order_type is OrderType.STOP_MARKET for o in venue_open)
        for s in e.symbols:
            pos = e.portfolio.position(s)
            assert pos is not None and pos.protection == ProtectionStatus.VENUE.value and pos.stop_loss is not None
        await stop(e)

    run(scenario())


def test_while_halted_a_time_exit_closes_the_position_without_a_denial_loop(tmp_path: Path) -> None:
    async def scenario() -> None:
        e = await started(make_engine(tmp_path))
        inst, last = e.instruments["ETH/USDT"], e.ticks["ETH/USDT"].last
        qty = inst.round_qty(D(3000) / last)
        e.submit_intent(OrderIntent("ETH/USDT", Side.BUY, qty, stop_loss=inst.round_price(last * D("0.97")),
                                    max_hold_s=60))  # fmt: skip
        await until(lambda: bool(_stop_legs(e, "ETH/USDT")), what="the position and its stop")
        await e.emergency_stop("test", "alice")
        await until(lambda: e.portfolio.qty("ETH/USDT") == 0, timeout=30, what="the time exit while HALTED")
        assert e.risk.state is TradingState.HALTED
        e.journal.flush()
        assert [d for d in e.journal.denials() if d.code == "halted"] == []
        assert not e.book.working("ETH/USDT")  # the stop leg went with the position
        await stop(e)

    run(scenario())


def test_a_storm_of_refusals_halts_and_orders_stay_within_the_rate_limit(tmp_path: Path) -> None:
    async def scenario() -> None:
        e = await started(make_engine(tmp_path, settings_for(max_orders_per_second=5, max_rejections=5)))
        alerts: list[AlertEvent] = []
        e.bus.subscribe(alerts.append, AlertEvent)
        e.venue.faults.reject_next_submits(1000, "insufficient balance")  # type: ignore[attr-defined]
        for i in range(40):
            e.submit_intent(buy(e, e.symbols[i % 3], "200"))
        await until(lambda: e.risk.state is TradingState.HALTED and not e.execution.inflight, what="the halt")
        assert "reject storm" in e.risk.state_reason
        assert [a for a in alerts if a.code == "reject_storm" and a.level is AlertLevel.CRITICAL]
        sent = len(e.venue.submits)  # type: ignore[attr-defined]
        assert sent <= 5 + 5, f"{sent} orders reached the venue"  # one second's worth, and the halt stopped more
        await stop(e)

    run(scenario())


@contextlib.asynccontextmanager
async def binance(home: Path, order_types: dict[str, list[str]]) -> AsyncIterator[tuple[FakeBinance, Engine]]:
    async with FakeBinance(api_key="prot-key", api_secret="prot-secret", symbols=SYMBOLS,
                           order_types=order_types) as fake:  # fmt: skip
        ep = CcxtEndpoints(rest_public=fake.rest_url, ws_public=fake.ws_url, ws_private=fake.ws_api_url)
        venue = CcxtVenue(SystemClock(), "prot-key", "prot-secret", symbols=SYMBOLS, endpoints=ep, **FAST)  # type: ignore[arg-type]
        settings = settings_for(cash_reserve=0.0, max_position_notional=0.5, max_volatility=1000.0)
        settings.approvals.enabled = False
        settings.engine.shutdown = "keep"
        e = Engine(settings, venue, Journal(home / "journal.sqlite"), SystemClock(), symbols=SYMBOLS)
        fake.start_ticking(0.1)
        await e.start()
        try:
            await wait_for(lambda: len(e.ticks) == len(SYMBOLS), what="ticks")
            yield fake, e
        finally:
            await stop(e)


def _eth_buy(e: Engine) -> OrderIntent:
    inst, last = e.instruments["ETH/USDT"], e.ticks["ETH/USDT"].last
    qty = inst.round_qty(D(1000) / last)
    return OrderIntent("ETH/USDT", Side.BUY, qty, stop_loss=inst.round_price(last * D("0.97")))


def test_a_symbol_without_stop_market_gets_a_stop_limit_leg(tmp_path: Path) -> None:
    async def main() -> None:
        async with binance(tmp_path, {"ETH/USDT": NO_STOP_MARKET}) as (_fake, e):
            assert e.submit_intent(_eth_buy(e)) is not None
            await wait_for(lambda: bool(_stop_legs(e, "ETH/USDT")), what="a resting stop leg")
            [leg] = _stop_legs(e, "ETH/USDT")
            assert leg.order_type is OrderType.STOP_LIMIT and leg.price is not None  # type: ignore[attr-defined]
            assert leg.price < leg.stop_price  # type: ignore[attr-defined]  # the collar sits below the trigger
            pos = e.portfolio.position("ETH/USDT")
            assert pos is not None and pos.protection == ProtectionStatus.VENUE.value

    run_main(main)


def test_a_symbol_without_any_stop_type_is_watched_by_the_engine_and_says_so(tmp_path: Path) -> None:
    async def main() -> None:
        no_stops = ["LIMIT", "LIMIT_MAKER", "MARKET"]
        async with binance(tmp_path, {"ETH/USDT": no_stops}) as (fake, e):
            alerts: list[AlertEvent] = []
            e.bus.subscribe(alerts.append, AlertEvent)
            assert e.submit_intent(_eth_buy(e)) is not None
            await wait_for(lambda: e.portfolio.qty("ETH/USDT") > 0, what="the position")
            await wait_for(lambda: any(a.code == "stop_watched" for a in alerts), what="the watch alert")
            [watched] = [a for a in alerts if a.code == "stop_watched"]
            assert watched.level is AlertLevel.CRITICAL and "lapses while the engine is down" in watched.message
            pos = e.portfolio.position("ETH/USDT")
            assert pos is not None and pos.protection == ProtectionStatus.WATCHED.value
            assert not [o for o in fake.matching.open_orders() if o.symbol == "ETH/USDT"]
            # the level is crossed: the engine exits at market itself
            stop_price = pos.protection_price
            assert stop_price is not None
            fake.stop_ticking()
            inst = e.instruments["ETH/USDT"]
            low = inst.round_price(stop_price * D("0.99"))
            for _ in range(3):
                fake.push_tick("ETH/USDT", low, low + inst.tick_size)
            await wait_for(lambda: e.portfolio.qty("ETH/USDT") == 0, timeout=10, what="the watched stop's exit")

    run_main(main)


def test_pressing_emergency_stop_twice_runs_one_cancel_round(tmp_path: Path) -> None:
    async def scenario() -> None:
        e = await started(make_engine(tmp_path))
        for k in range(5):
            e.submit_intent(buy(e, "BTC/USDT", "300", limit_below=f"0.00{k + 1}"))
        await until(lambda: e.book.working_count() == 5 and not e.execution.inflight, what="five resting orders")
        first = e.api.emergency_stop("panic", "alice")
        second = e.api.emergency_stop("panic again", "alice")
        assert first.ok and second.ok and "already in progress" in second.message
        await until(lambda: not e.stop_in_progress(), what="the cancel round")
        e.journal.flush()
        done = [r for r in e.journal.audit_rows() if r["action"] == "emergency_stop_done"]
        assert len(done) == 1  # one cancel round, not two
        retried = e.api.emergency_stop("panic", "alice", command_id="click-1")
        again = e.api.emergency_stop("panic", "alice", command_id="click-1")
        assert again is retried  # the same command id executes once
        await stop(e)

    run(scenario())


def test_binance_emergency_stop_keeps_the_resting_stop_legs(tmp_path: Path) -> None:
    async def main() -> None:
        async with binance(tmp_path, {}) as (fake, e):
            for s in SYMBOLS:
                inst, last = e.instruments[s], e.ticks[s].last
                qty = inst.round_qty(max(D(1000) / last, inst.min_qty))
                e.submit_intent(OrderIntent(s, Side.BUY, qty, stop_loss=inst.round_price(last * D("0.97"))))
            await wait_for(lambda: all(_stop_legs(e, s) for s in SYMBOLS), timeout=20, what="two resting stops")
            assert await e.emergency_stop("test", "alice")
            resting = fake.matching.open_orders()
            assert sorted(o.symbol for o in resting) == SYMBOLS  # one stop leg per position, still at the venue
            assert all(o.order_type is OrderType.STOP_MARKET for o in resting)

    run_main(main)


def test_alpaca_refusing_stop_orders_gets_stop_limit_legs_that_survive_an_emergency_stop(tmp_path: Path) -> None:
    from engine.venues.alpaca_venue import AlpacaVenue
    from tests.fakes.alpaca import FakeAlpaca

    async def main() -> None:
        symbols = ["AAPL", "MSFT"]
        async with FakeAlpaca(api_key="PKPROT", secret_key="prot-secret-1", symbols=symbols,
                              refused_types={"stop"}) as fake:  # a broker answering 422 for type "stop"
            venue = AlpacaVenue(SystemClock(), "PKPROT", "prot-secret-1", url_override=fake.url, data_url=fake.url,
                                symbols=symbols, **FAST)  # type: ignore[arg-type]  # fmt: skip
            settings = settings_for(cash_reserve=0.0, max_position_notional=0.5, max_volatility=1000.0)
            settings.approvals.enabled = False
            settings.engine.shutdown = "keep"
            e = Engine(settings, venue, Journal(tmp_path / "journal.sqlite"), SystemClock(), symbols=symbols)
            await e.start()
            try:
                await wait_for(lambda: len(e.ticks) == len(symbols), what="quotes")
                for s in symbols:
                    stop_at = e.instruments[s].round_price(e.ticks[s].last * D("0.97"))
                    e.submit_intent(OrderIntent(s, Side.BUY, D(3), stop_loss=stop_at))
                await wait_for(lambda: all(_stop_legs(e, s) for s in symbols), timeout=20, what="resting stop legs")
                assert all(leg.order_type is OrderType.STOP_LIMIT for s in symbols for leg in _stop_legs(e, s))  # type: ignore[attr-defined]
                # the chain stepping down is its own warning, not a refusal: no order_rejected alert, nothing
                # counted toward the reject breaker
                e.journal.flush()
                codes = [a.code for a in e.journal.alerts()]
                assert "stop_fallback" in codes and "order_rejected" not in codes, codes
                assert e.reject_breaker.count() == 0
                # an add to AAPL: its new leg goes straight to stop-limit, the venue is not asked again
                stop_at = e.instruments["AAPL"].round_price(e.ticks["AAPL"].last * D("0.97"))
                e.submit_intent(OrderIntent("AAPL", Side.BUY, D(1), stop_loss=stop_at))
                await wait_for(lambda: [leg.qty for leg in _stop_legs(e, "AAPL")] == [D(4)], timeout=20,  # type: ignore[attr-defined]
                               what="the leg for the added share")  # fmt: skip
                e.journal.flush()
                refused = [o for o in e.journal.orders() if o.symbol == "AAPL" and o.role == "stop_loss"
                           and o.order_type is OrderType.STOP_MARKET]  # fmt: skip
                assert len(refused) == 1 and refused[0].status is OrderStatus.REJECTED
                assert await e.emergency_stop("test", "alice")
                resting = fake.matching.open_orders()
                assert sorted(o.symbol for o in resting) == symbols
                for s in symbols:
                    pos = e.portfolio.position(s)
                    assert pos is not None and pos.protection == ProtectionStatus.VENUE.value
            finally:
                await stop(e)

    run_main(main)
