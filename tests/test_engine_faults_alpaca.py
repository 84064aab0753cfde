"""Venue faults on submit and cancel, met by the whole engine on Alpaca (real alpaca-py, FakeAlpaca).

Each fault mode (timeout, 429, 5xx, malformed reply, dropped acknowledgement) on the order endpoint,
once on a submit and once on an operator's cancel, must leave what an operator relies on: a journal
row naming the fault, one alert (not one per retry), and an engine that agrees with the venue after at
most one reconciliation: the same working orders, one order per intent, the position the account holds
beyond the shares it held before, the same cash.

Measured before: a fault the venue got past itself (a timeout, 5xx, unreadable or lost answer on a
submit or a cancel, settled by looking the order up) left no journal row and no alert; a 429 on a
cancel lost the cancel (four attempts within the Retry-After, the order left open at the venue); a
cancel retried raised one alert per attempt.
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
from engine.core.model import Order, OrderIntent, OrderStatus, OrderType, Side
from engine.persistence.journal import Journal
from engine.venues.alpaca_venue import AlpacaVenue
from tests.engine_rig import settings_for, stop
from tests.fakes.alpaca import FakeAlpaca
from tests.fakes.harness import guard_loopback, run, wait_for

KEY, SECRET = "PKFAULTS", "faults-secret-3"
SYMBOL = "AAPL"
HELD_BEFORE = D(5)  # real_like(): shares the account held before the engine
TIMEOUT_S = 0.4
FAST = {"timeout_s": TIMEOUT_S, "ws_timeout_s": TIMEOUT_S, "poll_interval_s": 0.05, "backoff_s": 0.01,
        "ws_retry_s": 0.3}  # fmt: skip
# The fault as the fake plays it, and the error the operator's alert must name.
FAULTS: dict[str, tuple[dict[str, Any], str]] = {
    "timeout": ({"kind": "delay", "delay_s": 2.5 * TIMEOUT_S}, "VenueTimeout"),
    "429": ({"kind": "rate_limit", "retry_after_s": 1}, "RateLimited"),
    "5xx": ({"kind": "server_error", "status": 503}, "VenueUnavailable"),
    "malformed": ({"kind": "malformed", "body": '{"id": '}, "MalformedReply"),
    "dropped_ack": ({"kind": "ack_lost"}, "VenueUnavailable"),
}


@pytest.fixture(autouse=True)
def only_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    guard_loopback(monkeypatch, ("127.0.0.1", "localhost"))


@contextlib.asynccontextmanager
async def engine_on(fake: FakeAlpaca, home: Path) -> AsyncIterator[Engine]:
    s = settings_for(cash_reserve=0.0, max_position_notional=0.25, max_volatility=1000.0)
    s.approvals.enabled = False
    s.engine.shutdown = "keep"
    venue = AlpacaVenue(SystemClock(), KEY, SECRET, url_override=fake.url, data_url=fake.url, symbols=[SYMBOL],
                        **FAST)  # type: ignore[arg-type]  # fmt: skip
    e = Engine(s, venue, Journal(home / "journal.sqlite"), SystemClock(), symbols=[SYMBOL])
    await e.start()
    try:
        await wait_for(lambda: SYMBOL in e.ticks, what="quotes")
        yield e
    finally:
        await stop(e)


def inject(fake: FakeAlpaca, fault: str, path: str, method: str, retried: bool) -> int:
    """The fault on the next request, and on the retry too where one follows (a lost acknowledgement
    is not retried: the work was done): each occurrence must be a journal row, all of them one alert."""
    plan, _ = FAULTS[fault]
    n = 2 if retried and fault != "dropped_ack" else 1
    fake.fail_next(path, method=method, n=n, **plan)
    return n


def settled(e: Engine, order: Order) -> Order:
    return e.book.get(order.client_id) or order


async def assert_agrees_after_one_reconciliation(e: Engine, fake: FakeAlpaca) -> None:
    report = await e.reconciler.run("manual")  # type: ignore[union-attr]
    assert report.ok and report.mismatches == () and report.adopted_orders == (), report.summary()
    at_venue = {o.client_id: o.status for o in fake.open_orders()}
    assert {cid: o.status for cid, o in e.orders.items()} == at_venue  # nothing open on one side only
    assert e.portfolio.qty(SYMBOL) == fake.positions().get(SYMBOL, D(0)) - HELD_BEFORE
    assert e.portfolio.cash == fake.matching.balances()["USD"].total


async def assert_journaled_and_alerted_once(e: Engine, fake: FakeAlpaca, error: str, n: int) -> None:
    # A cancel's stream update can book it before the venue's call returns with the faults it got past.
    await wait_for(lambda: any(a.code == "venue_error" for a in e.alert_center.unacknowledged()), what="the alert")
    assert len(fake.faults.injected) == n and fake.faults.pending() == 0  # every planned fault was met
    assert e.journal.flush(), (e.journal.errors, e.journal.last_error, e.journal.failure)
    incidents = [i.message for i in e.journal.incidents() if i.kind == "venue_error"]
    assert len(incidents) == n and all(error in m for m in incidents), incidents
    alerts = [a.message for a in e.journal.alerts() if a.code == "venue_error"]
    assert len(alerts) == 1 and error in alerts[0], alerts  # one alert for the fault, not one per retry


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_fault_on_a_market_buy_leaves_one_order_the_position_and_a_record(fault: str, tmp_path: Path) -> None:
    """The real risk of a lost answer on a market buy: a second buy on retry, or a bought position the
    engine never books (unprotected)."""

    async def main() -> None:
        error = FAULTS[fault][1]
        async with FakeAlpaca.real_like(api_key=KEY, secret_key=SECRET, symbols=[SYMBOL]) as fake, \
                engine_on(fake, tmp_path) as e:  # fmt: skip
            stop_at = e.instruments[SYMBOL].round_price(e.ticks[SYMBOL].last * D("0.98"))
            n = inject(fake, fault, "/v2/orders", "POST", retried=fault != "429")  # a 429 says: nothing done
            order = e.submit_intent(OrderIntent(SYMBOL, Side.BUY, D(1), stop_loss=stop_at))
            assert order is not None
            await wait_for(lambda: settled(e, order).status.is_terminal and not e.execution.inflight,
                           what="the buy settled")  # fmt: skip
            done = settled(e, order)
            if fault == "429":  # refused before anything was done: nothing bought, the order row says why
                assert fake.placed[order.client_id] == 0 and fake.positions()[SYMBOL] == HELD_BEFORE
                assert done.status is OrderStatus.REJECTED and "429" in done.reason
            else:  # bought once, booked, and protected by a stop leg
                assert fake.placed[order.client_id] == 1  # never a second buy
                assert done.status is OrderStatus.FILLED and e.portfolio.qty(SYMBOL) == 1
                await wait_for(lambda: any(o.role == "stop_loss" for o in e.orders.values()), what="the stop leg")
            e.journal.flush()
            assert e.journal.order(order.client_id).status is done.status  # type: ignore[union-attr]
            await assert_journaled_and_alerted_once(e, fake, error, n)
            await assert_agrees_after_one_reconciliation(e, fake)

    run(main)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_fault_on_an_operators_cancel_still_cancels_and_leaves_a_record(fault: str, tmp_path: Path) -> None:
    async def main() -> None:
        error = FAULTS[fault][1]
        async with FakeAlpaca.real_like(api_key=KEY, secret_key=SECRET, symbols=[SYMBOL]) as fake, \
                engine_on(fake, tmp_path) as e:  # fmt: skip
            inst, last = e.instruments[SYMBOL], e.ticks[SYMBOL].last
            price = inst.round_price(last * D("0.95"))  # rests away from the market
            order = e.submit_intent(OrderIntent(SYMBOL, Side.BUY, D(1), order_type=OrderType.LIMIT, price=price,
                                                stop_loss=inst.round_price(price * D("0.98"))))  # fmt: skip
            assert order is not None
            await wait_for(lambda: settled(e, order).status is OrderStatus.OPEN and not e.execution.inflight,
                           what="the order resting")  # fmt: skip
            n = inject(fake, fault, f"/v2/orders/{settled(e, order).venue_order_id}", "DELETE", retried=True)
            assert e.api.cancel(order.client_id, operator="tester").ok
            await wait_for(lambda: settled(e, order).status is OrderStatus.CANCELED, what="the cancel booked")
            assert fake.matching.order(order.client_id).status is OrderStatus.CANCELED  # type: ignore[union-attr]
            assert fake.placed == {order.client_id: 1}
            e.journal.flush()
            assert e.journal.order(order.client_id).status is OrderStatus.CANCELED  # type: ignore[union-attr]
            await assert_journaled_and_alerted_once(e, fake, error, n)
            await assert_agrees_after_one_reconciliation(e, fake)

    run(main)
