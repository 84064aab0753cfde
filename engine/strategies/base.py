"""Strategy base: ticks in, bars built, order intents out.

A strategy never talks to a venue: it emits OrderIntents through its context,
and the engine's risk engine and approval gate decide what reaches the market.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

from engine.core.model import Bar, Fill, Instrument, MarketTick, Order, OrderIntent, Position


class StrategyContext(Protocol):
    def now(self) -> datetime: ...

    def position(self, symbol: str) -> Position | None: ...

    def has_working_entry(self, symbol: str) -> bool: ...

    def instrument(self, symbol: str) -> Instrument: ...

    def submit_intent(self, intent: OrderIntent) -> Order | None: ...  # None: refused before the venue


class _BarBuilder:
    """Aggregates ticks into fixed-length bars aligned to the epoch (UTC)."""

    __slots__ = ("_close", "_high", "_low", "_open", "_start", "_volume", "last_tick", "symbol", "timeframe_s")

    def __init__(self, symbol: str, timeframe_s: float) -> None:
        self.symbol = symbol
        self.timeframe_s = timeframe_s
        self._start: float | None = None
        self._open = self._high = self._low = self._close = Decimal(0)
        self._volume = Decimal(0)
        self.last_tick: MarketTick | None = None  # the newest tick, the bar-closing one while on_bar runs

    def update(self, tick: MarketTick, ts: float) -> Bar | None:
        """Feed a tick stamped `ts` (its epoch seconds); returns the bar that this tick closed, if any."""
        self.last_tick = tick
        start = ts - ts % self.timeframe_s
        done: Bar | None = None
        if self._start is not None and start != self._start:
            done = Bar(
                self.symbol,
                datetime.fromtimestamp(self._start, UTC),
                self._open,
                self._high,
                self._low,
                self._close,
                self._volume,
            )
            self._start = None
        price = tick.last
        if self._start is None:
            self._start = start
            self._open = self._high = self._low = self._close = price
            self._volume = tick.volume
        else:
            if price > self._high:
                self._high = price
            elif price < self._low:
                self._low = price
            self._close = price
            self._volume += tick.volume
        return done


class Strategy:
    """Subclasses override on_bar (and optionally on_tick/on_fill)."""

    name = "strategy"

    def __init__(self, ctx: StrategyContext, symbols: list[str], timeframe_s: float) -> None:
        self.ctx = ctx
        self.symbols = symbols
        self._builders = {s: _BarBuilder(s, timeframe_s) for s in symbols}
        self._stamp: datetime | None = None  # a batch's ticks share one datetime: convert it once
        self._stamp_s = 0.0

    def on_start(self) -> None:
        """Called once the venue is connected and warm-up ticks were fed."""

    def on_tick(self, tick: MarketTick) -> None:
        builder = self._builders.get(tick.symbol)
        if builder is not None:
            stamp = tick.ts
            if stamp is not self._stamp:
                self._stamp, self._stamp_s = stamp, stamp.timestamp()
            bar = builder.update(tick, self._stamp_s)
            if bar is not None:
                self.on_bar(bar)

    def last_tick(self, symbol: str) -> MarketTick | None:
        """The newest tick of `symbol`; inside on_bar, the one that closed the bar."""
        builder = self._builders.get(symbol)
        return builder.last_tick if builder is not None else None

    def on_bar(self, bar: Bar) -> None:
        """A bar closed."""

    def on_fill(self, fill: Fill, order: Order) -> None:
        """One of this strategy's orders traded."""
