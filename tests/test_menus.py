"""File and Help menus of the window: attach, export, the data and logs folders, quit; README, version, files."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import shiboken6
from PySide6.QtCore import QObject, QSettings, QUrl, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication, QMenu

from console.app import build_window
from console.main_window import MainWindow
from console.menus import HelpDialog, readme_sections
from engine.app.factory import RunOptions, build_engine
from engine.core.config import Settings
from engine.core.paths import app_paths
from tests.qt_loop import qasync_loop
from widgets.theme import apply_theme

pytestmark = [pytest.mark.gui, pytest.mark.timeout(120)]
Runner = Callable[[Coroutine[Any, Any, Any]], Any]


@pytest.fixture
def run(qapp: QApplication, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runner]:
    monkeypatch.setenv("TRADING_CONSOLE_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # an export that fell back to the current directory would land here
    apply_theme(qapp, "dark")
    with qasync_loop(qapp) as runner:
        yield runner


@asynccontextmanager
async def console(tmp_path: Path) -> AsyncIterator[MainWindow]:
    engine = build_engine(Settings(), app_paths(), RunOptions(seed=7, speed=5, with_strategy=False))
    window, bridge = build_window(engine, QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat))
    window.show()
    await engine.start()
    try:
        yield window
    finally:
        await engine.shutdown("keep")
        bridge.detach()
        engine.journal.close()
        window.finish_close()
        shiboken6.delete(window)


def menu(window: MainWindow, title: str) -> QMenu:
    found = next(a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == title)
    assert isinstance(found, QMenu)
    return found


def action(m: QMenu, text: str) -> Any:
    return next(a for a in m.actions() if a.text() == text)


class UrlCatcher(QObject):
    """Stands in for the desktop's file manager: records what would have been opened."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: list[str] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.opened.append(url.toLocalFile())


def test_file_comes_first_and_help_last(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as window:
            titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
            assert titles[0] == "File" and titles[-1] == "Help" and "View" in titles
            file_menu = menu(window, "File")
            texts = [a.text() for a in file_menu.actions() if not a.isSeparator()]
            assert texts == ["Attach to engine…", "Export", "Open data folder", "Open logs folder", "Quit"]
            attach = action(file_menu, "Attach to engine…")
            assert attach.isEnabled() and "engine running elsewhere" in attach.toolTip()  # wired by console.fleet

    run(scenario())


def test_open_folders_are_the_engines_own(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        catcher = UrlCatcher()
        QDesktopServices.setUrlHandler("file", catcher, "open")
        try:
            async with console(tmp_path) as window:
                file_menu = menu(window, "File")
                action(file_menu, "Open data folder").trigger()
                action(file_menu, "Open logs folder").trigger()
                assert catcher.opened == [str(app_paths().data_dir), str(app_paths().log_dir)]
        finally:
            QDesktopServices.unsetUrlHandler("file")

    run(scenario())


def test_export_opens_in_the_data_folder_not_the_current_directory(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as window:
            export = next(a.menu() for a in menu(window, "File").actions() if a.text() == "Export")
            action(export, "Closed trades as CSV…").trigger()
            dialog = window.performance.view.file_dialog
            assert dialog is not None and dialog.isVisible()
            folder = Path(dialog.directory().absolutePath())
            assert folder == app_paths().reports_dir  # under TRADING_CONSOLE_HOME: the data folder's reports
            assert Path(os.getcwd()) not in (folder, *folder.parents) or folder != Path(os.getcwd())
            dialog.reject()

    run(scenario())


def test_help_shows_the_readme_sections_the_version_and_where_files_live(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as window:
            help_menu = menu(window, "Help")
            action(help_menu, "Help contents…").trigger()
            dialog = window.help_dialog
            assert isinstance(dialog, HelpDialog) and dialog.isVisible()
            titles = [dialog.index.item(i).text() for i in range(dialog.index.count())]
            assert "Command line" in titles and "Safety model" in titles
            dialog.index.setCurrentRow(titles.index("Command line"))
            assert "trading-console --headless" in dialog.text.toPlainText()
            dialog.reject()
            action(help_menu, "About Trading Console").trigger()
            assert window.message_box.text().startswith("Trading Console ")
            window.message_box.close()
            action(help_menu, "Where files live…").trigger()
            text = window.message_box.text()
            assert str(app_paths().config_file) in text and str(app_paths().log_dir) in text
            assert str(window.engine.journal.path) in text

    run(scenario())


def test_quit_asks_like_closing_the_window(run: Runner, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with console(tmp_path) as window:
            asked: list[str] = []
            window.shutdownRequested.connect(asked.append)
            action(menu(window, "File"), "Quit").trigger()  # nothing open: the configured policy, no question
            await asyncio.sleep(0.05)
            assert asked == [window.settings.engine.shutdown]

    run(scenario())


def test_readme_sections_split_on_second_level_titles() -> None:
    sections = readme_sections("# T\nintro\n## One\na\n### sub\nb\n## Two\nc\n")
    assert [t for t, _ in sections] == ["Overview", "One", "Two"]
    assert "### sub" in sections[1][1]
    pictured = readme_sections("## A\n![The console at work](docs/x.png)\n")
    assert pictured[0][1].endswith("*Picture: The console at work* (`docs/x.png`)")


def test_emergency_stop_acts_while_the_help_dialog_is_open(run: Runner, tmp_path: Path, qtbot: Any) -> None:
    from PySide6.QtCore import Qt

    async def scenario() -> None:
        async with console(tmp_path) as window:
            action(menu(window, "Help"), "Help contents…").trigger()
            assert window.help_dialog.isVisible()
            qtbot.mouseClick(window.big_buttons.emergency_button, Qt.MouseButton.LeftButton)
            assert window.engine.risk.state.value == "HALTED"
            assert window.help_dialog.isVisible()  # nothing had to be closed first

    run(scenario())
