"""Build a real engine on the simulated venue for tests (no mocks), and wait on conditions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from engine.app.kernel import Engine
from engine.core.clock import SimClock
from engine.core.config import Settings
from engine.core.model import OrderIntent, OrderType, Side, TradingState
from engine.persistence.journal import Journal
from engine.venues.simulated import SimulatedVenue

START = datetime(2026, 2, 2, 9, tzinfo=UTC)


def settings_for(**risk: object) -> Settings:
    s = Settings()
    s.risk.max_orders_per_second = 10_000
    s.risk.max_slippage = 0.05
    s.risk.max_new_positions_per_day = 100
    s.risk.max_concurrent_positions = 50
    for k, v in risk.items():
        setattr(s.risk, k, v)
    return s


class RecordingVenue(SimulatedVenue):
    """The simulated venue, recording the engine's state at every submit it receives."""

    engine: Engine | None = None

    def __init__(self, *a: object, submit_delay_s: float = 0.0, **kw: object) -> None:
        super().__init__(*a, **kw)  # type: ignore[arg-type]
        self.submits: list[tuple[str, TradingState | None]] = []
        self.submit_delay_s = submit_delay_s

    async def place(self, order):  # type: ignore[no-untyped-def]
        self.submits.append((order.role, self.engine.risk.state if self.engine else None))
        if self.submit_delay_s:
            await asyncio.sleep(self.submit_delay_s)
        return await super().place(order)


def make_engine(home: Path, settings: Settings | None = None, symbols: list[str] | None = None,
                speed: float | str = 200.0, seed: int = 3, submit_delay_s: float = 0.0) -> Engine:
    settings = settings or settings_for()
    symbols = symbols or ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    clock = SimClock(START)
    venue = RecordingVenue(clock=clock, symbols=symbols, seed=seed, speed=speed,
                           starting_cash=Decimal("100000"), maker_fee=Decimal("0.0008"),
                           taker_fee=Decimal("0.001"), submit_delay_s=submit_delay_s)
    journal = Journal(home / "journal.sqlite")
    engine = Engine(settings, venue, journal, clock, symbols=symbols)
    venue.engine = engine
    return engine


async def until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


async def started(engine: Engine) -> Engine:
    await engine.start()
    await until(lambda: len(engine.ticks) == len(engine.symbols), what="first ticks")
    return engine


def buy(engine: Engine, symbol: str, notional: str = "2000", limit_below: str | None = None) -> OrderIntent:
    last = engine.ticks[symbol].last
    inst = engine.instruments[symbol]
    qty = inst.round_qty(Decimal(notional) / last)
    if limit_below is None:
        return OrderIntent(symbol, Side.BUY, qty, stop_loss=inst.round_price(last * Decimal("0.97")), tag="test")
    price = inst.round_price(last * (1 - Decimal(limit_below)))
    return OrderIntent(symbol, Side.BUY, qty, order_type=OrderType.LIMIT, price=price,
                       stop_loss=inst.round_price(price * Decimal("0.97")), tag="test")


async def stop(engine: Engine) -> None:
    await engine.shutdown("keep")
    engine.journal.close()
