"""Operator commands of issue 5, mixed into Engine: approvals and stage changes.

Kept out of engine.py so the engine stays a wiring file; the logic lives in
engine.approvals.ApprovalGate and engine.stage_manager.StageManager.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.app.kernel import Engine


class ActivationCommands:
    """Mixed into Engine."""

    def start_activation(self: Engine) -> list[asyncio.Task[Any]]:
        """Restore the stage, drop approvals a previous run left pending, start the pollers."""
        self.stage_manager.load()
        self.approval_gate.expire_orphans()
        return [
            asyncio.create_task(self.approval_gate.run(), name="approvals"),
            asyncio.create_task(self.stage_manager.run(), name="red_flags"),
        ]

    def approve(self: Engine, request_id: str, operator: str = "", qty: Decimal | None = None) -> tuple[bool, str]:
        return self.approval_gate.approve(request_id, operator or self.operator, qty)

    def reject(self: Engine, request_id: str, operator: str = "", reason: str = "") -> tuple[bool, str]:
        return self.approval_gate.reject(request_id, operator or self.operator, reason)

    async def promote(self: Engine, operator: str, reason: str) -> tuple[bool, str]:
        return await self.stage_manager.promote(operator or self.operator, reason)

    def demote(self: Engine, operator: str, reason: str) -> tuple[bool, str]:
        return self.stage_manager.demote(operator or self.operator, reason)
