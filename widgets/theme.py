"""Dark (default) and light themes: a QSS file per theme plus the colours painting code needs.

Widgets express *state* through dynamic properties (``state="HALTED"``,
``tone="neg"``, ``mode="live"``) and the QSS decides the colours, so switching
theme restyles everything without the widgets knowing. Code that paints or
returns colours from a model (P&L foreground) reads `current_palette()`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QWidget


@dataclass(frozen=True, slots=True)
class Palette:
    name: str
    window: str
    surface: str
    alt_surface: str
    text: str
    muted: str
    border: str
    accent: str
    green: str
    amber: str
    red: str
    on_strong: str  # text drawn on a strong (green/red) background


DARK = Palette(
    name="dark",
    window="#1b1e24",
    surface="#23272f",
    alt_surface="#292e37",
    text="#e8eaed",
    muted="#8d96a5",
    border="#3a414d",
    accent="#5aa9ff",
    green="#4cc764",
    amber="#f0b429",
    red="#ff5c57",
    on_strong="#ffffff",
)

LIGHT = Palette(
    name="light",
    window="#f4f5f7",
    surface="#ffffff",
    alt_surface="#f0f2f5",
    text="#1b1f24",
    muted="#5c6570",
    border="#c9ced6",
    accent="#0b63c5",
    green="#137a2f",
    amber="#8a5a00",
    red="#c4161c",
    on_strong="#ffffff",
)

PALETTES: dict[str, Palette] = {"dark": DARK, "light": LIGHT}

# Dark-theme defaults as plain constants, for code that needs a colour before any theme is applied.
GREEN = DARK.green
AMBER = DARK.amber
RED = DARK.red
ACCENT = DARK.accent
MUTED = DARK.muted
TEXT = DARK.text

_current: Palette = DARK


def current_palette() -> Palette:
    return _current


def color(name: str) -> QColor:
    """A palette colour of the active theme as a QColor, e.g. ``color("green")``."""
    return QColor(getattr(_current, name))


def resources_dir() -> Path:
    """The ``resources`` folder: next to the packages in a checkout, under _MEIPASS when frozen."""
    frozen = getattr(sys, "_MEIPASS", None)
    candidates = []
    if frozen:
        candidates.append(Path(frozen) / "resources")
    here = Path(__file__).resolve().parent
    candidates += [here.parent / "resources", here / "resources"]
    for c in candidates:
        if c.is_dir():
            return c
    return candidates[0]


def load_stylesheet(name: str) -> str:
    path = resources_dir() / f"theme_{name}.qss"
    return path.read_text(encoding="utf-8")


def _qpalette(p: Palette) -> QPalette:
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: p.window,
        QPalette.ColorRole.WindowText: p.text,
        QPalette.ColorRole.Base: p.surface,
        QPalette.ColorRole.AlternateBase: p.alt_surface,
        QPalette.ColorRole.Text: p.text,
        QPalette.ColorRole.Button: p.alt_surface,
        QPalette.ColorRole.ButtonText: p.text,
        QPalette.ColorRole.ToolTipBase: p.surface,
        QPalette.ColorRole.ToolTipText: p.text,
        QPalette.ColorRole.Highlight: p.accent,
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.PlaceholderText: p.muted,
        QPalette.ColorRole.Link: p.accent,
    }
    for role, value in roles.items():
        pal.setColor(role, QColor(value))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(p.muted))
    return pal


def apply_theme(app: QApplication, name: str = "dark") -> Palette:
    """Switch the whole application to a theme; unknown names raise ValueError."""
    global _current
    if name not in PALETTES:
        raise ValueError(f"unknown theme {name!r}; expected one of {sorted(PALETTES)}")
    _current = PALETTES[name]
    app.setStyle("Fusion")  # the same look on every OS; QSS is written against it
    app.setPalette(_qpalette(_current))
    app.setStyleSheet(load_stylesheet(name))
    app.setProperty("theme", name)
    return _current


def repolish(widget: QWidget) -> None:
    """Re-evaluate QSS after a dynamic property changed (Qt does not do it by itself)."""
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)
    widget.update()
