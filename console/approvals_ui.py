"""Approvals on screen: ApprovalEvents -> a queue, one dialog at a time, every request in the panel.

A pending request joins the queue and the panel; the dialog shows the oldest one not yet
seen. Decisions go to the OperatorAPI (approve / reject) with the operator's name; the dialog
closes when the engine publishes the outcome (approved, rejected, expired), so a refused
decision (trading HALTED, quantity too small) is shown, never silently lost. Closing the
dialog with Esc only puts it aside: the request stays pending in the panel. The dialog is
not modal and carries its own EMERGENCY STOP button (``on_emergency_stop``): a request may
stay on screen for 30 minutes, and nothing may stand between the operator and the stop.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import shiboken6
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMessageBox, QWidget

from console.operator_actions import operator_api
from widgets.approval_dialog import ApprovalDialog, ApprovalsPanel
from widgets.dialogs import show_nonmodal

if TYPE_CHECKING:
    from engine.app.console_view import ConsoleEngine as Engine
    from engine.core.events import ApprovalEvent

log = logging.getLogger(__name__)


class ApprovalsController(QObject):
    def __init__(
        self, engine: Engine, panel: ApprovalsPanel, parent: QWidget, operator: str = "",
        on_emergency_stop: Callable[[], None] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(parent)
        self.engine = engine
        self.api = operator_api(engine)
        self.on_emergency_stop = on_emergency_stop
        self.panel = panel
        self.window = parent
        self.operator = operator or engine.settings.engine.operator
        self.queue: list[str] = []  # pending request ids, oldest first
        self.details: dict[str, dict[str, Any]] = {}
        self.dialog: ApprovalDialog | None = None
        self.message_box: QMessageBox | None = None
        self._set_aside: set[str] = set()
        self._retired: list[ApprovalDialog] = []  # closed with Esc: not shown again by itself
        panel.requestSelected.connect(self.open_request)

    def seed(self) -> None:
        """Requests pending before the window subscribed."""
        for req in self.engine.approval_gate.pending():
            self.add(req.request_id, req.details)

    # --- engine events --------------------------------------------------------------------
    def on_event(self, ev: ApprovalEvent) -> None:
        if ev.status == "pending":
            self.add(ev.request_id, ev.details)
        else:
            self.resolve(ev.request_id, ev.status)

    def seconds_left(self, rid: str) -> float:
        req = self.engine.approval_gate.get(rid)
        if req is not None:
            return req.seconds_left()
        return float(self.details.get(rid, {}).get("timeout_s", 0.0))

    def add(self, rid: str, details: dict[str, Any]) -> None:
        if rid not in self.details:
            self.queue.append(rid)
        self.details[rid] = {**details, "request_id": rid}
        self.panel.upsert(rid, self.details[rid], self.seconds_left(rid))
        if self.dialog is None:
            self.show_next()

    def resolve(self, rid: str, status: str) -> None:
        self.details.pop(rid, None)
        if rid in self.queue:
            self.queue.remove(rid)
        self._set_aside.discard(rid)
        self.panel.remove(rid)
        dlg = self.dialog
        if dlg is not None and dlg.request_id == rid and dlg.status == "pending":
            dlg.mark_resolved(status)  # finished -> the next one

    # --- the dialog -------------------------------------------------------------------------
    def show_next(self) -> None:
        nxt = next((r for r in self.queue if r not in self._set_aside), None)
        if nxt is not None:
            self.show(nxt)

    def show(self, rid: str) -> None:
        if self.dialog is not None:
            if self.dialog.request_id == rid:
                self.dialog.raise_()
                return
            self._close_current()
        dlg = ApprovalDialog(self.details[rid], self.seconds_left(rid), self.window)
        dlg.approved.connect(self._approve)
        dlg.rejected.connect(self._reject)
        if self.on_emergency_stop is not None:
            dlg.emergencyStop.connect(self.on_emergency_stop)
        dlg.finished.connect(lambda _r, d=dlg: self._finished(d))
        self.dialog = dlg
        dlg.open()  # never exec(): a nested loop would stall the engine under qasync

    def open_request(self, rid: str) -> None:
        """The operator picked a request in the panel."""
        if rid in self.details:
            self._set_aside.discard(rid)
            self.show(rid)

    def _close_current(self) -> None:
        dlg, self.dialog = self.dialog, None
        if dlg is not None:
            dlg.finished.disconnect()
            dlg.timer.stop()
            dlg.close()
            self._retire(dlg)

    def _retire(self, dlg: ApprovalDialog) -> None:
        # delete dialogs retired earlier, never the one whose signal is running now
        for old in self._retired:
            shiboken6.delete(old)
        self._retired = [dlg]

    def _finished(self, dlg: ApprovalDialog) -> None:
        if dlg is not self.dialog:
            return
        self.dialog = None
        self._retire(dlg)
        if dlg.status == "pending":  # Esc: put aside until picked in the panel
            self._set_aside.add(dlg.request_id)
            return
        self.show_next()

    # --- decisions --------------------------------------------------------------------------
    # The engine's ApprovalEvent reaches the window a moment later (queued, never inside the engine's
    # call stack), so the API's answer settles the dialog at once; the event's resolve is then a no-op.
    def _approve(self, rid: str, qty: Decimal | None) -> None:
        result = self.api.approve(rid, self.operator, qty, command_id=uuid.uuid4().hex)
        log.info("approval %s by %s: %s", rid, self.operator, result.message)
        self._settle(rid, result.ok, result.message, "approved", "Approval refused")

    def _reject(self, rid: str, reason: str) -> None:
        result = self.api.reject(rid, self.operator, reason or "rejected in the console", command_id=uuid.uuid4().hex)
        self._settle(rid, result.ok, result.message, "rejected", "Reject failed")

    def _settle(self, rid: str, ok: bool, msg: str, status: str, title: str) -> None:
        if ok:
            self.panel.set_message("")
            self.resolve(rid, status)
            return
        dlg = self.dialog
        if self.engine.approval_gate.get(rid) is not None and dlg is not None and dlg.request_id == rid:
            dlg.show_message(msg)  # still pending: the operator can correct and retry
            return
        self.resolve(rid, "rejected")  # the refusal ended the request (e.g. trading HALTED): say so loudly
        self.panel.set_message(msg)
        box = QMessageBox(QMessageBox.Icon.Critical, title, f"✖ {msg}", QMessageBox.StandardButton.Ok, self.window)
        self.message_box = box
        show_nonmodal(box)
