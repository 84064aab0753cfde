"""RiskEngine: the trading state and the pre-trade checks every order passes.

Each check is a small declarative rule (name, label, limit, live value) so the
UI can draw it as a gauge and a denial can name its reason code. A denied
intent never raises into the strategy: `check` returns a Decision.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from engine.core.config import RiskConfig
from engine.core.model import ZERO, Instrument, OrderIntent, OrderType, Side, TradingState
from engine.risk.stage_limits import StageLimits


@dataclass(frozen=True, slots=True)
class Decision:
    approved: bool
    qty: Decimal
    code: str = "ok"
    message: str = ""
    price: Decimal | None = None  # reference price the checks used
    checks: tuple[str, ...] = ()


@dataclass(slots=True)
class CheckInput:
    """Everything a check needs, gathered once by the engine (no awaits in between)."""

    intent: OrderIntent
    instrument: Instrument
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    equity: Decimal
    cash: Decimal
    position_qty: Decimal
    open_positions: int
    new_positions_today: int
    now: float  # monotonic seconds, for the order-rate window
    bypass_state: bool = False  # close-all's own flatten orders
    exposure: Decimal = ZERO  # gross notional of the open positions, for the stage's capital cap
    position_symbols: frozenset[str] = frozenset()  # symbols holding a position now


CHECK_NAMES = (
    "state",
    "allowlist",
    "stage_symbols",
    "stop_loss",
    "collar",
    "size",
    "notional",
    "risk_per_trade",
    "concurrent_positions",
    "new_positions",
    "cash_reserve",
    "stage_capital",
    "order_rate",
    "precision",
)


class RiskEngine:
    def __init__(
        self, cfg: RiskConfig, on_state_change: Callable[[TradingState, TradingState, str, str], None]
    ):
        self.cfg = cfg
        self.state = TradingState.ACTIVE
        self.state_reason = ""
        self._on_state_change = on_state_change
        self._order_times: deque[float] = deque()
        self._allow = frozenset(cfg.symbol_allowlist)
        self.stage: StageLimits | None = None  # the activation stage's limits, refreshed by the engine

    # --- state machine ---------------------------------------------------------
    def set_state(self, new: TradingState, reason: str, operator: str = "system") -> bool:
        """Change state synchronously; returns False when already there."""
        old = self.state
        if old is new:
            return False
        self.state = new
        self.state_reason = reason
        self._on_state_change(old, new, reason, operator)
        return True

    def reload(self, cfg: RiskConfig) -> None:
        self.cfg = cfg
        self._allow = frozenset(cfg.symbol_allowlist)

    # --- limits that the stage narrows -------------------------------------------------
    @property
    def risk_per_trade(self) -> float:
        """The operator's risk per trade, lowered to the stage's current size-schedule step."""
        if self.stage is None:
            return self.cfg.risk_per_trade
        return min(self.cfg.risk_per_trade, self.stage.risk_per_trade)

    def capital_base(self, equity: Decimal) -> Decimal:
        """Equity as far as sizing is concerned: a stage's capital cap bounds it."""
        cap = self.stage.capital_cap if self.stage is not None else None
        return equity if cap is None else min(equity, cap)

    # --- sizing ------------------------------------------------------------------
    def size(self, intent: OrderIntent, price: Decimal, equity: Decimal, inst: Instrument) -> Decimal:
        """Quantity from stop distance and risk per trade, capped by the notional cap, lot-rounded."""
        cfg = self.cfg
        equity = self.capital_base(equity)
        cap_qty = equity * Decimal(repr(cfg.max_position_notional)) / price
        if intent.stop_loss is not None and intent.stop_loss != price:
            risk_money = equity * Decimal(repr(self.risk_per_trade))
            qty = risk_money / abs(price - intent.stop_loss)
            qty = min(qty, cap_qty)
        else:
            qty = cap_qty
        return inst.round_qty(qty)

    # --- the checks ----------------------------------------------------------------
    def check(self, ci: CheckInput) -> Decision:
        intent, cfg = ci.intent, self.cfg
        increases = ci.position_qty == 0 or (ci.position_qty > 0) == (intent.side is Side.BUY)
        reduces = not increases and not (intent.qty is not None and intent.qty > abs(ci.position_qty))
        passed: list[str] = []

        # state: HALTED blocks all new risk, yet a reduce-only order that shrinks a position (a protective
        # exit, a stop leg) passes; REDUCING lets only shrinking orders through
        if not ci.bypass_state:
            if self.state is TradingState.HALTED and not (intent.reduce_only and reduces):
                return self._deny(ci, "halted", f"trading is HALTED ({self.state_reason})")
            if self.state is TradingState.REDUCING and not reduces:
                return self._deny(
                    ci, "reducing_only", "state is REDUCING: only orders that shrink a position"
                )
        if intent.reduce_only and not reduces:
            return self._deny(ci, "not_reducing", "reduce-only order would not shrink a position")
        passed.append("state")

        if self._allow and intent.symbol not in self._allow:
            return self._deny(ci, "symbol_not_allowed", f"{intent.symbol} is not on the allow-list")
        stage = self.stage
        if increases and stage is not None and stage.allowlist and intent.symbol not in stage.allowlist:
            return self._deny(ci, "stage_symbol", f"{intent.symbol} is not allowed at the {stage.stage} stage")
        passed.append("allowlist")
        if increases and stage is not None and stage.max_symbols is not None:
            held = ci.position_symbols | {intent.symbol}
            if len(held) > stage.max_symbols:
                return self._deny(
                    ci,
                    "stage_symbols",
                    f"the {stage.stage} stage trades at most {stage.max_symbols} symbol(s) at once "
                    f"({', '.join(sorted(ci.position_symbols))} held)",
                )
            passed.append("stage_symbols")

        if increases and cfg.stop_loss_required and intent.stop_loss is None:
            return self._deny(ci, "stop_loss_required", "a stop loss is required for new exposure")
        passed.append("stop_loss")

        price = self._reference_price(ci)
        if price is None:
            return self._deny(ci, "no_price", f"no market price for {intent.symbol} yet")
        if ci.last:
            slip = abs(price - ci.last) / ci.last
            if slip > Decimal(repr(cfg.max_slippage)):
                return self._deny(
                    ci,
                    "price_collar",
                    f"price {price} is {slip:.2%} from last {ci.last} (max {cfg.max_slippage:.2%})",
                )
        passed.append("collar")

        qty = intent.qty if intent.qty is not None else self.size(intent, price, ci.equity, ci.instrument)
        if not increases:
            qty = min(qty, abs(ci.position_qty))
        qty = ci.instrument.round_qty(qty)
        if qty <= 0:
            return self._deny(
                ci, "size_zero", "sized quantity rounds to zero at this equity and stop distance"
            )
        passed.append("size")

        if increases and ci.equity > 0:
            notional = qty * price
            share = notional / ci.equity
            if share > Decimal(repr(cfg.max_position_notional)):
                return self._deny(
                    ci,
                    "notional",
                    f"order notional {share:.2%} of equity exceeds {cfg.max_position_notional:.2%}",
                )
            passed.append("notional")
            if intent.stop_loss is not None:
                base = self.capital_base(ci.equity)
                risk = abs(price - intent.stop_loss) * qty / base
                limit = self.risk_per_trade
                if risk > Decimal(repr(limit)):
                    return self._deny(ci, "risk_per_trade", f"risk {risk:.3%} of capital exceeds {limit:.3%}")
            passed.append("risk_per_trade")
            if ci.position_qty == 0:
                if ci.open_positions >= cfg.max_concurrent_positions:
                    return self._deny(
                        ci,
                        "concurrent_positions",
                        f"{ci.open_positions} positions open (max {cfg.max_concurrent_positions})",
                    )
                passed.append("concurrent_positions")
                if ci.new_positions_today >= cfg.max_new_positions_per_day:
                    return self._deny(
                        ci,
                        "new_positions_per_day",
                        f"{ci.new_positions_today} new positions today (max {cfg.max_new_positions_per_day})",
                    )
                passed.append("new_positions")
            if intent.side is Side.BUY:
                reserve = ci.equity * Decimal(repr(cfg.cash_reserve))
                if ci.cash - notional < reserve:
                    return self._deny(
                        ci,
                        "cash_reserve",
                        f"cash after order {ci.cash - notional:.2f} below reserve {reserve:.2f}",
                    )
                passed.append("cash_reserve")
            if stage is not None and stage.capital_cap is not None:
                after = ci.exposure + notional
                if after > stage.capital_cap:
                    return self._deny(
                        ci,
                        "stage_capital",
                        f"exposure {after:,.2f} after this order exceeds the {stage.stage} stage's "
                        f"capital cap {stage.capital_cap:,.2f}",
                    )
                passed.append("stage_capital")

        window = ci.now - 1.0
        times = self._order_times
        while times and times[0] <= window:
            times.popleft()
        if not ci.bypass_state and len(times) >= cfg.max_orders_per_second:
            return self._deny(ci, "order_rate", f"more than {cfg.max_orders_per_second:g} orders per second")
        passed.append("order_rate")

        limit_price = intent.price if intent.order_type is OrderType.LIMIT else None
        problem = ci.instrument.precision_error(qty, limit_price)
        if problem is None and limit_price is None and qty * price < ci.instrument.min_notional:
            problem = f"notional {qty * price:.2f} is below the venue minimum {ci.instrument.min_notional}"
        if problem is not None:
            return self._deny(ci, "precision", problem)
        passed.append("precision")

        return Decision(True, qty, "ok", "", price, tuple(passed))

    def _reference_price(self, ci: CheckInput) -> Decimal | None:
        intent = ci.intent
        if intent.order_type is OrderType.LIMIT and intent.price is not None:
            return intent.price
        if intent.order_type is OrderType.STOP_MARKET and intent.stop_price is not None:
            return intent.stop_price
        touch = ci.ask if intent.side is Side.BUY else ci.bid
        return touch or ci.last

    @staticmethod
    def _deny(ci: CheckInput, code: str, message: str) -> Decision:
        return Decision(False, ZERO, code, message)

    def note_sent(self, now: float) -> None:
        """An order left for the venue (any order: entries, exits, stop legs, flattens)."""
        self._order_times.append(now)

    def wait_for_rate(self, now: float) -> float:
        """Seconds until one more order fits in the order-rate window (0: it fits now)."""
        times = self._order_times
        while times and times[0] <= now - 1.0:
            times.popleft()
        if len(times) < self.cfg.max_orders_per_second:
            return 0.0
        return max(0.001, times[0] + 1.0 - now)

    def orders_last_second(self, now: float) -> int:
        return sum(1 for t in self._order_times if t > now - 1.0)
