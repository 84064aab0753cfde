"""EMERGENCY STOP, CLOSE ALL and RESUME, plus the progress of the operation they started.

The emergency button is never disabled and never asks: one click emits
``emergencyStop`` at once (the console binds the keyboard shortcuts application-wide).
It keeps protection: resting stop-loss legs stay at the venue. Pulling them too is a
separate, small, confirmed act (``pullStopsRequested``). CLOSE ALL only *requests*: the
console shows the confirmation. RESUME is enabled only while the state is HALTED.

The progress area never sits silent: a close-all that the venue refuses shows each
symbol's refusal and offers Retry or Stop; an operation with no news for a while says so.
A line under the buttons counts the positions nothing protects.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from widgets.theme import repolish

OPERATION_NAMES = {"emergency_stop": "Emergency stop", "close_all": "Close all", "resume": "Resume"}
STALE_AFTER_S = 5.0  # a running operation with no news for this long says so

EMERGENCY_TOOLTIP = (
    "Halt trading NOW: no new orders; working entry orders are cancelled.\n"
    "Resting stop-loss legs STAY at the venue, so open positions stay protected.\n"
    "Positions stay open. No confirmation is asked."
)


def _shorten(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class BigButtons(QWidget):
    emergencyStop = Signal()
    pullStopsRequested = Signal()  # the console asks for a separate confirmation, then stops and pulls stops
    closeAllRequested = Signal()
    resumeRequested = Signal()
    closeAllRetry = Signal()  # a close-all left positions: try again
    closeAllStop = Signal()  # ... or stop trying and stay HALTED with what is left

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = ""
        self._operation = ""
        self._last_news = 0.0  # time.monotonic() of the last progress of a running operation
        self._busy_message = ""
        # the console sets this when its API can stop a running close-all; without it, a running one
        # shows its refusals and ends by itself (the engine gives up after repeated refusals)
        self.can_stop_running = False

        self.emergency_button = QPushButton("■  EMERGENCY STOP")
        self.emergency_button.setObjectName("emergencyButton")
        self.emergency_button.setMinimumHeight(72)
        self.emergency_button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.emergency_button.setToolTip(EMERGENCY_TOOLTIP)
        self.emergency_button.setAccessibleName("Emergency stop")
        self.emergency_button.setAutoDefault(False)
        self.emergency_button.clicked.connect(self.emergencyStop.emit)

        self.close_all_button = QPushButton("CLOSE ALL…")
        self.close_all_button.setObjectName("closeAllButton")
        self.close_all_button.setMinimumHeight(48)
        self.close_all_button.setToolTip(
            "Cancel open orders and flatten every position at market, ending HALTED.\n"
            "Shows what will be closed and asks once before doing it."
        )
        self.close_all_button.setAutoDefault(False)
        self.close_all_button.clicked.connect(self.closeAllRequested.emit)

        self.resume_button = QPushButton("▶  RESUME…")
        self.resume_button.setObjectName("resumeButton")
        self.resume_button.setMinimumHeight(48)
        self.resume_button.setAutoDefault(False)
        self.resume_button.clicked.connect(self.resumeRequested.emit)

        self.pull_stops_button = QPushButton("Stop and also pull resting stops…")
        self.pull_stops_button.setObjectName("pullStopsButton")
        self.pull_stops_button.setFlat(True)
        self.pull_stops_button.setAutoDefault(False)
        self.pull_stops_button.setToolTip(
            "Emergency stop that ALSO cancels the resting stop-loss legs at the venue.\n"
            "Positions are then unprotected. Asks for a separate confirmation."
        )
        self.pull_stops_button.clicked.connect(self.pullStopsRequested.emit)

        self.unprotected_label = QLabel()
        self.unprotected_label.setObjectName("unprotectedCount")
        self.unprotected_label.setWordWrap(True)
        self.unprotected_label.setVisible(False)
        self._unprotected: list[str] = []

        self.progress_title = QLabel()
        self.progress_title.setProperty("role", "caption")
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(True)
        self.progress_message = QLabel()
        self.progress_message.setObjectName("progressMessage")
        self.progress_message.setWordWrap(True)
        self.progress_message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress_area = QWidget()
        pl = QVBoxLayout(self.progress_area)
        pl.setContentsMargins(0, 4, 0, 0)
        pl.setSpacing(3)
        pl.addWidget(self.progress_title)
        pl.addWidget(self.progress_bar)
        pl.addWidget(self.progress_message)
        self.failure_label = QLabel()  # the venue's refusal per symbol
        self.failure_label.setObjectName("refusal")
        self.failure_label.setWordWrap(True)
        self.failure_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.failure_label.setVisible(False)
        pl.addWidget(self.failure_label)
        self.retry_button = QPushButton("↻ Retry close all")
        self.retry_button.setAutoDefault(False)
        self.retry_button.setToolTip("Send the closing orders again for the positions still open")
        self.retry_button.clicked.connect(self.closeAllRetry.emit)
        self.stop_trying_button = QPushButton("Stop")
        self.stop_trying_button.setAutoDefault(False)
        self.stop_trying_button.setToolTip(
            "Stop trying: trading stays HALTED, the positions left keep their resting stops"
        )
        self.stop_trying_button.clicked.connect(self.closeAllStop.emit)
        self.failure_actions = QWidget()
        fa = QHBoxLayout(self.failure_actions)
        fa.setContentsMargins(0, 0, 0, 0)
        fa.addWidget(self.retry_button)
        fa.addWidget(self.stop_trying_button)
        self.failure_actions.setVisible(False)
        pl.addWidget(self.failure_actions)
        self.progress_area.setVisible(False)
        self._stale_timer = QTimer(self)
        self._stale_timer.setInterval(1000)
        self._stale_timer.timeout.connect(self.refresh_staleness)

        row = QHBoxLayout()
        row.setSpacing(8)
        row.addWidget(self.close_all_button)
        row.addWidget(self.resume_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(8)
        layout.addWidget(self.emergency_button)
        layout.addWidget(self.pull_stops_button, 0, Qt.AlignmentFlag.AlignRight)
        layout.addLayout(row)
        layout.addWidget(self.unprotected_label)
        layout.addWidget(self.progress_area)
        layout.addStretch(1)
        self.set_state("")

    # ---- state --------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    def set_state(self, state: str) -> None:
        """Trading state; only HALTED enables RESUME. The emergency button stays enabled regardless."""
        self._state = str(state).upper()
        halted = self._state == "HALTED"
        self.resume_button.setEnabled(halted)
        self.resume_button.setToolTip(
            "Resume trading from HALTED: asks for a reason; refused while a breaker still holds."
            if halted
            else "Available only when trading is HALTED."
        )
        self.emergency_button.setEnabled(True)

    def set_close_all_enabled(self, enabled: bool) -> None:
        """E.g. disabled while a close-all is already running."""
        self.close_all_button.setEnabled(enabled)

    # ---- protection ---------------------------------------------------------------------------
    def set_unprotected(self, symbols: list[str], positions: int) -> None:
        """Count the positions nothing protects (red), or say every open one is protected."""
        self._unprotected = sorted(symbols)
        n = len(self._unprotected)
        if n:
            names = ", ".join(self._unprotected[:4]) + (" …" if n > 4 else "")
            self.unprotected_label.setText(f"⚠ {n} UNPROTECTED position{'s' if n != 1 else ''}: {names}")
            self.unprotected_label.setToolTip("No stop rests at the venue and the engine watches none for these")
        else:
            self.unprotected_label.setText(f"✔ {positions} open position{'s' if positions != 1 else ''}, all protected")
            self.unprotected_label.setToolTip("")
        self.unprotected_label.setProperty("tone", "neg" if n else "pos")
        self.unprotected_label.setVisible(positions > 0 or n > 0)
        repolish(self.unprotected_label)

    @property
    def unprotected_count(self) -> int:
        return len(self._unprotected)

    # ---- progress -----------------------------------------------------------------------------
    def set_progress(
        self,
        operation: str,
        message: str,
        done: int,
        total: int,
        finished: bool = False,
        ok: bool = True,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Show an operation's progress; once finished, its final message in green (ok) or red.

        ``details`` (a close-all's ProgressEvent details) may carry ``failures`` {symbol: the
        venue's refusal} and ``positions_left`` {symbol: qty}: both are shown, with Retry / Stop.
        """
        name = OPERATION_NAMES.get(operation, operation.replace("_", " ").capitalize())
        self._operation = operation
        self.progress_area.setVisible(True)
        self.progress_title.setText(name.upper())
        if finished:
            self._stale_timer.stop()
            self.progress_bar.setVisible(False)
            if details and details.get("failures"):
                message = message.split("; ")[0]  # the refusals are listed below, one line per symbol
            self.progress_message.setText(f"{'✔' if ok else '✖'} {name}: {message}")
            result = "ok" if ok else "fail"
        else:
            self.progress_bar.setVisible(True)
            if total > 0:
                self.progress_bar.setRange(0, total)
                self.progress_bar.setValue(min(done, total))
                self.progress_bar.setFormat(f"{done} / {total}")
            else:  # unknown amount of work: a busy bar
                self.progress_bar.setRange(0, 0)
            self._busy_message = f"… {message}"
            self.progress_message.setText(self._busy_message)
            self._last_news = time.monotonic()
            self._stale_timer.start()
            result = "busy"
        self.progress_message.setProperty("result", result)
        repolish(self.progress_message)
        self._show_failures(operation, details or {}, finished, ok)

    def _show_failures(self, operation: str, details: Mapping[str, Any], finished: bool, ok: bool) -> None:
        failures = {str(k): str(v) for k, v in dict(details.get("failures") or {}).items()}
        left = {str(k): str(v) for k, v in dict(details.get("positions_left") or {}).items()}
        lines = [f"✖ {sym}: {_shorten(why)}" for sym, why in sorted(failures.items())]
        lines += [f"• {sym}: {qty} still open" for sym, qty in sorted(left.items()) if sym not in failures]
        self.failure_label.setText("\n".join(lines))
        self.failure_label.setVisible(bool(lines))
        closing = operation == "close_all"
        ended_not_flat = closing and finished and not ok
        # Retry only once it has ended (a close-all asked again while it runs is the same one)
        self.retry_button.setVisible(ended_not_flat)
        self.stop_trying_button.setVisible(ended_not_flat or (closing and not finished and bool(failures)
                                                                and self.can_stop_running))  # fmt: skip
        self.failure_actions.setVisible(self.retry_button.isVisibleTo(self.failure_actions)
                                        or self.stop_trying_button.isVisibleTo(self.failure_actions))  # fmt: skip
        self.stop_trying_button.setText("Stop trying" if not finished else "Stop: stay HALTED")

    def close_all_stopped(self, positions_left: int) -> None:
        """The operator gave up on a close-all: say what stays, and drop the Retry / Stop choice."""
        self.failure_actions.setVisible(False)
        self._stale_timer.stop()
        self.progress_bar.setVisible(False)
        self.progress_message.setText(
            f"✖ Close all stopped by the operator: {positions_left} position"
            f"{'s' if positions_left != 1 else ''} left, HALTED; their resting stops stay at the venue"
        )
        self.progress_message.setProperty("result", "fail")
        repolish(self.progress_message)

    def refresh_staleness(self, now: float | None = None) -> None:
        """A running operation with no news for a while says how long, rather than sit silent."""
        if self.progress_result != "busy":
            self._stale_timer.stop()
            return
        quiet = (time.monotonic() if now is None else now) - self._last_news
        text = self._busy_message
        if quiet >= STALE_AFTER_S:
            text += f"\n⚠ no progress for {int(quiet)} s: the venue has not answered"
        self.progress_message.setText(text)

    @property
    def progress_result(self) -> str:
        """"" when no progress shown, else "busy", "ok" or "fail"."""
        if not self.progress_area.isVisibleTo(self):
            return ""
        return str(self.progress_message.property("result") or "")

    def clear_progress(self) -> None:
        self._stale_timer.stop()
        self.progress_area.setVisible(False)
        self.progress_message.clear()
        self.failure_label.clear()
        self.failure_actions.setVisible(False)
