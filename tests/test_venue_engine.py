"""The whole engine on each real venue adapter against its fake: emergency stop, close-all, link loss.

Real ccxt and alpaca-py talk HTTP and websockets to the fakes on 127.0.0.1; the engine
is the one the console runs (risk checks, journal, reconciliation, protective legs).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from engine.app.kernel import Engine
from engine.core.clock import SystemClock
from engine.core.events import ConnectionEvent
from engine.core.model import OrderIntent, OrderType, Side, TradingState
from engine.persistence.journal import Journal
from engine.venues.alpaca_venue import AlpacaVenue
from engine.venues.ccxt_venue import CcxtEndpoints, CcxtVenue
from tests.engine_rig import settings_for, stop
from tests.fakes.alpaca import FakeAlpaca
from tests.fakes.binance import FakeBinance
from tests.fakes.harness import guard_loopback, run, wait_for

FAST = {"timeout_s": 1.0, "poll_interval_s": 0.05, "backoff_s": 0.01, "ws_retry_s": 0.3}


@pytest.fixture(autouse=True)
def only_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    guard_loopback(monkeypatch, ("127.0.0.1", "localhost"))


def _settings() -> Any:
    s = settings_for(cash_reserve=0.0, max_position_notional=0.5, max_volatility=1000.0)
    s.approvals.enabled = False
    s.engine.shutdown = "keep"
    return s


@contextlib.asynccontextmanager
async def binance_engine(home: Path) -> AsyncIterator[tuple[FakeBinance, Engine]]:
    symbols = ["BTC/USDT", "ETH/USDT"]
    async with FakeBinance(api_key="bkey-1", api_secret="bsecret-2f7a", symbols=symbols) as fake:
        ep = CcxtEndpoints(rest_public=fake.rest_url, ws_public=fake.ws_url, ws_private=fake.ws_api_url)
        venue = CcxtVenue(SystemClock(), "bkey-1", "bsecret-2f7a", symbols=symbols, endpoints=ep, **FAST)  # type: ignore[arg-type]
        e = Engine(_settings(), venue, Journal(home / "journal.sqlite"), SystemClock(), symbols=symbols)
        await e.start()
        try:
            fake.start_ticking(0.1)
            await wait_for(lambda: len(e.ticks) == len(symbols), what="ticks through ccxt")
            yield fake, e
        finally:
            await stop(e)


@contextlib.asynccontextmanager
async def alpaca_engine(home: Path) -> AsyncIterator[tuple[FakeAlpaca, Engine]]:
    symbols = ["AAPL", "MSFT"]
    async with FakeAlpaca(api_key="PKTEST", secret_key="asecret-9c1d", symbols=symbols) as fake:
        venue = AlpacaVenue(SystemClock(), "PKTEST", "asecret-9c1d", url_override=fake.url, data_url=fake.url,
                            symbols=symbols, **FAST)  # type: ignore[arg-type]  # fmt: skip
        e = Engine(_settings(), venue, Journal(home / "journal.sqlite"), SystemClock(), symbols=symbols)
        await e.start()
        try:
            await wait_for(lambda: len(e.ticks) == len(symbols), what="quotes through alpaca-py")
            yield fake, e
        finally:
            await stop(e)


def resting_buy(e: Engine, symbol: str, below: str) -> OrderIntent:
    inst, last = e.instruments[symbol], e.ticks[symbol].last
    price = inst.round_price(last * (1 - D(below)))
    qty = inst.round_qty(max(D("500") / price, inst.min_qty))
    return OrderIntent(symbol, Side.BUY, qty, order_type=OrderType.LIMIT, price=price,
                       stop_loss=inst.round_price(price * D("0.97")))  # fmt: skip


def market_buy(e: Engine, symbol: str) -> OrderIntent:
    inst, last = e.instruments[symbol], e.ticks[symbol].last
    qty = inst.round_qty(max(D("1000") / last, inst.min_qty))
    return OrderIntent(symbol, Side.BUY, qty, stop_loss=inst.round_price(last * D("0.97")))


async def _emergency_stop(e: Engine, venue_open: Any) -> None:
    for symbol in e.symbols:
        for below in ("0.01", "0.02", "0.03"):
            assert e.submit_intent(resting_buy(e, symbol, below)) is not None
    await wait_for(lambda: len(venue_open()) == 6 and not e.execution.inflight, what="six resting orders")
    ok = await e.emergency_stop("test", "tester")
    assert ok and e.risk.state is TradingState.HALTED
    assert venue_open() == [] and not e.book.working()  # the venue and the engine agree: nothing open


async def _close_all(e: Engine, venue_positions: Any) -> None:
    for symbol in e.symbols:
        assert e.submit_intent(market_buy(e, symbol)) is not None
    await wait_for(lambda: e.portfolio.open_count() == 2 and not e.execution.inflight, what="two positions")
    await wait_for(lambda: e.book.working_count() == 2, what="the stop legs resting at the venue")
    summary = await e.close_all("test", "tester")
    assert summary["ok"], summary
    assert e.portfolio.open_count() == 0 and not e.book.working()
    await wait_for(lambda: not any(venue_positions().values()), what="flat at the venue")


def test_binance_emergency_stop_reaches_no_open_orders(tmp_path: Path) -> None:
    async def main() -> None:
        async with binance_engine(tmp_path) as (fake, e):
            await _emergency_stop(e, fake.matching.open_orders)

    run(main)


def test_binance_close_all_sells_what_the_engine_holds_and_is_flat(tmp_path: Path) -> None:
    async def main() -> None:
        async with binance_engine(tmp_path) as (fake, e):
            await _close_all(e, fake.matching.positions)
            assert fake.matching.open_orders() == []  # the protective stop legs went too

    run(main)


def test_alpaca_emergency_stop_reaches_no_open_orders(tmp_path: Path) -> None:
    async def main() -> None:
        async with alpaca_engine(tmp_path) as (fake, e):
            await _emergency_stop(e, fake.open_orders)

    run(main)


def test_alpaca_close_all_is_flat(tmp_path: Path) -> None:
    async def main() -> None:
        async with alpaca_engine(tmp_path) as (fake, e):
            await _close_all(e, fake.positions)
            assert fake.open_orders() == []

    run(main)


def test_a_lost_stream_is_a_journaled_connection_incident_and_its_return_is_shown(tmp_path: Path) -> None:
    async def main() -> None:
        async with binance_engine(tmp_path) as (fake, e):
            events: list[ConnectionEvent] = []
            e.bus.subscribe(events.append, ConnectionEvent)
            fake.refuse_websockets(2)
            fake.drop_websockets()
            await wait_for(lambda: any(not ev.connected for ev in events), what="link lost")
            lost = next(ev for ev in events if not ev.connected)
            assert "link lost" in lost.message
            await wait_for(lambda: e.connected and any("restored" in ev.message for ev in events),
                           timeout=15, what="link restored")  # fmt: skip
            e.journal.flush()
            kinds = [i.kind for i in e.journal.incidents()]
            assert "disconnect" in kinds  # what the testnet and live stages count
            ev = await e.stage_manager.evaluate_async()
            assert ev.measured.get("connection_incidents", 0) >= 1

    run(main)


def test_alpaca_trade_stream_loss_is_a_connection_incident(tmp_path: Path) -> None:
    async def main() -> None:
        async with alpaca_engine(tmp_path) as (fake, e):
            events: list[ConnectionEvent] = []
            e.bus.subscribe(events.append, ConnectionEvent)
            await wait_for(lambda: e.venue.stream_mode["orders"] == "websocket" and fake._ws, what="trade stream")
            fake.refuse_websockets(2)
            await fake.drop_websockets()
            await wait_for(lambda: any(not ev.connected for ev in events), what="link lost")
            await wait_for(lambda: e.connected and any("orders link restored" in ev.message for ev in events),
                           timeout=15, what="link restored")  # fmt: skip
            e.journal.flush()
            disconnects = [i.message for i in e.journal.incidents() if i.kind == "disconnect"]
            assert disconnects and disconnects[0].startswith("orders link")

    run(main)


def test_the_factory_builds_an_alpaca_engine_from_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.app.factory import RunOptions, build_engine
    from engine.core.paths import AppPaths

    async def main() -> None:
        async with FakeAlpaca(api_key="PKFACTORY", secret_key="fsecret-7d0e", symbols=["AAPL", "SPY"]) as fake:
            monkeypatch.setenv("TRADING_CONSOLE_ALPACA_API_KEY", "PKFACTORY")
            monkeypatch.setenv("TRADING_CONSOLE_ALPACA_API_SECRET", "fsecret-7d0e")
            monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
            s = _settings()
            s.engine.venue = "alpaca"
            s.stages.initial = "testnet"  # Alpaca paper is a Testnet-stage venue
            s.venues["alpaca"] = {"mode": "paper", "endpoint": fake.url, "data_url": fake.url,
                                  "stream_url": fake.stream_url, "data_stream_url": fake.stream_url,
                                  "symbols": ["AAPL", "SPY"], **FAST}  # fmt: skip
            paths = AppPaths(tmp_path / "config", tmp_path / "data", tmp_path / "logs")
            e = build_engine(s, paths, RunOptions(with_strategy=False))
            assert e.venue.name == "alpaca" and e.venue.mode.value == "paper"
            await e.start()
            try:
                await wait_for(lambda: set(e.ticks) == {"AAPL", "SPY"}, what="quotes")
            finally:
                await stop(e)

    run(main)


def test_a_paper_key_is_refused_against_the_live_endpoint() -> None:
    from engine.venues.base import AuthenticationFailed

    async def main() -> None:
        venue = AlpacaVenue(SystemClock(), "PKPAPER", "x-secret-1", paper=False)  # api.alpaca.markets
        with pytest.raises(AuthenticationFailed, match="paper key against the live endpoint"):
            await venue.connect()  # refused before any request leaves
        await venue.close()

    run(main)
