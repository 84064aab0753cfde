"""Order identity across journals and restarts, against the Binance fake through real ccxt.

Client ids carry a random tag per journal: a fresh journal on an account that already
traded neither reuses an id (the venue would refuse it, and an old fill would be taken
for the new order's) nor books the old fills; a restart of the same journal recognises
every order of its own, finished ones included, and labels none of them external.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path

import pytest

from engine.app.kernel import Engine
from engine.core.clock import SystemClock
from engine.core.model import OrderIntent, OrderType, Side
from engine.persistence.journal import Journal
from engine.venues.ccxt_venue import CcxtEndpoints, CcxtVenue
from tests.engine_rig import settings_for, stop
from tests.fakes.binance import FakeBinance
from tests.fakes.harness import guard_loopback, run, wait_for

SYMBOLS = ["BTC/USDT", "ETH/USDT"]
FAST = {"timeout_s": 1.0, "poll_interval_s": 0.05, "backoff_s": 0.01, "ws_retry_s": 0.3}


@pytest.fixture(autouse=True)
def only_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    guard_loopback(monkeypatch, ("127.0.0.1", "localhost"))


@contextlib.asynccontextmanager
async def engine_on(fake: FakeBinance, home: Path) -> AsyncIterator[Engine]:
    ep = CcxtEndpoints(rest_public=fake.rest_url, ws_public=fake.ws_url, ws_private=fake.ws_api_url)
    venue = CcxtVenue(SystemClock(), "tc-test-key", "tc-test-secret", symbols=SYMBOLS, endpoints=ep, **FAST)  # type: ignore[arg-type]
    settings = settings_for(cash_reserve=0.0, max_position_notional=0.5, max_volatility=1000.0)
    settings.approvals.enabled = False
    settings.engine.shutdown = "keep"
    e = Engine(settings, venue, Journal(home / "journal.sqlite"), SystemClock(), symbols=SYMBOLS)
    await e.start()
    try:
        await wait_for(lambda: len(e.ticks) == len(SYMBOLS), what="ticks")
        yield e
    finally:
        await stop(e)


def _alerts(home: Path, code: str) -> list[str]:
    with Journal(home / "journal.sqlite") as j:
        return [a.message for a in j.alerts() if a.code == code]


async def _trade(e: Engine) -> list[str]:
    """A filled market buy and a resting limit buy; returns their client ids."""
    inst, last = e.instruments["BTC/USDT"], e.ticks["BTC/USDT"].last
    qty = inst.round_qty(max(D("1000") / last, inst.min_qty))
    filled = e.submit_intent(OrderIntent("BTC/USDT", Side.BUY, qty, stop_loss=inst.round_price(last * D("0.97"))))
    eth, eth_last = e.instruments["ETH/USDT"], e.ticks["ETH/USDT"].last
    price = eth.round_price(eth_last * D("0.97"))
    resting = e.submit_intent(OrderIntent("ETH/USDT", Side.BUY, eth.round_qty(max(D("500") / price, eth.min_qty)),
                                          order_type=OrderType.LIMIT, price=price,
                                          stop_loss=eth.round_price(price * D("0.97"))))  # fmt: skip
    assert filled is not None and resting is not None
    await wait_for(lambda: e.portfolio.qty("BTC/USDT") > 0 and not e.execution.inflight, what="a fill")
    await wait_for(lambda: e.book.working_count() >= 2, what="the resting order and the stop leg")
    return [filled.client_id, resting.client_id]


def test_a_fresh_journal_on_a_traded_account_neither_collides_nor_adopts_old_fills(tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeBinance(api_key="tc-test-key", api_secret="tc-test-secret", symbols=SYMBOLS) as fake:
            fake.start_ticking(0.1)
            async with engine_on(fake, tmp_path / "first") as first:
                old_ids = await _trade(first)
            async with engine_on(fake, tmp_path / "second") as second:
                assert second.portfolio.open_count() == 0  # the first journal's fills are not ours
                assert second.journal.flush() and second.journal.fills() == []
                new_ids = await _trade(second)
                assert not set(new_ids) & set(old_ids)
                assert all(fake.placed[cid] == 1 for cid in old_ids + new_ids)  # no id reached the venue twice
                first_tag, second_tag = old_ids[0].split("-")[1], new_ids[0].split("-")[1]
                assert first_tag != second_tag
                # the first journal's resting order is someone else's to this journal: external, not traded
                assert second.book.get(old_ids[1]) is not None and second.book.get(old_ids[1]).external  # type: ignore[union-attr]

    run(main)


def test_a_restart_labels_none_of_its_own_orders_external(tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeBinance(api_key="tc-test-key", api_secret="tc-test-secret", symbols=SYMBOLS) as fake:
            fake.start_ticking(0.1)
            async with engine_on(fake, tmp_path) as e:
                ids = await _trade(e)
                stop_legs = [o.client_id for o in e.book.working() if o.role == "stop_loss"]
                await e.cancel_order(e.book.get(ids[1]))  # type: ignore[arg-type]  # a cancel reply with a new id
                await wait_for(lambda: e.book.working_order(ids[1]) is None, what="the cancel")
            async with engine_on(fake, tmp_path) as again:
                for cid in ids + stop_legs:
                    known = again.book.get(cid)
                    assert known is not None and not known.external, cid
                assert again.portfolio.qty("BTC/USDT") > 0
            assert _alerts(tmp_path, "external_order") == []

    run(main)
