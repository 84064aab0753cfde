"""The main window's dock area: every panel in a movable dock, their default arrangement and sizes.

The docks live in an inner QMainWindow used as a plain widget, below the fixed command strip,
so no layout the operator makes (or restores) can cover the trading state or EMERGENCY STOP.
Each dock gets an explicit small minimum, so however many sit side by side the window never
grows past the screen.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtWidgets import QDockWidget, QMainWindow, QWidget

from console.screen_fit import scrolling

LAYOUT_VERSION = 1  # of the saved dock state: a saved state of another version is not restored


class DockArea(QMainWindow):
    """The docks' host. `panels` are (key, title, widget); the default layout names the keys."""

    def __init__(self, panels: Sequence[tuple[str, str, QWidget]], *, scrolled: frozenset[str] = frozenset()
                 ) -> None:  # fmt: skip
        super().__init__()
        self.setWindowFlags(Qt.WindowType.Widget)
        self.setDockOptions(
            QMainWindow.DockOption.AllowTabbedDocks
            | QMainWindow.DockOption.AllowNestedDocks
            | QMainWindow.DockOption.AnimatedDocks
        )
        placeholder = QWidget()  # QMainWindow needs a central widget; the docks own the space
        placeholder.setMaximumSize(0, 0)
        self.setCentralWidget(placeholder)
        self.docks: dict[str, QDockWidget] = {}
        for key, title, widget in panels:
            dock = QDockWidget(title, self)
            dock.setObjectName(f"dock_{key}")
            # an explicit minimum overrides the layouts' wide hints, so the window fits a laptop screen
            widget.setMinimumSize(160, 80)
            dock.setWidget(scrolling(widget) if key in scrolled else widget)
            dock.setFeatures(
                QDockWidget.DockWidgetFeature.DockWidgetMovable
                | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                | QDockWidget.DockWidgetFeature.DockWidgetClosable
            )
            self.docks[key] = dock
        self.default_layout()
        self._default_state = self.saveState(LAYOUT_VERSION)

    def default_layout(self) -> None:
        # left: what I hold, how it goes, what happened; right, full height: how close to the limits
        d, area = self.docks, Qt.DockWidgetArea
        for dock in d.values():
            dock.setFloating(False)
        self.addDockWidget(area.LeftDockWidgetArea, d["positions"])
        self.splitDockWidget(d["positions"], d["equity"], Qt.Orientation.Vertical)
        self.splitDockWidget(d["equity"], d["alerts"], Qt.Orientation.Vertical)
        self.splitDockWidget(d["equity"], d["price"], Qt.Orientation.Horizontal)  # charts side by side
        self.tabifyDockWidget(d["alerts"], d["orders"])
        self.tabifyDockWidget(d["orders"], d["fills"])
        self.tabifyDockWidget(d["fills"], d["approvals"])
        self.tabifyDockWidget(d["approvals"], d["performance"])
        self.addDockWidget(area.RightDockWidgetArea, d["gauges"])
        for dock in d.values():
            dock.setVisible(True)
        d["alerts"].raise_()
        self.size_docks()

    def size_docks(self) -> None:
        # sizes only stick once the host has its real size, so this runs again after the first show
        d = self.docks
        w, h = max(self.width(), 600), max(self.height(), 300)
        gauges = 2 * 176 + 24 if w >= 1500 else 236  # two gauge columns where there is room
        left = w - gauges
        self.resizeDocks([d["positions"], d["gauges"]], [left, gauges], Qt.Orientation.Horizontal)
        self.resizeDocks([d["equity"], d["price"]], [left // 2, left // 2], Qt.Orientation.Horizontal)
        self.resizeDocks(
            [d["positions"], d["equity"], d["alerts"]], [int(h * 0.27), int(h * 0.43), int(h * 0.30)],
            Qt.Orientation.Vertical,
        )

    def reset(self) -> None:
        """Back to the default arrangement (docks closed or floated come back)."""
        self.restoreState(self._default_state, LAYOUT_VERSION)
        self.default_layout()

    def layout_state(self) -> QByteArray:
        return self.saveState(LAYOUT_VERSION)

    def restore_layout_state(self, state: object) -> bool:
        """Restore a saved state; False (the default layout stays) when there is none or it does not fit."""
        return isinstance(state, QByteArray) and self.restoreState(state, LAYOUT_VERSION)
