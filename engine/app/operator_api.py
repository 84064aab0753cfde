"""OperatorAPI: the one door through which a human acts on an engine.

The window, the command line and remote consoles (through the control server)
call these methods and nothing else that changes engine state. Each command:

- carries the operator's name and a reason where the act needs one;
- carries a command id: a command retried with the same id (a double click, a
  request resent after a dropped connection) executes once and returns the
  first result;
- is audited by the part that executes it;
- returns a `CommandResult`, a plain value that crosses a process boundary.

Commands that act at once (emergency stop, close all) are synchronous: the
state is HALTED, and durable, when the call returns; the slow part runs as a
task whose progress the bus publishes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from engine.core.config_rules import validate_risk_changes
from engine.core.events import RiskEvent
from engine.core.model import TradingState

if TYPE_CHECKING:
    from engine.app.kernel import Engine

# Commands remembered for idempotency: enough for any realistic retry window.
_REMEMBERED = 512


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command did, in a shape that serialises to JSON for the control server."""

    ok: bool
    message: str
    command: str
    command_id: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "message": self.message,
            "command": self.command,
            "command_id": self.command_id,
            "details": dict(self.details),
        }


class OperatorAPI:
    """Every operator command and the read-only queries a console needs."""

    def __init__(self, engine: Engine) -> None:
        self._e = engine
        self._done: OrderedDict[str, CommandResult] = OrderedDict()
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- idempotency ----------------------------------------------------------------------
    def _once(self, command: str, command_id: str | None, act: Callable[[str], CommandResult]) -> CommandResult:
        cid = command_id or uuid.uuid4().hex
        known = self._done.get(cid)
        if known is not None:
            return known
        result = act(cid)
        self._done[cid] = result
        while len(self._done) > _REMEMBERED:
            self._done.popitem(last=False)
        return result

    def pending(self) -> int:
        """Commands still acting after their result was returned (a cancel awaiting the venue's word)."""
        return len(self._tasks)

    def _operator(self, operator: str) -> str:
        return operator.strip() or self._e.operator

    # --- the big buttons ------------------------------------------------------------------
    def emergency_stop(
        self, reason: str = "emergency stop", operator: str = "", command_id: str | None = None,
        pull_stops: bool = False,
    ) -> CommandResult:  # fmt: skip
        """HALTED and durable on return; cancels working entries; resting stop legs stay unless pull_stops."""

        def act(cid: str) -> CommandResult:
            e = self._e
            already = e.stop_in_progress()
            e.emergency_stop(reason, self._operator(operator), pull_stops=pull_stops)
            msg = "halted; cancelling working orders" if not already else "halted; a stop is already in progress"
            durable = e.buttons.last_halt_durable
            if not durable:
                msg += " (WARNING: the halt could not be written to disk)"
            return CommandResult(True, msg, "emergency_stop", cid, {"state": e.risk.state.value, "durable": durable})

        return self._once("emergency_stop", command_id, act)

    def close_all(
        self, reason: str = "close all", operator: str = "", command_id: str | None = None
    ) -> CommandResult:
        def act(cid: str) -> CommandResult:
            e = self._e
            e.close_all(reason, self._operator(operator))
            return CommandResult(True, "halted; flattening", "close_all", cid, {"state": e.risk.state.value})

        return self._once("close_all", command_id, act)

    def stop_close_all(self, reason: str = "", operator: str = "", command_id: str | None = None) -> CommandResult:
        """Stop a close-all that cannot finish; trading stays HALTED."""

        def act(cid: str) -> CommandResult:
            ok = self._e.buttons.stop_close_all(reason, self._operator(operator))
            return CommandResult(ok, "close all stopped; still HALTED" if ok else "no close all is running",
                                 "stop_close_all", cid, {"state": self._e.risk.state.value})  # fmt: skip

        return self._once("stop_close_all", command_id, act)

    def resume(self, reason: str, operator: str = "", command_id: str | None = None) -> CommandResult:
        def act(cid: str) -> CommandResult:
            ok, msg = self._e.resume(self._operator(operator), reason)
            return CommandResult(ok, msg, "resume", cid, {"state": self._e.risk.state.value})

        return self._once("resume", command_id, act)

    # --- single orders and positions ------------------------------------------------------------
    def cancel(self, client_id: str, operator: str = "", command_id: str | None = None) -> CommandResult:
        def act(cid: str) -> CommandResult:
            order = self._e.book.working_order(client_id)
            if order is None:
                return CommandResult(False, f"no working order {client_id}", "cancel", cid)
            self._spawn(self._e.cancel_order(order, operator=self._operator(operator)))
            return CommandResult(True, f"cancelling {client_id}", "cancel", cid, {"client_id": client_id})

        return self._once("cancel", command_id, act)

    def close_position(
        self, symbol: str, operator: str = "", reason: str = "", command_id: str | None = None
    ) -> CommandResult:
        def act(cid: str) -> CommandResult:
            order = self._e.close_position(symbol, self._operator(operator), reason)
            if order is None:
                return CommandResult(False, f"nothing to close on {symbol}", "close_position", cid)
            return CommandResult(
                True, f"closing {symbol}", "close_position", cid, {"client_id": order.client_id}
            )

        return self._once("close_position", command_id, act)

    # --- approvals --------------------------------------------------------------------------------
    def approve(
        self, request_id: str, operator: str = "", qty: Decimal | None = None, command_id: str | None = None
    ) -> CommandResult:
        def act(cid: str) -> CommandResult:
            ok, msg = self._e.approval_gate.approve(request_id, self._operator(operator), qty)
            return CommandResult(ok, msg, "approve", cid, {"request_id": request_id})

        return self._once("approve", command_id, act)

    def reject(
        self, request_id: str, operator: str = "", reason: str = "", command_id: str | None = None
    ) -> CommandResult:
        def act(cid: str) -> CommandResult:
            ok, msg = self._e.approval_gate.reject(request_id, self._operator(operator), reason)
            return CommandResult(ok, msg, "reject", cid, {"request_id": request_id})

        return self._once("reject", command_id, act)

    # --- stages -----------------------------------------------------------------------------------
    async def promote(self, reason: str, operator: str = "", command_id: str | None = None) -> CommandResult:
        cid = command_id or uuid.uuid4().hex
        known = self._done.get(cid)
        if known is not None:
            return known
        ok, msg = await self._e.stage_manager.promote(self._operator(operator), reason)
        result = CommandResult(ok, msg, "promote", cid, {"stage": self._e.stage_manager.stage})
        self._done[cid] = result
        return result

    def demote(self, reason: str, operator: str = "", command_id: str | None = None) -> CommandResult:
        def act(cid: str) -> CommandResult:
            ok, msg = self._e.stage_manager.demote(self._operator(operator), reason)
            return CommandResult(ok, msg, "demote", cid, {"stage": self._e.stage_manager.stage})

        return self._once("demote", command_id, act)

    # --- limits and alerts --------------------------------------------------------------------------
    def update_risk_limits(
        self, changes: Mapping[str, Any], reason: str, operator: str = "", command_id: str | None = None
    ) -> CommandResult:
        """Validate the changed risk fields as the config would, then bind them at once."""

        def act(cid: str) -> CommandResult:
            try:
                applied = self._bind_risk_limits(dict(changes), self._operator(operator), reason)
            except (ValueError, InvalidOperation) as exc:
                return CommandResult(False, str(exc), "update_risk_limits", cid)
            return CommandResult(True, "risk limits updated", "update_risk_limits", cid, {"applied": applied})

        return self._once("update_risk_limits", command_id, act)

    def _bind_risk_limits(self, changes: dict[str, Any], operator: str, reason: str) -> dict[str, str]:
        """Validate like the config does, then bind at once: the risk checks and the breakers reload."""
        e = self._e
        new = validate_risk_changes(e.settings.risk, changes, traded=e.symbols)  # all the config's rules
        e.settings.risk = new
        e.risk.reload(new)
        e.breakers.reload(new)
        applied = {k: str(getattr(new, k)) for k in changes}
        e.audit("update_risk_limits", reason or "risk limits changed", applied, operator)
        e.bus.publish(RiskEvent(e.clock.now(), tuple(e.rule_values())))
        return applied

    def acknowledge(
        self, alert_ids: list[str] | None, operator: str = "", command_id: str | None = None
    ) -> CommandResult:
        """Acknowledge these alerts, or every unacknowledged one when alert_ids is None."""

        def act(cid: str) -> CommandResult:
            center = self._e.alert_center
            who = self._operator(operator)
            done = center.acknowledge_all(who) if alert_ids is None else center.acknowledge_many(alert_ids, who)
            return CommandResult(True, f"{len(done)} acknowledged", "acknowledge", cid, {"alert_ids": done})

        return self._once("acknowledge", command_id, act)

    # --- read-only queries ------------------------------------------------------------------------
    @property
    def state(self) -> TradingState:
        return self._e.risk.state

    @property
    def state_reason(self) -> str:
        return self._e.risk.state_reason

    def resume_refusal(self) -> str | None:
        return self._e.resume_refusal()

    def preview_close_all(self) -> dict[str, Any]:
        return self._e.preview_close_all()

    def close_all_in_progress(self) -> bool:
        return self._e.close_in_progress()

    def snapshot(self) -> dict[str, Any]:
        """The engine as a console first sees it: JSON-ready, every value a str, number or list."""
        from engine.app.snapshot import engine_snapshot

        return engine_snapshot(self._e)

    # --- internals --------------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
