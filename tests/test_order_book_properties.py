"""Invariants of the OrderBook under any interleaving of the venue's news (hypothesis).

A fill may arrive in the REST reply, on the stream, from a poll and from a
reconciliation, in any order and any number of times; order updates may be
stale, duplicated or name the order by its venue id only. Whatever happens:
each fill is booked exactly once, a finished order never reopens, and a
reducing order is never sized beyond what the position still holds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.model import Fill, Order, OrderStatus, OrderType, Side
from engine.oms.order_book import OrderBook

T0 = datetime(2026, 3, 2, tzinfo=UTC)
D = Decimal


def _order(book: OrderBook, qty: str, role: str = "flatten", side: Side = Side.SELL) -> Order:
    return Order(book.next_client_id(), "BTC/USDT", side, OrderType.MARKET, D(qty), role=role,
                 reduce_only=role != "entry", created_at=T0)  # fmt: skip


def _news(order: Order, parts: list[int]) -> list[tuple[str, object]]:
    """Every message a venue could send about one order that fills in `parts` (tenths of its size)."""
    fills, news = [], []
    done = D(0)
    for i, tenths in enumerate(parts):
        qty = order.qty * tenths / 10
        done += qty
        fills.append(Fill(f"trade-{order.client_id}-{i}", order.client_id, order.symbol, order.side, qty,
                          D(100), D(0), T0))  # fmt: skip
    status = OrderStatus.FILLED if done == order.qty else OrderStatus.PARTIALLY_FILLED
    final = order.evolve(status=status, filled_qty=done, venue_order_id=f"v-{order.client_id}")
    for f in fills:
        news.append(("fill", f))
    news.append(("reply", (final, tuple(fills))))  # a REST reply that already carries the trades
    news.append(("update", order.evolve(status=OrderStatus.OPEN, venue_order_id=f"v-{order.client_id}")))
    news.append(("update", final))
    # a Binance cancel reply: a new clientOrderId, the original in origClientOrderId
    by_venue_id = final.evolve(client_id="x-renamed", orig_client_id=order.client_id)
    news.append(("update", by_venue_id))
    return news


split = st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=4).filter(lambda p: sum(p) <= 10)


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(split, min_size=1, max_size=3),
    data=st.data(),
)
def test_each_fill_is_booked_once_whatever_the_order_of_news(parts: list[list[int]], data: st.DataObject) -> None:
    book = OrderBook("abc123", 1)
    orders = [_order(book, "1.0") for _ in parts]
    for o in orders:
        book.register(o)
    news = [msg for o, p in zip(orders, parts, strict=True) for msg in _news(o, p)]
    news = news + data.draw(st.lists(st.sampled_from(news), max_size=10))  # duplicates, replays
    shuffled = data.draw(st.permutations(news))
    booked: list[str] = []
    for kind, payload in shuffled:
        if kind == "fill":
            fill = payload  # type: ignore[assignment]
            cid = fill.client_id  # type: ignore[attr-defined]
            res = book.apply(book.get(cid), (fill,))  # type: ignore[arg-type]
        elif kind == "reply":
            order, fills = payload  # type: ignore[misc]
            res = book.apply(order, fills)
        else:
            res = book.apply(payload)  # type: ignore[arg-type]
        booked += [f.fill_id for f in res.new_fills]
    assert len(booked) == len(set(booked)), "a fill was booked twice"
    expected = {f"trade-{o.client_id}-{i}" for o, p in zip(orders, parts, strict=True) for i in range(len(p))}
    assert set(booked) == expected, "a fill was lost"
    for o, p in zip(orders, parts, strict=True):
        final = book.get(o.client_id)
        assert final is not None and final.filled_qty == o.qty * sum(p) / 10
        assert book.booked_qty(o.client_id) == final.filled_qty
        if sum(p) == 10:
            assert final.status is OrderStatus.FILLED, "a finished order reopened"
    assert book.get("x-renamed") is None, "an order named by a new client id was taken for a new order"


@settings(max_examples=200, deadline=None)
@given(
    position=st.integers(min_value=1, max_value=100),
    flattens=st.lists(st.tuples(st.integers(min_value=0, max_value=10), st.booleans()), min_size=1, max_size=6),
)
def test_a_reducing_order_never_exceeds_what_is_still_held(position: int, flattens: list[tuple[int, bool]]) -> None:
    """Venue says FILLED long before the fills are booked: sizing still never overshoots the position."""
    book = OrderBook("abc123", 1)
    held = D(position)
    sent = D(0)
    for tenths, reply_first in flattens:
        room = max(D(0), held - book.pending_reduction("BTC/USDT", Side.SELL))
        if room <= 0:
            continue
        qty = room * max(tenths, 1) / 10
        order = _order(book, str(qty))
        book.register(order)
        sent += qty
        assert sent <= held, "flatten orders sent exceed the position"
        if reply_first:  # the venue answers FILLED, its trades come later (polled)
            book.apply(order.evolve(status=OrderStatus.FILLED, filled_qty=qty))
    assert book.pending_reduction("BTC/USDT", Side.SELL) <= held
