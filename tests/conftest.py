"""Shared pytest setup.

Qt must never need a display: the platform is chosen before anything imports Qt.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator

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


@pytest.fixture(autouse=True)
def _collect_qt_garbage_on_the_main_thread(request: pytest.FixtureRequest) -> Iterator[None]:
    """Collect cycles here, on the Qt thread, before and after every Qt test.

    Python's cycle collector runs in whichever thread allocates. Left to chance, a window
    from an earlier test can be collected on the journal's writer thread or a worker, and Qt
    then deletes it off its own thread: its timers dangle and a later event loop crashes.
    """
    if request.node.get_closest_marker("gui") is None:
        yield
        return
    gc.collect()
    yield
    gc.collect()
