"""What the activation wizard's modules share: page ids, the venue choices, the disclosure and
confirmation texts, and the label helpers every page uses to say why it refuses to continue.
"""

from __future__ import annotations

import enum

from PySide6.QtWidgets import QLabel

from widgets import theme

CONFIRM_PHRASE = "I ACCEPT REAL MONEY RISK"
# (label, venue, mode)
VENUE_CHOICES = (
    ("Simulated — no keys, no network", "simulated", "simulated"),
    ("Binance testnet", "binance", "testnet"),
    ("Binance LIVE — real money", "binance", "live"),
    ("Alpaca paper", "alpaca", "paper"),
    ("Alpaca LIVE — real money", "alpaca", "live"),
)
DISCLOSURE = (
    "Automated trading can lose money quickly, including more than you expect: strategies fail, "
    "venues go down, orders fill at worse prices than shown, and software has bugs. Past results "
    "on paper or testnet do not promise live results.\n\n"
    "This console limits risk (breakers, stages, approvals, EMERGENCY STOP), but it cannot remove "
    "it. You stay responsible for every order placed with your keys. Use only money you can "
    "afford to lose."
)


class Page(enum.IntEnum):
    """The wizard's page ids, in the order the pages come."""

    WELCOME = 0
    VENUE = 1
    CREDENTIALS = 2
    CONNECT = 3
    RISK = 4
    EVIDENCE = 5
    CONFIRM = 6
    SUMMARY = 7


def text_label(text: str = "", *, wrap: bool = True, name: str = "") -> QLabel:
    lbl = QLabel(text)
    lbl.setWordWrap(wrap)
    if name:
        lbl.setObjectName(name)
    return lbl


def show_verdict(label: QLabel, ok: bool | None, text: str) -> None:
    """A page's answer: ✔ green when it holds, ✖ red when it does not, muted while nobody knows yet."""
    pal = theme.current_palette()
    colour = pal.muted if ok is None else pal.green if ok else pal.red
    mark = "" if ok is None else "✔ " if ok else "✖ "
    label.setText(mark + text)
    label.setStyleSheet(f"color: {colour}; font-weight: bold;")
