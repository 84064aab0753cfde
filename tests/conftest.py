"""Shared pytest setup.

Qt must never need a display: the platform is chosen before anything imports Qt.
"""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import pytest

# Tests that need a QApplication. They run in their own pytest process (see the
# Makefile): pytest-qt pumps Qt events after every test once a QApplication
# exists, and Qt socket notifiers left by a finished qasync loop can then fire
# on file descriptors that a later plain-asyncio test has reused.
_GUI_FIXTURES = {"qtbot", "qapp"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _GUI_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.gui)
