"""Venue truth on Binance spot (real ccxt against the fake on 127.0.0.1): timeouts on every call,
per-link fallbacks, fills from the place reply, confirmed cancels and typed faults."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from engine.core.model import OrderStatus, OrderUpdate
from engine.venues.base import (
    MalformedReply,
    VenueError,
    VenueTimeout,
    VenueUnavailable,
)
from tests.ccxt_rig import (
    ORDER_PATH,
    SYMBOLS,
    collecting,
    down,
    market,
    resting,
    rig,
)
from tests.fakes.blackhole import BlackHole
from tests.fakes.harness import guard_loopback, run, wait_for


@pytest.fixture(autouse=True)
def only_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    guard_loopback(monkeypatch)


# -- 1. timeouts: one per call kind ---------------------------------------------------------------


def test_a_rest_call_that_never_answers_raises_a_retryable_timeout() -> None:
    async def main() -> None:
        async with rig() as (fake, venue, _):
            await venue.connect()
            fake.fail_next("/api/v3/account", "delay", n=10, delay_s=2)
            with pytest.raises(VenueTimeout) as info:
                await venue.balances()
            assert info.value.retryable and isinstance(info.value, VenueError)

    run(main)


def test_connect_against_a_rest_endpoint_that_never_answers_times_out() -> None:
    async def main() -> None:
        async with BlackHole() as hole, rig(endpoints={"rest_public": hole.http_url + "/api/v3"}) as (_, venue, _l):
            with pytest.raises(VenueTimeout):
                await venue.connect()
            assert hole.connections >= 1

    run(main)


def test_a_websocket_that_never_completes_its_handshake_falls_back_to_polling_per_link() -> None:
    async def main() -> None:
        async with BlackHole() as hole, rig(endpoints={"ws_public": hole.ws_url, "ws_private": hole.ws_url}) as (
            fake, venue, links,
        ):  # fmt: skip
            await venue.connect()
            async with collecting(venue.order_updates()) as updates, collecting(venue.market_stream(SYMBOLS)) as ticks:
                await wait_for(lambda: down(links, "orders") and down(links, "market"), what="both links down")
                assert venue.stream_mode == {"orders": "polling", "market": "polling"}
                fake.step()
                await wait_for(lambda: bool(ticks), what="ticks by polling")
                result = await venue.place(market("poll-1"))
                await wait_for(lambda: any(u.fill for u in updates), 5.0, "a fill by polling")
                assert {u.fill.fill_id for u in updates if u.fill} == {f.fill_id for f in result.fills}

    run(main)


def test_an_authentication_that_is_never_answered_times_out_and_polls() -> None:
    """The private websocket connects but does not speak ws-api: no subscription reply, ever."""

    async def main() -> None:
        async with rig({"user_stream": "silent"}) as (fake, venue, links):
            await venue.connect()
            async with collecting(venue.order_updates()) as updates:
                await wait_for(lambda: down(links, "orders"), 5.0, "orders link reported down")
                assert "no answer within" in next(why for name, up, why in links if name == "orders" and not up)
                assert not down(links, "market")  # per link: the market stream was never touched
                order = await venue.submit(resting(fake, "silent-1"))
                fake.push_tick("BTC/USDT", order.price - D("0.5"), order.price, volume=D(1))  # type: ignore[operator]
                await wait_for(lambda: any(u.fill for u in updates), 5.0, "the fill by polling")

    run(main)


def test_a_market_subscription_that_is_never_answered_times_out_and_polls() -> None:
    async def main() -> None:
        async with rig() as (fake, venue, links):
            fake.market_stream = "silent"
            await venue.connect()
            async with collecting(venue.market_stream(SYMBOLS)) as ticks:
                await wait_for(lambda: down(links, "market"), 5.0, "market link down")
                fake.step()
                await wait_for(lambda: bool(ticks), 5.0, "ticks by polling")
            assert not down(links, "orders")

    run(main)


def test_an_absent_user_stream_is_reported_and_fills_arrive_from_the_reply_and_polls() -> None:
    async def main() -> None:
        async with rig({"user_stream": "absent"}) as (_fake, venue, links):
            await venue.connect()
            async with collecting(venue.order_updates()) as updates:
                await wait_for(lambda: down(links, "orders"), 5.0, "orders link down")
                result = await venue.place(market("absent-1"))
                assert result.order.status is OrderStatus.FILLED and result.fills
                await wait_for(lambda: any(u.fill for u in updates), 5.0, "the same fill by polling")
                polled = {u.fill.fill_id for u in updates if u.fill}
                assert polled == {f.fill_id for f in result.fills}

    run(main)


def test_a_slow_user_stream_does_not_delay_fills_past_the_grace() -> None:
    """The stream subscribes fine but reports 5 s late: the acknowledged order is polled within the grace."""

    async def main() -> None:
        async with rig({"user_stream_delay_s": 30.0}) as (fake, venue, links):
            await venue.connect()
            async with collecting(venue.order_updates()) as updates:
                await wait_for(lambda: fake.websocket_count == 1, what="user stream subscribed")
                order = await venue.submit(resting(fake, "slow-1"))
                fake.push_tick("BTC/USDT", order.price - D("0.5"), order.price, volume=D(1))  # type: ignore[operator]
                await wait_for(lambda: any(u.fill for u in updates), 5.0, "the fill well before the stream's")
                assert down(links, "orders")  # a stream that lags is reported, not trusted

    run(main)


# -- 3. fills in the place reply ------------------------------------------------------------------


def test_a_market_order_reply_carries_its_fills_under_the_venues_trade_ids() -> None:
    async def main() -> None:
        async with rig() as (fake, venue, _):
            await venue.connect()
            async with collecting(venue.order_updates()) as updates:
                await wait_for(lambda: fake.websocket_count == 1, what="user stream subscribed")
                result = await venue.place(market("full-1"))
                assert result.order.status is OrderStatus.FILLED
                assert sum(f.qty for f in result.fills) == D("0.01")
                trade_ids = [tid for tid, f in fake._trades if f.client_id == "full-1"]
                assert [f.fill_id for f in result.fills] == [f"BTCUSDT-{t}" for t in trade_ids]
                await wait_for(lambda: any(u.fill for u in updates), what="the stream's report")
                assert {u.fill.fill_id for u in updates if u.fill} == {f.fill_id for f in result.fills}
            assert venue.capabilities().fills_in_submit_reply

    run(main)


# -- 4. cancels -----------------------------------------------------------------------------------


def test_a_cancel_reply_with_a_new_client_id_maps_back_to_ours() -> None:
    async def main() -> None:
        async with rig() as (fake, venue, _):
            await venue.connect()
            async with collecting(venue.order_updates()) as updates:
                await wait_for(lambda: fake.websocket_count == 1, what="user stream subscribed")
                order = await venue.submit(resting(fake, "mine-1"))
                canceled = await venue.cancel(order)
                assert fake.cancel_ids["mine-1"] != "mine-1"  # the fake names the cancel like Binance
                assert canceled.client_id == "mine-1" and canceled.status is OrderStatus.CANCELED
                assert not canceled.external
                await wait_for(lambda: any(u.order.status is OrderStatus.CANCELED for u in updates), what="report")
                assert {u.order.client_id for u in updates} == {"mine-1"}
            assert set(venue.tracked_orders()) == {"mine-1"}

    run(main)


@pytest.mark.parametrize("fault", [{"kind": "delay", "delay_s": 1.0}, {"kind": "malformed"},
                                   {"kind": "ack_lost"}, {"kind": "server_error", "status": 502}])  # fmt: skip
def test_an_unconfirmed_cancel_is_settled_by_reading_the_order_back(fault: dict[str, Any]) -> None:
    async def main() -> None:
        async with rig() as (fake, venue, _):
            await venue.connect()
            order = await venue.submit(resting(fake, "c-1"))
            fake.fail_next(ORDER_PATH, method="DELETE", **fault)
            canceled = await venue.cancel(order)
            assert canceled.client_id == "c-1" and canceled.status is OrderStatus.CANCELED
            assert fake.matching.order("c-1").status is OrderStatus.CANCELED  # type: ignore[union-attr]
            assert ("GET", ORDER_PATH) in fake.requests  # it was read back

    run(main)


def test_a_cancel_that_stays_unknown_raises_a_retryable_error() -> None:
    async def main() -> None:
        async with rig() as (fake, venue, _):
            await venue.connect()
            order = await venue.submit(resting(fake, "c-2"))
            fake.fail_next(ORDER_PATH, "server_error", n=20, status=503)  # cancels and read-backs alike
            with pytest.raises(VenueUnavailable) as info:
                await venue.cancel(order)
            assert info.value.retryable
            fake.faults.clear()
            assert (await venue.lookup(order)).status is OrderStatus.OPEN  # type: ignore[union-attr]

    run(main)


# -- 5. faults on submit --------------------------------------------------------------------------


@pytest.mark.parametrize(("fault", "error"), [
    ({"kind": "delay", "delay_s": 2}, VenueTimeout),
    ({"kind": "server_error", "status": 503}, VenueUnavailable),
    ({"kind": "malformed"}, MalformedReply),
])  # fmt: skip
def test_a_submit_fault_that_persists_ends_as_its_typed_retryable_error(fault: dict[str, Any],
                                                                        error: type[VenueError]) -> None:  # fmt: skip
    async def main() -> None:
        async with rig() as (fake, venue, _):
            await venue.connect()
            fake.fail_next(ORDER_PATH, method="POST", n=10, **fault)
            with pytest.raises(error) as info:
                await venue.submit(resting(fake, "f-1"))
            assert info.value.retryable
            assert fake.placed["f-1"] == 0

    run(main)


def test_a_dropped_submit_acknowledgement_returns_the_placed_order_once() -> None:
    async def main() -> None:
        async with rig() as (fake, venue, _):
            await venue.connect()
            fake.fail_next(ORDER_PATH, "ack_lost", method="POST")
            result = await venue.place(market("lost-1"))
            assert result.order.status is OrderStatus.FILLED and fake.placed["lost-1"] == 1
            assert result.fills == ()  # read back, not from a reply: the stream and polls bring them

    run(main)


def test_order_updates_are_a_stream_of_updates() -> None:
    """Typing guard: OrderUpdate is what order_updates yields (the consumer contract)."""
    assert OrderUpdate.__dataclass_fields__.keys() >= {"order", "fill"}


def test_a_market_stream_that_goes_quiet_after_subscribing_is_reported_and_polled() -> None:
    async def main() -> None:
        async with rig(market_silence_s=0.5) as (fake, venue, links):
            await venue.connect()
            async with collecting(venue.market_stream(SYMBOLS)) as ticks:
                await wait_for(lambda: bool(ticks), what="the first ticks by websocket")
                assert venue.stream_mode["market"] == "websocket"
                await wait_for(lambda: down(links, "market"), 5.0, "the quiet market link reported down")
                seen = len(ticks)
                fake.step()
                await wait_for(lambda: len(ticks) > seen, 5.0, "ticks by polling")
            assert not down(links, "orders")

    run(main)


def test_a_market_link_loss_is_reported_while_the_orders_link_is_already_down() -> None:
    """Per link, not per venue: the second loss is news too."""

    async def main() -> None:
        async with rig({"user_stream": "absent"}) as (fake, venue, links):
            await venue.connect()
            async with collecting(venue.order_updates()), collecting(venue.market_stream(SYMBOLS)) as ticks:
                await wait_for(lambda: down(links, "orders"), 5.0, "orders link down")
                await wait_for(lambda: bool(ticks), what="ticks by websocket")
                assert not down(links, "market")
                fake.refuse_websockets(100)
                fake.drop_websockets()
                await wait_for(lambda: down(links, "market"), 5.0, "market link down as well")
            assert [name for name, up, _ in links if not up] == ["orders", "market"]

    run(main)
