"""The File and Help menus: attach, export, the data and logs folders, quit; the README, version, files.

Every dialog here is opened with ``open()`` (never ``exec()`` under qasync) and kept on the
window so tests and the operator can reach it.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QListWidget,
    QMessageBox,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from engine.core.paths import AppPaths, app_paths
from widgets.theme import resources_dir

if TYPE_CHECKING:
    from console.main_window import MainWindow

# Disabled until console.fleet wires it (connect_attach_action enables it and opens the fleet window).
ATTACH_TOOLTIP = "Attach this window to an engine running elsewhere: coming with the control server"


def app_version() -> str:
    try:
        return version("trading-console")
    except PackageNotFoundError:  # a source tree that was never pip-installed
        return "unknown"


def window_paths(window: MainWindow) -> AppPaths:
    """The folders of the running engine: its journal's folder is the data folder, whatever the env says."""
    paths = getattr(window, "paths", None) or app_paths()
    data_dir = Path(window.engine.journal.path).parent
    return AppPaths(paths.config_dir, data_dir, paths.log_dir)


def build_file_and_help_menus(window: MainWindow) -> None:
    bar = window.menuBar()
    first = bar.actions()[0] if bar.actions() else None
    file_menu = bar.addMenu("&File")
    if first is not None:  # File comes first, as everywhere
        bar.insertMenu(first, file_menu)
    window.file_menu = file_menu  # type: ignore[attr-defined]

    attach = QAction("Attach to engine…", window)
    attach.setEnabled(False)
    attach.setToolTip(ATTACH_TOOLTIP)
    attach.setStatusTip(ATTACH_TOOLTIP)
    file_menu.addAction(attach)
    file_menu.setToolTipsVisible(True)
    window.attach_action = attach  # type: ignore[attr-defined]
    file_menu.addSeparator()

    export = file_menu.addMenu("Export")
    export.addAction("Closed trades as CSV…").triggered.connect(window.performance.view.request_export_trades)
    export.addAction("Equity curve as CSV…").triggered.connect(window.performance.view.request_export_equity)
    file_menu.addSeparator()
    window.open_data_action = file_menu.addAction("Open data folder")  # type: ignore[attr-defined]
    window.open_data_action.triggered.connect(lambda: open_folder(window, window_paths(window).data_dir))  # type: ignore[attr-defined]
    window.open_logs_action = file_menu.addAction("Open logs folder")  # type: ignore[attr-defined]
    window.open_logs_action.triggered.connect(lambda: open_folder(window, window_paths(window).log_dir))  # type: ignore[attr-defined]
    file_menu.addSeparator()
    quit_action = QAction("Quit", window)
    quit_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Quit))
    quit_action.setToolTip("Close the window: asks what to do with open positions and orders first")
    quit_action.triggered.connect(window.close)  # the close event asks the shutdown policy
    file_menu.addAction(quit_action)
    window.quit_action = quit_action  # type: ignore[attr-defined]

    help_menu = bar.addMenu("&Help")
    help_menu.addAction("Help contents…").triggered.connect(lambda: show_help(window))
    help_menu.addAction("Where files live…").triggered.connect(lambda: show_files(window))
    window.disclosure_action = help_menu.addAction("Risk disclosure…")  # type: ignore[attr-defined]
    window.disclosure_action.setToolTip("Read the risk disclosure again, or accept it after watching the demo")  # type: ignore[attr-defined]
    window.disclosure_action.triggered.connect(lambda: show_disclosure(window))  # type: ignore[attr-defined]
    help_menu.addSeparator()
    help_menu.addAction("About Trading Console").triggered.connect(lambda: show_about(window))
    window.help_menu = help_menu  # type: ignore[attr-defined]


def open_folder(window: MainWindow, folder: Path) -> bool:
    """Open a folder in the desktop's file manager; where none answers, say where the folder is."""
    folder.mkdir(parents=True, exist_ok=True)
    if QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
        return True
    _message(window, "Open folder", f"No file manager answered. The folder is:\n{folder}")
    return False


def _message(window: MainWindow, title: str, text: str) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Information, title, text, QMessageBox.StandardButton.Ok, window)
    window.message_box = box
    box.open()
    return box


def files_text(window: MainWindow) -> str:
    p = window_paths(window)
    store = window.store.fileName() if window.store is not None else "the platform's settings store"
    return "\n".join((
        f"Configuration: {p.config_file}",
        f"Data folder: {p.data_dir}",
        f"Journal (orders, fills, audit): {Path(window.engine.journal.path)}",
        f"Logs: {p.log_dir}",
        f"Window layout and theme: {store}",
        "Set TRADING_CONSOLE_HOME to keep all of it under one folder.",
    ))  # fmt: skip


def show_disclosure(window: MainWindow) -> QDialog:
    from console.first_run import open_disclosure_from_menu

    dlg = open_disclosure_from_menu(window.store, window.settings.engine.venue, window)
    window.disclosure_dialog = dlg  # type: ignore[attr-defined]
    return dlg


def show_files(window: MainWindow) -> QMessageBox:
    return _message(window, "Where files live", files_text(window))


def show_about(window: MainWindow) -> QMessageBox:
    text = (f"Trading Console {app_version()}\n\nA desktop console for automated trading: watch, stop, "
            "approve, and promote stage by stage on measured evidence.")  # fmt: skip
    return _message(window, "About Trading Console", text)


# ---- the README as help ---------------------------------------------------------------------------


def readme_path() -> Path | None:
    for candidate in (resources_dir().parent / "README.md", resources_dir() / "README.md"):
        if candidate.is_file():
            return candidate
    return None


def readme_sections(text: str) -> list[tuple[str, str]]:
    """(title, markdown) per "## " section; the text before the first one is "Overview"."""
    sections: list[tuple[str, str]] = []
    # pictures are named, not drawn: a full-size screenshot in a help pane pushes the text out of sight
    text = re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", r"*Picture: \1* (`\2`)", text)
    parts = re.split(r"^## +(.+)$", text, flags=re.MULTILINE)
    intro = re.sub(r"^# .*$", "", parts[0], count=1, flags=re.MULTILINE).strip()
    if intro:
        sections.append(("Overview", intro))
    for title, body in zip(parts[1::2], parts[2::2], strict=False):
        sections.append((title.strip(), f"## {title.strip()}\n{body.strip()}"))
    return sections


class HelpDialog(QDialog):
    """The README's sections: a list on the left, the chosen section on the right."""

    def __init__(self, sections: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Trading Console help")
        self.sections = sections
        self.index = QListWidget()
        self.index.addItems([title for title, _ in sections])
        self.index.setMaximumWidth(280)
        self.index.setWordWrap(True)  # long section titles wrap instead of being cut
        self.index.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(True)
        self.index.currentRowChanged.connect(self.show_section)
        row = QHBoxLayout()
        row.addWidget(self.index)
        row.addWidget(self.text, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(row, 1)
        layout.addWidget(buttons)
        if sections:
            self.index.setCurrentRow(0)
        self.resize(900, 600)

    def show_section(self, row: int) -> None:
        if 0 <= row < len(self.sections):
            self.text.setMarkdown(self.sections[row][1])


def show_help(window: MainWindow) -> QDialog:
    path = readme_path()
    if path is None:
        sections = [("Help", "The README is not part of this build: see the project page for the manual.")]
    else:
        sections = readme_sections(path.read_text(encoding="utf-8"))
    dlg = HelpDialog(sections, window)
    window.help_dialog = dlg  # type: ignore[attr-defined]
    dlg.open()
    return dlg
