"""Fitting the window to the screen the operator really has.

The window opens inside ``QScreen.availableGeometry()`` (the screen minus panels and docks),
never at a fixed size larger than a laptop's; a restored geometry that no longer fits (a
smaller monitor since, a different screen) is pulled back inside.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QRect, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDockWidget, QFrame, QScrollArea, QWidget

PREFERRED_SIZE = (2560, 1440)  # up to a big screen's worth; smaller screens get what they have
FRAME_ALLOWANCE = (16, 48)  # a window manager's borders and title bar, before the frame is known


def available_geometry(widget: QWidget) -> QRect:
    screen = widget.screen() or QGuiApplication.primaryScreen()
    return screen.availableGeometry() if screen is not None else QRect(0, 0, *PREFERRED_SIZE)


def fit_to_screen(window: QWidget, restored: bool = False) -> QRect:
    """Size and place the window inside the available screen; returns the geometry it asked for."""
    avail = available_geometry(window)
    fw, fh = FRAME_ALLOWANCE
    max_w, max_h = max(200, avail.width() - fw), max(200, avail.height() - fh)
    if restored and _inside(window.frameGeometry(), avail) and window.width() <= max_w and window.height() <= max_h:
        return window.geometry()
    w, h = min(PREFERRED_SIZE[0], max_w), min(PREFERRED_SIZE[1], max_h)
    window.resize(w, h)
    x = avail.x() + (avail.width() - w - fw) // 2 + fw // 2
    y = avail.y() + (avail.height() - h - fh) // 2 + fh - fw // 2
    window.move(max(avail.x(), x), max(avail.y(), y))
    if avail.width() <= 1440 or avail.height() <= 820:
        # a laptop screen: every pixel counts, and a maximised window cannot be dragged half off-screen
        window.setWindowState(window.windowState() | Qt.WindowState.WindowMaximized)
    return QRect(x, y, w, h)


def _inside(frame: QRect, avail: QRect) -> bool:
    return avail.contains(frame.topLeft()) and avail.contains(frame.bottomRight())


def scrolling(widget: QWidget) -> QScrollArea:
    """A frameless vertical scroller: a panel taller than its dock scrolls instead of being cut off."""
    area = QScrollArea()
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidgetResizable(True)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(widget)
    area.setMinimumSize(160, 80)
    return area


class DockAutoSizer(QObject):
    """Keeps the default dock proportions when the window is resized, until the operator moves a dock.

    QMainWindow hands extra width to whichever dock is nearest; a window opened small and then
    maximised would keep laptop-sized charts beside a huge gauge column. A restored layout, or any
    dock the operator moves or floats, is the operator's: from then on only Reset layout resizes.
    """

    def __init__(self, window: QWidget, docks: list[QDockWidget], resize_docks: Callable[[], None],
                 enabled: bool = True) -> None:  # fmt: skip
        super().__init__(window)
        self.enabled = enabled
        self._resize_docks = resize_docks
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._apply)
        self._settling = False
        for dock in docks:
            dock.dockLocationChanged.connect(self._operator_moved)
            dock.topLevelChanged.connect(self._operator_moved)
        window.installEventFilter(self)

    def _operator_moved(self, *_: object) -> None:
        if not self._settling:
            self.enabled = False

    def _apply(self) -> None:
        if self.enabled:
            self._settling = True
            try:
                self._resize_docks()
            finally:
                self._settling = False

    def reset(self) -> None:
        self.enabled = True
        self._timer.start()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize and self.enabled:
            self._timer.start()
        return False
