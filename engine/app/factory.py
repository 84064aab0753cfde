"""Builds an engine from settings: the one place that picks venue, clock and strategy."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from engine.app.kernel import Engine
from engine.core.clock import Clock, SimClock, SystemClock
from engine.core.config import Settings
from engine.core.events import EventBus
from engine.core.model import VenueMode
from engine.core.paths import AppPaths
from engine.persistence.journal import Journal
from engine.strategies.ema_cross import EmaCross

if TYPE_CHECKING:
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
    factory = (lambda e, symbols: EmaCross(e, symbols, settings.strategy)) if opts.with_strategy else None
    if settings.engine.venue in ("binance", "alpaca"):
        clock = SystemClock()
        make = binance_venue if settings.engine.venue == "binance" else alpaca_venue
        venue = make(settings, paths, clock)
        return Engine(settings, venue, journal, clock, bus=bus, strategy_factory=factory, symbols=venue.symbols)
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
    return Engine(
        settings, venue, journal, clock, bus=bus, strategy_factory=factory, symbols=list(sim.symbols)
    )


def venue_credentials(venue: str, paths: AppPaths, account: str = "default") -> tuple[str, str]:
    """The OS keyring (or the encrypted file) first, then the environment for headless use.

    TRADING_CONSOLE_<VENUE>_API_KEY / _API_SECRET. The values are never logged or put in messages.
    """
    try:
        from engine.persistence.secrets import CredentialStore

        store = CredentialStore(paths.data_dir)
        if not store.needs_master_password:
            found = store.load(venue, account)
            if found is not None:
                return found
    except Exception as exc:  # no keyring, locked store...: the environment may still have them
        log.info("credential store unavailable for %s: %s", venue, type(exc).__name__)
    prefix = f"TRADING_CONSOLE_{venue.upper()}_"
    key, secret = os.environ.get(prefix + "API_KEY", ""), os.environ.get(prefix + "API_SECRET", "")
    if not key or not secret:
        raise ValueError(f"no {venue} API credentials: store them in the console or set {prefix}API_KEY/_API_SECRET")
    return key, secret


def binance_venue(settings: Settings, paths: AppPaths, clock: Clock) -> CcxtVenue:
    """Binance spot through ccxt; endpoints and options from settings.venues["binance"]."""
    from engine.venues.ccxt_venue import CcxtEndpoints, CcxtVenue

    conf = dict(settings.venues.get("binance", {}))
    mode = VenueMode.TESTNET if conf.get("mode", "live") == "testnet" else VenueMode.LIVE
    rest_public = conf.get("rest_public")
    custom = str(conf.get("endpoint") or "").rstrip("/")
    if not rest_public and custom and custom not in _BINANCE_DEFAULTS:  # the wizard's endpoint: a proxy, say
        rest_public = custom + "/api/v3"
    endpoints = CcxtEndpoints(rest_public, conf.get("rest_private"), conf.get("ws_public"), conf.get("ws_private"))
    key, secret = venue_credentials("binance", paths, str(conf.get("account", "default")))
    tuning = {k: float(conf[k]) for k in _TUNING if k in conf}
    return CcxtVenue(
        clock, key, secret, exchange_id="binance", symbols=list(conf.get("symbols") or settings.simulator.symbols),
        mode=mode, endpoints=endpoints, **tuning,  # type: ignore[arg-type]
    )  # fmt: skip


_BINANCE_DEFAULTS = ("https://api.binance.com", "https://testnet.binance.vision")
_TUNING = ("timeout_s", "poll_interval_s", "backoff_s", "ws_retry_s")


def alpaca_venue(settings: Settings, paths: AppPaths, clock: Clock) -> AlpacaVenue:
    """Alpaca through alpaca-py; paper unless settings.venues["alpaca"].mode is "live".

    `endpoint` (the wizard's field) or `url_override` points the trading API elsewhere;
    `data_url` and `stream_url` do the same for quotes and the trade-updates stream.
    """
    from engine.venues.alpaca_venue import AlpacaVenue

    conf = dict(settings.venues.get("alpaca", {}))
    paper = str(conf.get("mode", "paper")) != "live"
    key, secret = venue_credentials("alpaca", paths, str(conf.get("account", "default")))
    tuning = {k: float(conf[k]) for k in _TUNING if k in conf}
    return AlpacaVenue(
        clock, key, secret, paper=paper, url_override=conf.get("url_override") or conf.get("endpoint") or None,
        stream_url=conf.get("stream_url"), data_url=conf.get("data_url"),
        symbols=list(conf.get("symbols") or ALPACA_DEFAULT_SYMBOLS), **tuning,  # type: ignore[arg-type]
    )  # fmt: skip


ALPACA_DEFAULT_SYMBOLS = ("SPY", "AAPL", "MSFT")
