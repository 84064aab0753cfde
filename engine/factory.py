"""Builds an engine from settings: the one place that picks venue, clock and strategy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from engine.clock import SimClock, SystemClock
from engine.config import Settings
from engine.engine import Engine
from engine.events import EventBus
from engine.journal import Journal
from engine.paths import AppPaths
from engine.strategies.ema_cross import EmaCross

# A fixed start for as-fast-as-possible runs, so a seed always gives the same history.
BACKTEST_START = datetime(2026, 1, 5, tzinfo=UTC)


@dataclass
class RunOptions:
    seed: int | None = None
    speed: float | str | None = None
    start: datetime | None = None
    with_strategy: bool = True


def build_engine(
    settings: Settings, paths: AppPaths, opts: RunOptions | None = None, bus: EventBus | None = None
) -> Engine:
    opts = opts or RunOptions()
    sim = settings.simulator
    if opts.seed is not None:
        sim.seed = opts.seed
    if opts.speed is not None:
        sim.speed = opts.speed  # type: ignore[assignment]
    paths.ensure()
    journal = Journal(paths.journal_file)
    if settings.engine.venue != "simulated":
        raise NotImplementedError(f"venue {settings.engine.venue!r} is not available yet")
    from engine.venues.simulated import SimulatedVenue

    start = opts.start or (BACKTEST_START if sim.speed == "max" else SystemClock().now())
    clock = SimClock(start)
    venue = SimulatedVenue(
        clock=clock,
        symbols=list(sim.symbols),
        seed=sim.seed,
        speed=sim.speed,
        starting_cash=Decimal(repr(sim.starting_cash)),
        maker_fee=Decimal(repr(sim.maker_fee)),
        taker_fee=Decimal(repr(sim.taker_fee)),
        tick_interval_s=sim.tick_interval_s,
    )
    factory = (lambda e, symbols: EmaCross(e, symbols, settings.strategy)) if opts.with_strategy else None
    return Engine(
        settings, venue, journal, clock, bus=bus, strategy_factory=factory, symbols=list(sim.symbols)
    )
