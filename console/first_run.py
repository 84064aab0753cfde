"""The first run: nothing trades until the risk disclosure is accepted, or the operator chooses to
watch the simulated demo (the simulated venue only, whatever the config names).

Asked before any engine is built, so no venue is reached and no strategy runs while the question
is open. The answer is remembered in the window's settings store, so the question is not asked at
every start; the Activation menu offers it again. Opened with ``open()`` and awaited through a
future, never ``exec()`` (qasync).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QCheckBox, QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from console.wizard_common import DISCLOSURE
from engine.core.config import Settings

if TYPE_CHECKING:
    from engine.app.console_view import ConsoleEngine as Engine

CHOICE_KEY = "first_run/choice"  # "accepted" | "demo"
ACCEPTED_AT_KEY = "first_run/accepted_at"
ACCEPTED, DEMO, QUIT = "accepted", "demo", "quit"


class FirstRunDialog(QDialog):
    """The disclosure, with three ways out: accept it, watch the simulated demo, or quit."""

    def __init__(self, venue: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Trading Console — before anything trades")
        self.choice = QUIT
        title = QLabel("Read this first. Nothing trades until you choose below.")
        title.setObjectName("dialogHeadline")
        text = QLabel(DISCLOSURE)
        text.setWordWrap(True)
        where = "the simulated market (no real money)" if venue == "simulated" else f"{venue}, as your config says"
        self.venue_note = QLabel(f"Accepting starts trading on {where}.")
        self.venue_note.setWordWrap(True)
        self.ack = QCheckBox("I have read and understood the risks, and I accept them.")
        self.accept_button = QPushButton("Accept and start")
        self.accept_button.setEnabled(False)
        self.accept_button.setToolTip("Tick the box above first")
        self.ack.toggled.connect(self.accept_button.setEnabled)
        self.demo_button = QPushButton("Watch the simulated demo")
        self.demo_button.setToolTip("Runs the simulated venue only: no keys, no network, no real orders")
        self.quit_button = QPushButton("Quit")
        for button in (self.accept_button, self.demo_button, self.quit_button):
            button.setAutoDefault(False)
        self.accept_button.clicked.connect(lambda: self._done(ACCEPTED))
        self.demo_button.clicked.connect(lambda: self._done(DEMO))
        self.quit_button.clicked.connect(lambda: self._done(QUIT))
        buttons = QHBoxLayout()
        buttons.addWidget(self.quit_button)
        buttons.addStretch(1)
        buttons.addWidget(self.demo_button)
        buttons.addWidget(self.accept_button)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(text)
        layout.addStretch(1)
        layout.addWidget(self.venue_note)
        layout.addWidget(self.ack)
        layout.addLayout(buttons)
        self.setMinimumSize(640, 380)  # word-wrapped text needs the height; a cramped disclosure is unread
        title.setWordWrap(True)
        self.setWindowModality(Qt.WindowModality.NonModal)

    def _done(self, choice: str) -> None:
        if choice == ACCEPTED and not self.ack.isChecked():
            return  # the button is disabled; a keyboard or test path must not bypass the box
        self.choice = choice
        self.accept() if choice != QUIT else self.reject()


@dataclass
class FirstRun:
    settings: Settings  # what to run: the config's, or a simulated copy for the demo
    choice: str  # ACCEPTED | DEMO | QUIT
    asked_now: bool  # the operator answered in this start (so it is audited once the journal is open)

    @property
    def may_start(self) -> bool:
        return self.choice != QUIT

    def record(self, engine: Engine) -> None:
        """Audit the answer given in this start (the journal exists only once the engine is built)."""
        if self.asked_now and self.choice in (ACCEPTED, DEMO):
            what = "risk disclosure accepted" if self.choice == ACCEPTED else "simulated demo chosen"
            engine.audit("first_run", what, {"venue": self.settings.engine.venue}, engine.settings.engine.operator)


def remembered_choice(store: QSettings) -> str | None:
    value = str(store.value(CHOICE_KEY, "") or "")
    return value if value in (ACCEPTED, DEMO) else None


def remember(store: QSettings, choice: str) -> None:
    store.setValue(CHOICE_KEY, choice)
    if choice == ACCEPTED:
        store.setValue(ACCEPTED_AT_KEY, datetime.now(UTC).isoformat(timespec="seconds"))
    store.sync()


def demo_settings(settings: Settings) -> Settings:
    """The config with the simulated venue: the demo never reaches a real venue."""
    demo = settings.model_copy(deep=True)
    demo.engine.venue = "simulated"
    return demo


def decide(settings: Settings, choice: str, asked_now: bool) -> FirstRun:
    return FirstRun(demo_settings(settings) if choice == DEMO else settings, choice, asked_now)


async def first_run_gate(settings: Settings, store: QSettings, *, interactive: bool = True,
                         parent: QWidget | None = None) -> FirstRun:  # fmt: skip
    """Ask (once) before anything trades. Non-interactive runs (screenshots) without an answer run the demo."""
    known = remembered_choice(store)
    if known is not None:
        return decide(settings, known, asked_now=False)
    if not interactive:
        return decide(settings, DEMO, asked_now=False)  # not remembered: the operator never chose it
    dialog = FirstRunDialog(settings.engine.venue, parent)
    answered: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    dialog.finished.connect(lambda _r: answered.done() or answered.set_result(dialog.choice))
    dialog.open()
    try:
        choice = await answered
    finally:
        dialog.deleteLater()
    if choice in (ACCEPTED, DEMO):
        remember(store, choice)
    return decide(settings, choice, asked_now=True)


def open_disclosure_from_menu(store: QSettings, venue: str, parent: QWidget) -> FirstRunDialog:
    """Activation → Risk disclosure…: accept later (it takes effect at the next start)."""
    dialog = FirstRunDialog(venue, parent)
    dialog.demo_button.setText("Keep watching the demo")
    dialog.quit_button.setText("Close")

    def done(_r: int) -> None:
        if dialog.choice == ACCEPTED:
            remember(store, ACCEPTED)

    dialog.finished.connect(done)
    dialog.open()
    return dialog
