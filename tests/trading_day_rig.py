"""A compressed day of trading with restarts on a venue fake: the rig both venues' tests share.

One journal, one fake, several engine lifetimes (each a real Engine with the real ccxt or alpaca-py
client), ended cleanly or like a crash. After every session the three records must agree to the unit:
the venue's holdings and cash, the engine's book, and the journal's fill rows.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from engine.app.kernel import Engine
from engine.core.clock import SystemClock
from engine.core.model import Fill, Order, OrderIntent, OrderStatus, OrderType, ProtectionStatus, Side
from engine.persistence.journal import Journal
from engine.venues.base import Venue
from tests.engine_rig import settings_for, stop

FAST = {"timeout_s": 1.0, "poll_interval_s": 0.05, "backoff_s": 0.01, "ws_retry_s": 0.3}
TICK_S = 0.05
ZERO = D(0)
FLAGS = ("position_mismatch", "external_order", "cash_flow")  # none may appear on a day without transfers


def day_settings() -> Any:
    s = settings_for(cash_reserve=0.0, max_position_notional=0.25, max_volatility=1000.0)
    s.approvals.enabled = False
    s.engine.shutdown = "keep"  # a clean stop leaves the orders resting, as an operator's restart does
    return s


@dataclass
class VenueSide:
    """What the rig needs of one venue fake: reads of the account and a hand on its prices."""

    symbols: list[str]
    baseline: dict[str, D]  # per symbol, what the account held before the engine
    make_venue: Callable[[], Venue]
    holding: Callable[[str], D]  # the venue's holding of a symbol's base asset
    cash: Callable[[], D]  # the venue's quote balance
    step: Callable[[], None]  # one tick of every price
    touch: Callable[[str, D], None]  # a tick whose ask is at this price: a resting buy there fills
    trade_ids: Callable[[], set[str]]  # every trade of the account, by the id the engine books it under
    trades: Callable[[], list[Fill]]  # the venue's own history of the account's trades
    placed: Callable[[str], bool]  # the venue has this client id on its book
    open_orders: Callable[[], list[Order]]  # the venue's open orders
    hold_orders: Callable[[int, float], None]  # the next n order requests arrive whole and wait this long
    held: Callable[[], int]  # order requests held so far
    while_down: Callable[[], None] = lambda: None  # something else that happens to the account meanwhile


@dataclass
class Day:
    side: VenueSide
    home: Path
    sessions: int = 0
    low_water: dict[str, D] = field(default_factory=dict)  # the lowest holding seen at any tick
    stops: dict[str, D] = field(default_factory=dict)  # each entry's stop loss, by client id
    _ticking: bool = False
    _ticker: asyncio.Task[None] | None = None
    _before: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def journal_path(self) -> Path:
        return self.home / "journal.sqlite"

    # --- prices ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def finish(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)

    async def _tick(self) -> None:
        while True:
            if self._ticking:
                self.side.step()
            self.sample()
            await asyncio.sleep(TICK_S)

    def ticking(self, on: bool) -> None:
        self._ticking = on

    def sample(self) -> None:
        """Every tick: the holdings from before the engine are never touched (asserted at the end)."""
        for symbol in self.side.baseline:
            held = self.side.holding(symbol)
            self.low_water[symbol] = min(self.low_water.get(symbol, held), held)

    # --- engine lifetimes ---------------------------------------------------------------------------
    async def open(self) -> Engine:
        self.sessions += 1
        self._before = set(asyncio.all_tasks())
        s = self.side
        e = Engine(day_settings(), s.make_venue(), Journal(self.journal_path), SystemClock(), symbols=list(s.symbols))
        await e.start()
        self.ticking(True)
        await self.wait(lambda: len(e.ticks) == len(s.symbols), "first ticks")
        return e

    async def stop(self, e: Engine) -> None:
        """The orderly end: shutdown (orders kept at the venue), journal closed."""
        await stop(e)

    async def crash(self, e: Engine) -> None:
        """The process dies: every task this lifetime started stops where it is (no shutdown, no last
        journal writes), its sockets close, the journal file is left as it was."""
        mine = asyncio.current_task()
        dying = [t for t in asyncio.all_tasks() - self._before if t is not mine and not _fake_side(t)]
        for t in dying:
            t.cancel()
        await asyncio.gather(*dying, return_exceptions=True)
        await e.venue.close()
        e.journal.close()

    async def wait(self, cond: Callable[[], bool], what: str, timeout: float = 5.0,
                   detail: Callable[[], str] = str) -> None:  # fmt: skip
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not cond():
            if loop.time() > deadline:
                raise AssertionError(f"{what} not met in time\n{detail()}")
            await asyncio.sleep(0.01)

    # --- the account's truth ---------------------------------------------------------------------------
    def engine_view(self, e: Engine) -> dict[str, D]:
        return {s: e.portfolio.qty(s) for s in self.side.symbols}

    def venue_view(self, e: Engine) -> dict[str, D]:
        """The venue's holding less what it held before the engine and the fee dust kept apart."""
        s = self.side
        return {x: s.holding(x) - s.baseline.get(x, ZERO) - e.portfolio.dust.get(x, ZERO) for x in s.symbols}

    def quiet(self, e: Engine) -> bool:
        book = e.book
        return not e.execution.inflight and not any(o.status is OrderStatus.PENDING for o in book.working()) and all(
            book.all_fills_booked(o.client_id) for o in book.all_orders()
        )

    def protected(self, e: Engine) -> bool:
        """Each open position has one stop leg resting at the venue, for as much as the venue can sell of it."""
        at_venue = self.side.open_orders()
        for symbol in self.side.symbols:
            qty = e.portfolio.qty(symbol)
            legs = [o for o in e.book.working(symbol) if o.role == "stop_loss"]
            there = [o for o in at_venue if o.symbol == symbol and o.order_type in (OrderType.STOP_MARKET,
                                                                                    OrderType.STOP_LIMIT)]  # fmt: skip
            if not qty:
                if legs or there:
                    return False
                continue
            if len(legs) != 1 or [o.client_id for o in there] != [legs[0].client_id]:
                return False
            if there[0].remaining != e.instruments[symbol].round_qty(abs(qty)):
                return False
            if e.portfolio.position(symbol).protection != ProtectionStatus.VENUE.value:  # type: ignore[union-attr]
                return False  # what the operator is shown: the stop rests at the venue
        return True

    async def settle(self, e: Engine, what: str) -> None:
        """Prices stand still, the engine finishes what it started, then every record must agree."""
        self.ticking(False)
        await self.wait(lambda: self.quiet(e) and self.engine_view(e) == self.venue_view(e) and self.protected(e),
                        f"{what}: the engine settled with the venue", 8.0, lambda: self.describe(e))  # fmt: skip
        await asyncio.to_thread(e.journal.flush)
        self.assert_truth(e, what)
        self.ticking(True)

    def describe(self, e: Engine) -> str:
        working = [(o.client_id, o.role, o.order_type.value, o.status.value, str(o.qty)) for o in e.book.working()]
        shown = {p.symbol: p.protection for p in e.portfolio.positions()}
        unbooked = [o.client_id for o in e.book.all_orders() if not e.book.all_fills_booked(o.client_id)]
        there = [(o.client_id, o.order_type.value, str(o.remaining)) for o in self.side.open_orders()]
        return (f"inflight {len(e.execution.inflight)}; engine {self.engine_view(e)}; venue {self.venue_view(e)}; "
                f"dust {e.portfolio.dust}; working {working}; at the venue {there}; unbooked {unbooked}; "
                f"protection {shown}")  # fmt: skip

    def assert_truth(self, e: Engine, what: str) -> None:
        s = self.side
        # (1) the engine's position is the venue's holding less the baseline and the dust, to the unit
        assert self.engine_view(e) == self.venue_view(e), what
        # (3) the engine's cash is the venue's
        assert e.portfolio.cash == s.cash(), (what, e.portfolio.cash, s.cash())
        # (2) the journal's fill rows replay to the engine's position plus dust; each trade booked once
        fills = e.journal.fills()
        ids = Counter(f.fill_id for f in fills)
        assert all(n == 1 for n in ids.values()), (what, [i for i, n in ids.items() if n > 1])
        assert set(ids) == s.trade_ids(), (what, set(ids) ^ s.trade_ids())
        replay = replay_fills(fills)
        for symbol in s.symbols:
            assert replay[symbol] == e.portfolio.qty(symbol) + e.portfolio.dust.get(symbol, ZERO), (what, symbol)
        # (7) every filled order has its fill rows; no own order was ever taken for someone else's
        booked: dict[str, D] = defaultdict(D)
        for f in fills:
            booked[f.client_id] += f.qty
        orders = e.journal.orders()
        for o in orders:
            assert not o.external, (what, o.client_id)
            if o.status is OrderStatus.FILLED or o.filled_qty:
                assert booked[o.client_id] == o.filled_qty, (what, o.client_id, o.filled_qty, booked[o.client_id])
        assert set(booked) <= {o.client_id for o in orders}, what
        # (5) nothing flagged: no mismatch, no external order, no unexplained cash
        flagged = [a.code for a in e.journal.alerts(limit=10_000) if a.code in FLAGS]
        flagged += [i.kind for i in e.journal.incidents() if i.kind in FLAGS]
        assert flagged == [], (what, flagged)
        # (4) the holdings from before the engine: never below their baseline at any tick
        for symbol, before in s.baseline.items():
            assert self.low_water.get(symbol, before) >= before, (what, symbol, self.low_water)
            assert s.holding(symbol) >= before, (what, symbol)

    # --- acting through the engine's public surfaces -------------------------------------------
    async def sized_entry(self, e: Engine, symbol: str, stop_pct: str) -> Order:
        """(6) An entry the engine sizes (qty=None): bounded by the account's equity and the risk fraction,
        never by the config's 100,000 of capital."""
        await self.wait(lambda: self.quiet(e) and e.portfolio.cash == self.side.cash(), "cash as the venue's")
        last = e.ticks[symbol].last
        stop_at = e.instruments[symbol].round_price(last * (1 - D(stop_pct)))
        equity = e.portfolio.equity  # the venue's cash and the engine's own positions at the last price
        assert equity == self.side.cash() + sum((p.qty * p.last_price for p in e.portfolio.positions()), ZERO)
        order = e.submit_intent(OrderIntent(symbol, Side.BUY, None, stop_loss=stop_at, tag="day"))
        assert order is not None, f"{symbol}: sized entry refused"
        rules = e.settings.risk
        assert order.qty * last <= equity * D(repr(rules.max_position_notional)), (order.qty, equity)
        assert order.qty * (last - stop_at) <= equity * D(repr(rules.risk_per_trade)), (order.qty, equity)
        return order

    def entry(self, e: Engine, symbol: str, qty: D, stop_pct: str) -> Order:
        last = e.ticks[symbol].last
        stop_at = e.instruments[symbol].round_price(last * (1 - D(stop_pct)))
        order = e.submit_intent(OrderIntent(symbol, Side.BUY, qty, stop_loss=stop_at, tag="day"))
        assert order is not None, f"{symbol}: entry refused"
        return order

    def resting_buy(self, e: Engine, symbol: str, qty: D, below: str, stop_pct: str) -> Order:
        """A limit buy under the market with its stop: it rests until the price comes to it."""
        inst = e.instruments[symbol]
        price = inst.round_price(e.ticks[symbol].ask * (1 - D(below)))
        stop_at = inst.round_price(price * (1 - D(stop_pct)))
        order = e.submit_intent(OrderIntent(symbol, Side.BUY, qty, OrderType.LIMIT, price=price,
                                            stop_loss=stop_at, tag="day"))  # fmt: skip
        assert order is not None, f"{symbol}: limit refused"
        self.stops[order.client_id] = stop_at
        return order

    def exit(self, e: Engine, symbol: str, qty: D) -> Order:
        order = e.submit_intent(OrderIntent(symbol, Side.SELL, qty, reduce_only=True, tag="day", reason="take some"))
        assert order is not None, f"{symbol}: exit refused"
        return order

    async def filled(self, e: Engine, order: Order) -> None:
        def done() -> bool:
            o = e.book.get(order.client_id)
            return o is not None and o.status is OrderStatus.FILLED and e.book.all_fills_booked(order.client_id)

        await self.wait(done, f"{order.symbol} {order.side} filled", detail=lambda: self.describe(e))

    async def resting(self, e: Engine, order: Order) -> None:
        await self.wait(lambda: (o := e.book.get(order.client_id)) is not None and o.status is OrderStatus.OPEN,
                        f"{order.symbol} limit resting")  # fmt: skip


def replay_fills(fills: list[Fill]) -> dict[str, D]:
    """Each symbol's holding as the journal's fill rows say: bought less a base-asset fee, less sold."""
    out: dict[str, D] = defaultdict(D)
    for f in fills:
        base = f.symbol.partition("/")[0]
        fee = f.fee_charged if f.fee_currency == base and f.fee_charged is not None else ZERO
        out[f.symbol] += (f.qty if f.side is Side.BUY else -f.qty) - fee
    return out


def never_sold_what_it_held_before(side: VenueSide) -> None:
    """(4) over the venue's own trade history: at no trade did the engine sell more than it had bought, so
    the holdings from before it were never touched between the ticks sampled either."""
    running: dict[str, D] = defaultdict(D)
    baseline = side.baseline
    for f in side.trades():  # in the order the venue matched them
        if f.symbol not in baseline:
            continue
        running[f.symbol] += replay_fills([f])[f.symbol]
        assert running[f.symbol] >= 0, (f, running[f.symbol])


def _fake_side(task: asyncio.Task[Any]) -> bool:
    """Tasks of the fake's server (they live on: the venue is not the process that dies)."""
    code = getattr(task.get_coro(), "cr_code", None)
    name = code.co_filename if code is not None else ""
    return "aiohttp/web_" in name or "/tests/fakes/" in name
