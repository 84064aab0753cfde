"""Desktop channels: tray messages for WARNING and above, a sound for CRITICAL and above.

Fed by the bridge's ``alertRaised`` signal (already on the Qt side, at once). Where the
desktop has no system tray, there are no tray messages and nothing else changes. The sound
is resources/sounds/alert.wav played by ``paplay`` or ``aplay`` in a QProcess (the Qt wheel
we use has no QtMultimedia), or the system beep without them. "Mute alert sound" in the
View menu is remembered in QSettings; its default comes from ``[alerts.sound] enabled``.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QProcess, QSettings
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import QApplication, QMainWindow, QStyle, QSystemTrayIcon

from engine.core.alerts_config import AlertsConfig
from engine.core.model import AlertLevel
from widgets.theme import resources_dir

if TYPE_CHECKING:
    from console.bridge import EngineBridge
    from engine.core.events import AlertEvent

log = logging.getLogger(__name__)

MUTE_KEY = "alerts/mute_sound"
ALERT_WAV = "sounds/alert.wav"
ShowMessage = Callable[[str, str, AlertLevel], None]


def find_player() -> list[str] | None:
    """The command that plays a WAV file here: PulseAudio/PipeWire first, then ALSA."""
    for program, args in (("paplay", []), ("aplay", ["-q"])):
        path = shutil.which(program)
        if path:
            return [path, *args]
    return None


class SoundPlayer(QObject):
    """Plays one alert sound at a time; a sound still playing is not stacked on."""

    def __init__(
        self,
        parent: QObject | None = None,
        wav: Path | None = None,
        program: list[str] | None = None,
        beep: Callable[[], None] = QApplication.beep,
    ) -> None:
        super().__init__(parent)
        self.wav = wav or resources_dir() / ALERT_WAV
        self.program = program if program is not None else find_player()
        self._beep = beep
        self._proc: QProcess | None = None

    def __call__(self) -> None:
        if self._proc is not None and self._proc.state() != QProcess.ProcessState.NotRunning:
            return
        if not self.program or not self.wav.exists():
            self._beep()
            return
        proc = self._proc = QProcess(self)
        proc.finished.connect(self._finished)
        proc.errorOccurred.connect(self._error)
        proc.start(self.program[0], [*self.program[1:], str(self.wav)])

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        if code != 0 or status != QProcess.ExitStatus.NormalExit:
            self._give_up(f"exit code {code}")

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._give_up("it did not start")

    def _give_up(self, why: str) -> None:
        log.info("alert sound player %s failed (%s): using the system beep", self.program, why)
        self.program = None  # no sound server (e.g. a headless session): beep from now on
        self._beep()


class DesktopNotifier(QObject):
    """Routes alerts by level to the tray and the sound; ``show_message`` and ``player`` are injectable."""

    def __init__(
        self,
        alerts: AlertsConfig,
        store: QSettings,
        parent: QObject | None = None,
        *,
        player: Callable[[], None] | None = None,
        show_message: ShowMessage | None = None,
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.desktop_enabled = alerts.desktop.enabled
        self.desktop_min = AlertLevel[alerts.desktop.min_level]
        self.sound_min = AlertLevel[alerts.sound.min_level]
        self._sound_default_on = alerts.sound.enabled
        self.tray: QSystemTrayIcon | None = None
        if show_message is None and self.desktop_enabled and QSystemTrayIcon.isSystemTrayAvailable():
            self.tray = QSystemTrayIcon(_app_icon(), self)
            self.tray.setToolTip("Trading Console")
            self.tray.show()
            show_message = self._tray_message
        self._show = show_message
        self._play = player if player is not None else SoundPlayer(self)
        self.mute_action = QAction("Mute alert sound", self, checkable=True)
        self.mute_action.setToolTip("No sound for CRITICAL and EMERGENCY alerts (remembered)")
        self.mute_action.setChecked(self.muted)
        self.mute_action.toggled.connect(self.set_muted)
        self.shown = 0
        self.sounded = 0

    # --- mute ---------------------------------------------------------------------------------
    @property
    def muted(self) -> bool:
        value = self.store.value(MUTE_KEY)
        if value is None:
            return not self._sound_default_on
        return str(value).lower() in ("true", "1")  # an ini file gives the text back

    def set_muted(self, on: bool) -> None:
        self.store.setValue(MUTE_KEY, bool(on))
        self.store.sync()
        if self.mute_action.isChecked() != on:
            self.mute_action.setChecked(on)

    # --- routing ------------------------------------------------------------------------------
    def on_alert(self, ev: AlertEvent) -> None:
        level = AlertLevel(ev.level)
        if self._show is not None and self.desktop_enabled and level >= self.desktop_min:
            self._show(f"Trading Console — {level.name}", _short(ev.message), level)
            self.shown += 1
        if level >= self.sound_min and not self.muted:
            self._play()
            self.sounded += 1

    def _tray_message(self, title: str, text: str, level: AlertLevel) -> None:
        assert self.tray is not None
        mi = QSystemTrayIcon.MessageIcon
        urgent = level >= AlertLevel.CRITICAL
        self.tray.showMessage(title, text, mi.Critical if urgent else mi.Warning, 30_000 if urgent else 10_000)

    # --- the window -----------------------------------------------------------------------------
    def attach(self, window: QMainWindow) -> None:
        """"Mute alert sound" at the end of the View menu; a click on a tray message shows the window."""
        view = next((a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == "View"), None)
        if view is None:
            view = window.menuBar().addMenu("&View")
        view.addSeparator()  # type: ignore[union-attr]
        view.addAction(self.mute_action)  # type: ignore[union-attr]
        if self.tray is not None:
            self.tray.messageClicked.connect(lambda: (window.showNormal(), window.raise_(), window.activateWindow()))


def install_desktop_notifier(window: QMainWindow, bridge: EngineBridge) -> DesktopNotifier:
    """The one hook console.app calls: route the bridge's alerts to the tray and the sound."""
    notifier = DesktopNotifier(window.settings.alerts, window.store, window)  # type: ignore[attr-defined]
    notifier.attach(window)
    bridge.alertRaised.connect(notifier.on_alert)
    return notifier


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _app_icon() -> QIcon:
    app = QApplication.instance()
    icon = app.windowIcon() if isinstance(app, QApplication) else QIcon()
    if icon.isNull():
        icon = QApplication.style().standardIcon(QStyle.StandardPixmap.SP_ComputerIcon)
    return icon
