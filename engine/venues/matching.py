"""A synchronous spot matching engine over one account, driven by market ticks.

Pure and asyncio-free so the simulated venue and the protocol-level fake
exchanges can share it. Market orders take the touch plus size- and
spread-dependent slippage; limit orders that cross on arrival are takers, resting
ones fill as makers at their price, limited by a share of each tick's volume;
stop-market orders trigger on the last price and then behave like market orders;
stop-limit orders trigger the same way and then rest (or take) as limit orders.
A fill of one protective leg shrinks or cancels its one-cancels-other siblings, so
a stop and a take-profit protecting the same coins never both sell them.

This module is the order lifecycle and the public entry; the account's funds and
locks are `matching_funds`, the fee models `matching_fees`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from engine.core.model import (
    ZERO,
    Balance,
    Fill,
    Instrument,
    Liquidity,
    MarketTick,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    quantize_down,
)
from engine.venues.matching_fees import FEE_MODELS, charge, fee
from engine.venues.matching_funds import Funds, Working

_AVG_QUANTUM = Decimal("1e-12")
_BUY, _SELL = Side.BUY, Side.SELL
_Updates = list[OrderUpdate]
_LIMIT, _STOP, _STOP_LIMIT = OrderType.LIMIT, OrderType.STOP_MARKET, OrderType.STOP_LIMIT


def as_decimal(value: Decimal | float | int | str) -> Decimal:
    """Config hands over floats; str() keeps 0.001 from becoming 0.00100000000000000002."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


class MatchingEngine:
    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        balances: Mapping[str, Decimal],
        *,
        maker_fee: Decimal | float = Decimal("0.0008"),
        taker_fee: Decimal | float = Decimal("0.001"),
        venue: str = "sim",
        allow_short: bool = False,
        volume_share: Decimal = Decimal("0.25"),
        impact: float = 0.5,
        fee_model: str = "quote",
        bnb_pays: bool = False,
        asset_prices: Mapping[str, Decimal] | None = None,
        id_prefix: str | None = None,
    ) -> None:
        """`id_prefix` tags order and fill ids (default: the venue name); make it unique per run
        so ids never repeat after a restart. `asset_prices` values a fee asset that is not traded
        here (BNB) in the quote currency; a traded BNB/<quote> symbol's last price wins."""
        if fee_model not in FEE_MODELS:
            raise ValueError(f"fee_model must be one of {FEE_MODELS}, not {fee_model!r}")
        self.fee_model = fee_model
        self.bnb_pays = bnb_pays
        self.asset_prices = {a: as_decimal(p) for a, p in (asset_prices or {}).items()}
        self.id_prefix = id_prefix or venue
        self.instruments = dict(instruments)
        self.maker_fee = as_decimal(maker_fee)
        self.taker_fee = as_decimal(taker_fee)
        self.venue = venue
        self.allow_short = allow_short
        self.volume_share = as_decimal(volume_share)
        self.impact = impact  # slippage in spreads for an order as big as the typical tick volume
        self.funds = Funds(
            {a: as_decimal(v) for a, v in balances.items()},
            allow_short=allow_short,
            lock_rate=1 + max(self.maker_fee, self.taker_fee),
        )
        self._orders: dict[str, Working] = {}
        self._books: dict[str, dict[str, Working]] = {}  # working orders per symbol, time priority
        self._last: dict[str, MarketTick] = {}
        self._avg_volume: dict[str, float] = {}
        self._fills: list[Fill] = []
        self._seq = 0
        self._triggered: set[str] = set()  # stop-limit orders whose stop was hit: they now rest as limits

    # -- queries ---------------------------------------------------------------------------------

    def order(self, client_id: str) -> Order | None:
        w = self._orders.get(client_id)
        return None if w is None else w.order

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        books = [self._books.get(symbol, {})] if symbol else list(self._books.values())
        return [w.order for book in books for w in book.values()]

    def fills_since(self, ts: datetime | None = None) -> list[Fill]:
        """Fills at or after `ts` (inclusive, like exchange `startTime`), oldest first."""
        return list(self._fills) if ts is None else [f for f in self._fills if f.ts >= ts]

    def balances(self) -> dict[str, Balance]:
        return self.funds.balances()

    def positions(self) -> dict[str, Decimal]:
        """Signed base holdings per symbol (zero holdings left out)."""
        out = {}
        for sym, inst in self.instruments.items():
            if inst.base == inst.quote:
                continue
            qty = self.funds.held(inst.base)
            if qty != 0:
                out[sym] = qty
        return out

    def last_tick(self, symbol: str) -> MarketTick | None:
        return self._last.get(symbol)

    # -- commands --------------------------------------------------------------------------------

    def submit(self, order: Order, tick: MarketTick | None, now: datetime) -> list[OrderUpdate]:
        """Accept (and maybe fill) or reject; a known client_id only reports its current state."""
        known = self._orders.get(order.client_id)
        if known is not None:
            return [OrderUpdate(known.order)]
        inst = self.instruments.get(order.symbol)
        if tick is None or tick.symbol != order.symbol:
            tick = self._last.get(order.symbol)
        error = self._validate(order, inst, tick)
        if error is not None or inst is None:
            return [self._reject(order, error or "unknown symbol", now)]
        self._seq += 1
        accepted = order.evolve(
            status=OrderStatus.OPEN,
            venue_order_id=f"{self.id_prefix}-{self._seq}",
            filled_qty=ZERO,
            avg_fill_price=None,
            created_at=order.created_at or now,
            updated_at=now,
            reason="",
        )
        if order.order_type is OrderType.MARKET:
            assert tick is not None  # _validate insists on a market price
            return self._submit_market(accepted, inst, tick, now)
        w = Working(accepted, inst, None)
        if not self.funds.attach(w):
            return [self._reject(order, self.funds.shortfall(w), now)]
        self._orders[order.client_id] = w
        self._books.setdefault(order.symbol, {})[order.client_id] = w
        updates = [OrderUpdate(accepted)]
        if tick is not None:
            if order.order_type is _LIMIT and self._crosses_as_taker(accepted, tick):
                price = self._taker_price(inst, accepted.side, accepted.qty, tick)
                price = min(price, accepted.price) if accepted.side is _BUY else max(price, accepted.price)
                self._fill(w, accepted.qty, price, Liquidity.TAKER, now, updates)
            elif order.order_type in (_STOP, _STOP_LIMIT) and self._stop_triggered(accepted, tick):
                self._trigger(w, tick, now, updates)
        return updates

    def on_tick(self, tick: MarketTick) -> list[OrderUpdate]:
        sym = tick.symbol
        self._last[sym] = tick
        avg = self._avg_volume.get(sym)
        vol = float(tick.volume)
        self._avg_volume[sym] = vol if avg is None else avg + 0.02 * (vol - avg)
        book = self._books.get(sym)
        if not book:
            return []
        updates: list[OrderUpdate] = []
        available: Decimal | None = None  # maker liquidity left in this tick, shared by all orders
        for w in list(book.values()):
            o = w.order
            if not o.status.is_working:
                continue  # finished by an earlier order's OCO sibling in this same tick
            resting_limit = o.order_type is _LIMIT or (o.order_type is _STOP_LIMIT and o.client_id in self._triggered)
            if resting_limit:
                if (o.side is _BUY and tick.ask <= o.price) or (o.side is _SELL and tick.bid >= o.price):
                    if available is None:
                        available = quantize_down(tick.volume * self.volume_share, w.inst.lot_size)
                    qty = min(o.remaining, available)
                    if qty > 0:
                        available -= qty
                        self._fill(w, qty, o.price, Liquidity.MAKER, tick.ts, updates)
            elif o.order_type in (_STOP, _STOP_LIMIT) and self._stop_triggered(o, tick):
                self._trigger(w, tick, tick.ts, updates)
        return updates

    def cancel(
        self, client_id: str, now: datetime | None = None, reason: str = "canceled"
    ) -> OrderUpdate | None:
        """Cancel a working order; a finished one just reports its state, an unknown one gives None."""
        w = self._orders.get(client_id)
        if w is None:
            return None
        if not w.order.status.is_working:
            return OrderUpdate(w.order)
        when = now or self._now_for(w.order.symbol) or w.order.updated_at
        w.order = w.order.evolve(status=OrderStatus.CANCELED, updated_at=when, reason=reason)
        self._finish(w)
        return OrderUpdate(w.order)

    def cancel_all(self, symbol: str | None = None, now: datetime | None = None) -> list[OrderUpdate]:
        out = []
        for order in self.open_orders(symbol):
            update = self.cancel(order.client_id, now)
            if update is not None:
                out.append(update)
        return out

    def deposit(self, asset: str, amount: Decimal) -> None:
        self.funds.deposit(asset, amount)

    # -- validation --------------------------------------------------------------------

    def _validate(self, order: Order, inst: Instrument | None, tick: MarketTick | None) -> str | None:
        if inst is None:
            return f"unknown symbol {order.symbol}"
        if order.order_type is _LIMIT:
            if order.price is None:
                return "limit order without a price"
            ref = order.price
        elif order.order_type is _STOP:
            if order.stop_price is None:
                return "stop order without a stop price"
            ref = order.stop_price
        elif order.order_type is _STOP_LIMIT:
            if order.stop_price is None or order.price is None:
                return "stop-limit order without a stop price and a limit price"
            error = inst.precision_error(order.qty, order.stop_price)
            if error is not None:
                return error
            ref = order.price
        else:
            if tick is None:
                return f"no market price for {order.symbol} yet"
            ref = tick.ask if order.side is _BUY else tick.bid
        error = inst.precision_error(order.qty, ref)
        if error is not None:
            return error
        if order.reduce_only and self.funds.held(inst.base) * order.side.sign >= 0:
            return "reduce-only order would not reduce the position"
        if order.order_type is OrderType.MARKET:
            return self._market_funds_error(order, inst, tick)  # type: ignore[arg-type]
        return None

    def _market_funds_error(self, order: Order, inst: Instrument, tick: MarketTick) -> str | None:
        if order.side is _BUY:
            price = self._taker_price(inst, _BUY, order.qty, tick)
            cost = order.qty * price + fee(order.qty * price, self.taker_fee)
            free = self.funds.free.get(inst.quote, ZERO)
            if cost > free:
                return f"insufficient funds: need {cost:.2f} {inst.quote}, free {free:.2f}"
        elif not self.allow_short:
            free = self.funds.free.get(inst.base, ZERO)
            if order.qty > free:
                return f"insufficient funds: need {order.qty} {inst.base}, free {free}"
        return None

    # -- fills -----------------------------------------------------------------------------------

    def _submit_market(
        self, order: Order, inst: Instrument, tick: MarketTick, now: datetime
    ) -> list[OrderUpdate]:
        w = Working(order, inst, None)
        self._orders[order.client_id] = w
        updates = [OrderUpdate(order)]
        price = self._taker_price(inst, order.side, order.qty, tick)
        self._fill(w, order.qty, price, Liquidity.TAKER, now, updates)
        return updates

    def _trigger(self, w: Working, tick: MarketTick, now: datetime, updates: list[OrderUpdate]) -> None:
        o, inst = w.order, w.inst
        assert inst is not None
        if o.order_type is _STOP_LIMIT:
            # Triggered: from now on a plain limit order at its limit price (it keeps its type and id).
            self._triggered.add(o.client_id)
            if self._crosses_as_taker(o, tick):
                price = self._taker_price(inst, o.side, o.remaining, tick)
                price = min(price, o.price) if o.side is _BUY else max(price, o.price)  # type: ignore[type-var]
                self._fill(w, o.remaining, price, Liquidity.TAKER, now, updates)
            return
        qty = o.remaining
        price = self._taker_price(inst, o.side, qty, tick)
        if o.side is _BUY:
            held = w.lock.amount if w.lock else ZERO
            budget = self.funds.free.get(inst.quote, ZERO) + held
            per_unit = price * (1 + self.taker_fee)
            if qty * per_unit > budget:
                qty = quantize_down(budget / per_unit, inst.lot_size)
        elif not self.allow_short:
            qty = min(qty, self.funds.free.get(inst.base, ZERO) + (w.lock.amount if w.lock else ZERO))
        if qty > 0:
            self._fill(w, qty, price, Liquidity.TAKER, now, updates)
        if w.order.status.is_working:
            update = self.cancel(o.client_id, now, reason="insufficient funds when the stop triggered")
            if update is not None:
                updates.append(update)

    def _fill(
        self, w: Working, qty: Decimal, price: Decimal, liq: Liquidity, ts: datetime, out: _Updates
    ) -> None:
        o, inst = w.order, w.inst
        assert inst is not None
        notional = qty * price
        rate = self.maker_fee if liq is Liquidity.MAKER else self.taker_fee
        fee_asset, fee_amount, fee_value = charge(
            self.fee_model, self.bnb_pays, inst, o.side, qty, price, rate, self.asset_price, self.funds.free
        )
        self.funds.settle(w, qty, notional, fee_asset, fee_amount)
        filled = o.filled_qty + qty
        if o.avg_fill_price is None or o.filled_qty == 0:
            avg = price
        else:
            avg = ((o.avg_fill_price * o.filled_qty + notional) / filled).quantize(_AVG_QUANTUM)
        status = OrderStatus.FILLED if filled >= o.qty else OrderStatus.PARTIALLY_FILLED
        w.order = o = o.evolve(filled_qty=filled, avg_fill_price=avg, status=status, updated_at=ts)
        self._seq += 1
        fill_id = f"{self.id_prefix}-f{self._seq}"
        fill = Fill(
            fill_id, o.client_id, o.symbol, o.side, qty, price, fee_value, ts, liq, o.venue_order_id, fee_asset,
            fee_amount,
        )
        self._fills.append(fill)
        out.append(OrderUpdate(o, fill))
        self._shrink_siblings(w, ts, out)
        if status is OrderStatus.FILLED:
            self._finish(w)
        elif w.lock is not None:
            self.funds.relock(w.lock)

    def _shrink_siblings(self, w: Working, ts: datetime, out: list[OrderUpdate]) -> None:
        """One-cancels-other: siblings may never sell (buy) more than this leg has left."""
        if w.lock is None or w.lock.key is None:
            return
        left = w.order.remaining
        for sib in list(w.lock.members):
            if sib is w or not sib.order.status.is_working:
                continue
            if left <= 0:
                sib.order = sib.order.evolve(
                    status=OrderStatus.CANCELED, updated_at=ts, reason="oco: sibling filled"
                )
                self._finish(sib)
            elif sib.order.remaining > left:
                sib.order = sib.order.evolve(qty=sib.order.filled_qty + left, updated_at=ts)
            else:
                continue
            out.append(OrderUpdate(sib.order))

    def _finish(self, w: Working) -> None:
        """Take a no longer working order off the book and give back what it no longer needs."""
        self._triggered.discard(w.order.client_id)
        book = self._books.get(w.order.symbol)
        if book is not None:
            book.pop(w.order.client_id, None)
        self.funds.release(w)

    # -- prices ----------------------------------------------------------------------------------

    def _taker_price(self, inst: Instrument, side: Side, qty: Decimal, tick: MarketTick) -> Decimal:
        """Touch plus slippage: square-root impact of size vs. typical volume, scaled by the spread."""
        spread_ticks = float((tick.ask - tick.bid) / inst.tick_size)
        depth = float(tick.volume) + self._avg_volume.get(inst.symbol, 0.0)
        ratio = float(qty) / depth if depth > 0 else 100.0
        slip = Decimal(int(max(spread_ticks, 1.0) * self.impact * math.sqrt(ratio) + 0.5)) * inst.tick_size
        if side is _BUY:
            return tick.ask + slip
        return max(tick.bid - slip, inst.tick_size)

    @staticmethod
    def _crosses_as_taker(o: Order, tick: MarketTick) -> bool:
        return o.price >= tick.ask if o.side is _BUY else o.price <= tick.bid  # type: ignore[operator]

    @staticmethod
    def _stop_triggered(o: Order, tick: MarketTick) -> bool:
        return tick.last >= o.stop_price if o.side is _BUY else tick.last <= o.stop_price  # type: ignore[operator]

    def asset_price(self, asset: str, quote: str) -> Decimal | None:
        """The quote-currency mark of a fee asset: its traded symbol's last price, else the configured one."""
        tick = self._last.get(f"{asset}/{quote}")
        return tick.last if tick is not None else self.asset_prices.get(asset)

    def _reject(self, order: Order, reason: str, now: datetime) -> OrderUpdate:
        rejected = order.evolve(status=OrderStatus.REJECTED, reason=reason, updated_at=now)
        self._orders[order.client_id] = Working(rejected, None, None)
        return OrderUpdate(rejected)

    def _now_for(self, symbol: str) -> datetime | None:
        tick = self._last.get(symbol)
        return None if tick is None else tick.ts
