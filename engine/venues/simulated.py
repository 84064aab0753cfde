"""The embedded default venue: market simulator + matching engine, no keys, no network.

`market_stream` drives everything: each step advances the SimClock, makes one tick
per symbol, matches resting orders and queues the resulting order updates. With
speed "max" it never sleeps on the wall clock but yields to the loop whenever
updates are waiting (so the order-update consumer sees fills before the next
batch, which keeps a seeded run deterministic) and at least every 50 steps.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Literal

from engine.core.clock import SimClock
from engine.core.model import ZERO, Balance, Fill, Instrument, MarketTick, Order, OrderStatus, OrderUpdate, VenueMode
from engine.venues.base import (
    ALL_ORDER_TYPES,
    InstrumentCapabilities,
    OrderNotFound,
    OrderRejected,
    SubmitResult,
    TransientVenueError,
    Venue,
    VenueCapabilities,
)
from engine.venues.market_sim import MarketSimulator
from engine.venues.matching import MatchingEngine, as_decimal

_YIELD_EVERY = 50  # steps between forced yields at speed "max"
_MAX_DRAIN_ROUNDS = 200  # loop turns granted to update consumers before the next step
_MAX_LAG_S = 1.0  # when pacing falls further behind than this, forget the lag instead of bursting
_RECORD_EVERY_S = 1.0  # live ticks kept for history() at this spacing
_RECORD_SPAN_S = 4 * 3600.0

FAULT_OPS = frozenset(
    {"submit", "cancel", "cancel_all", "open_orders", "balances", "positions", "fills_since", "instruments"}
)


class VenueFaults:
    """Failures the tests switch on to exercise retries and rejection paths."""

    def __init__(self) -> None:
        self._rejects: deque[str] = deque()
        self._failures: dict[str, deque[tuple[bool, bool, str]]] = {}
        self._stream_breaks = 0

    def reject_next_submits(self, n: int = 1, reason: str = "simulated rejection") -> None:
        """The next n new submits come back REJECTED with `reason` (not recorded by the matcher)."""
        self._rejects.extend([reason] * n)

    def fail_next(
        self, op: str, n: int = 1, transient: bool = True, *, after_apply: bool = False, message: str = ""
    ) -> None:
        """The next n calls of `op` raise TransientVenueError (or OrderRejected when not transient).

        With after_apply the operation takes effect first and the error comes
        after, like a timeout on a request the exchange did execute.
        """
        if op not in FAULT_OPS:
            raise ValueError(f"unknown venue operation {op!r}; one of {sorted(FAULT_OPS)}")
        text = message or f"simulated {'transient ' if transient else ''}failure in {op}"
        self._failures.setdefault(op, deque()).extend([(transient, after_apply, text)] * n)

    def break_stream(self, n: int = 1) -> None:
        """The market stream raises TransientVenueError on its next n steps (a dropped websocket)."""
        self._stream_breaks += n

    def clear(self) -> None:
        self._rejects.clear()
        self._failures.clear()
        self._stream_breaks = 0

    # -- used by the venue ------------------------------------------------------------------------

    def take_reject(self) -> str | None:
        return self._rejects.popleft() if self._rejects else None

    def check(self, op: str, applied: bool) -> None:
        queue = self._failures.get(op)
        if not queue or queue[0][1] != applied:
            return
        transient, _, text = queue.popleft()
        raise TransientVenueError(text) if transient else OrderRejected(text)

    def take_stream_break(self) -> bool:
        if self._stream_breaks <= 0:
            return False
        self._stream_breaks -= 1
        return True


class _Subscriber:
    __slots__ = ("in_flight", "queue")

    def __init__(self) -> None:
        self.queue: asyncio.Queue[OrderUpdate | None] = asyncio.Queue()
        self.in_flight = False  # an update was handed out and its consumer has not come back yet

    @property
    def drained(self) -> bool:
        return self.queue.empty() and not self.in_flight


class SimulatedVenue(Venue):
    name = "simulated"
    mode = VenueMode.SIMULATED

    def __init__(
        self,
        clock: SimClock,
        symbols: list[str],
        seed: int,
        speed: float | Literal["max"] = 1.0,
        starting_cash: Decimal | float = Decimal(100_000),
        maker_fee: Decimal | float = Decimal("0.0008"),
        taker_fee: Decimal | float = Decimal("0.001"),
        tick_interval_s: float = 0.25,
        allow_short: bool = False,
        quote: str = "USDT",
        latency_ms: float = 0.0,
        fee_model: str = "quote",
        bnb_pays: bool = False,
        asset_prices: dict[str, Decimal] | None = None,
        run_tag: str | None = None,
    ) -> None:
        """fee_model "binance_spot" charges fees as Binance spot does (see MatchingEngine).

        run_tag prefixes order and fill ids ("sim-<tag>-f12"): a fresh random one per
        process unless given, so ids never repeat across restarts into the same journal.
        """
        if speed != "max" and float(speed) <= 0:
            raise ValueError("speed must be a positive factor or 'max'")
        self.clock = clock
        self.symbols = list(dict.fromkeys(symbols))
        self.speed = speed
        self.tick_interval_s = tick_interval_s
        self.latency_ms = latency_ms
        self.quote = quote
        self.sim = MarketSimulator(self.symbols, seed, tick_interval_s)
        self._instruments = self.sim.instruments()
        for inst in self._instruments.values():
            if inst.quote != quote:
                raise ValueError(f"{inst.symbol} is not quoted in {quote}")
        self.matching = MatchingEngine(
            self._instruments,
            {quote: as_decimal(starting_cash)},
            maker_fee=as_decimal(maker_fee),
            taker_fee=as_decimal(taker_fee),
            venue="sim",
            allow_short=allow_short,
            fee_model=fee_model,
            bnb_pays=bnb_pays,
            asset_prices=asset_prices,
            id_prefix=f"sim-{run_tag or secrets.token_hex(4)}",
        )
        self.faults = VenueFaults()
        self.start_time = clock.now()
        self.steps = 0
        self._closed = False
        self._stream_generation = 0
        self._subscribers: list[_Subscriber] = []
        self._backlog: deque[OrderUpdate] = deque()  # updates made while nobody listened
        self._sleeper: asyncio.Future[None] | None = None
        self._record_every = max(1, round(_RECORD_EVERY_S / tick_interval_s))
        self._recorded: deque[list[MarketTick]] = deque(maxlen=int(_RECORD_SPAN_S / _RECORD_EVERY_S))
        self._prime()

    def _prime(self) -> None:
        """One tick per symbol at the start time, so orders can be placed before the stream runs."""
        batch = self.sim.step(self.start_time)
        for tick in batch:
            self.matching.on_tick(tick)
        self._recorded.append(batch)

    def adopt_book(self, cash: Decimal, holdings: dict[str, Decimal], open_orders: list[Order]) -> list[Order]:
        """Carry the engine's journaled book into this fresh in-process market after a restart.

        The simulated venue lives in the console's process, so its account would
        otherwise start empty while the journal says positions and stop legs exist.
        Returns the orders as re-placed (some may be rejected if prices moved past them).
        """
        quote = next(iter(self._instruments.values())).quote
        free = self.matching.balances().get(quote)
        self.matching.deposit(quote, cash - (free.total if free else ZERO))
        for symbol, qty in holdings.items():
            inst = self._instruments.get(symbol)
            if inst is not None and qty:
                self.matching.deposit(inst.base, qty)
        now = self.clock.now()
        placed = []
        for order in open_orders:
            tick = self.matching.last_tick(order.symbol)
            fresh = order.evolve(status=OrderStatus.PENDING, filled_qty=ZERO, avg_fill_price=None,
                                 qty=order.remaining)
            updates = self.matching.submit(fresh, tick, now)
            self._publish(updates)
            placed.append(updates[-1].order if updates else fresh)
        return placed

    # -- lifecycle -------------------------------------------------------------------------------

    async def connect(self) -> None:
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        if self._sleeper is not None and not self._sleeper.done():
            self._sleeper.set_result(None)
        for sub in self._subscribers:
            sub.queue.put_nowait(None)

    @property
    def closed(self) -> bool:
        return self._closed

    async def ping_ms(self) -> float | None:
        return self.latency_ms

    # -- account ---------------------------------------------------------------------------------

    async def instruments(self) -> dict[str, Instrument]:
        self.faults.check("instruments", applied=False)
        return dict(self._instruments)

    async def balances(self) -> dict[str, Balance]:
        self.faults.check("balances", applied=False)
        return self.matching.balances()

    async def positions(self) -> dict[str, Decimal]:
        self.faults.check("positions", applied=False)
        return self.matching.positions()

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        self.faults.check("open_orders", applied=False)
        return self.matching.open_orders(symbol)

    async def fills_since(self, since: datetime | None, symbols: list[str] | None = None) -> list[Fill]:
        self.faults.check("fills_since", applied=False)
        fills = self.matching.fills_since(since)
        return fills if symbols is None else [f for f in fills if f.symbol in symbols]

    # -- orders ----------------------------------------------------------------------------------

    async def place(self, order: Order) -> SubmitResult:
        """Acknowledged (possibly already filled) order and its fills; business rejections come back REJECTED."""
        self.faults.check("submit", applied=False)
        now = self.clock.now()
        known = self.matching.order(order.client_id) is not None
        reason = None if known else self.faults.take_reject()
        if reason is not None:
            rejected = order.evolve(status=OrderStatus.REJECTED, reason=reason, updated_at=now)
            self._publish([OrderUpdate(rejected)])
            return SubmitResult(rejected)
        updates = self.matching.submit(order, None, now)
        if not known:
            self._publish(updates)
        self.faults.check("submit", applied=True)
        fills = tuple(u.fill for u in updates if u.fill is not None and u.fill.client_id == order.client_id)
        return SubmitResult(updates[-1].order, fills)

    async def lookup(self, order: Order) -> Order | None:
        return self.matching.order(order.client_id)

    def capabilities(self) -> VenueCapabilities:
        every = InstrumentCapabilities(ALL_ORDER_TYPES)
        return VenueCapabilities(dict.fromkeys(self._instruments, every), fills_in_submit_reply=True)

    async def asset_prices(self, assets: list[str], quote: str) -> dict[str, Decimal]:
        prices = {a: self.matching.asset_price(a, quote) for a in assets}
        return {a: p for a, p in prices.items() if p}

    async def equity(self) -> Decimal | None:
        """Cash plus holdings at their last prices, in the quote currency."""
        balances = self.matching.balances()
        total = ZERO
        for asset, bal in balances.items():
            if asset == self.quote:
                total += bal.total
                continue
            price = self.matching.asset_price(asset, self.quote)
            total += bal.total * price if price else ZERO
        return total

    async def cancel(self, order: Order) -> Order:
        self.faults.check("cancel", applied=False)
        before = self.matching.order(order.client_id)
        if before is None:
            raise OrderNotFound(f"no order {order.client_id} on the simulated venue")
        update = self.matching.cancel(order.client_id, self.clock.now())
        assert update is not None
        if before.status.is_working:
            self._publish([update])
        self.faults.check("cancel", applied=True)
        return update.order

    async def cancel_all(self, symbol: str | None = None) -> int:
        self.faults.check("cancel_all", applied=False)
        updates = self.matching.cancel_all(symbol, self.clock.now())
        self._publish(updates)
        self.faults.check("cancel_all", applied=True)
        return len(updates)

    # -- streams ---------------------------------------------------------------------------------

    async def market_stream(self, symbols: list[str]) -> AsyncIterator[list[MarketTick]]:
        unknown = set(symbols) - set(self.symbols)
        if unknown:
            raise ValueError(f"not simulated here: {sorted(unknown)}")
        # The stream drives the clock, so only the newest one runs; an older one ends at its next step.
        self._stream_generation += 1
        generation = self._stream_generation
        wanted = None if set(symbols) >= set(self.symbols) else set(symbols)
        loop = asyncio.get_running_loop()
        dt = self.tick_interval_s
        per_step_wall = None if self.speed == "max" else dt / float(self.speed)
        paced_from, paced_steps = loop.time(), 0
        while not self._closed and generation == self._stream_generation:
            if self.faults.take_stream_break():
                raise TransientVenueError("simulated market stream disconnect")
            now = self.clock.advance(dt)
            batch = self.sim.step(now)
            self.steps += 1
            on_tick = self.matching.on_tick
            updates = [u for tick in batch for u in on_tick(tick)]
            if updates:
                self._publish(updates)
            if self.steps % self._record_every == 0:
                self._recorded.append(batch)
            yield batch if wanted is None else [t for t in batch if t.symbol in wanted]
            if self._closed:
                break
            waiting = False
            for sub in self._subscribers:  # a loop, not any(genexpr): this runs every step
                if not sub.drained:
                    waiting = True
                    break
            if waiting:
                await self._drain()
            if per_step_wall is None:
                if not waiting and self.steps % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            else:
                paced_steps += 1
                delay = paced_from + paced_steps * per_step_wall - loop.time()
                if delay < -_MAX_LAG_S:
                    paced_from, paced_steps = loop.time(), 0
                elif delay > 0:
                    await self._sleep(delay)

    async def order_updates(self) -> AsyncIterator[OrderUpdate]:
        sub = _Subscriber()
        if not self._subscribers:
            while self._backlog:
                sub.queue.put_nowait(self._backlog.popleft())
        self._subscribers.append(sub)
        try:
            while not (self._closed and sub.queue.empty()):
                item = await sub.queue.get()
                if item is None:
                    break
                sub.in_flight = True
                yield item
                sub.in_flight = False
        finally:
            self._subscribers.remove(sub)

    def _publish(self, updates: list[OrderUpdate]) -> None:
        if not updates:
            return
        if not self._subscribers:
            self._backlog.extend(updates)
            return
        for sub in self._subscribers:
            for update in updates:
                sub.queue.put_nowait(update)

    async def _drain(self) -> None:
        """Let update consumers catch up before the next step (bounded: a stuck one cannot stall us)."""
        for _ in range(_MAX_DRAIN_ROUNDS):
            await asyncio.sleep(0)
            if all(sub.drained for sub in self._subscribers):
                break

    async def _sleep(self, delay: float) -> None:
        """A wall-clock sleep that close() can cut short."""
        loop = asyncio.get_running_loop()
        self._sleeper = fut = loop.create_future()
        handle = loop.call_later(delay, lambda: fut.done() or fut.set_result(None))
        try:
            await fut
        finally:
            handle.cancel()
            self._sleeper = None

    # -- warm-up ---------------------------------------------------------------------------------

    async def history(self, symbol: str, seconds: float, step_s: float) -> list[MarketTick]:
        """Ticks over the last `seconds`, oldest first: recorded live ticks, then a pre-run before start."""
        if symbol not in self._instruments:
            raise ValueError(f"not simulated here: {symbol}")
        now = self.clock.now()
        horizon = now.timestamp() - seconds
        live: list[MarketTick] = []
        last_ts = None
        for batch in self._recorded:
            for tick in batch:
                if tick.symbol != symbol:
                    continue
                ts = tick.ts.timestamp()
                if ts >= horizon and (last_ts is None or ts - last_ts >= step_s - 1e-9):
                    live.append(tick)
                    last_ts = ts
        before_start = self.start_time.timestamp() - horizon
        oldest_live = live[0].ts.timestamp() if live else now.timestamp()
        if before_start <= 0 or oldest_live - self.start_time.timestamp() > _RECORD_EVERY_S + step_s:
            return live  # the window starts after the venue did (or the record no longer reaches back)
        n_steps = int(before_start / step_s + 1e-9)
        return self.sim.history(symbol, n_steps, self.start_time, step_s) + live
