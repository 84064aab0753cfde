"""EMA crossover with an ATR stop, an ATR take-profit and a time-based exit.

Long on a golden cross, out on a death cross (short too when allowed). Sizing
is left to the risk engine, which derives quantity from the stop distance.
"""

from __future__ import annotations

from decimal import Decimal

from engine.core.config import StrategyConfig
from engine.core.model import Bar, OrderIntent, Side
from engine.strategies.base import Strategy, StrategyContext


class _SymbolState:
    __slots__ = ("atr", "bars", "fast", "prev_close", "prev_diff", "slow")

    def __init__(self) -> None:
        self.fast: float | None = None
        self.slow: float | None = None
        self.atr: float | None = None
        self.prev_close: float | None = None
        self.prev_diff: float | None = None
        self.bars = 0


class EmaCross(Strategy):
    name = "ema_cross"

    def __init__(self, ctx: StrategyContext, symbols: list[str], cfg: StrategyConfig) -> None:
        super().__init__(ctx, symbols, cfg.timeframe_s)
        self.cfg = cfg
        self._k_fast = 2 / (cfg.fast + 1)
        self._k_slow = 2 / (cfg.slow + 1)
        self._k_atr = 1 / cfg.atr_period
        self._state = {s: _SymbolState() for s in symbols}

    def on_bar(self, bar: Bar) -> None:
        st = self._state[bar.symbol]
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

    def _signal(self, bar: Bar, side: Side, atr: float, why: str) -> None:
        ctx = self.ctx
        pos = ctx.position(bar.symbol)
        if pos is not None and pos.qty:
            if (pos.qty > 0) != (side is Side.BUY):
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
        if ctx.has_working_entry(bar.symbol):
            return
        inst = ctx.instrument(bar.symbol)
        distance = Decimal(repr(atr * self.cfg.atr_stop_mult))
        target = Decimal(repr(atr * self.cfg.take_profit_mult))
        sign = side.sign
        ctx.submit_intent(
            OrderIntent(
                symbol=bar.symbol,
                side=side,
                stop_loss=inst.round_price(bar.close - sign * distance),
                take_profit=inst.round_price(bar.close + sign * target),
                reason=f"{why}: EMA{self.cfg.fast} crossed EMA{self.cfg.slow} at {bar.close}",
                tag=why.replace(" ", "_"),
                strategy=self.name,
                max_hold_s=self.cfg.max_hold_s,
            )
        )
