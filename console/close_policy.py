"""What to do with the venue when the operator closes the window: keep, cancel orders, or close all.

A QMessageBox *instance* opened with ``.open()`` (never ``exec()`` or the static
helpers, which spin a nested loop that breaks qasync). The default button is the
configured shutdown policy, so Enter does what the settings say.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QAbstractButton, QMessageBox, QWidget

POLICIES: tuple[tuple[str, str, QMessageBox.ButtonRole], ...] = (
    ("keep", "Keep positions and orders", QMessageBox.ButtonRole.AcceptRole),
    ("cancel_orders", "Cancel orders, keep positions", QMessageBox.ButtonRole.AcceptRole),
    ("close_all", "Close all positions", QMessageBox.ButtonRole.DestructiveRole),
)


def ask_close_policy(
    parent: QWidget,
    positions: int,
    orders: int,
    default: str,
    on_choice: Callable[[str | None], None],
) -> QMessageBox:
    """Open the question; ``on_choice`` gets the policy, or None when the operator stays."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Quit Trading Console")
    box.setText(
        f"{positions} position{'s' if positions != 1 else ''} and {orders} "
        f"order{'s' if orders != 1 else ''} are open. What should happen to them?"
    )
    box.setInformativeText(
        "Keep: they stay at the venue, unwatched (protective stops stay if the venue holds them).\n"
        "Cancel orders: open orders are cancelled, positions stay.\n"
        "Close all: every position is flattened at market."
    )
    buttons: dict[QAbstractButton, str | None] = {}
    for policy, label, role in POLICIES:
        btn = box.addButton(f"{label}{'  (default)' if policy == default else ''}", role)
        btn.setObjectName(f"policy_{policy}")
        buttons[btn] = policy
        if policy == default:
            box.setDefaultButton(btn)  # type: ignore[arg-type]
    stay = box.addButton("Don't quit", QMessageBox.ButtonRole.RejectRole)
    stay.setObjectName("policy_stay")
    buttons[stay] = None
    box.setEscapeButton(stay)

    def finished(_result: int) -> None:
        on_choice(buttons.get(box.clickedButton()))

    box.finished.connect(finished)
    box.open()
    return box
