"""The big buttons and restarts, on a real engine and the simulated venue."""

import asyncio
from decimal import Decimal
from pathlib import Path

from engine.core.model import OrderStatus, TradingState
from tests.engine_rig import buy, make_engine, settings_for, started, stop, until


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_emergency_stop_halts_before_returning_and_cancels_everything(tmp_path: Path) -> None:
    async def scenario() -> None:
        e = await started(make_engine(tmp_path, symbols=[f"S{i:02d}/USDT" for i in range(20)]))
        for s in e.symbols:
            for k in range(10):
                assert e.submit_intent(buy(e, s, "300", limit_below=f"0.00{k + 1}")) is not None
        await until(lambda: e.book.working_count() == 200 and not e.execution.inflight, what="200 resting orders")
        assert len(await e.venue.open_orders()) == 200
        task = e.emergency_stop("test", "alice")
        assert e.risk.state is TradingState.HALTED  # before anything was awaited
        assert await task is True
        assert await e.venue.open_orders() == []
        assert e.book.working() == []
        actions = [r["action"] for r in e.journal.audit_rows()] if e.journal.flush() else []
        assert "emergency_stop" in actions and "emergency_stop_done" in actions
        await stop(e)

    run(scenario())


def test_no_order_reaches_the_venue_after_the_halt(tmp_path: Path) -> None:
    async def scenario() -> None:
        e = await started(make_engine(tmp_path, submit_delay_s=0.002))
        venue = e.venue
        for round_ in range(5):
            # intents in every stage: checked but not started, started and awaiting the venue
            for i in range(40):
                e.submit_intent(buy(e, e.symbols[i % 3], "200", limit_below="0.02"))
                if i == 20:
                    await asyncio.sleep(0)  # let some submits reach the venue's await
            task = e.emergency_stop(f"race {round_}")
            await task
            after = [state for _, state in venue.submits if state is TradingState.HALTED]
            assert after == [], "an order reached the venue after the halt"
            assert await venue.open_orders() == []
            e.resume("alice", "next round")
        await stop(e)

    run(scenario())


def test_halt_survives_a_restart(tmp_path: Path) -> None:
    async def first() -> None:
        e = await started(make_engine(tmp_path))
        await e.emergency_stop("operator panic")
        await stop(e)

    async def second() -> None:
        e = await started(make_engine(tmp_path))
        assert e.risk.state is TradingState.HALTED
        assert "operator panic" in e.risk.state_reason
        assert e.submit_intent(buy(e, "BTC/USDT")) is None
        ok, _ = e.resume("alice", "checked the logs")
        assert ok and e.risk.state is TradingState.ACTIVE
        await stop(e)

    run(first())
    run(second())


def test_journal_round_trip_restores_positions_and_open_orders(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    async def first() -> None:
        e = await started(make_engine(tmp_path))
        e.submit_intent(buy(e, "BTC/USDT", "5000"))
        e.submit_intent(buy(e, "ETH/USDT", "3000", limit_below="0.03"))
        await until(lambda: e.portfolio.qty("BTC/USDT") > 0 and not e.execution.inflight, what="fill")
        seen["btc"] = e.portfolio.position("BTC/USDT")
        seen["cash"] = e.portfolio.cash
        seen["open"] = sorted(o.client_id for o in e.book.working())
        await stop(e)

    async def second() -> None:
        e = await started(make_engine(tmp_path))
        pos = e.portfolio.position("BTC/USDT")
        assert pos is not None
        assert (pos.qty, pos.avg_price) == (seen["btc"].qty, seen["btc"].avg_price)  # type: ignore[attr-defined]
        assert e.portfolio.cash == seen["cash"]
        assert sorted(e.orders) == seen["open"]
        # the protective stop leg rests at the venue and came back as an open order
        assert any(o.role == "stop_loss" for o in e.book.working())
        await stop(e)

    run(first())
    run(second())


def test_close_all_flattens_through_a_rejection_and_partial_fills(tmp_path: Path) -> None:
    async def scenario() -> None:
        e = await started(make_engine(tmp_path))
        for s in e.symbols:
            e.submit_intent(buy(e, s, "4000"))
        await until(lambda: e.portfolio.open_count() == 3 and not e.execution.inflight, what="three positions")
        # a large resting limit order that partially fills stays open with part of a position
        big = e.submit_intent(buy(e, "BTC/USDT", "15000", limit_below="0.0005"))
        assert big is not None
        await until(lambda: e.book.get(big.client_id).status is OrderStatus.PARTIALLY_FILLED,
                    timeout=30, what="a partial fill")
        preview = e.preview_close_all()
        assert len(preview["positions"]) == 3 and preview["open_orders"] >= 3
        e.venue.faults.reject_next_submits(1, "venue busy")  # the first flatten attempt is refused
        summary = await e.close_all("end of test", "alice")
        assert summary["ok"], summary
        assert e.portfolio.open_count() == 0
        assert await e.venue.open_orders() == []
        assert e.risk.state is TradingState.HALTED
        positions = await e.venue.positions()
        assert all(q == 0 for q in positions.values()), positions
        # the refusal hit a flatten or the stop leg re-armed for the grown position: either way once, and flat
        rejected = [o for o in e.book.all_orders() if o.status is OrderStatus.REJECTED]
        assert len(rejected) == 1
        await stop(e)

    run(scenario())


def test_resume_refused_while_a_breaker_holds(tmp_path: Path) -> None:
    async def scenario() -> None:
        e = await started(make_engine(tmp_path, settings=settings_for(daily_loss_limit=0.01)))
        start = e.portfolio.day_start_equity
        e.breakers.on_equity(start * Decimal("-0.02"), start, Decimal(0))
        assert e.risk.state is TradingState.HALTED
        ok, why = e.resume("alice", "try")
        assert not ok and "Daily loss" in why
        e.breakers.on_equity(Decimal(0), start, Decimal(0))
        ok, why = e.resume("alice", "")
        assert not ok and "reason" in why
        ok, _ = e.resume("alice", "new day")
        assert ok
        await stop(e)

    run(scenario())


def test_simulated_market_takes_the_journaled_book_after_a_restart(tmp_path: Path) -> None:
    async def first() -> None:
        e = await started(make_engine(tmp_path))
        e.submit_intent(buy(e, "ETH/USDT", "3000"))
        await until(lambda: any(o.role == "stop_loss" for o in e.book.working()) and not e.execution.inflight,
                    what="position with its stop leg")
        await stop(e)

    async def second() -> None:
        e = await started(make_engine(tmp_path))
        held = e.portfolio.qty("ETH/USDT")
        assert held > 0
        venue_positions = await e.venue.positions()
        assert venue_positions.get("ETH/USDT") == held
        assert [o.role for o in await e.venue.open_orders()] == ["stop_loss"]
        summary = await e.close_all("flatten after restart")
        assert summary["ok"], summary
        await stop(e)

    run(first())
    run(second())


def test_nothing_the_engine_started_outlives_its_shutdown(tmp_path: Path) -> None:
    """A reconciliation spawned by a refused exit used to run on after shutdown and write to the closed
    journal ('Task exception was never retrieved')."""

    async def main() -> None:
        engine = await started(make_engine(tmp_path))
        ended: list[str] = []

        async def spawned_work() -> None:
            try:
                await asyncio.Event().wait()  # still busy when the engine shuts down
            except asyncio.CancelledError:
                ended.append("cancelled")
                raise
            engine.journal.record_incident(engine.clock.now(), "simulated", "late", "written after shutdown")

        engine.spawn(spawned_work())
        await asyncio.sleep(0)  # it started
        await stop(engine)
        assert ended == ["cancelled"]  # ended by the shutdown, before the journal closed

    asyncio.run(main())
