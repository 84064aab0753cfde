"""Market orders journal the quote they were sized on, so testnet and live stages measure slippage."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine.core.model import OrderStatus
from tests.engine_rig import buy, make_engine, settings_for, started, stop, until


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_a_filled_market_order_is_measured_against_its_quote(tmp_path: Path) -> None:
    async def go() -> None:
        s = settings_for()
        s.stages.initial = "testnet"  # measures average slippage
        e = await started(make_engine(tmp_path, s))
        try:
            ask = e.ticks["BTC/USDT"].ask
            order = e.submit_intent(buy(e, "BTC/USDT"))
            assert order is not None and order.ref_price == ask
            await until(lambda: e.book.get(order.client_id).status is OrderStatus.FILLED, what="fill")
            filled = e.book.get(order.client_id)
            assert filled.ref_price == ask  # kept through the venue's updates
            ev = await e.stage_manager.evaluate_async()
            slip = {c.name: c for c in ev.criteria}["avg_slippage"]
            expected = float((filled.avg_fill_price - ask) / ask)  # type: ignore[operator]
            assert slip.value is not None and abs(slip.value - expected) < 1e-12
            journaled = {o.client_id: o for o in e.journal.orders()}[order.client_id]
            assert journaled.ref_price == ask  # survives a restart: the evidence is the journal's
        finally:
            await stop(e)

    run(go())


def test_a_limit_order_has_no_quote_reference(tmp_path: Path) -> None:
    async def go() -> None:
        e = await started(make_engine(tmp_path))
        try:
            order = e.submit_intent(buy(e, "ETH/USDT", limit_below="0.01"))
            assert order is not None and order.ref_price is None  # its limit bounds the price already
        finally:
            await stop(e)

    run(go())
