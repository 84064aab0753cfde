"""Protective legs for each position: stop loss, take profit, time exit, and their truthful status.

The stop loss rests at the venue when it can, so protection survives a crash of
this process. The chain, step by step, each journaled and alerted:

1. the stop order type the instrument lists (stop-market);
2. else a stop-limit whose limit sits a collar beyond the trigger;
3. else the engine watches the level itself and exits at market.

A position whose planned stop is guarded by none of these is UNPROTECTED: red in
the UI, and a CRITICAL alert repeated (never suppressed) until it is resolved.
The take profit and time exit are watched by the engine and fire a market exit;
whichever leg acts first cancels the other (on a spot venue two resting sells
would lock the same coins twice). Stop legs and protective exits pass while
HALTED: they only ever reduce a position.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from engine.core.clock import Clock
from engine.core.model import (
    AlertLevel,
    MarketTick,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    Position,
    ProtectionStatus,
    Side,
)
from engine.oms.execution import UNSUPPORTED_TYPE
from engine.oms.protection_links import AlertFn, Links, StateStore, _Plan

log = logging.getLogger(__name__)

UNPROTECTED_REPEAT_S = 30.0  # how often an unresolved UNPROTECTED alert is raised again
DEFAULT_COLLAR = Decimal("0.005")  # stop-limit: the limit sits 0.5% beyond the trigger
MAX_LEG_REFUSALS = 2  # a leg refused this often (not for its type) falls back to the engine watch
LEG_RETRY_S = 0.5
PLANNED = "planned_entries"  # journal state: working entries' levels, so a fill after a restart is protected
LEVELS = ("stop_loss", "take_profit", "max_hold_s")


class Protection:
    def __init__(self, links: Links, clock: Clock, store: StateStore, alert: AlertFn,
                 collar: Decimal = DEFAULT_COLLAR) -> None:  # fmt: skip
        self.links = links
        self.clock = clock
        self.store = store
        self._alert = alert
        self.collar = collar
        self._planned: dict[str, OrderIntent] = {}  # entry client id -> intent
        self._plans: dict[str, _Plan] = {}  # symbol -> active protection
        self._refused_types: dict[str, set[str]] = {}  # symbol -> stop types the venue refused this run
        self._unprotected_since: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._syncing: set[str] = set()
        self._dirty: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_alarm: dict[str, float] = {}
        self._planned_save_due = False

    # --- planning ------------------------------------------------------------------------------
    def plan(self, entry_client_id: str, intent: OrderIntent) -> None:
        self._planned[entry_client_id] = intent
        self._save_planned()

    def forget(self, entry_client_id: str) -> None:
        """The entry is done: its levels are now the position's plan, or it never filled."""
        if self._planned.pop(entry_client_id, None) is not None:
            self._save_planned()

    def _save_planned(self) -> None:
        """Written once per loop turn: an emergency stop cancelling 200 entries wrote the whole table
        200 times (quadratic; 10 -> 30 ms to no open orders)."""
        if self._planned_save_due:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write_planned()
            return
        self._planned_save_due = True
        loop.call_soon(self._write_planned)

    def _write_planned(self) -> None:
        self._planned_save_due = False
        self.store.set_state(PLANNED, {cid: {k: str(v) for k in LEVELS if (v := getattr(i, k)) is not None}
                                       for cid, i in self._planned.items()})  # fmt: skip

    def restore_planned(self, entry: Order, levels: dict[str, str]) -> None:
        """An entry still working when the last run ended (a resting limit): when it fills, its stop applies."""
        kw: dict[str, Any] = {k: (float if k == "max_hold_s" else Decimal)(v) for k, v in levels.items() if k in LEVELS}
        self._planned[entry.client_id] = OrderIntent(entry.symbol, entry.side, entry.qty, **kw)

    def restore(self, symbol: str, data: dict[str, Any]) -> None:
        known = {k: v for k, v in data.items() if k in _Plan.__slots__ and k != "quiet_until"}  # type: ignore[attr-defined]
        self._plans[symbol] = _Plan(**known)
        self._refused_types.setdefault(symbol, set()).update(self._plans[symbol].tried)
        self._push(symbol)

    def resume(self) -> None:
        """After a restart and its reconciliation, each restored plan guards the position as it now is: the
        last run may have ended between pulling a leg and putting it back, or the position changed while
        it was down. An exit no order carries is over; the leg is adopted, resized or placed."""
        holdings, book = self.links.holdings(), self.links.book()
        for symbol, plan in list(self._plans.items()):
            pos = holdings.position(symbol)
            if pos is None or not pos.qty:
                self._drop(symbol)
                continue
            plan.exiting = plan.exiting and any(o.role in ("exit", "flatten") for o in book.working(symbol))
            legs = self._stop_legs(symbol)
            if (plan.stop_order is None or book.working_order(plan.stop_order) is None) and len(legs) == 1 and (
                legs[0].qty == self._leg_size(symbol, pos) and plan.stop is not None
                and legs[0].stop_price == Decimal(plan.stop)
            ):
                plan.stop_order = legs[0].client_id  # the leg the last run placed as it ended: it guards as planned
            if not plan.watched:
                self._sync(symbol)
            self._push(symbol)

    def plan_for(self, symbol: str) -> _Plan | None:
        return self._plans.get(symbol)

    def on_entry_done(self, entry: Order) -> None:
        intent = self._planned.get(entry.client_id)
        self.forget(entry.client_id)
        pos = self.links.holdings().position(entry.symbol)
        if intent is None or pos is None:
            return
        exiting = bool((old := self._plans.get(entry.symbol)) and old.exiting)  # an exit already under way
        hold = None
        if intent.max_hold_s:
            hold = (self.clock.now() + timedelta(seconds=intent.max_hold_s)).isoformat()
        rnd = self.links.round_price  # levels on the instrument's tick: what the venue takes and the UI shows
        self._plans[entry.symbol] = _Plan(
            stop=str(rnd(entry.symbol, intent.stop_loss)) if intent.stop_loss is not None else None,
            take_profit=str(rnd(entry.symbol, intent.take_profit)) if intent.take_profit is not None else None,
            hold_until=hold,
            exiting=exiting,
            tried=sorted(self._refused_types.get(entry.symbol, ())),  # an add does not ask again what was refused
        )
        self._save(entry.symbol)
        self._sync(entry.symbol)

    def _stop_legs(self, symbol: str) -> list[Order]:
        return [o for o in self.links.book().working(symbol) if o.role == "stop_loss"]

    # --- one stop leg per position, changed one at a time -----------------------------------------
    def _lock(self, symbol: str) -> asyncio.Lock:
        return self._locks.setdefault(symbol, asyncio.Lock())

    def _sync(self, symbol: str) -> None:
        """Make the resting leg match the position, one change at a time per symbol.

        Entries that fill in quick succession each ask for a new leg; replacing legs concurrently
        left two resting at once (the second locking coins the first held) and the venue refused
        every exit. Requests that arrive while a change runs are folded into one more pass."""
        if symbol in self._syncing:
            self._dirty.add(symbol)
            return
        self._syncing.add(symbol)
        task = asyncio.get_running_loop().create_task(self._sync_loop(symbol))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sync_loop(self, symbol: str) -> None:
        try:
            while True:
                self._dirty.discard(symbol)
                async with self._lock(symbol):
                    await self._sync_once(symbol)
                if symbol not in self._dirty:
                    return
        finally:
            self._syncing.discard(symbol)

    async def _sync_once(self, symbol: str) -> None:
        plan = self._plans.get(symbol)
        pos = self.links.holdings().position(symbol)
        if plan is None or pos is None or not pos.qty or plan.stop is None or plan.exiting or plan.watched:
            return
        legs = self._stop_legs(symbol)
        if len(legs) == 1 and legs[0].client_id == plan.stop_order and legs[0].qty == self._leg_size(symbol, pos):
            return  # already the right leg
        orders = self.links.orders()
        for leg in legs:
            await orders.cancel_order(leg)
        if any(o.status.is_working for o in self._stop_legs(symbol)):
            self._dirty.add(symbol)  # a cancel did not go through yet: try again, never two legs at once
            await asyncio.sleep(LEG_RETRY_S)
            return
        pos = self.links.holdings().position(symbol)
        if pos is not None and pos.qty:
            submitted = self._arm_stop(symbol, pos)  # no-op when an exit took over meanwhile (plan.exiting)
            if submitted is not None:
                await submitted  # acknowledged (or refused) before the next change

    def _leg_size(self, symbol: str, pos: Position) -> Decimal:
        """The whole position in lots: a base-asset fee leaves a remainder the venue would trim off."""
        return self.links.round_qty(symbol, abs(pos.qty))

    # --- the stop leg and its fallback chain -------------------------------------------------------
    def _arm_stop(self, symbol: str, pos: Position) -> Any:
        """Submit the stop leg for the whole position (the next type the chain allows); returns its task."""
        plan = self._plans.get(symbol)
        if plan is None or plan.stop is None or plan.exiting:
            return None
        kinds = [t for t in self.links.stop_types(symbol) if t.value not in plan.tried]
        if not kinds:
            self._watch(symbol, plan, "the venue takes no stop order for this instrument")
            return None
        size = self._leg_size(symbol, pos)
        if size <= 0:
            return None  # less than a lot: nothing the venue would take (dust, kept apart)
        kind = kinds[0]
        side = Side.SELL if pos.qty > 0 else Side.BUY
        stop = Decimal(plan.stop)
        limit = None
        if kind is OrderType.STOP_LIMIT:
            limit = stop * (1 - self.collar) if side is Side.SELL else stop * (1 + self.collar)
            limit = self.links.round_price(symbol, limit)
        intent = OrderIntent(symbol=symbol, side=side, qty=size, order_type=kind, price=limit,
                             stop_price=stop, reduce_only=True, reason="protective stop loss",
                             tag="stop_loss")  # fmt: skip
        orders = self.links.orders()
        order = orders.new_order(intent, size, "stop_loss")
        plan.stop_order = order.client_id
        plan.watched = False
        task = orders.start_submit(order)
        self._push(symbol)
        return task

    def on_order(self, order: Order) -> None:
        """A stop leg's news: resting (protected), or refused (the next step of the chain)."""
        if order.role != "stop_loss":
            return
        plan = self._plans.get(order.symbol)
        if plan is None or plan.stop_order != order.client_id:
            return
        if order.status is OrderStatus.REJECTED:
            plan.stop_order = None
            pos = self.links.holdings().position(order.symbol)
            if order.reason.startswith(UNSUPPORTED_TYPE):
                plan.tried.append(order.order_type.value)
                self._refused_types.setdefault(order.symbol, set()).add(order.order_type.value)
                step = "stop-limit" if order.order_type is OrderType.STOP_MARKET else "an engine watch"
                msg = (f"{order.symbol}: the venue does not take {order.order_type.value} stop orders "
                       f"({order.reason}); falling back to {step}")  # fmt: skip
                self._alert(AlertLevel.WARNING, "stop_fallback", msg, key=f"stop_fallback:{order.symbol}")
                if pos is not None and pos.qty:
                    self._sync(order.symbol)
            else:
                plan.refusals += 1
                if plan.refusals >= MAX_LEG_REFUSALS:
                    self._watch(order.symbol, plan, f"the stop leg was refused {plan.refusals} times "
                                f"({order.reason or 'no reason'})")  # fmt: skip
                elif pos is not None and pos.qty:
                    asyncio.get_running_loop().call_later(LEG_RETRY_S, self.rearm, order.symbol)
        elif order.status is OrderStatus.OPEN:
            plan.refusals = 0
        elif order.status.is_terminal and order.filled_qty == 0:
            plan.stop_order = None  # cancelled: an exit released it, or an operator pulled the stops
        self._push(order.symbol)
        self._save(order.symbol)

    def _watch(self, symbol: str, plan: _Plan, why: str) -> None:
        plan.watched = True
        plan.stop_order = None
        self._alert(AlertLevel.CRITICAL, "stop_watched",
                    f"{symbol}: {why}; the engine watches the stop at {plan.stop} and exits at market. "
                    "Protection lapses while the engine is down.", key=f"stop_watched:{symbol}")  # fmt: skip
        self._push(symbol)
        self._save(symbol)

    def exit_refused(self, symbol: str) -> None:
        """A protective exit was refused: back off (1 s, 2 s, 4 s ... 60 s) before trying again."""
        plan = self._plans.get(symbol)
        if plan is None:
            return
        plan.exit_refusals += 1
        plan.quiet_until = self.clock.monotonic() + min(60.0, 2.0 ** (plan.exit_refusals - 1))
        self.rearm(symbol)

    def rearm(self, symbol: str) -> None:
        """An exit failed and the position is still open: put the stop back."""
        plan = self._plans.get(symbol)
        pos = self.links.holdings().position(symbol)
        if plan is None or pos is None:
            return
        plan.exiting = False
        if plan.watched:
            self._push(symbol)
            return
        if plan.stop_order is None or self.links.book().working_order(plan.stop_order) is None:
            self._sync(symbol)

    def on_position_flat_or_new(self, symbol: str, pos: Position) -> None:
        if pos.qty == 0:
            self._drop(symbol)

    def _drop(self, symbol: str) -> None:
        """Flat: the plan ends and its leg is cancelled."""
        plan = self._plans.pop(symbol, None)
        self._unprotected_since.pop(symbol, None)
        self.links.holdings().set_protection(symbol, None, None, ProtectionStatus.NONE.value, None)
        self.store.set_state(f"protection:{symbol}", None)
        if plan is not None and plan.stop_order:
            order = self.links.book().working_order(plan.stop_order)
            if order is not None:
                self.links.orders().start_cancel(order)

    async def release(self, symbol: str) -> None:
        """Cancel the symbol's resting stop leg (and wait) so an exit can use the coins it locks."""
        plan = self._plans.get(symbol)
        if plan is not None:
            plan.exiting = True
            plan.stop_order = None
        async with self._lock(symbol):  # not while a leg is being replaced
            for leg in self._stop_legs(symbol):  # every leg, an orphan of an earlier plan included
                await self.links.orders().cancel_order(leg)
        self._push(symbol)

    # --- watching: take profit, time exit, engine-watched stops ------------------------------------------
    def on_market(self, now: datetime) -> None:
        if not self._plans:
            return
        holdings = self.links.holdings()
        mono = self.clock.monotonic()
        for symbol, plan in self._plans.items():
            if plan.exiting or mono < plan.quiet_until:
                continue
            tick = self.links.ticks.get(symbol)
            pos_qty = holdings.qty(symbol)
            if tick is None or not pos_qty:
                continue
            why = self._trigger(plan, pos_qty, tick, now)
            if why is not None:
                plan.exiting = True
                side = Side.SELL if pos_qty > 0 else Side.BUY
                asyncio.get_running_loop().call_soon(self._exit, symbol, side, abs(pos_qty), why)

    @staticmethod
    def _trigger(plan: _Plan, pos_qty: Decimal, tick: MarketTick, now: datetime) -> str | None:
        long = pos_qty > 0
        if plan.watched and plan.stop is not None:
            stop = Decimal(plan.stop)
            if (long and tick.bid <= stop) or (not long and tick.ask >= stop):
                return f"stop loss {stop} reached (watched by the engine)"
        if plan.take_profit is not None:
            tp = Decimal(plan.take_profit)
            if (long and tick.bid >= tp) or (not long and tick.ask <= tp):
                return f"take profit {tp} reached"
        if plan.hold_until is not None and now >= datetime.fromisoformat(plan.hold_until):
            return "maximum holding time reached"
        return None

    def _exit(self, symbol: str, side: Side, qty: Decimal, why: str) -> None:
        order = self.links.orders().submit_intent(
            OrderIntent(symbol=symbol, side=side, qty=qty, reduce_only=True, reason=why,
                        tag="protective_exit", strategy=self.links.strategy_name())
        )
        if order is None:
            self.rearm(symbol)

    # --- truthful status ---------------------------------------------------------------------------------
    def status(self, symbol: str) -> tuple[ProtectionStatus, Decimal | None]:
        plan = self._plans.get(symbol)
        if plan is None or plan.stop is None:
            return ProtectionStatus.NONE, None
        stop = Decimal(plan.stop)
        if plan.stop_order is not None and self.links.book().working_order(plan.stop_order) is not None:
            return ProtectionStatus.VENUE, stop
        if plan.watched:
            return ProtectionStatus.WATCHED, stop
        if plan.exiting:
            return ProtectionStatus.WATCHED, stop  # an exit is on its way out
        return ProtectionStatus.UNPROTECTED, None

    def unprotected(self) -> list[str]:
        holdings = self.links.holdings()
        return [s for s in self._plans if holdings.qty(s) and self.status(s)[0] is ProtectionStatus.UNPROTECTED]

    def check(self) -> None:
        """Periodic: repeat the UNPROTECTED alarm for every position still naked (never suppressed)."""
        now = self.clock.monotonic()
        naked = set(self.unprotected())
        for symbol in list(self._unprotected_since):
            if symbol not in naked:
                del self._unprotected_since[symbol]
                self._last_alarm.pop(symbol, None)
                self._alert(AlertLevel.INFO, "protection_restored", f"{symbol}: protection restored",
                            key=f"protected:{symbol}")  # fmt: skip
        for symbol in naked:
            self._unprotected_since.setdefault(symbol, now)
            last = self._last_alarm.get(symbol)
            if last is None or now - last >= UNPROTECTED_REPEAT_S:
                self._last_alarm[symbol] = now
                plan = self._plans[symbol]
                self._alert(AlertLevel.CRITICAL, "unprotected",
                            f"{symbol} is UNPROTECTED: no stop rests at the venue and none is watched "
                            f"(planned stop {plan.stop})", key=f"unprotected:{symbol}", dedupe=False)  # fmt: skip
            self._push(symbol)

    def _push(self, symbol: str) -> None:
        plan = self._plans.get(symbol)
        if plan is None:
            return
        status, price = self.status(symbol)
        self.links.holdings().set_protection(
            symbol,
            price,  # the chart and table draw only what really guards the position
            Decimal(plan.take_profit) if plan.take_profit else None,
            status.value,
            price,
        )

    def _save(self, symbol: str) -> None:
        plan = self._plans.get(symbol)
        self.store.set_state(f"protection:{symbol}", asdict(plan) if plan else None)
