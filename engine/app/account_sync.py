"""Account truth on a real venue: cash from the venue, and holdings from before the engine as a baseline.

Measured before: with 1,000 USDT at the venue the engine assumed the configured 100,000 and sized an
order of about 5,000; every reconciliation flagged the coins the account held before the engine; a
shutdown flatten sold them.

- Cash: on a fresh journal the engine's starting cash *is* the venue's quote balance. Later, a
  difference that trading does not explain (a deposit, a withdrawal) is booked as a cash flow: the
  cash, the day's opening equity and the peak move by the same amount, so it is never P&L and never
  trips a breaker. It is read only when nothing is in flight (no fill could be half booked).
- Holdings: what the account held of each asset when this journal first met it is the baseline,
  journaled once. The engine's own position is the venue's holding minus the baseline; reconciliation
  compares only that, and close-all sizes from the engine's own position, so a baseline is never sold.
- Fee assets (BNB) are marked at the venue's price so their fees are valued in the quote currency.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING

from engine.core.model import ZERO, AlertLevel
from engine.oms.portfolio import Portfolio
from engine.venues.account import HoldingsBaseline, baseline_from_balances
from engine.venues.base import VenueError

if TYPE_CHECKING:
    from engine.app.kernel import Engine

log = logging.getLogger(__name__)

BASELINE_KEY = "holdings_baseline"
FEE_ASSETS = ("BNB",)
QUIET_AFTER_FILL_S = 30.0  # no cash read this soon after a fill: the venue and the book may still differ


class AccountSync:
    def __init__(self, engine: Engine) -> None:
        self.e = engine
        self.baseline = HoldingsBaseline()
        self._last_fill_at = 0.0

    @property
    def enabled(self) -> bool:
        return getattr(self.e.venue, "adopt_book", None) is None  # the in-process simulator is the book itself

    def quote(self) -> str:
        quotes = {i.quote for i in self.e.market.instruments.values()}
        return next(iter(quotes)) if len(quotes) == 1 else self.e.portfolio.quote

    def note_fill(self) -> None:
        self._last_fill_at = self.e.clock.monotonic()

    def baseline_for(self, symbol: str) -> Decimal:
        inst = self.e.market.instruments.get(symbol)
        held_before = self.baseline.of_symbol(inst) if inst is not None else ZERO
        return held_before + self.e.portfolio.dust.get(symbol, ZERO)  # fee dust is the account's, not a position

    # --- start --------------------------------------------------------------------------------
    async def load_baseline(self) -> None:
        """Before reconciliation: the holdings that were the account's before this journal, recorded once."""
        if not self.enabled:
            return
        e = self.e
        quote = self.quote()
        e.portfolio.quote = quote
        saved = e.journal.get_state(BASELINE_KEY)
        if isinstance(saved, dict):
            self.baseline = HoldingsBaseline({a: Decimal(str(q)) for a, q in saved.get("assets", {}).items()},
                                             quote, Decimal(str(saved.get("cash", "0"))))  # fmt: skip
            return
        try:
            balances = await e.venue.balances()
        except VenueError as exc:
            e.venue_failure("reading balances at start", exc)
            return
        mine = {p.symbol: p.qty for p in e.portfolio.positions()}
        self.baseline = baseline_from_balances(balances, quote, mine, e.market.instruments)
        record = {"assets": {a: str(q) for a, q in self.baseline.assets.items()},
                  "cash": str(self.baseline.cash), "at": e.clock.now().isoformat()}
        e.journal.set_state(BASELINE_KEY, record)
        if self.baseline.assets:
            held = ", ".join(f"{q} {a}" for a, q in sorted(self.baseline.assets.items()))
            e.alert(AlertLevel.INFO, "holdings_baseline",
                    f"The account held {held} before this engine: kept apart, never traded or closed",
                    key="holdings_baseline")  # fmt: skip

    async def sync_cash(self, fresh: bool) -> None:
        """After reconciliation: the cash is the venue's (a fresh journal starts with it)."""
        if not self.enabled:
            return
        e = self.e
        try:
            balances = await e.venue.balances()
        except VenueError as exc:
            e.venue_failure("reading balances at start", exc)
            return
        quote = e.portfolio.quote
        if quote in balances:
            cash = balances[quote].total
            if fresh:
                self._rebase(cash)
            else:
                self._cash_flow(cash - e.portfolio.cash, "at start")
        await self.mark_fee_assets()

    def _rebase(self, cash: Decimal) -> None:
        """A journal with no trades yet: the account's cash is the starting capital."""
        e = self.e
        if cash == e.portfolio.cash:
            return
        old = e.portfolio.cash
        dust_below = e.portfolio.dust_below
        e.portfolio = Portfolio(cash, quote=e.portfolio.quote, day_tz=e.settings.engine.trading_day_tz)
        e.portfolio.dust_below = dust_below
        e.journal.set_state("starting_cash", str(cash))
        e.audit("starting_cash_from_venue", f"the venue holds {cash} {e.portfolio.quote}",
                {"configured": str(old), "venue": str(cash)}, "system")  # fmt: skip

    def _cash_flow(self, delta: Decimal, when: str) -> None:
        if delta == 0:
            return
        e = self.e
        pf = e.portfolio
        pf.cash += delta
        pf.day_start_equity += delta
        pf.peak_equity += delta
        msg = f"cash moved outside the engine {when}: {delta:+} {pf.quote} (booked as a cash flow, not P&L)"
        e.journal.record_incident(e.clock.now(), e.venue.name, "cash_flow", msg)
        e.alert(AlertLevel.WARNING, "cash_flow", msg, key="cash_flow")
        e.audit("cash_flow", msg, {"delta": str(delta)}, "system")

    # --- periodically ----------------------------------------------------------------------------
    async def periodic(self) -> None:
        if not self.enabled or not self._quiet():
            return
        e = self.e
        try:
            balances = await e.venue.balances()
        except VenueError as exc:
            e.venue_failure("reading balances", exc)
            return
        if not self._quiet():
            return  # something moved while we asked
        quote = e.portfolio.quote
        if quote in balances:
            self._cash_flow(balances[quote].total - e.portfolio.cash, "")
        await self.mark_fee_assets()

    def _quiet(self) -> bool:
        e = self.e
        if e.execution.inflight:
            return False
        if any(o.role != "stop_loss" for o in e.book.working()):
            return False
        if any(not e.book.all_fills_booked(o.client_id) for o in e.book.all_orders()[-50:]):
            return False
        return e.clock.monotonic() - self._last_fill_at >= QUIET_AFTER_FILL_S

    async def mark_fee_assets(self) -> None:
        e = self.e
        wanted = [a for a in FEE_ASSETS if f"{a}/{e.portfolio.quote}" not in e.market.instruments]
        if not wanted:
            return
        try:
            prices = await e.venue.asset_prices(wanted, e.portfolio.quote)
        except VenueError as exc:
            e.venue_failure("pricing fee assets", exc)
            return
        for asset, price in prices.items():
            e.portfolio.mark_asset(asset, price)

