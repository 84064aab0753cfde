"""The window's operator commands, all through the OperatorAPI (one door, each act audited once).

EMERGENCY STOP keeps protection (resting stop legs stay); pulling them is a separate,
confirmed act. Close-all shows the venue's refusal per symbol and offers Retry or Stop.
Quitting keeps protection by default, says what stays at the venue, and asks again while
a close-all is still flattening. Every dialog opened here is non-modal and carries its own
EMERGENCY STOP button, so nothing on screen can stand between the operator and the stop.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QMessageBox

from console.close_policy import VenuePicture, ask_close_policy, ask_quit_during_close_all
from engine.core.model import AlertLevel
from widgets.dialogs import CloseAllDialog, PullStopsDialog, ResumeDialog, show_nonmodal

if TYPE_CHECKING:
    from console.main_window import MainWindow
    from engine.app.console_view import ConsoleEngine as Engine
    from engine.app.operator_api import CommandResult, OperatorAPI
    from engine.core.events import ProgressEvent

log = logging.getLogger(__name__)

STOP_REASON = "EMERGENCY STOP pressed in the console"


def operator_api(engine: Engine) -> OperatorAPI:
    """The engine's OperatorAPI (``engine.api``), or one made for it if the kernel exposes none yet."""
    api = getattr(engine, "api", None)
    if api is None:
        from engine.app.operator_api import OperatorAPI

        api = OperatorAPI(engine)
    return api


def _cid() -> str:
    return uuid.uuid4().hex  # one id per operator act: a retried delivery executes once


class OperatorActions(QObject):
    def __init__(self, engine: Engine, window: MainWindow) -> None:
        super().__init__(window)
        self.engine = engine  # read-only: counts for the quit question when the API has no summary
        self.api = operator_api(engine)
        self.window = window
        self.operator = engine.settings.engine.operator
        self.pull_stops_dialog: PullStopsDialog | None = None
        self.quit_dialog: Any = None
        self.stops = 0  # emergency stops sent from this window (tests, diagnostics)
        self._resume_refresh = QTimer(self)  # a breaker may clear while the resume dialog is open
        self._resume_refresh.setInterval(1000)
        self._resume_refresh.timeout.connect(self._refresh_resume_refusal)

    # ---- emergency stop ------------------------------------------------------------------------
    def emergency_stop(self, source: str = "button", pull_stops: bool = False) -> None:
        """No dialog: the engine is HALTED (and durable) when this returns."""
        reason = STOP_REASON + (" (resting stops pulled too)" if pull_stops else "") + f" [{source}]"
        self.stops += 1
        try:
            result = self.api.emergency_stop(reason, self.operator, command_id=_cid(), pull_stops=pull_stops)
            if not result.ok:
                self._alert(f"Emergency stop answered: {result.message}")
        except Exception as exc:  # the halt is set before any venue work; say loudly what failed
            log.exception("emergency stop failed")
            self._alert(f"Emergency stop error: {exc}")
        self.window.show_state(self.api.state.value, self.api.state_reason)

    def request_pull_stops(self) -> None:
        """The separately confirmed stop that also cancels the resting stop legs."""
        dlg = self.pull_stops_dialog
        if dlg is not None and dlg.isVisible():
            dlg.raise_()
            return
        picture = self.venue_picture()
        dlg = PullStopsDialog(picture.positions, picture.stop_legs, self.window)
        dlg.accepted.connect(lambda: self.emergency_stop("pull stops confirmed", pull_stops=True))
        self.pull_stops_dialog = dlg
        show_nonmodal(dlg)

    def _alert(self, message: str) -> None:
        self.window.alerts.add_alert(f"estop-{uuid.uuid4().hex[:8]}", AlertLevel.EMERGENCY, message)

    # ---- close all -----------------------------------------------------------------------------
    def request_close_all(self) -> None:
        dlg = self.window.close_all_dialog
        if dlg is not None and dlg.isVisible():
            dlg.raise_()
            return
        preview = self.api.preview_close_all()
        dlg = CloseAllDialog(preview["positions"], preview["estimated_pnl"], preview["open_orders"], self.window)
        dlg.accepted.connect(self._close_all_confirmed)
        dlg.emergencyStop.connect(lambda: self.emergency_stop("close-all dialog"))
        self.window.close_all_dialog = dlg
        show_nonmodal(dlg)

    def _close_all_confirmed(self, reason: str = "CLOSE ALL confirmed in the console") -> None:
        result = self.api.close_all(reason, self.operator, command_id=_cid())
        self.window.big_buttons.set_close_all_enabled(False)
        self.window.show_state(self.api.state.value, self.api.state_reason)
        if not result.ok:
            self.inform("Close all refused", f"✖ {result.message}", QMessageBox.Icon.Critical)

    def retry_close_all(self) -> None:
        self._close_all_confirmed("CLOSE ALL retried in the console")

    def stop_close_all(self) -> None:
        """Stop trying: HALTED, what is left keeps its resting stops."""
        stop = getattr(self.api, "stop_close_all", None)
        if callable(stop) and self.api.close_all_in_progress():
            stop("close all stopped in the console", self.operator, command_id=_cid())
        left = self.venue_picture().positions
        self.window.big_buttons.close_all_stopped(left)
        self.window.big_buttons.set_close_all_enabled(True)

    def on_progress(self, ev: ProgressEvent) -> None:
        details = getattr(ev, "details", None) or {}
        self.window.big_buttons.can_stop_running = callable(getattr(self.api, "stop_close_all", None))
        self.window.big_buttons.set_progress(ev.operation, ev.message, ev.done, ev.total, ev.finished, ev.ok, details)
        if ev.operation == "close_all" and ev.finished:
            self.window.big_buttons.set_close_all_enabled(True)

    # ---- resume --------------------------------------------------------------------------------
    def request_resume(self) -> None:
        dlg = self.window.resume_dialog
        if dlg is not None and dlg.isVisible():
            dlg.raise_()
            return
        dlg = ResumeDialog(self.api.resume_refusal(), self.window)
        dlg.accepted.connect(lambda: self.resume_confirmed(dlg.reason()))
        dlg.finished.connect(lambda _r: self._resume_refresh.stop())
        dlg.emergencyStop.connect(lambda: self.emergency_stop("resume dialog"))
        self.window.resume_dialog = dlg
        self._resume_refresh.start()
        show_nonmodal(dlg)

    def _refresh_resume_refusal(self) -> None:
        dlg = self.window.resume_dialog
        if dlg is not None and dlg.isVisible():
            dlg.set_refusal(self.api.resume_refusal())

    def resume_confirmed(self, reason: str) -> None:
        result = self.api.resume(reason, self.operator, command_id=_cid())
        if not result.ok:
            self.inform("Resume refused", f"✖ Trading stays HALTED.\n{result.message}", QMessageBox.Icon.Critical)

    # ---- single positions and orders -----------------------------------------------------------
    def request_close_position(self, symbol: str) -> None:
        row = self.window.positions.row(symbol) or {}
        box = QMessageBox(QMessageBox.Icon.Question, "Close position",
                          f"Close {symbol} ({row.get('qty', '?')}) at market?", parent=self.window)  # fmt: skip
        yes = box.addButton("Close position", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(box.addButton(QMessageBox.StandardButton.Cancel))

        def done(_r: int) -> None:
            if box.clickedButton() is yes:
                result = self.api.close_position(symbol, self.operator, command_id=_cid())
                if not result.ok:
                    self.inform("Close refused", f"{symbol} could not be closed now: {result.message}")

        box.finished.connect(done)
        self.window.message_box = box
        show_nonmodal(box)

    def cancel_order(self, client_id: str) -> None:
        result: CommandResult = self.api.cancel(client_id, self.operator, command_id=_cid())
        if not result.ok:
            log.info("cancel %s: %s", client_id, result.message)

    def inform(self, title: str, text: str, icon: QMessageBox.Icon = QMessageBox.Icon.Warning) -> None:
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self.window)
        self.window.message_box = box
        show_nonmodal(box)

    # ---- quitting ------------------------------------------------------------------------------
    def venue_picture(self) -> VenuePicture:
        """What stays at the venue: from the API's protection summary, else read off the engine."""
        summary = getattr(self.api, "protection_summary", None)
        if callable(summary):
            s = summary()
            return VenuePicture(int(s.get("positions", 0)), int(s.get("stop_legs", 0)),
                                int(s.get("other_orders", 0)), int(s.get("watched", 0)),
                                sorted(s.get("unprotected", [])), sorted(s.get("watched_stops", [])))  # fmt: skip
        e = self.engine
        positions = list(e.portfolio.positions())
        working = [o for o in e.orders.values() if not o.status.is_terminal]
        legs = [o for o in working if o.role == "stop_loss"]
        plan_for = getattr(getattr(e, "protection", None), "plan_for", lambda _s: None)
        watched = 0
        for p in positions:
            plan = plan_for(p.symbol)
            watched += p.take_profit is not None
            watched += plan is not None and getattr(plan, "hold_until", None) is not None
            watched += str(getattr(p, "protection", "")) == "watched"  # an engine-side stop
        def status(p: Any) -> str:
            return str(getattr(p, "protection", ""))

        unprotected = sorted(p.symbol for p in positions if status(p) == "unprotected")
        watched_stops = sorted(p.symbol for p in positions if status(p) == "watched")
        return VenuePicture(len(positions), len(legs), len(working) - len(legs), watched, unprotected, watched_stops)

    def request_quit(self) -> None:
        """The window was asked to close: ask what happens at the venue (again, mid close-all)."""
        if self.quit_dialog is not None and self.quit_dialog.isVisible():
            self.quit_dialog.raise_()
            return
        if self.api.close_all_in_progress():
            left = self.venue_picture().positions
            self.quit_dialog = ask_quit_during_close_all(self.window, left, self._quit_anyway)
            self.window.message_box = self.quit_dialog
            return
        self._ask_policy()

    def _quit_anyway(self, yes: bool) -> None:
        if yes:
            QTimer.singleShot(0, self._ask_policy)  # after the first question has gone

    def _ask_policy(self) -> None:
        picture = self.venue_picture()
        configured = self.engine.settings.engine.shutdown
        if not picture.positions and not picture.orders:
            self.window._close_chosen(configured)
            return
        self.quit_dialog = ask_close_policy(
            self.window, picture, configured, self.window._close_chosen,
            on_emergency_stop=lambda: self.emergency_stop("quit dialog"),
        )  # fmt: skip
        self.window.message_box = self.quit_dialog
