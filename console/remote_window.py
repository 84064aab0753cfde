"""One attached engine's own window: state, big buttons, positions, orders and alerts.

Fed by the unchanged `EngineBridge` on the RemoteEngine's bus (the same code path as the
embedded engine's window). A lost link is impossible to miss: a red banner says
"DISCONNECTED — data stale since HH:MM:SS" and the figures are greyed; on reconnect the
server's snapshot *replaces* every table (a new bridge, tables cleared), never merged. The
big buttons say what became of each command: pending, acknowledged by the engine, or failed.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QMainWindow, QSplitter, QTabWidget, QVBoxLayout, QWidget

from console.bridge import EngineBridge
from console.remote_engine import RemoteEngine
from engine.app.operator_api import CommandResult
from engine.app.wire import from_json
from engine.core.events import AlertEvent
from engine.core.model import Fill, MarketTick, Order, Position, RuleValue
from widgets.alert_feed import AlertFeed
from widgets.big_buttons import BigButtons
from widgets.dialogs import CloseAllDialog, ResumeDialog
from widgets.top_bar import TopBar
from widgets.trading_tables import OrdersTable, PositionsTable, order_row, position_row

log = logging.getLogger(__name__)

BANNER_STYLE = "background: #b71c1c; color: white; font-weight: 700; padding: 6px;"


class RemoteEngineWindow(QMainWindow):
    def __init__(self, remote: RemoteEngine, operator: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.remote = remote
        self.operator = operator
        self.setWindowTitle(f"Trading Console — {remote.name} (attached: {remote.url})")
        self.resize(1280, 720)
        self.banner = QLabel()
        self.banner.setStyleSheet(BANNER_STYLE)
        self.banner.setVisible(False)
        self.top_bar = TopBar()
        self.big_buttons = BigButtons()
        self.big_buttons.emergencyStop.connect(self.emergency_stop)
        self.big_buttons.closeAllRequested.connect(self.request_close_all)
        self.big_buttons.resumeRequested.connect(self.request_resume)
        self.positions = PositionsTable()
        self.orders = OrdersTable()
        self.orders.cancelRequested.connect(lambda cid: self.send("cancel", remote.cancel(cid, self.operator)))
        self.positions.closeRequested.connect(
            lambda sym: self.send("close_position", remote.close_position(sym, self.operator, "closed in the console"))
        )
        self.alerts = AlertFeed()
        self.alerts.acknowledged.connect(lambda aid: self.send("acknowledge", remote.acknowledge([aid], self.operator),
                                                               quiet=True))  # fmt: skip
        tabs = QTabWidget()
        tabs.addTab(self.orders, "Open orders")
        tabs.addTab(self.alerts, "Alerts")
        split = QSplitter()
        body = QWidget()
        v = QVBoxLayout(body)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(self.positions, 1)
        v.addWidget(tabs, 1)
        split.addWidget(body)
        split.addWidget(self.big_buttons)
        split.setStretchFactor(0, 1)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(self.top_bar)
        layout.addWidget(split, 1)
        self.setCentralWidget(central)
        self.bridge: EngineBridge | None = None
        self.dialog: Any = None
        self.last_result: dict[str, str] = {}  # command -> pending | acknowledged | failed
        self._tasks: set[asyncio.Task[Any]] = set()
        remote.listeners.append(self._on_remote)
        self._banner_timer = QTimer(self)
        self._banner_timer.setInterval(500)
        self._banner_timer.timeout.connect(self.refresh_link)
        self._banner_timer.start()
        if remote.snapshot is not None:
            self.replace_snapshot()
        self.refresh_link()

    # ---- the link --------------------------------------------------------------------------------
    def _on_remote(self, remote: RemoteEngine, what: str) -> None:
        if what == "snapshot":
            self.replace_snapshot()
        elif what == "link":
            self.refresh_link()
        elif what == "status":
            self._show_status()

    def refresh_link(self) -> None:
        live = self.remote.connected
        self.banner.setVisible(not live)
        if not live:
            self.top_bar.set_connection(False, None, None)  # the last word we had is not the truth now
            why = {"refused": "credentials refused", "connecting": "connecting"}.get(self.remote.link, "reconnecting…")
            self.banner.setText(f"DISCONNECTED — data stale since {self.remote.stale_since()} · {why}")
        for w in (self.positions, self.orders):
            w.setEnabled(live)

    def replace_snapshot(self) -> None:
        """A new snapshot replaces everything: a fresh bridge, cleared tables, then the snapshot's rows."""
        if self.bridge is not None:
            self.bridge.detach()
            self.bridge.deleteLater()
        self.positions.clear()
        self.orders.clear()
        self.alerts.clear()
        bridge = self.bridge = EngineBridge(self.remote.bus, self, parent=self)
        bridge.alertRaised.connect(self.on_alert)
        bridge.alertAcknowledged.connect(lambda ev: [self.alerts.acknowledge(a, notify=False) for a in ev.alert_ids])
        bridge.stateChanged.connect(lambda ev: self.show_state(ev.new.value, ev.reason))
        bridge.progressed.connect(lambda ev: self.big_buttons.set_progress(
            ev.operation, ev.message, ev.done, ev.total, ev.finished, ev.ok, ev.details))  # fmt: skip
        snap = self.remote.snapshot or {}
        self.top_bar.set_venue(str(snap.get("venue", "?")), str(snap.get("mode", "?")))
        self.top_bar.set_stage(str(snap.get("stage", "")))
        self.show_positions({p.symbol: p for p in self.remote.positions()})
        self.show_orders(self.remote.working_orders())
        for a in snap.get("alerts", []):
            self.on_alert(from_json(AlertEvent, a))
        self._show_status()

    def _show_status(self) -> None:
        s = self.remote.status
        self.show_state(str(s.get("state", "UNKNOWN")), str(s.get("reason", "")))
        self.top_bar.set_equity(self.remote.figure("equity"))
        self.top_bar.set_day_pnl(self.remote.figure("day_pnl"), self.remote.figure("day_pnl_pct"))

    # ---- what the bridge delivers (the view interface of console.bridge) ---------------------------
    def show_state(self, state: str, reason: str = "") -> None:
        self.top_bar.set_state(state, reason)
        self.big_buttons.set_state(state)

    def on_alert(self, ev: AlertEvent) -> None:
        self.alerts.add_alert(ev.alert_id, ev.level, ev.message, ev.ts, code=ev.code)

    def show_prices(self, prices: dict[str, MarketTick]) -> None:
        self._show_status()

    def show_positions(self, changed: dict[str, Position | None]) -> None:
        for sym, p in changed.items():
            if p is None:
                self.positions.remove(sym)
            else:
                self.positions.upsert(position_row(p))

    def show_orders(self, orders: Sequence[Order]) -> None:
        for o in orders:
            if o.status.is_terminal:
                self.orders.remove(o.client_id)
            else:
                self.orders.upsert(order_row(o))

    def show_fills(self, fills: Sequence[tuple[Fill, Order]]) -> None:
        pass  # the fleet window shows what is open; the engine's journal keeps the fills

    def show_equity(self, points: Sequence[Any]) -> None:
        self._show_status()

    def show_daily_pnl(self, days: Sequence[tuple[date, float]]) -> None:
        pass

    def show_risk(self, rules: Sequence[RuleValue]) -> None:
        pass

    def show_connection(self, ev: Any) -> None:
        self.top_bar.set_connection(ev.connected, ev.latency_ms, ev.data_age_s)

    # ---- commands: pending, acknowledged or failed -------------------------------------------------
    def send(self, command: str, call: Awaitable[CommandResult], quiet: bool = False,
             done: Callable[[CommandResult], None] | None = None) -> asyncio.Task[Any]:  # fmt: skip
        self.last_result[command] = "pending"
        if not quiet:
            self.big_buttons.set_progress(command, f"sent to {self.remote.name}: waiting for its acknowledgement", 0, 0)

        async def wait() -> None:
            try:
                result = await call
            except Exception as exc:
                self.last_result[command] = "failed"
                self.big_buttons.set_progress(command, f"NOT acknowledged ({exc}): the engine may not have "
                                                       "received it", 0, 0, finished=True, ok=False)  # fmt: skip
                return
            self.last_result[command] = "acknowledged" if result.ok else "refused"
            if not quiet or not result.ok:
                verdict = "acknowledged by the engine" if result.ok else "refused by the engine"
                self.big_buttons.set_progress(command, f"{verdict}: {result.message}", 1, 1, finished=True,
                                              ok=result.ok)  # fmt: skip
            if done is not None:
                done(result)

        task = asyncio.get_running_loop().create_task(wait())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def emergency_stop(self) -> None:
        self.send("emergency_stop", self.remote.emergency_stop("EMERGENCY STOP pressed in an attached console",
                                                               self.operator, command_id=uuid.uuid4().hex))  # fmt: skip

    def request_close_all(self) -> None:
        async def ask() -> None:
            try:
                preview = await self.remote.preview_close_all()
            except Exception as exc:
                self.big_buttons.set_progress("close_all", f"cannot preview: {exc}", 0, 0, finished=True, ok=False)
                return
            dlg = CloseAllDialog(preview.get("positions", []), preview.get("estimated_pnl"),
                                 int(preview.get("open_orders", 0)), self)  # fmt: skip
            dlg.accepted.connect(lambda: self.send("close_all", self.remote.close_all(
                "CLOSE ALL confirmed in an attached console", self.operator, command_id=uuid.uuid4().hex)))  # fmt: skip
            self.dialog = dlg
            _show_nonmodal(dlg)

        task = asyncio.get_running_loop().create_task(ask())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def request_resume(self) -> None:
        dlg = ResumeDialog(self.remote.resume_refusal(), self)
        dlg.accepted.connect(lambda: self.send("resume", self.remote.resume(dlg.reason(), self.operator,
                                                                            command_id=uuid.uuid4().hex)))  # fmt: skip
        self.dialog = dlg
        _show_nonmodal(dlg)

    def closeEvent(self, event: Any) -> None:  # closing this window detaches nothing: the fleet keeps it
        self.hide()
        event.ignore()

    def detach(self) -> None:
        self._banner_timer.stop()
        if self.remote.listeners and self._on_remote in self.remote.listeners:
            self.remote.listeners.remove(self._on_remote)
        if self.bridge is not None:
            self.bridge.detach()


def _show_nonmodal(dialog: Any) -> None:
    """Shown, never modal: a confirmation must not stand between the operator and EMERGENCY STOP."""
    dialog.setModal(False)
    dialog.show()
