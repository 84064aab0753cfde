"""Fills that arrive late never double an exit: Binance without its private stream (fills polled).

Measured before the OrderBook: close-all sent 21 market orders for 3 positions and left the
account short; a shutdown flatten sold 8.28 ETH of holdings that predated the engine. Here
the fake has no user-data stream, so fills arrive only by polling, seconds after the REST
reply; the account also holds 10 ETH from before the engine started.
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
from engine.core.model import OrderIntent, Side
from engine.persistence.journal import Journal
from engine.venues.ccxt_venue import CcxtEndpoints, CcxtVenue
from tests.engine_rig import settings_for, stop
from tests.fakes.binance import FakeBinance
from tests.fakes.harness import guard_loopback, run, wait_for

SYMBOLS = ["BTC/USDT", "ETH/USDT"]
HELD_BEFORE = D(10)  # ETH in the account before the engine ever ran
SLOW_POLL = {"timeout_s": 2.0, "poll_interval_s": 1.5, "backoff_s": 0.01, "ws_retry_s": 30.0}


@pytest.fixture(autouse=True)
def only_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    guard_loopback(monkeypatch, ("127.0.0.1", "localhost"))


@contextlib.asynccontextmanager
async def engine_without_private_stream(
    home: Path, shutdown: str = "keep"
) -> AsyncIterator[tuple[FakeBinance, Engine]]:
    balances = {"USDT": D(100_000), "ETH": HELD_BEFORE}
    async with FakeBinance(api_key="k", api_secret="s", symbols=SYMBOLS, balances=balances,
                           user_stream="absent") as fake:  # fmt: skip
        ep = CcxtEndpoints(rest_public=fake.rest_url, ws_public=fake.ws_url, ws_private=fake.ws_api_url)
        venue = CcxtVenue(SystemClock(), "k", "s", symbols=SYMBOLS, endpoints=ep, **SLOW_POLL)  # type: ignore[arg-type]
        settings = settings_for(cash_reserve=0.0, max_position_notional=0.5, max_volatility=1000.0)
        settings.approvals.enabled = False
        settings.engine.shutdown = shutdown  # type: ignore[assignment]
        e = Engine(settings, venue, Journal(home / "journal.sqlite"), SystemClock(), symbols=SYMBOLS)
        fake.start_ticking(0.1)
        await e.start()
        try:
            await wait_for(lambda: len(e.ticks) == len(SYMBOLS), what="ticks")
            yield fake, e
        finally:
            if not e.stopped.is_set():
                await stop(e)


def _buy(e: Engine, symbol: str) -> OrderIntent:
    inst, last = e.instruments[symbol], e.ticks[symbol].last
    qty = inst.round_qty(max(D("1500") / last, inst.min_qty))
    return OrderIntent(symbol, Side.BUY, qty, stop_loss=inst.round_price(last * D("0.97")))


def _flattens(e: Engine) -> list[Any]:
    return [o for o in e.book.all_orders() if o.role in ("flatten", "exit")]


async def _two_positions(e: Engine) -> None:
    for s in SYMBOLS:
        assert e.submit_intent(_buy(e, s)) is not None
    await wait_for(lambda: e.portfolio.open_count() == 2 and not e.execution.inflight, timeout=20, what="positions")


def test_close_all_sends_one_flatten_per_position_when_fills_are_only_polled(tmp_path: Path) -> None:
    async def main() -> None:
        async with engine_without_private_stream(tmp_path) as (fake, e):
            await _two_positions(e)
            summary = await e.close_all("late fills", "tester")
            assert summary["ok"], summary
            assert len(_flattens(e)) == 2, [(o.symbol, o.qty, o.status) for o in _flattens(e)]
            assert fake.matching.balances()["ETH"].total >= HELD_BEFORE  # holdings before the engine stay
            assert e.portfolio.open_count() == 0

    run(main)


def test_a_repeated_exit_while_the_first_is_unfilled_is_refused_not_sent(tmp_path: Path) -> None:
    async def main() -> None:
        async with engine_without_private_stream(tmp_path) as (fake, e):
            await _two_positions(e)
            held = e.portfolio.qty("ETH/USDT")
            exit_intent = OrderIntent("ETH/USDT", Side.SELL, held, reduce_only=True, reason="strategy exit")
            first = e.submit_intent(exit_intent)
            second = e.submit_intent(exit_intent)  # the strategy asks again before any fill is booked
            third = e.submit_intent(exit_intent)
            assert first is not None and second is None and third is None
            await wait_for(lambda: e.portfolio.qty("ETH/USDT") == 0, timeout=20, what="the exit's polled fill")
            assert len(_flattens(e)) == 1
            assert fake.matching.balances()["ETH"].total >= HELD_BEFORE

    run(main)


def test_shutdown_close_all_never_sells_holdings_from_before_the_engine(tmp_path: Path) -> None:
    async def main() -> None:
        async with engine_without_private_stream(tmp_path, shutdown="close_all") as (fake, e):
            await _two_positions(e)
            await e.shutdown()
            e.journal.close()
            assert len(_flattens(e)) == 2
            assert fake.matching.balances()["ETH"].total >= HELD_BEFORE

    run(main)
