"""EMA crossover with exits that clear their costs: the demo strategy of the simulated session.

Long on a golden cross (short on a death cross when allowed). The exits are what make it worth
watching rather than a machine for paying fees:

  - the take profit sits at least `cost_multiple` round-trip costs from the entry, where a round
    trip costs a taker fee on each side plus one spread (a market entry pays half of it, a market
    exit the other half). The fee starts at `taker_fee` and rises to what the fills show; the
    spread is a running mean of the quotes. With a 0.1 % fee and a 1.5 bp spread that is 0.645 %.
    The ATR target (take_profit_mult x ATR) is used when it is the wider of the two.
  - the stop loss is at least `stop_to_target` times the target distance (and at least
    atr_stop_mult x ATR): a stop inside the market's noise would be hit before any target.
    The risk engine sizes the position from that distance, so a wider stop means a smaller size,
    not more money at risk.
  - the time exit closes what neither leg closed, after the longer of strategy.max_hold_s and
    `min_hold_s` (4 h): a 0.6 % target is about one hour's volatility of the simulated symbols, so
    the config's 30 minutes closed most trades by the clock, booking the fees as a loss.
  - the opposite cross does not exit by default (`exit_on_cross`): a cross minutes after the entry
    closes a position that has moved far less than its costs, so it books the fees as a loss.

Entries are paced so the day's allowance of new positions (`entries_per_day`, the risk limit
risk.max_new_positions_per_day) lasts the whole day: after an entry fills, the next one waits
86400 / entries_per_day seconds. Without that, the first three crosses of the day (minutes after
midnight) used the allowance and the session went quiet until the next day.

Sizing is left to the risk engine, which derives the quantity from the stop distance.

What it achieves, honestly: the signal has no edge on the simulated market (a 5 s EMA cross is
noise at a 0.6 % horizon), so take profit and stop are hit about equally often and each trade
loses its costs on average; every take profit books a gain after fees. A trend filter (enter only
a round-trip cost beyond a 10-minute EMA) was tried and dropped: it bought the top of ranges.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from engine.core.config import StrategyConfig
from engine.core.model import Bar, Fill, MarketTick, Order, OrderIntent, Side
from engine.strategies.base import Strategy, StrategyContext

DAY_S = 86400.0


@dataclass(frozen=True, slots=True)
class ExitCosts:
    """The strategy's own parameters for fee-clearing exits and pacing (not in the config file)."""

    cost_multiple: float = 3.0  # the take profit is at least this many round-trip costs away
    taker_fee: float = 0.001  # per side, as a fraction; raised to the rate the fills show
    stop_to_target: float = 1.0  # the stop is at least this share of the target distance away
    entries_per_day: int = 3  # risk.max_new_positions_per_day: spread over the day
    exit_on_cross: bool = False  # the opposite cross closes the position (books the fees as a loss)
    spread_bars: float = 20.0  # the spread estimate is a running mean over about this many bars
    min_hold_s: float = 4 * 3600.0  # the time exit waits at least this long (see the module notes)

    def __post_init__(self) -> None:
        if not self.cost_multiple >= 1:
            raise ValueError("cost_multiple must be at least 1 (a take profit below the costs books a loss)")
        if not 0 <= self.taker_fee < 0.1:
            raise ValueError("taker_fee must be a fraction between 0 and 0.1")
        if not self.stop_to_target > 0:
            raise ValueError("stop_to_target must be greater than 0")
        if self.entries_per_day < 1:
            raise ValueError("entries_per_day must be at least 1")
        if self.min_hold_s < 0:
            raise ValueError("min_hold_s must not be negative")


class _SymbolState:
    __slots__ = ("atr", "bars", "fast", "prev_close", "prev_diff", "slow", "spread")

    def __init__(self) -> None:
        self.fast: float | None = None
        self.slow: float | None = None
        self.atr: float | None = None
        self.prev_close: float | None = None
        self.prev_diff: float | None = None
        self.spread: float | None = None  # running mean of (ask - bid) / mid, sampled once a bar
        self.bars = 0


class EmaCross(Strategy):
    name = "ema_cross"

    def __init__(
        self, ctx: StrategyContext, symbols: list[str], cfg: StrategyConfig, costs: ExitCosts | None = None
    ) -> None:
        super().__init__(ctx, symbols, cfg.timeframe_s)
        self.cfg = cfg
        self.costs = costs or ExitCosts()
        self._k_fast = 2 / (cfg.fast + 1)
        self._k_slow = 2 / (cfg.slow + 1)
        self._k_atr = 1 / cfg.atr_period
        self._k_spread = 1 / self.costs.spread_bars
        self._state = {s: _SymbolState() for s in symbols}
        self.fee_rate = self.costs.taker_fee  # the highest rate a fill has shown
        self.last_entry_at: datetime | None = None

    # --- costs -----------------------------------------------------------------------------------

    @property
    def entry_gap_s(self) -> float:
        return DAY_S / self.costs.entries_per_day

    def round_trip_cost(self, symbol: str) -> float:
        """Expected cost of a round trip as a fraction of the price: two taker fees and one spread."""
        spread = self._state[symbol].spread or 0.0
        return 2 * self.fee_rate + spread

    def exit_distances(self, symbol: str, price: float, atr: float) -> tuple[float, float]:
        """(take-profit distance, stop distance) in price units."""
        target = max(atr * self.cfg.take_profit_mult, self.costs.cost_multiple * self.round_trip_cost(symbol) * price)
        stop = max(atr * self.cfg.atr_stop_mult, self.costs.stop_to_target * target)
        return target, stop

    # --- market data -----------------------------------------------------------------------------

    def _sample_spread(self, st: _SymbolState, tick: MarketTick | None) -> None:
        """Sampled once a bar, from the bar-closing tick: Decimal arithmetic on every tick costs."""
        if tick is None or tick.bid <= 0 or tick.ask < tick.bid:
            return
        bid, ask = float(tick.bid), float(tick.ask)
        spread = 2 * (ask - bid) / (ask + bid)
        st.spread = spread if st.spread is None else st.spread + self._k_spread * (spread - st.spread)

    def on_fill(self, fill: Fill, order: Order) -> None:
        notional = fill.qty * fill.price
        if notional > 0 and fill.fee > 0:
            self.fee_rate = max(self.fee_rate, float(fill.fee / notional))
        if order.role == "entry":
            self.last_entry_at = fill.ts

    def on_bar(self, bar: Bar) -> None:
        st = self._state[bar.symbol]
        self._sample_spread(st, self.last_tick(bar.symbol))
        close, high, low = float(bar.close), float(bar.high), float(bar.low)
        tr = high - low if st.prev_close is None else max(high, st.prev_close) - min(low, st.prev_close)
        if st.fast is None or st.slow is None or st.atr is None:
            st.fast = st.slow = close
            st.atr = tr
        else:
            st.fast += self._k_fast * (close - st.fast)
            st.slow += self._k_slow * (close - st.slow)
            st.atr += self._k_atr * (tr - st.atr)
        st.prev_close = close
        st.bars += 1
        diff = st.fast - st.slow
        prev, st.prev_diff = st.prev_diff, diff
        if prev is None or st.bars < self.cfg.slow or st.atr <= 0:
            return
        if prev <= 0 < diff:
            self._signal(bar, Side.BUY, st.atr, "golden cross")
        elif prev >= 0 > diff:
            self._signal(bar, Side.SELL, st.atr, "death cross")

    # --- orders ----------------------------------------------------------------------------------

    def _paced_out(self) -> bool:
        last = self.last_entry_at
        return last is not None and (self.ctx.now() - last).total_seconds() < self.entry_gap_s

    def _signal(self, bar: Bar, side: Side, atr: float, why: str) -> None:
        ctx = self.ctx
        pos = ctx.position(bar.symbol)
        if pos is not None and pos.qty:
            if self.costs.exit_on_cross and (pos.qty > 0) != (side is Side.BUY):
                ctx.submit_intent(
                    OrderIntent(
                        symbol=bar.symbol,
                        side=side,
                        qty=abs(pos.qty),
                        reduce_only=True,
                        reason=f"exit on {why}",
                        tag="signal_exit",
                        strategy=self.name,
                    )
                )
            return
        if side is Side.SELL and not self.cfg.allow_short:
            return
        if ctx.has_working_entry(bar.symbol) or self._paced_out():
            return
        inst = ctx.instrument(bar.symbol)
        target, stop = self.exit_distances(bar.symbol, float(bar.close), atr)
        sign = side.sign
        cost = self.round_trip_cost(bar.symbol)
        placed = ctx.submit_intent(
            OrderIntent(
                symbol=bar.symbol,
                side=side,
                stop_loss=inst.round_price(bar.close - sign * Decimal(repr(stop))),
                take_profit=inst.round_price(bar.close + sign * Decimal(repr(target))),
                reason=(
                    f"{why}: EMA{self.cfg.fast} crossed EMA{self.cfg.slow} at {bar.close}; "
                    f"target {target / float(bar.close):.3%} = {target / float(bar.close) / cost:.1f}x "
                    f"round-trip cost {cost:.3%}"
                ),
                tag=why.replace(" ", "_"),
                strategy=self.name,
                max_hold_s=max(self.cfg.max_hold_s, self.costs.min_hold_s),
            )
        )
        if placed is not None:  # refused by the risk checks: the slot is not used up
            self.last_entry_at = ctx.now()
