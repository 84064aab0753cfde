"""Venue faults on submit and cancel, met by the whole engine on Binance (real ccxt, FakeBinance).

Each fault mode on the order endpoint (timeout, 429, 5xx, malformed reply, dropped acknowledgement),
once on a market buy and once on an operator's cancel, must leave what an operator relies on: a journal
row naming the fault, one alert (not one per retry), no false "connection lost", and an engine that
agrees with the venue after at most one reconciliation: the same working orders, one order per
intent, the position the account holds beyond the coins it held before, the same cash.

Measured before the fixes: timeouts, 5xx, malformed and lost answers that the venue settled itself
(the order found by its client id, the cancel read back) left no journal row and no alert; a 429 on
a cancel was retried inside its Retry-After four times (four alerts, 4 of 5 venue errors toward the
breaker) and then dropped, the order left working; a buy whose answer was lost was reported by the
user stream before the look-up, so the stream was declared silent ("orders link lost"); the ping
inside a 429's Retry-After was refused unsent and reported as "rest link lost".
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from engine.app.kernel import Engine
from engine.core.clock import SystemClock
from engine.core.model import Order, OrderIntent, OrderStatus, OrderType, Side
from engine.persistence.journal import Journal
from engine.venues.ccxt_venue import CcxtEndpoints, CcxtVenue
from tests.engine_rig import settings_for, stop
from tests.fakes.binance import FakeBinance
from tests.fakes.harness import guard_loopback, run, wait_for

KEY, SECRET = "faults-key", "faults-secret-4"
SYMBOL = "BTC/USDT"  # the account holds no BTC from before: the position is the engine's alone
ORDER_PATH = "/api/v3/order"
TIMEOUT_S = 0.4
FAST = {"timeout_s": TIMEOUT_S, "poll_interval_s": 0.05, "backoff_s": 0.01, "ws_retry_s": 0.3, "recv_window_s": 2.0}
# The fault as the fake plays it, and what the operator's alert must name on a submit and on a cancel.
# A cancel's lost answer is seen as a reset, or not at all: aiohttp resends a DELETE dropped on a
# reused keep-alive connection, and the resend is answered "unknown order" (the first one cancelled it).
FAULTS: dict[str, tuple[dict[str, Any], str, str]] = {
    "timeout": ({"kind": "delay", "delay_s": 2.5 * TIMEOUT_S}, "VenueTimeout", "VenueTimeout"),
    "429": ({"kind": "rate_limit", "retry_after_s": 1}, "RateLimited", "RateLimited"),
    "5xx": ({"kind": "server_error", "status": 503}, "VenueUnavailable", "VenueUnavailable"),
    "malformed": ({"kind": "malformed"}, "MalformedReply", "MalformedReply"),
    "dropped_ack": ({"kind": "ack_lost"}, "VenueUnavailable", "VenueUnavailable|first answer was lost"),
}


@pytest.fixture(autouse=True)
def only_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    guard_loopback(monkeypatch, ("127.0.0.1", "localhost"))


@contextlib.asynccontextmanager
async def engine_on_binance(home: Path) -> AsyncIterator[tuple[FakeBinance, Engine]]:
    s = settings_for(cash_reserve=0.0, max_position_notional=0.25, max_volatility=1000.0)
    s.approvals.enabled = False
    s.engine.shutdown = "keep"
    async with FakeBinance.real_like(api_key=KEY, api_secret=SECRET) as fake:
        fake.start_ticking(0.1)
        symbols = list(fake.instruments)
        ep = CcxtEndpoints(rest_public=fake.rest_url, ws_public=fake.ws_url, ws_private=fake.ws_api_url)
        venue = CcxtVenue(SystemClock(), KEY, SECRET, symbols=symbols, endpoints=ep, **FAST)  # type: ignore[arg-type]
        e = Engine(s, venue, Journal(home / "journal.sqlite"), SystemClock(), symbols=symbols)
        await e.start()
        try:
            await wait_for(lambda: len(e.ticks) == len(symbols), what="ticks")
            yield fake, e
        finally:
            await stop(e)


def settled(e: Engine, order: Order) -> Order:
    return e.book.get(order.client_id) or order


def held(fake: FakeBinance, asset: str) -> D:
    bal = fake.matching.balances().get(asset)
    return bal.total if bal is not None else D(0)


async def assert_agrees_after_one_reconciliation(e: Engine, fake: FakeBinance) -> None:
    report = await e.reconciler.run("manual")  # type: ignore[union-attr]
    assert report.ok and report.mismatches == (), report.summary()
    at_venue = {o.client_id: o.status for o in fake.matching.open_orders(None)}
    assert {cid: o.status for cid, o in e.orders.items()} == at_venue  # nothing open on one side only
    for cid in fake.placed:  # and every order the venue has, in the state the venue has it
        theirs, mine = fake.matching.order(cid), e.book.get(cid)
        assert mine is not None and theirs is not None and (mine.status, mine.filled_qty) == (
            theirs.status, theirs.filled_qty), (mine, theirs)  # fmt: skip
    assert e.portfolio.qty(SYMBOL) == held(fake, "BTC") - e.account.baseline_for(SYMBOL)
    assert e.portfolio.cash == held(fake, "USDT")
    # no link was lost: none may be reported so (a reconciliation outlasts the stream's grace and the ping)
    e.journal.flush()
    assert e.health.connected and not [i.message for i in e.journal.incidents() if i.kind == "disconnect"]


def assert_journaled_and_alerted_once(e: Engine, error: str, link: str) -> None:
    e.journal.flush()
    incidents = [i.message for i in e.journal.incidents() if i.kind == "venue_error"]
    assert any(re.search(error, m) and link in m for m in incidents), incidents
    faults = [a.message for a in e.journal.alerts() if a.code == "venue_error"]
    assert len(faults) == 1 and re.search(error, faults[0]), faults  # one alert for the fault, not one per retry


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_fault_on_a_market_buy_leaves_one_buy_booked_and_protected(fault: str, tmp_path: Path) -> None:
    """The real risk of a lost answer on a market buy: a second buy on retry, or a bought position
    the engine never books (and so never protects)."""

    async def main() -> None:
        plan, error, _ = FAULTS[fault]
        async with engine_on_binance(tmp_path) as (fake, e):
            inst, last = e.instruments[SYMBOL], e.ticks[SYMBOL].last
            fake.fail_next(ORDER_PATH, method="POST", **plan)
            order = e.submit_intent(OrderIntent(SYMBOL, Side.BUY, inst.round_qty(D(100) / last),
                                                stop_loss=inst.round_price(last * D("0.97"))))  # fmt: skip
            assert order is not None
            cid = order.client_id
            await wait_for(lambda: settled(e, order).status.is_terminal and not e.execution.inflight,
                           what="the buy settled")  # fmt: skip
            # nothing is sent again while the first request could still arrive (a held one lands late and is
            # found); one the venue never handled (5xx, malformed) is sent again once its receive window closed
            assert fake.submit_attempts[cid] == (0 if fault == "429" else 1)  # requests that reached the venue
            assert fake.faults.injected == [("POST", ORDER_PATH, plan["kind"])]
            assert fake.placed[cid] <= 1  # never a second buy
            done = settled(e, order)
            if fake.placed[cid]:  # it reached the book: booked, and protected by a stop leg
                await wait_for(lambda: any(o.role == "stop_loss" and o.status is OrderStatus.OPEN
                                           for o in e.orders.values()), what="the stop leg")  # fmt: skip
                assert done.status is OrderStatus.FILLED and e.portfolio.qty(SYMBOL) == held(fake, "BTC") > 0
            else:  # refused before anything was done: the order row says why
                assert done.status is OrderStatus.REJECTED and "429" in done.reason, done
            assert_journaled_and_alerted_once(e, error, "submit")
            journaled = e.journal.order(cid)
            assert journaled is not None and journaled.status is done.status
            await assert_agrees_after_one_reconciliation(e, fake)

    run(main)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_fault_on_an_operators_cancel_still_cancels_and_leaves_a_record(fault: str, tmp_path: Path) -> None:
    async def main() -> None:
        plan, _, error = FAULTS[fault]
        async with engine_on_binance(tmp_path) as (fake, e):
            inst, last = e.instruments[SYMBOL], e.ticks[SYMBOL].last
            price = inst.round_price(last * D("0.96"))  # rests away from the market
            order = e.submit_intent(OrderIntent(SYMBOL, Side.BUY, inst.round_qty(D(100) / price),
                                                order_type=OrderType.LIMIT, price=price,
                                                stop_loss=inst.round_price(price * D("0.97"))))  # fmt: skip
            assert order is not None
            cid = order.client_id
            await wait_for(lambda: settled(e, order).status is OrderStatus.OPEN and not e.execution.inflight,
                           what="the order resting")  # fmt: skip
            fake.fail_next(ORDER_PATH, method="DELETE", **plan)
            assert e.api.cancel(cid, operator="tester").ok
            # the operator's command done (its task ended), not only the stream's report of the cancel
            await wait_for(lambda: settled(e, order).status is OrderStatus.CANCELED and not e.api.pending(), timeout=8,
                           what="the cancel done and booked")  # fmt: skip
            assert fake.faults.injected == [("DELETE", ORDER_PATH, plan["kind"])]
            theirs = fake.matching.order(cid)
            assert theirs is not None and theirs.status is OrderStatus.CANCELED and fake.placed[cid] == 1
            assert_journaled_and_alerted_once(e, error, "cancel")
            journaled = e.journal.order(cid)
            assert journaled is not None and journaled.status is OrderStatus.CANCELED
            await assert_agrees_after_one_reconciliation(e, fake)

    run(main)


def test_a_429_on_closing_a_position_is_waited_out_and_the_position_closes(tmp_path: Path) -> None:
    """An exit (like a stop leg or a flatten) must still get through a rate limit: it waits out the
    Retry-After once and is sent again, where an entry is given up."""

    async def main() -> None:
        async with engine_on_binance(tmp_path) as (fake, e):
            inst, last = e.instruments[SYMBOL], e.ticks[SYMBOL].last
            entry = e.submit_intent(OrderIntent(SYMBOL, Side.BUY, inst.round_qty(D(100) / last),
                                                stop_loss=inst.round_price(last * D("0.97"))))  # fmt: skip
            assert entry is not None
            await wait_for(lambda: any(o.role == "stop_loss" and o.status is OrderStatus.OPEN
                                       for o in e.orders.values()), what="the stop leg")  # fmt: skip
            fake.fail_next(ORDER_PATH, "rate_limit", method="POST", retry_after_s=1)
            assert e.api.close_position(SYMBOL, "tester", "done with it").ok
            await wait_for(lambda: e.portfolio.qty(SYMBOL) == 0 and not e.execution.inflight, timeout=10,
                           what="the position closed")  # fmt: skip
            assert fake.faults.injected == [("POST", ORDER_PATH, "rate_limit")]
            e.journal.flush()  # the journal is written by its own thread: read it once the rows are in
            exits = [o for o in e.journal.orders() if o.role == "exit"]
            assert [o.status for o in exits] == [OrderStatus.FILLED]  # one exit, sent again after the wait
            assert held(fake, "BTC") == e.portfolio.dust.get(SYMBOL, D(0))
            assert_journaled_and_alerted_once(e, "RateLimited", "submit")
            await assert_agrees_after_one_reconciliation(e, fake)

    run(main)
