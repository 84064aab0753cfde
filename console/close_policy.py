"""What to do with the venue when the operator closes the window; and asking again mid close-all.

The default (Enter) keeps protection: "Quit, keep positions and their resting stops". The
text says exactly what stays at the venue (positions, resting stop legs, other working
orders) and what stops being watched while the app is closed (take-profits, time exits and
engine-watched stops). Cancelling orders is offered under its true name: it pulls the stops
too. Both questions are non-modal dialogs shown with ``show()`` (never ``exec()`` or a
static helper: a nested loop breaks qasync), and the quit dialog carries its own EMERGENCY
STOP button.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QLabel, QMessageBox, QPushButton, QVBoxLayout, QWidget

from widgets.dialogs import emergency_stop_button, show_nonmodal

DEFAULT_POLICY = "keep"  # what Enter does: the positions keep their resting stops


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _verb(count: int, singular: str, plural: str) -> str:
    return singular if count == 1 else plural


@dataclass(frozen=True, slots=True)
class VenuePicture:
    """What is at the venue now, as the quit question needs it."""

    positions: int = 0
    stop_legs: int = 0  # resting stop-loss orders (they stay at the venue unless cancelled)
    other_orders: int = 0  # working entries, limits, exits: everything but the stop legs
    watched: int = 0  # take-profits, time exits and engine-side stops the engine watches
    unprotected: list[str] = field(default_factory=list)  # positions no stop guards now
    watched_stops: list[str] = field(default_factory=list)  # positions whose stop only the engine watches

    @property
    def orders(self) -> int:
        return self.stop_legs + self.other_orders

    def stays_text(self) -> str:
        n = self.positions
        lines = [f"• {_n(n, 'open position')} {_verb(n, 'stays', 'stay')} open at the venue."]
        if self.stop_legs:
            legs = self.stop_legs
            lines.append(f"• {_n(legs, 'resting stop-loss leg')} {_verb(legs, 'stays', 'stay')} at the venue "
                         "and keeps protecting them.")  # fmt: skip
        else:
            lines.append("• No stop-loss order rests at the venue.")
        if self.watched_stops:
            lines.append(f"• ⚠ Only the engine watches the stop of {', '.join(self.watched_stops)}: "
                         "once the app is closed, nothing protects it at the venue.")  # fmt: skip
        if self.unprotected:
            lines.append(f"• ⚠ UNPROTECTED now: {', '.join(self.unprotected)} (no stop at the venue).")
        if self.other_orders:
            k = self.other_orders
            lines.append(f"• {_n(k, 'other working order')} (entries, limits) {_verb(k, 'stays', 'stay')} working.")
        lines.append(
            f"• While the app is closed nobody watches the engine-side exits ({self.watched}: take-profits, "
            "time exits, engine-watched stops): they do not fire until you start it again."
        )
        return "\n".join(lines)


POLICY_LABELS = {
    "keep": "Quit, keep positions and their resting stops",
    "cancel_all_orders": "Quit and cancel ALL orders, stop-loss legs included (positions stay, unprotected)",
    "close_all": "Close all positions at market, then quit",
}


class QuitDialog(QDialog):
    """``chosen`` carries the policy ("keep", "cancel_all_orders", "close_all") or None: the operator stays."""

    chosen = Signal(object)
    emergencyStop = Signal()

    def __init__(self, picture: VenuePicture, configured: str = DEFAULT_POLICY, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.picture = picture
        self.setWindowTitle("Quit Trading Console")
        self.setModal(False)
        headline = QLabel("Quit Trading Console? This is what stays at the venue:")
        headline.setObjectName("dialogHeadline")
        headline.setWordWrap(True)
        self.stays_label = QLabel(picture.stays_text())
        self.stays_label.setWordWrap(True)
        self.stays_label.setObjectName("quitStays")
        layout = QVBoxLayout(self)
        layout.addWidget(headline)
        layout.addWidget(self.stays_label)
        self.buttons: dict[str, QPushButton] = {}
        for policy, label in POLICY_LABELS.items():
            if policy == "cancel_all_orders" and picture.stop_legs:
                label = (f"Quit and cancel ALL {_n(picture.orders, 'order')}, including "
                         f"{_n(picture.stop_legs, 'stop-loss leg')} (positions stay, UNPROTECTED)")  # fmt: skip
            text = label + ("  (your setting)" if policy == configured and policy != DEFAULT_POLICY else "")
            if policy == DEFAULT_POLICY:
                text = f"✔ {text}  (Enter)"
            button = QPushButton(text)
            button.setObjectName(f"policy_{policy}")
            button.setAutoDefault(policy == DEFAULT_POLICY)
            button.setDefault(policy == DEFAULT_POLICY)
            if policy != DEFAULT_POLICY:
                button.setProperty("destructive", "true")
            else:  # the safe choice looks like the main one, not like the least loud
                font = button.font()
                font.setBold(True)
                button.setFont(font)
                button.setMinimumHeight(40)
            button.clicked.connect(lambda _=False, p=policy: self._choose(p))
            self.buttons[policy] = button
            layout.addWidget(button)
        self.stay_button = QPushButton("Don't quit")
        self.stay_button.setObjectName("policy_stay")
        self.stay_button.setAutoDefault(False)
        self.stay_button.clicked.connect(self.reject)
        layout.addWidget(self.stay_button)
        self.stop_button = emergency_stop_button()
        self.stop_button.clicked.connect(self.emergencyStop.emit)
        layout.addWidget(self.stop_button)
        self._choice: str | None = None
        self.finished.connect(lambda _r: self.chosen.emit(self._choice))
        self.resize(560, self.sizeHint().height())
        self.buttons[DEFAULT_POLICY].setFocus()

    def default_button(self) -> QPushButton:
        return self.buttons[DEFAULT_POLICY]

    def _choose(self, policy: str) -> None:
        self._choice = policy
        self.accept()


def ask_close_policy(
    parent: QWidget,
    picture: VenuePicture,
    configured: str,
    on_choice: Callable[[str | None], None],
    on_emergency_stop: Callable[[], None] | None = None,
) -> QuitDialog:
    """Show the question; ``on_choice`` gets the policy, or None when the operator stays."""
    dialog = QuitDialog(picture, configured, parent)
    dialog.chosen.connect(on_choice)
    if on_emergency_stop is not None:
        dialog.emergencyStop.connect(on_emergency_stop)
    show_nonmodal(dialog)
    return dialog


def ask_quit_during_close_all(
    parent: QWidget, positions_left: int, on_answer: Callable[[bool], None]
) -> QMessageBox:
    """Close-all is still flattening: quitting now may leave positions; staying is the default."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Close all is still running")
    box.setText(f"Close all is still running: {_n(positions_left, 'position')} left. Quit anyway?")
    box.setInformativeText(
        "Quitting stops the flattening; what is left stays at the venue with its resting stops."
    )
    stay = box.addButton("Don't quit, let it finish", QMessageBox.ButtonRole.RejectRole)
    stay.setObjectName("closeall_stay")
    quit_anyway = box.addButton("Quit anyway…", QMessageBox.ButtonRole.DestructiveRole)
    quit_anyway.setObjectName("closeall_quit")
    box.setDefaultButton(stay)
    box.setEscapeButton(stay)
    box.finished.connect(lambda _r: on_answer(box.clickedButton() is quit_anyway))
    show_nonmodal(box)
    return box
