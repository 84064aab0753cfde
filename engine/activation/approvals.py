"""ApprovalGate: intents the policy says need a human wait here, with a deadline.

A request ends exactly once: approved (possibly for less, never for more), rejected, or
expired. Expiry rejects, never approves; the timeout counts real seconds, since a human
decides, even when the simulator's clock runs fast. An approval that arrives while trading is HALTED
is refused and the request rejected: the world it was asked about is gone. An approved
order still passes the last state gate in the submit task.

Decisions come from the window (Engine.approve / reject) or, for a headless engine, from
the command line through the journal: the CLI writes `approval_decision:<id>` into the
state table and the gate polls it every second.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from engine.activation.stages import LIVE_STAGES
from engine.core.config import ApprovalConfig
from engine.core.events import ApprovalEvent
from engine.core.model import ZERO, AlertLevel, OrderIntent, OrderType, Side, TradingState
from engine.risk.risk_engine import Decision

if TYPE_CHECKING:
    from engine.ports import ApprovalHost

log = logging.getLogger(__name__)

DECISION_KEY = "approval_decision:"  # + request id: a decision written by the CLI
POLL_S = 1.0


class ApprovalStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class PendingApproval:
    request_id: str
    intent: OrderIntent
    qty: Decimal
    role: str
    created: datetime
    deadline: datetime  # on the engine clock, for the journal and the CLI
    wall_deadline: float  # time.monotonic(): a human decides in real seconds, even when the simulator runs fast
    details: dict[str, Any] = field(default_factory=dict)
    status: ApprovalStatus = ApprovalStatus.PENDING

    def seconds_left(self) -> float:
        return max(0.0, self.wall_deadline - time.monotonic())


def _s(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


class ApprovalGate:
    def __init__(self, engine: ApprovalHost) -> None:
        self.e = engine
        self._pending: dict[str, PendingApproval] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._n = 0

    @property
    def config(self) -> ApprovalConfig:
        return self.e.settings.approvals

    def pending(self) -> list[PendingApproval]:
        return sorted(self._pending.values(), key=lambda p: p.created)

    def get(self, request_id: str) -> PendingApproval | None:
        return self._pending.get(request_id)

    # --- policy -----------------------------------------------------------------------
    def needs_approval(self, intent: OrderIntent, qty: Decimal, price: Decimal | None, role: str) -> bool:
        """Only entries wait for a human; exits, stops and flattening never do."""
        cfg = self.config
        if not cfg.enabled or role != "entry" or intent.reduce_only:
            return False
        if cfg.policy == "all":
            return True
        if cfg.policy == "new_positions":
            return self.e.portfolio.qty(intent.symbol) == 0
        if cfg.policy == "notional_above":
            ref = price or intent.price or ZERO
            return abs(qty * ref) > Decimal(repr(cfg.notional_threshold))
        stage = self.e.stage_manager.stage
        return stage in cfg.stages if cfg.stages else stage in LIVE_STAGES

    # --- requests ---------------------------------------------------------------------
    def request(self, intent: OrderIntent, qty: Decimal, role: str, decision: Decision) -> PendingApproval:
        """Queue the intent for a human. A second intent for the same symbol and side joins the first."""
        for p in self._pending.values():
            if p.intent.symbol == intent.symbol and p.intent.side == intent.side and p.role == role:
                return p
        e = self.e
        now = e.clock.now()
        self._n += 1
        rid = f"ap-{e.book.instance_tag}-{e.book.run}-{self._n}"
        price = decision.price or intent.price
        notional = qty * price if price is not None else None
        equity = e.portfolio.equity
        details: dict[str, Any] = {
            "symbol": intent.symbol,
            "side": intent.side.value,
            "qty": str(qty),
            "order_type": intent.order_type.value,
            "price": _s(price),
            "notional": _s(notional),
            "equity": str(equity),
            "equity_share": float(notional / equity) if notional is not None and equity > 0 else None,
            "stop_loss": _s(intent.stop_loss),
            "take_profit": _s(intent.take_profit),
            "reason": intent.reason,
            "strategy": intent.strategy,
            "tag": intent.tag,
            "checks_passed": list(decision.checks),
            "stage": e.stage_manager.stage,
            "created": now.isoformat(),
            "deadline": (now + timedelta(seconds=self.config.timeout_s)).isoformat(),
            "timeout_s": self.config.timeout_s,
        }
        timeout = self.config.timeout_s
        req = PendingApproval(rid, intent, qty, role, now, now + timedelta(seconds=timeout),
                              time.monotonic() + timeout, details)  # fmt: skip
        self._pending[rid] = req
        loop = asyncio.get_running_loop()
        self._timers[rid] = loop.call_later(self.config.timeout_s, self.expire, rid)
        e.journal.record_approval(rid, now, ApprovalStatus.PENDING, intent.symbol, intent.side, qty, notional,
                                  details=details)  # fmt: skip
        e.audit("approval_requested", intent.reason or "approval required", details, "system")
        e.bus.publish(ApprovalEvent(now, rid, ApprovalStatus.PENDING.value, intent, details))
        e.alert(
            AlertLevel.WARNING,
            "approval_requested",
            f"Approval needed: {intent.side.value} {qty} {intent.symbol} (notional {details['notional']})",
            key=f"approval:{rid}",
        )
        return req

    # --- decisions --------------------------------------------------------------------
    def approve(self, request_id: str, operator: str, qty: Decimal | None = None) -> tuple[bool, str]:
        req = self._pending.get(request_id)
        if req is None:
            return False, f"no pending approval {request_id}"
        if self.e.risk.state is TradingState.HALTED:
            self._close(req, ApprovalStatus.REJECTED, operator, "approval arrived after a halt; refused")
            return False, "trading is HALTED: the approval is refused and the request rejected"
        final = req.qty
        if qty is not None:
            inst = self.e.instruments.get(req.intent.symbol)
            final = inst.round_qty(qty) if inst is not None else qty
            if final > req.qty:
                return False, f"quantity {qty} exceeds the requested {req.qty}: it may be reduced, never raised"
            if final <= 0 or (inst is not None and final < inst.min_qty):
                return False, f"quantity {qty} is below the smallest order"
        self._close(req, ApprovalStatus.APPROVED, operator, "approved", final)
        e = self.e
        order = e.execution.new_order(replace(req.intent, qty=final), final, req.role, self._quote(req.intent))
        intent = req.intent
        if req.role == "entry" and (intent.stop_loss or intent.take_profit or intent.max_hold_s):
            e.protection.plan(order.client_id, intent)
        e.execution.start_submit(order)  # the last state gate still applies
        reduced = f" (reduced from {req.qty})" if final < req.qty else ""
        return True, f"approved {final}{reduced}: order {order.client_id}"

    def _quote(self, intent: OrderIntent) -> Decimal | None:
        """The touch now, when the approved market order leaves: slippage is measured from here."""
        tick = self.e.ticks.get(intent.symbol)
        if intent.order_type is not OrderType.MARKET or tick is None:
            return None
        return (tick.ask if intent.side is Side.BUY else tick.bid) or tick.last

    def reject(self, request_id: str, operator: str, reason: str = "") -> tuple[bool, str]:
        req = self._pending.get(request_id)
        if req is None:
            return False, f"no pending approval {request_id}"
        self._close(req, ApprovalStatus.REJECTED, operator, reason or "rejected by the operator")
        return True, "rejected"

    def expire(self, request_id: str) -> None:
        req = self._pending.get(request_id)
        if req is not None:
            self._close(req, ApprovalStatus.EXPIRED, "system", f"no decision within {self.config.timeout_s:g} s")

    def expire_due(self) -> list[str]:
        now = time.monotonic()
        due = [r.request_id for r in self._pending.values() if now >= r.wall_deadline]
        for rid in due:
            self.expire(rid)
        return due

    def _close(
        self, req: PendingApproval, status: ApprovalStatus, operator: str, reason: str, qty: Decimal | None = None
    ) -> None:
        e = self.e
        now = e.clock.now()
        self._pending.pop(req.request_id, None)
        timer = self._timers.pop(req.request_id, None)
        if timer is not None:
            timer.cancel()
        latency = (now - req.created).total_seconds()
        final = qty if status is ApprovalStatus.APPROVED else ZERO
        details = {**req.details, "decision": status.value, "decided_at": now.isoformat(), "operator": operator,
                   "latency_s": latency, "decision_reason": reason, "approved_qty": str(final),
                   "requested_qty": str(req.qty)}  # fmt: skip
        price = Decimal(req.details["price"]) if req.details.get("price") else None
        notional = final * price if price is not None else None
        e.journal.record_approval(req.request_id, now, status, req.intent.symbol, req.intent.side, final,
                                  notional, operator, latency, details)  # fmt: skip
        e.audit(f"approval_{status.value}", reason, details, operator)
        e.bus.publish(ApprovalEvent(now, req.request_id, status.value, req.intent, details))

    # --- restart and the command line ---------------------------------------------------
    def expire_orphans(self) -> None:
        """Requests left pending by a previous run can no longer be honoured."""
        now = self.e.clock.now()
        for rec in self.e.journal.approvals(ApprovalStatus.PENDING.value):
            if rec.request_id in self._pending:
                continue
            details = {**rec.details, "decision": "expired", "decision_reason": "engine restarted"}
            self.e.journal.record_approval(rec.request_id, now, ApprovalStatus.EXPIRED, rec.symbol, rec.side,
                                           ZERO, None, "system", None, details)  # fmt: skip
            self.e.audit("approval_expired", "engine restarted before a decision", details, "system")

    def _read_decisions(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        out = {}
        for rid in ids:
            d = self.e.journal.get_state(DECISION_KEY + rid)
            if isinstance(d, dict):
                out[rid] = d
        return out

    def apply_decision(self, rid: str, d: dict[str, Any]) -> tuple[bool, str]:
        operator = str(d.get("operator") or "cli")
        if d.get("action") == "approve":
            try:
                qty = Decimal(str(d["qty"])) if d.get("qty") not in (None, "") else None
            except InvalidOperation:
                return self.reject(rid, operator, f"unreadable quantity {d.get('qty')!r}")
            ok, msg = self.approve(rid, operator, qty)
            if not ok and rid in self._pending:  # a CLI decision that cannot apply must not hang
                self.reject(rid, operator, f"approval refused: {msg}")
            return ok, msg
        return self.reject(rid, operator, str(d.get("reason") or "rejected from the command line"))

    async def poll(self) -> None:
        """Every second on the engine clock: expire what is due, apply decisions the CLI wrote."""
        self.expire_due()
        ids = list(self._pending)
        if not ids:
            return
        decisions = await asyncio.to_thread(self._read_decisions, ids)
        for rid, d in decisions.items():
            if rid in self._pending:
                _ok, msg = self.apply_decision(rid, d)
                log.info("approval %s from the journal: %s", rid, msg)
