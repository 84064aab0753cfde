"""Synthetic but plausible price paths for the embedded simulated venue.

Each symbol follows a log-price with Markov trend regimes (range, up, down), a
GARCH-like variance that clusters after big moves, rare jumps, a market-wide
volatility regime and a shared market factor (crypto moves together). The spread
widens and traded volume grows when volatility is high.

Everything inside is plain floats and `random.Random` (one generator per symbol,
seeded from the seed and the symbol name) because a step must cost a few
microseconds per symbol; prices become Decimal on the tick grid only at the end.
Paths of one symbol do not depend on which other symbols are simulated.
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from engine.core.model import Instrument, MarketTick

RANGE, UP, DOWN = 0, 1, 2
REGIME_NAMES = ("range", "up", "down")
CALM, NORMAL, STORM = 0, 1, 2
VOL_STATE_NAMES = ("calm", "normal", "storm")

_VOL_MULT = (0.6, 1.0, 2.0)  # market-wide volatility multiplier per vol state
_VOL_MEAN_S = (3600.0, 5400.0, 1200.0)  # mean time spent in each vol state
_RANGE_MEAN_S = 2400.0  # mean duration of a ranging regime
_TREND_MEAN_S = 1200.0  # mean duration of a trend
_RANGE_HALF_LIFE_S = 300.0  # mean reversion towards the range anchor
_LONG_HALF_LIFE_S = 7 * 86400.0  # weak pull to the start price so week-long runs stay sane
_GARCH_TAU_S = 600.0  # how long a volatility burst lasts
_JUMP_MEAN_S = 7200.0  # one jump per two hours per symbol on average
_MAX_VARIANCE_MULT = 30.0


@dataclass(frozen=True, slots=True)
class SymbolProfile:
    """Instrument spec plus the statistical character of one symbol."""

    price: float  # start price
    tick_exp: int  # tick size = 10**tick_exp
    lot_exp: int  # lot size = 10**lot_exp
    min_notional: int
    hourly_vol: float  # typical hourly volatility, as a fraction
    spread_bps: float  # typical spread in basis points of the price
    volume_per_s: float  # typical traded base quantity per second
    beta: float  # loading on the shared market factor


KNOWN_PROFILES: dict[str, SymbolProfile] = {
    "BTC/USDT": SymbolProfile(60000.0, -2, -5, 5, 0.005, 0.5, 0.35, 0.85),
    "ETH/USDT": SymbolProfile(3000.0, -2, -4, 5, 0.007, 0.8, 4.0, 0.8),
    "SOL/USDT": SymbolProfile(150.0, -2, -3, 5, 0.010, 1.5, 40.0, 0.7),
}


def profile_for(symbol: str) -> SymbolProfile:
    """Known symbols get realistic specs; any other BASE/QUOTE a deterministic synthetic one."""
    known = KNOWN_PROFILES.get(symbol)
    if known is not None:
        return known
    if symbol.count("/") != 1 or not all(symbol.split("/")):
        raise ValueError(f"simulated symbols look like BASE/QUOTE, got {symbol!r}")
    rnd = random.Random(zlib.crc32(symbol.encode()))
    price = 10 ** rnd.uniform(-1.0, 3.5)
    mag = math.floor(math.log10(price))
    return SymbolProfile(
        price=price,
        tick_exp=mag - 5,
        lot_exp=-(mag + 1),
        min_notional=5,
        hourly_vol=rnd.uniform(0.005, 0.012),
        spread_bps=rnd.uniform(0.8, 3.0),
        volume_per_s=rnd.uniform(2000.0, 20000.0) / price,  # a few thousand USDT a second
        beta=rnd.uniform(0.5, 0.85),
    )


class _SymbolState:
    __slots__ = (
        "anchor", "beta", "drift", "h", "idio", "inv_lot", "inv_tick", "jump_sd", "logp", "logp0", "lot",
        "prof", "regime", "rng", "sigma_step", "spread_frac", "symbol", "tick", "vol_step",
    )  # fmt: skip

    def __init__(self, symbol: str, prof: SymbolProfile, rng: random.Random, price: float, dt: float) -> None:
        self.symbol = symbol
        self.prof = prof
        self.rng = rng
        self.tick = Decimal(1).scaleb(prof.tick_exp)
        self.lot = Decimal(1).scaleb(prof.lot_exp)
        self.inv_tick = 10.0**-prof.tick_exp
        self.inv_lot = 10.0**-prof.lot_exp
        self.logp = self.logp0 = self.anchor = math.log(price)
        self.sigma_step = prof.hourly_vol * math.sqrt(dt / 3600.0)
        self.beta = prof.beta
        self.idio = math.sqrt(1.0 - prof.beta * prof.beta)
        self.jump_sd = 1.5 * prof.hourly_vol
        self.spread_frac = prof.spread_bps * 1e-4
        self.vol_step = prof.volume_per_s * dt
        self.h = 1.0  # variance multiplier (GARCH state), mean 1
        self.regime = RANGE
        self.drift = 0.0


class MarketSimulator:
    """Steps every symbol forward by `tick_interval_s` and returns one tick per symbol."""

    def __init__(
        self,
        symbols: list[str],
        seed: int,
        tick_interval_s: float = 0.25,
        *,
        start_prices: dict[str, float] | None = None,
        salt: str = "",
    ) -> None:
        if tick_interval_s <= 0:
            raise ValueError("tick_interval_s must be positive")
        self.seed = seed
        self.dt = dt = tick_interval_s
        self._salt = salt
        self._profiles = {s: profile_for(s) for s in symbols}
        starts = start_prices or {}
        self._states = [
            _SymbolState(s, p, random.Random(f"{seed}:{salt}:{s}"), starts.get(s, p.price), dt)
            for s, p in self._profiles.items()
        ]
        self._by_symbol = {st.symbol: st for st in self._states}
        self._market = random.Random(f"{seed}:{salt}:market")
        self._vol_state = NORMAL
        self._vol_switch_p = tuple(dt / m for m in _VOL_MEAN_S)
        self._range_switch_p = dt / _RANGE_MEAN_S
        self._trend_switch_p = dt / _TREND_MEAN_S
        self._kappa = math.log(2.0) * dt / _RANGE_HALF_LIFE_S
        self._kappa_long = math.log(2.0) * dt / _LONG_HALF_LIFE_S
        self._jump_p = dt / _JUMP_MEAN_S
        persistence = 1.0 - dt / _GARCH_TAU_S
        self._g_alpha = min(4e-4 * dt, persistence / 2)
        self._g_beta = persistence - self._g_alpha
        self._g_omega = 1.0 - persistence
        self._history_cache: dict[tuple[str, float, datetime], tuple[MarketSimulator, list[MarketTick]]] = {}

    # -- specs and introspection -------------------------------------------------------------

    @property
    def symbols(self) -> list[str]:
        return list(self._profiles)

    def instruments(self) -> dict[str, Instrument]:
        out = {}
        for st in self._states:
            base, quote = st.symbol.split("/")
            out[st.symbol] = Instrument(
                symbol=st.symbol,
                base=base,
                quote=quote,
                tick_size=st.tick,
                lot_size=st.lot,
                min_qty=st.lot,
                min_notional=Decimal(st.prof.min_notional),
                venue="simulated",
            )
        return out

    def start_price(self, symbol: str) -> float:
        return math.exp(self._by_symbol[symbol].logp0)

    def price(self, symbol: str) -> float:
        """The latent mid price (float) after the last step."""
        return math.exp(self._by_symbol[symbol].logp)

    def regime(self, symbol: str) -> str:
        return REGIME_NAMES[self._by_symbol[symbol].regime]

    @property
    def vol_state(self) -> str:
        return VOL_STATE_NAMES[self._vol_state]

    # -- the hot path --------------------------------------------------------------------------

    def step(self, now: datetime) -> list[MarketTick]:
        market = self._market
        zm = market.gauss(0.0, 1.0)
        if market.random() < self._vol_switch_p[self._vol_state]:
            self._switch_vol_state()
        vm = _VOL_MULT[self._vol_state]
        g_alpha, g_beta, g_omega = self._g_alpha, self._g_beta, self._g_omega
        kappa, kappa_long, jump_p = self._kappa, self._kappa_long, self._jump_p
        sqrt, exp, log = math.sqrt, math.exp, math.log
        range_p, trend_p = self._range_switch_p, self._trend_switch_p
        ticks = []
        for st in self._states:
            rng = st.rng
            uniform = rng.random
            regime = st.regime
            if uniform() < (range_p if regime == RANGE else trend_p):
                regime = self._switch_regime(st)
            base_sig = st.sigma_step * vm
            root_h = sqrt(st.h)
            ratio = vm * root_h  # current volatility relative to the symbol's typical one
            noise = base_sig * root_h * (st.beta * zm + st.idio * rng.gauss(0.0, 1.0))
            logp = st.logp
            drift = kappa * (st.anchor - logp) if regime == RANGE else st.drift
            drift -= kappa_long * (logp - st.logp0)
            shock = noise
            spread_frac = st.spread_frac
            vol = st.vol_step
            if uniform() < jump_p:
                shock += rng.gauss(0.0, st.jump_sd)
                spread_frac *= 3.0
                vol *= 10.0
            r = drift + shock
            st.logp = logp = logp + r
            e = shock / base_sig
            h = g_omega + g_alpha * e * e + g_beta * st.h
            st.h = h if h < _MAX_VARIANCE_MULT else _MAX_VARIANCE_MULT
            mid_ticks = exp(logp) * st.inv_tick
            spread_ticks = int(mid_ticks * spread_frac * (0.5 + 0.5 * ratio)) + 1
            bid_i = int(mid_ticks - 0.5 * spread_ticks)
            if bid_i < 1:
                bid_i = 1
            tick = st.tick
            bid = Decimal(bid_i) * tick
            ask = Decimal(bid_i + spread_ticks) * tick
            # rng.expovariate(1.0) inline (the same draw and arithmetic): it is a call per symbol per step
            lots = int(vol * ratio * -log(1.0 - uniform()) * st.inv_lot)
            ticks.append(MarketTick(st.symbol, now, bid, ask, ask if r > 0 else bid, Decimal(lots) * st.lot))
        return ticks

    def _switch_vol_state(self) -> None:
        if self._vol_state == NORMAL:
            self._vol_state = CALM if self._market.random() < 0.5 else STORM
        else:
            self._vol_state = NORMAL

    def _switch_regime(self, st: _SymbolState) -> int:
        rng = st.rng
        if st.regime == RANGE:
            new = UP if rng.random() < 0.5 else DOWN
        elif rng.random() < 0.75:
            new = RANGE
        else:
            new = DOWN if st.regime == UP else UP
        if new == RANGE:
            st.anchor = st.logp
            st.drift = 0.0
        else:
            per_hour = rng.uniform(1.0, 3.0) * st.prof.hourly_vol
            st.drift = (1.0 if new == UP else -1.0) * per_hour * self.dt / 3600.0
        st.regime = new
        return new

    # -- warm-up history -----------------------------------------------------------------------

    def history(
        self, symbol: str, n_steps: int, end: datetime, step_s: float | None = None
    ) -> list[MarketTick]:
        """`n_steps` ticks at `end - n*step_s ... end - step_s`, oldest first, ending near the start price.

        A separate deterministic pre-run walks away from the start price and is
        then read backwards, so the history joins the live path without a gap and
        asking for more steps only extends it further into the past.
        """
        step = step_s or self.dt
        if symbol not in self._by_symbol:
            raise KeyError(symbol)
        if n_steps <= 0:
            return []
        key = (symbol, step, end)
        cached = self._history_cache.get(key)
        if cached is None:
            pre = MarketSimulator(
                [symbol], self.seed, step, start_prices={symbol: self.start_price(symbol)}, salt="history"
            )
            cached = (pre, [])
            self._history_cache[key] = cached
        pre, newest_first = cached
        delta = timedelta(seconds=step)
        while len(newest_first) < n_steps:
            newest_first.append(pre.step(end - delta * (len(newest_first) + 1))[0])
        return newest_first[n_steps - 1 :: -1]
