"""Tray messages and the alert sound: routing by level, the remembered mute, the View menu hook."""

from __future__ import annotations

import sys
import wave
from datetime import UTC, datetime
from pathlib import Path

from PySide6.QtCore import QProcess, QSettings
from pytestqt.qtbot import QtBot

from console.app import build_window
from console.notify_desktop import DesktopNotifier, SoundPlayer
from engine.core.alerts_config import AlertsConfig
from engine.core.events import AlertEvent
from engine.core.model import AlertLevel
from tests.engine_rig import make_engine
from widgets.theme import resources_dir

TS = datetime(2026, 2, 2, 9, 30, tzinfo=UTC)


def ev(level: AlertLevel, message: str = "something happened") -> AlertEvent:
    return AlertEvent(TS, level, "test", message, key="test")


class Desk:
    """What the operator would have seen and heard."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, AlertLevel]] = []
        self.sounds = 0

    def show(self, title: str, text: str, level: AlertLevel) -> None:
        self.messages.append((title, text, level))

    def play(self) -> None:
        self.sounds += 1


def notifier(tmp_path: Path, desk: Desk, alerts: AlertsConfig | None = None) -> DesktopNotifier:
    store = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    return DesktopNotifier(alerts or AlertsConfig(), store, player=desk.play, show_message=desk.show)


def test_levels_route_to_tray_and_sound(qtbot: QtBot, tmp_path: Path) -> None:
    desk = Desk()
    n = notifier(tmp_path, desk)
    n.on_alert(ev(AlertLevel.INFO))
    assert (desk.messages, desk.sounds) == ([], 0)
    n.on_alert(ev(AlertLevel.WARNING, "market data stale"))
    assert [m[2] for m in desk.messages] == [AlertLevel.WARNING] and desk.sounds == 0
    assert desk.messages[0][0] == "Trading Console — WARNING" and desk.messages[0][1] == "market data stale"
    n.on_alert(ev(AlertLevel.CRITICAL))
    n.on_alert(ev(AlertLevel.EMERGENCY))
    assert [m[2] for m in desk.messages][1:] == [AlertLevel.CRITICAL, AlertLevel.EMERGENCY]
    assert desk.sounds == 2


def test_configured_levels_and_a_disabled_tray(qtbot: QtBot, tmp_path: Path) -> None:
    alerts = AlertsConfig()
    alerts.desktop.min_level = "CRITICAL"
    alerts.sound.min_level = "EMERGENCY"
    desk = Desk()
    n = notifier(tmp_path, desk, alerts)
    for level in AlertLevel:
        n.on_alert(ev(level))
    assert [m[2] for m in desk.messages] == [AlertLevel.CRITICAL, AlertLevel.EMERGENCY] and desk.sounds == 1
    alerts.desktop.enabled = False
    quiet = Desk()
    n2 = notifier(tmp_path / "b", quiet, alerts)
    n2.on_alert(ev(AlertLevel.EMERGENCY))
    assert quiet.messages == [] and quiet.sounds == 1  # the sound is its own channel


def test_mute_persists_and_suppresses_the_sound(qtbot: QtBot, tmp_path: Path) -> None:
    desk = Desk()
    n = notifier(tmp_path, desk)
    assert not n.muted and not n.mute_action.isChecked()  # sound is on by default
    n.mute_action.trigger()
    assert n.muted
    n.on_alert(ev(AlertLevel.EMERGENCY))
    assert desk.sounds == 0 and len(desk.messages) == 1  # muted: still shown, not heard

    again = Desk()
    restarted = notifier(tmp_path, again)  # a new session reads the same settings file
    assert restarted.muted and restarted.mute_action.isChecked()
    restarted.on_alert(ev(AlertLevel.CRITICAL))
    assert again.sounds == 0
    restarted.mute_action.trigger()
    restarted.on_alert(ev(AlertLevel.CRITICAL))
    assert again.sounds == 1 and not notifier(tmp_path, Desk()).muted


def test_sound_off_in_the_config_means_muted_until_unmuted(qtbot: QtBot, tmp_path: Path) -> None:
    alerts = AlertsConfig()
    alerts.sound.enabled = False
    desk = Desk()
    n = notifier(tmp_path, desk, alerts)
    assert n.muted and n.mute_action.isChecked()
    n.on_alert(ev(AlertLevel.EMERGENCY))
    assert desk.sounds == 0
    n.mute_action.trigger()
    n.on_alert(ev(AlertLevel.EMERGENCY))
    assert desk.sounds == 1


def test_the_window_has_the_mute_item_and_works_without_a_tray(qtbot: QtBot, tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    store = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    window, bridge = build_window(engine, store)
    qtbot.addWidget(window)
    try:
        n: DesktopNotifier = window.desktop_notifier  # type: ignore[attr-defined]
        view = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
        assert n.mute_action in view.actions()  # type: ignore[union-attr]
        assert n.tray is None  # offscreen: no system tray, and no error either
        desk = Desk()
        n._play = desk.play
        bridge.alertRaised.emit(ev(AlertLevel.CRITICAL, "breaker tripped"))
        assert desk.sounds == 1
        n.mute_action.trigger()
        bridge.alertRaised.emit(ev(AlertLevel.CRITICAL, "breaker tripped again"))
        assert desk.sounds == 1 and str(store.value("alerts/mute_sound")).lower() == "true"
    finally:
        bridge.detach()
        engine.journal.close()


def test_the_alert_sound_file_is_short_and_small() -> None:
    path = resources_dir() / "sounds" / "alert.wav"
    assert path.stat().st_size < 100_000
    with wave.open(str(path)) as w:
        assert 0.3 < w.getnframes() / w.getframerate() < 1.5


def test_the_player_hands_the_wav_to_the_program_and_beeps_when_it_fails(qtbot: QtBot, tmp_path: Path) -> None:
    out = tmp_path / "played.txt"
    beeps: list[int] = []
    ok = SoundPlayer(program=[sys.executable, "-c", f"import sys, pathlib; pathlib.Path({str(out)!r}).write_text("
                                                  "sys.argv[-1])"], beep=lambda: beeps.append(1))  # fmt: skip
    ok()
    qtbot.waitUntil(lambda: out.exists() and ok._proc.state() == QProcess.ProcessState.NotRunning,  # type: ignore[union-attr]
                    timeout=10_000)  # fmt: skip
    assert out.read_text().endswith("alert.wav") and beeps == []

    broken = SoundPlayer(program=[sys.executable, "-c", "raise SystemExit(3)"], beep=lambda: beeps.append(1))
    broken()
    qtbot.waitUntil(lambda: beeps == [1], timeout=10_000)
    assert broken.program is None  # from now on the beep, without trying again
    broken()
    assert beeps == [1, 1]
