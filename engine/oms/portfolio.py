"""Cash, average-cost positions, realised/unrealised P&L, equity, day P&L and drawdown.

Marking to market is on the hot path (every tick), so positions keep an
incrementally maintained market value instead of re-summing the book.

Fees are booked in the asset charged (Fill.fee_currency, Fill.fee_charged):
a quote fee comes out of cash; a base-asset fee (Binance spot buys) comes out of
the position, so a round trip closes flat; a third-asset fee (BNB) is valued at
that asset's mark and comes out of cash as its value, so equity and P&L match the
account. `fees_charged` keeps the amounts per asset for reconciling balances.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from engine.core.model import ZERO, ClosedTrade, Fill, Position, Side


@dataclass(slots=True)
class _Book:
    """Mutable state of one symbol's position and its current round trip."""

    symbol: str
    qty: Decimal = ZERO
    avg_price: Decimal = ZERO
    last: Decimal = ZERO
    realized: Decimal = ZERO  # lifetime realised P&L of the symbol, net of fees
    fees: Decimal = ZERO  # lifetime fees of the symbol
    opened_at: datetime | None = None
    # current round trip (flat to flat)
    trip_entry_qty: Decimal = ZERO
    trip_entry_cost: Decimal = ZERO
    trip_exit_qty: Decimal = ZERO
    trip_exit_value: Decimal = ZERO
    trip_gross: Decimal = ZERO
    trip_fees: Decimal = ZERO
    trip_side: Side = Side.BUY
    trip_tag: str = ""
    trip_strategy: str = ""
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    protection: str = "none"  # ProtectionStatus value, set by the protection legs
    protection_price: Decimal | None = None

    def snapshot(self) -> Position:
        return Position(
            symbol=self.symbol,
            qty=self.qty,
            avg_price=self.avg_price,
            last_price=self.last,
            realized_pnl=self.realized,
            fees=self.trip_fees,
            opened_at=self.opened_at,
            stop_loss=self.stop_loss,
            take_profit=self.take_profit,
            protection=self.protection,
            protection_price=self.protection_price,
        )


@dataclass(frozen=True, slots=True)
class FillResult:
    position: Position
    trade: ClosedTrade | None  # set when the fill brought the position back to flat (or flipped it)
    realized: Decimal  # realised P&L of this fill, net of its fee
    opened: bool  # the fill opened a new position from flat
    fee_value: Decimal = ZERO  # the fee in the quote currency as booked (a third-asset fee valued at its mark)
    fee_unpriced: bool = False  # a third-asset fee with no mark: booked at the venue's value (often 0)


class Portfolio:
    def __init__(self, starting_cash: Decimal, quote: str = "USDT", day_tz: str = "UTC") -> None:
        self.quote = quote
        self.starting_cash = starting_cash
        self.cash = starting_cash
        self._books: dict[str, _Book] = {}
        self._positions_value = ZERO  # sum of qty * last over all books
        self.realized = ZERO
        self.fees = ZERO
        self._tz = ZoneInfo(day_tz)
        self._day_end: datetime | None = None
        self.day_start_equity = starting_cash
        self.day_realized_start = ZERO
        self.peak_equity = starting_cash
        self.closed_trades: list[ClosedTrade] = []
        self.dust_below: dict[str, Decimal] = {}  # per symbol, the smallest quantity the venue would take
        self.dust: dict[str, Decimal] = {}  # per symbol, fee remainders under that: not a position
        self.asset_marks: dict[str, Decimal] = {}  # quote prices of fee assets not traded here (BNB)
        self.fees_charged: dict[str, Decimal] = {}  # per asset, as the venue charged them

    # --- reads -------------------------------------------------------------
    @property
    def equity(self) -> Decimal:
        return self.cash + self._positions_value

    @property
    def unrealized(self) -> Decimal:
        return sum((b.qty * (b.last - b.avg_price) for b in self._books.values() if b.qty), ZERO)

    @property
    def day_pnl(self) -> Decimal:
        return self.equity - self.day_start_equity

    @property
    def day_pnl_pct(self) -> Decimal:
        return ZERO if not self.day_start_equity else self.day_pnl / self.day_start_equity * 100

    @property
    def drawdown(self) -> Decimal:
        """Fraction below the equity peak, open positions included."""
        eq = self.equity
        if eq > self.peak_equity:
            self.peak_equity = eq
        return ZERO if self.peak_equity <= 0 else (self.peak_equity - eq) / self.peak_equity

    @property
    def gross_exposure(self) -> Decimal:
        return sum((abs(b.qty * b.last) for b in self._books.values() if b.qty), ZERO)

    def position(self, symbol: str) -> Position | None:
        b = self._books.get(symbol)
        return b.snapshot() if b is not None and b.qty else None

    def qty(self, symbol: str) -> Decimal:
        b = self._books.get(symbol)
        return b.qty if b is not None else ZERO

    def positions(self) -> list[Position]:
        return [b.snapshot() for b in self._books.values() if b.qty]

    def open_symbols(self) -> frozenset[str]:
        return frozenset(s for s, b in self._books.items() if b.qty)

    def open_count(self) -> int:
        return sum(1 for b in self._books.values() if b.qty)

    def last_price(self, symbol: str) -> Decimal | None:
        b = self._books.get(symbol)
        return b.last if b is not None and b.last else None

    # --- writes ------------------------------------------------------------
    def _book(self, symbol: str) -> _Book:
        b = self._books.get(symbol)
        if b is None:
            b = self._books[symbol] = _Book(symbol)
        return b

    def mark(self, symbol: str, price: Decimal, ts: datetime) -> None:
        """Mark to market; the hot path. Rolls the trading day when ts crosses midnight."""
        b = self._books.get(symbol)
        if b is None:
            b = self._books[symbol] = _Book(symbol)
        if b.qty:
            self._positions_value += b.qty * (price - b.last)
        b.last = price
        if self._day_end is None or ts >= self._day_end:
            self._roll_day(ts)

    def _roll_day(self, ts: datetime) -> None:
        local = ts.astimezone(self._tz)
        start = datetime.combine(local.date(), time(0), tzinfo=self._tz)
        self._day_end = (start + timedelta(days=1)).astimezone(ts.tzinfo)
        self.day_start_equity = self.equity
        self.day_realized_start = self.realized

    @property
    def day_end(self) -> datetime | None:
        """When the current trading day ends (None before the first mark)."""
        return self._day_end

    def day_bounds(self, ts: datetime) -> tuple[datetime, datetime]:
        """Start and end of the trading day that contains ts."""
        local = ts.astimezone(self._tz)
        start = datetime.combine(local.date(), time(0), tzinfo=self._tz)
        return start.astimezone(ts.tzinfo), (start + timedelta(days=1)).astimezone(ts.tzinfo)

    def restore_day(self, day_end: datetime, day_start_equity: Decimal, day_realized_start: Decimal) -> None:
        """The journaled baselines of a trading day still under way: a restart must not reset them."""
        self._day_end = day_end
        self.day_start_equity = day_start_equity
        self.day_realized_start = day_realized_start

    def set_protection(
        self, symbol: str, stop_loss: Decimal | None, take_profit: Decimal | None,
        status: str = "none", price: Decimal | None = None,
    ) -> None:  # fmt: skip
        b = self._book(symbol)
        b.stop_loss, b.take_profit = stop_loss, take_profit
        b.protection, b.protection_price = status, price

    def sample_equity(self, ts: datetime) -> Decimal:
        eq = self.equity
        if eq > self.peak_equity:
            self.peak_equity = eq
        return eq

    def mark_asset(self, asset: str, price: Decimal) -> None:
        """The quote price of a fee asset that is not a traded symbol here (e.g. BNB for BNB-paid fees)."""
        self.asset_marks[asset] = price

    def _asset_mark(self, asset: str) -> Decimal | None:
        b = self._books.get(f"{asset}/{self.quote}")
        if b is not None and b.last:
            return b.last
        return self.asset_marks.get(asset)

    def fee_terms(self, fill: Fill) -> tuple[Decimal, Decimal, bool]:
        """(fee value in quote, base-asset quantity the fee took from the position, unpriced third asset)."""
        asset, charged = fill.fee_currency, fill.fee_charged
        base, _, quote = fill.symbol.partition("/")
        if charged is None or not asset or asset == (quote or self.quote):
            return fill.fee, ZERO, False  # quote fee, or a legacy row whose fee was already in quote
        if asset == base:
            return charged * fill.price, charged, False
        mark = self._asset_mark(asset)
        if mark is None:
            return fill.fee, ZERO, fill.fee == 0  # a journaled fill may carry its value already
        return charged * mark, ZERO, False

    def priced(self, fill: Fill) -> Fill:
        """The fill with `fee` set to its quote value when it was charged in a third asset the venue left
        unpriced (BNB at its mark), so the journal holds both amounts and metrics count it."""
        fee, _base_fee, unpriced = self.fee_terms(fill)
        if unpriced or fee == fill.fee:
            return fill
        return replace(fill, fee=fee)

    def apply_fill(self, fill: Fill, tag: str = "", strategy: str = "") -> FillResult:
        """Average-cost accounting; fees reduce cash (or the position, when paid in the base asset) and P&L."""
        b = self._book(fill.symbol)
        if not b.last:
            b.last = fill.price
        fee, base_fee, unpriced = self.fee_terms(fill)
        if fill.fee_currency and fill.fee_charged is not None:
            self.fees_charged[fill.fee_currency] = self.fees_charged.get(fill.fee_currency, ZERO) + fill.fee_charged
        traded = fill.qty if fill.side is Side.BUY else -fill.qty
        self.cash -= traded * fill.price + (fee if not base_fee else ZERO)
        # A base-asset fee leaves the position smaller than the quantity traded (a buy) or takes more (a sell).
        signed = traded - base_fee
        qty = abs(signed)
        self.fees += fee
        b.fees += fee
        old_qty = b.qty
        realized = -fee
        trade: ClosedTrade | None = None
        opened = False

        if signed == 0:
            pass
        elif old_qty == 0 or (old_qty > 0) == (signed > 0):
            if old_qty == 0:
                self._start_trip(b, fill, tag, strategy)
                opened = True
            new_qty = old_qty + signed
            b.avg_price = (abs(old_qty) * b.avg_price + qty * fill.price) / abs(new_qty)
            b.qty = new_qty
            b.trip_entry_qty += qty
            b.trip_entry_cost += qty * fill.price
            b.trip_fees += fee
        else:
            closing = min(abs(old_qty), qty)
            direction = 1 if old_qty > 0 else -1
            gross = (fill.price - b.avg_price) * closing * direction
            realized += gross
            closing_fee = fee * closing / qty
            b.trip_gross += gross
            b.trip_fees += closing_fee
            b.trip_exit_qty += closing
            b.trip_exit_value += closing * fill.price
            b.qty = old_qty + signed
            below = self.dust_below.get(b.symbol, ZERO)
            if b.qty != 0 and abs(b.qty) < below and (b.qty > 0) == (old_qty > 0):
                # what a base-asset fee leaves under the smallest sellable quantity: the round trip is over;
                # the dust is kept apart (the account holds it, the engine can never sell it)
                self.dust[b.symbol] = self.dust.get(b.symbol, ZERO) + b.qty
                b.qty = ZERO
            if b.qty == 0 or (b.qty > 0) != (old_qty > 0):  # flat, or flipped through zero
                trade = self._close_trip(b, fill.ts)
                rest = qty - closing
                if rest > 0:
                    self._start_trip(b, fill, tag, strategy)
                    opened = True
                    b.avg_price = fill.price
                    b.trip_entry_qty = rest
                    b.trip_entry_cost = rest * fill.price
                    b.trip_fees = fee - closing_fee
                else:
                    b.avg_price = ZERO
                    b.opened_at = None
                    b.stop_loss = b.take_profit = None

        b.realized += realized
        self.realized += realized
        # position value changed by the quantity traded at the current mark
        self._positions_value += (b.qty - old_qty) * b.last
        return FillResult(b.snapshot(), trade, realized, opened, fee, unpriced)

    def _start_trip(self, b: _Book, fill: Fill, tag: str, strategy: str) -> None:
        b.opened_at = fill.ts
        b.trip_side = fill.side
        b.trip_tag, b.trip_strategy = tag, strategy
        b.trip_entry_qty = b.trip_entry_cost = ZERO
        b.trip_exit_qty = b.trip_exit_value = ZERO
        b.trip_gross = b.trip_fees = ZERO

    def _close_trip(self, b: _Book, ts: datetime) -> ClosedTrade:
        trade = ClosedTrade(
            symbol=b.symbol,
            side=b.trip_side,
            qty=b.trip_entry_qty,
            entry_price=b.trip_entry_cost / b.trip_entry_qty if b.trip_entry_qty else ZERO,
            exit_price=b.trip_exit_value / b.trip_exit_qty if b.trip_exit_qty else ZERO,
            opened_at=b.opened_at or ts,
            closed_at=ts,
            pnl=_trip_gross_exact(b) - b.trip_fees,
            fees=b.trip_fees,
            tag=b.trip_tag,
            strategy=b.trip_strategy,
        )
        self.closed_trades.append(trade)
        return trade


def _trip_gross_exact(b: _Book) -> Decimal:
    """Flat to flat, the trip's gross P&L is exit value - entry cost: exact in Decimal, with no average
    price division, so a true breakeven books 0 and not -1E-25 (the average-cost sum drifts by that)."""
    if b.trip_exit_qty != b.trip_entry_qty:
        return b.trip_gross
    return (b.trip_exit_value - b.trip_entry_cost) * (1 if b.trip_side is Side.BUY else -1)
