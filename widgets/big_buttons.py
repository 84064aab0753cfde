"""EMERGENCY STOP, CLOSE ALL and RESUME, plus the progress of the operation they started.

The emergency button is never disabled and never asks: one click emits
``emergencyStop`` at once (the console binds the keyboard shortcut to
``emergency_button``). CLOSE ALL only *requests*: the console shows the
confirmation. RESUME is enabled only while the state is HALTED.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
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


class BigButtons(QWidget):
    emergencyStop = Signal()
    closeAllRequested = Signal()
    resumeRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = ""

        self.emergency_button = QPushButton("■  EMERGENCY STOP")
        self.emergency_button.setObjectName("emergencyButton")
        self.emergency_button.setMinimumHeight(72)
        self.emergency_button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.emergency_button.setToolTip(
            "Halt trading NOW and cancel every open order on every venue.\n"
            "Positions stay open. No confirmation is asked."
        )
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
        self.progress_area.setVisible(False)

        row = QHBoxLayout()
        row.setSpacing(8)
        row.addWidget(self.close_all_button)
        row.addWidget(self.resume_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(8)
        layout.addWidget(self.emergency_button)
        layout.addLayout(row)
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

    # ---- progress -----------------------------------------------------------------------------
    def set_progress(
        self, operation: str, message: str, done: int, total: int, finished: bool = False, ok: bool = True
    ) -> None:
        """Show an operation's progress; once finished, its final message in green (ok) or red."""
        name = OPERATION_NAMES.get(operation, operation.replace("_", " ").capitalize())
        self.progress_area.setVisible(True)
        self.progress_title.setText(name.upper())
        if finished:
            self.progress_bar.setVisible(False)
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
            self.progress_message.setText(f"… {message}")
            result = "busy"
        self.progress_message.setProperty("result", result)
        repolish(self.progress_message)

    @property
    def progress_result(self) -> str:
        """"" when no progress shown, else "busy", "ok" or "fail"."""
        if not self.progress_area.isVisibleTo(self):
            return ""
        return str(self.progress_message.property("result") or "")

    def clear_progress(self) -> None:
        self.progress_area.setVisible(False)
        self.progress_message.clear()
