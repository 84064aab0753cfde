"""Builds an engine from settings: the one place that picks venue, clock and strategy."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.app.kernel import CLOCK_HIGH_WATER, Engine
from engine.core.clock import Clock, SimClock, SystemClock
from engine.core.config import ConfigError, ConfigProblem, Settings
from engine.core.events import EventBus
from engine.core.model import VenueMode
from engine.core.paths import AppPaths
from engine.core.stage_venues import check_stage_allows
from engine.core.venue_settings import AlpacaMode
from engine.persistence.journal_identity import open_journal
from engine.strategies.ema_cross import EmaCross, ExitCosts

if TYPE_CHECKING:
    from engine.core.venue_settings import AlpacaSettings, BinanceSettings
    from engine.persistence.secrets import CredentialStore
    from engine.venues.alpaca_venue import AlpacaVenue
    from engine.venues.ccxt_venue import CcxtVenue

log = logging.getLogger(__name__)

# A fixed start for as-fast-as-possible runs, so a seed always gives the same history.
BACKTEST_START = datetime(2026, 1, 5, tzinfo=UTC)


@dataclass
class RunOptions:
    seed: int | None = None
    speed: float | str | None = None
    start: datetime | None = None
    with_strategy: bool = True
    credentials: CredentialStore | None = None  # a store the window unlocked with the master password
    new_journal: bool = False  # the operator chose to archive the journal and start a new one


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
    journal = open_journal(paths, new_journal=opts.new_journal)  # identity checked: never a silent fresh start
    try:  # before any credential is read or any venue reached: the stage decides which venues may run
        check_stage_allows(settings, journal.get_state("stage") or settings.stages.initial, str(paths.config_file))
    except ConfigError:
        journal.close()
        raise
    costs = ExitCosts(entries_per_day=settings.risk.max_new_positions_per_day, taker_fee=settings.simulator.taker_fee,
                      cost_multiple=settings.strategy.cost_multiple,
                      min_hold_s=settings.strategy.min_hold_s)  # exits clear the fees the venue charges
    factory = (lambda e, symbols: EmaCross(e, symbols, settings.strategy, costs)) if opts.with_strategy else None
    if settings.engine.venue in ("binance", "alpaca"):
        clock = SystemClock()
        make = binance_venue if settings.engine.venue == "binance" else alpaca_venue
        venue = make(settings, paths, clock, opts.credentials)
        return Engine(settings, venue, journal, clock, bus=bus, strategy_factory=factory, symbols=venue.symbols)
    if settings.engine.venue != "simulated":
        raise NotImplementedError(f"venue {settings.engine.venue!r} is not available yet")
    from engine.venues.simulated import SimulatedVenue

    start = opts.start or (BACKTEST_START if sim.speed == "max" else SystemClock().now())
    high_water = journal.get_state(CLOCK_HIGH_WATER)
    if high_water:  # a restart continues simulated time where the journal left it: never backwards
        start = max(start, datetime.fromisoformat(high_water) + timedelta(seconds=1))
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
        latency_ms=sim.latency_ms,
        fee_model=sim.fee_model,
    )
    return Engine(
        settings, venue, journal, clock, bus=bus, strategy_factory=factory, symbols=list(sim.symbols)
    )


class CredentialsMissing(ValueError):
    """No API keys for the configured venue: a start-up failure with its own message and exit code."""


def venue_credentials(
    venue: str, paths: AppPaths, account: str = "default", unlocked: CredentialStore | None = None
) -> tuple[str, str]:
    """The OS keyring (or the encrypted file, through `unlocked` when the window asked for its master
    password) first, then the environment for headless use.

    TRADING_CONSOLE_<VENUE>_API_KEY / _API_SECRET. The values are never logged or put in messages.
    """
    try:
        from engine.persistence.secrets import CredentialStore

        store = unlocked or CredentialStore(paths.data_dir)
        if not store.needs_master_password:
            found = store.load(venue, account)
            if found is not None:
                return found
    except Exception as exc:  # no keyring, locked store...: the environment may still have them
        log.info("credential store unavailable for %s: %s", venue, type(exc).__name__)
    prefix = f"TRADING_CONSOLE_{venue.upper()}_"
    key, secret = os.environ.get(prefix + "API_KEY", ""), os.environ.get(prefix + "API_SECRET", "")
    if not key or not secret:
        raise CredentialsMissing(
            f"no {venue} API credentials: store them in the console or set {prefix}API_KEY/_API_SECRET"
        )
    return key, secret


def _venue_section(settings: Settings, paths: AppPaths, venue: str) -> Any:
    conf = settings.venues.of(venue)
    if conf is None:  # never a default mode: a missing section used to mean LIVE
        modes = "testnet or live" if venue == "binance" else "paper or live"
        problem = ConfigProblem(f"venues.{venue}", "", f"is required when engine.venue is {venue!r}: mode = {modes}")
        raise ConfigError(str(paths.config_file), [problem])
    return conf


def binance_venue(
    settings: Settings, paths: AppPaths, clock: Clock, unlocked: CredentialStore | None = None
) -> CcxtVenue:
    """Binance spot through ccxt, as `[venues.binance]` says (engine.core.venue_settings.BinanceSettings)."""
    from engine.venues.ccxt_venue import CcxtEndpoints, CcxtVenue

    conf: BinanceSettings = _venue_section(settings, paths, "binance")
    custom = conf.custom_endpoints  # all four or none: validated with the config
    key, secret = venue_credentials("binance", paths, conf.account, unlocked)
    return CcxtVenue(
        clock, key, secret, exchange_id="binance", symbols=list(conf.symbols or settings.simulator.symbols),
        mode=VenueMode(conf.mode.value), endpoints=CcxtEndpoints(*custom) if custom else CcxtEndpoints(),
        market_silence_s=conf.market_silence_s, **_tuning(conf),
    )  # fmt: skip


def _tuning(conf: BinanceSettings | AlpacaSettings) -> dict[str, Any]:
    """The timeouts and retries both real venues take, from their typed settings."""
    return {"timeout_s": conf.timeout_s, "poll_interval_s": conf.poll_interval_s, "backoff_s": conf.backoff_s,
            "ws_retry_s": conf.ws_retry_s, "ws_timeout_s": conf.ws_timeout_s, "stream_grace_s": conf.stream_grace_s,
            "submit_attempts": conf.submit_attempts, "cancel_attempts": conf.cancel_attempts}  # fmt: skip


def alpaca_venue(
    settings: Settings, paths: AppPaths, clock: Clock, unlocked: CredentialStore | None = None
) -> AlpacaVenue:
    """Alpaca through alpaca-py, as `[venues.alpaca]` says (engine.core.venue_settings.AlpacaSettings).

    `endpoint` (trading API), `data_url` (quotes), `stream_url` (trade updates) and `data_stream_url`
    point elsewhere together, or not at all.
    """
    from engine.venues.alpaca_venue import AlpacaVenue

    conf: AlpacaSettings = _venue_section(settings, paths, "alpaca")
    key, secret = venue_credentials("alpaca", paths, conf.account, unlocked)
    return AlpacaVenue(
        clock, key, secret, paper=conf.mode is AlpacaMode.PAPER, url_override=conf.trading_url,
        stream_url=conf.stream_url, data_url=conf.data_url, symbols=list(conf.symbols or ALPACA_DEFAULT_SYMBOLS),
        **_tuning(conf),
    )  # fmt: skip


ALPACA_DEFAULT_SYMBOLS = ("SPY", "AAPL", "MSFT")
