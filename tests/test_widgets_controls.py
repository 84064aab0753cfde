"""Top bar, state badge, big buttons, alert feed, dialogs and themes, offscreen."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication, QDialog

from engine.core.model import AlertLevel
from widgets import theme
from widgets.alert_feed import AlertFeed
from widgets.big_buttons import STALE_AFTER_S, BigButtons
from widgets.dialogs import CloseAllDialog, PullStopsDialog, ResumeDialog
from widgets.top_bar import StateBadge, TopBar

pytestmark = pytest.mark.gui

T0 = datetime(2025, 3, 14, 15, 30, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def dark(qapp: QApplication):
    theme.apply_theme(qapp, "dark")
    yield theme.current_palette()
    theme.apply_theme(qapp, "dark")


def centre_colour(widget) -> QColor:
    """The badge's fill, sampled inside its padding (left of the text)."""
    image = widget.grab().toImage()
    return image.pixelColor(6, image.height() // 2)


# ---- state badge and top bar ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "text", "hue"),
    [("ACTIVE", "▶ ACTIVE", "green"), ("REDUCING", "▼ REDUCING", "amber"), ("HALTED", "■ HALTED", "red")],
)
def test_state_badge_spells_the_state_and_colours_it(qtbot, dark, state: str, text: str, hue: str) -> None:
    badge = StateBadge()
    qtbot.addWidget(badge)
    badge.set_state(state.lower(), reason="daily loss limit")
    badge.show()
    qtbot.waitExposed(badge)
    assert badge.text() == text
    assert badge.state == state and badge.property("state") == state
    assert "daily loss limit" in badge.toolTip()
    c = centre_colour(badge)
    if hue == "green":
        assert c.green() > c.red() + 40
    elif hue == "red":
        assert c.red() > c.green() + 80
    else:
        assert c.red() > 150 and c.green() > 120 and c.blue() < 100


def test_top_bar_makes_live_mode_unmistakable(qtbot, dark) -> None:
    bar = TopBar(currency="USDT")
    qtbot.addWidget(bar)
    bar.set_venue("Binance spot", "testnet")
    assert bar.mode_pill.text() == "TESTNET" and bar.mode == "testnet"
    bar.set_venue("Binance spot", "LIVE")
    assert bar.mode_pill.text() == "LIVE — REAL MONEY"
    assert bar.mode == "live"
    bar.show()
    qtbot.waitExposed(bar)
    c = centre_colour(bar.mode_pill)
    assert c.red() > 180 and c.green() < 90  # a red background


def test_connection_goes_amber_then_red_as_data_ages(qtbot) -> None:
    bar = TopBar()
    qtbot.addWidget(bar)
    bar.set_connection(True, 42.0, 0.5)
    assert bar.connection_health == "ok"
    assert "CONNECTED" in bar.connection_label.text() and "42 ms" in bar.connection_label.text()
    bar.set_connection(True, 42.0, 8.0)
    assert bar.connection_health == "stale" and "STALE" in bar.connection_label.text()
    bar.set_connection(True, 42.0, 45.0)
    assert bar.connection_health == "down" and "NO DATA" in bar.connection_label.text()
    bar.set_connection(False)
    assert bar.connection_health == "down" and "DISCONNECTED" in bar.connection_label.text()


def test_equity_and_day_pnl_are_signed_with_arrows(qtbot) -> None:
    bar = TopBar(currency="USD")
    qtbot.addWidget(bar)
    bar.set_equity(D("102345.678"))
    assert bar.equity_label.text() == "102,345.68 USD"
    bar.set_day_pnl(D("-1234.5"), D("-1.19"))
    assert bar.pnl_label.text() == "▼ −1,234.50 USD  (−1.19 %)"
    assert bar.pnl_label.property("tone") == "neg"
    bar.set_day_pnl(310.0, 0.3)
    assert bar.pnl_label.text().startswith("▲ +310.00")
    assert bar.pnl_label.property("tone") == "pos"
    bar.set_state("HALTED", "Emergency stop by operator")
    assert bar.badge.text() == "■ HALTED"
    assert bar.reason_label.text() == "Emergency stop by operator"


# ---- big buttons ---------------------------------------------------------------------------------


def test_emergency_stop_emits_on_one_click_in_every_state(qtbot) -> None:
    buttons = BigButtons()
    qtbot.addWidget(buttons)
    buttons.show()
    for state in ("ACTIVE", "REDUCING", "HALTED", ""):
        buttons.set_state(state)
        assert buttons.emergency_button.isEnabled()
        with qtbot.waitSignal(buttons.emergencyStop, timeout=1000):
            qtbot.mouseClick(buttons.emergency_button, Qt.MouseButton.LeftButton)


def test_resume_is_enabled_only_when_halted(qtbot) -> None:
    buttons = BigButtons()
    qtbot.addWidget(buttons)
    buttons.show()
    for state in ("ACTIVE", "REDUCING"):
        buttons.set_state(state)
        assert not buttons.resume_button.isEnabled()
        with qtbot.assertNotEmitted(buttons.resumeRequested):
            qtbot.mouseClick(buttons.resume_button, Qt.MouseButton.LeftButton)
    buttons.set_state("HALTED")
    assert buttons.resume_button.isEnabled()
    with qtbot.waitSignal(buttons.resumeRequested, timeout=1000):
        qtbot.mouseClick(buttons.resume_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(buttons.closeAllRequested, timeout=1000):
        qtbot.mouseClick(buttons.close_all_button, Qt.MouseButton.LeftButton)


def test_progress_shows_until_finished_then_the_outcome(qtbot) -> None:
    buttons = BigButtons()
    qtbot.addWidget(buttons)
    buttons.show()
    assert buttons.progress_result == ""
    buttons.set_progress("close_all", "flattening ETH/USDT", 2, 4)
    assert buttons.progress_result == "busy"
    assert buttons.progress_bar.isVisible() and buttons.progress_bar.value() == 2
    buttons.set_progress("close_all", "2 positions could not be closed", 2, 4, finished=True, ok=False)
    assert buttons.progress_result == "fail"
    assert not buttons.progress_bar.isVisible()
    assert buttons.progress_message.text() == "✖ Close all: 2 positions could not be closed"
    buttons.set_progress("emergency_stop", "all orders canceled", 7, 7, True, True)
    assert buttons.progress_result == "ok" and buttons.progress_message.text().startswith("✔ Emergency stop")


# ---- alert feed ----------------------------------------------------------------------------------


@pytest.fixture
def feed(qtbot) -> AlertFeed:
    f = AlertFeed()
    qtbot.addWidget(f)
    f.resize(1000, 400)
    f.show()
    qtbot.waitExposed(f)
    f.add_alert("a1", "INFO", "venue connected", T0)
    f.add_alert("a2", AlertLevel.WARNING, "ETH data is stale", T0 + timedelta(seconds=1))
    f.add_alert("a3", 30, "daily loss at 82 % of limit", T0 + timedelta(seconds=2), code="daily_loss")
    f.add_alert("a4", "emergency", "emergency stop by operator", T0 + timedelta(seconds=3))
    return f


def test_alerts_show_newest_first_with_a_text_tag_per_level(feed: AlertFeed) -> None:
    assert feed.visible_alert_ids() == ["a4", "a3", "a2", "a1"]
    assert feed.table.cell_text("a2", "level") == "⚠ WARNING"
    assert feed.table.cell_text("a4", "level") == "‼ EMERGENCY"
    assert feed.table.cell_text("a1", "status") == "NEW"
    assert feed.unacknowledged_count == 4


def test_level_and_text_filters(qtbot, feed: AlertFeed) -> None:
    feed.level_combo.setCurrentIndex(feed.level_combo.findData(30))  # as the operator picks it
    assert feed.visible_alert_ids() == ["a4", "a3"]
    feed.set_level_filter(None)
    qtbot.keyClicks(feed.text_filter, "STALE")
    assert feed.visible_alert_ids() == ["a2"]
    feed.set_text_filter("daily_loss")  # codes match too
    assert feed.visible_alert_ids() == ["a3"]
    feed.set_text_filter("")
    feed.set_level_filter("WARNING")
    assert feed.visible_alert_ids() == ["a4", "a3", "a2"]


def test_acknowledge_by_button_greys_the_row_and_counts_down(qtbot, feed: AlertFeed) -> None:
    table = feed.table
    row = table.proxy.mapFromSource(table.model.index(table.model.row_of("a3"), table.model.column_of("ack")))
    with qtbot.waitSignal(feed.acknowledged, timeout=1000) as sig, qtbot.waitSignal(
        feed.unacknowledgedCountChanged, timeout=1000
    ) as count:
        qtbot.mouseClick(table.view.viewport(), Qt.MouseButton.LeftButton,
                         pos=table.view.visualRect(row).center())
    assert sig.args == ["a3"] and count.args == [3]
    assert feed.unacknowledged_count == 3
    assert feed.table.cell_text("a3", "status").startswith("ACK")
    assert feed.table.cell_text("a3", "ack") == ""  # no button any more
    fg = table.model.index(table.model.row_of("a3"), 0).data(Qt.ItemDataRole.ForegroundRole)
    assert fg == QColor(theme.current_palette().muted)
    assert not feed.acknowledge("a3")  # twice is a no-op

    feed.set_unacknowledged_only(True)
    assert "a3" not in feed.visible_alert_ids()
    with qtbot.waitSignal(feed.unacknowledgedCountChanged, timeout=1000) as count:
        assert feed.acknowledge_all() == 3
    assert count.args == [0] and feed.visible_alert_ids() == []
    assert feed.count_label.text() == "All acknowledged"


def test_the_feed_is_bounded_and_drops_the_oldest(qtbot) -> None:
    feed = AlertFeed(max_alerts=5)
    qtbot.addWidget(feed)
    for i in range(8):
        feed.add_alert(f"x{i}", "INFO", f"alert {i}", T0 + timedelta(seconds=i))
    assert feed.visible_alert_ids() == ["x7", "x6", "x5", "x4", "x3"]
    assert feed.unacknowledged_count == 5


# ---- dialogs -------------------------------------------------------------------------------------

POSITIONS = [
    {"symbol": "BTC/USDT", "side": "long", "qty": D("0.25"), "last": D("65000.00"),
     "unrealized_pnl": D("220")},
    {"symbol": "ETH/USDT", "qty": D("-4.5"), "last": D("3188.75"), "unrealized_pnl": D("-307.58")},
]


def test_close_all_dialog_confirms_through_open_and_signals(qtbot) -> None:
    dlg = CloseAllDialog(POSITIONS, D("-87.58"), 3)
    qtbot.addWidget(dlg)
    dlg.open()
    qtbot.waitExposed(dlg)
    assert dlg.cancel_button.isDefault() and not dlg.close_button.isDefault()
    assert dlg.table.rowCount() == 2
    assert dlg.table.item(1, 1).text() == "SHORT" and dlg.table.item(1, 2).text() == "4.5"
    assert dlg.pnl_label.text() == "▼ −87.58"
    with qtbot.waitSignal(dlg.accepted, timeout=1000), qtbot.waitSignal(dlg.finished, timeout=1000) as fin:
        qtbot.mouseClick(dlg.close_button, Qt.MouseButton.LeftButton)
    assert fin.args == [QDialog.DialogCode.Accepted.value]


def test_close_all_dialog_cancel_and_enter_both_reject(qtbot) -> None:
    for how in ("click", "enter"):
        dlg = CloseAllDialog(POSITIONS, D("10"), 0)
        qtbot.addWidget(dlg)
        dlg.open()
        qtbot.waitExposed(dlg)
        with qtbot.waitSignal(dlg.rejected, timeout=1000), qtbot.assertNotEmitted(dlg.accepted):
            if how == "click":
                qtbot.mouseClick(dlg.cancel_button, Qt.MouseButton.LeftButton)
            else:  # a stray Enter hits the default button: Cancel
                qtbot.keyClick(dlg, Qt.Key.Key_Return)
        assert dlg.result() == QDialog.DialogCode.Rejected.value


def test_resume_dialog_requires_a_reason(qtbot) -> None:
    dlg = ResumeDialog(None)
    qtbot.addWidget(dlg)
    dlg.open()
    qtbot.waitExposed(dlg)
    assert not dlg.ok_button.isEnabled()
    qtbot.keyClicks(dlg.reason_edit, "   ")
    assert not dlg.ok_button.isEnabled()
    with qtbot.assertNotEmitted(dlg.accepted):
        qtbot.keyClick(dlg.reason_edit, Qt.Key.Key_Return)
    assert dlg.isVisible()
    qtbot.keyClicks(dlg.reason_edit, "outage over ")
    assert dlg.ok_button.isEnabled()
    with qtbot.waitSignal(dlg.accepted, timeout=1000):
        qtbot.mouseClick(dlg.ok_button, Qt.MouseButton.LeftButton)
    assert dlg.reason() == "outage over"


def test_resume_dialog_shows_a_refusal_and_will_not_accept(qtbot) -> None:
    dlg = ResumeDialog("Daily loss limit still breached")
    qtbot.addWidget(dlg)
    dlg.open()
    qtbot.waitExposed(dlg)
    qtbot.keyClicks(dlg.reason_edit, "I know better")
    assert dlg.refusal_label.isVisible()
    assert "Daily loss limit still breached" in dlg.refusal_label.text()
    assert not dlg.ok_button.isEnabled()
    with qtbot.assertNotEmitted(dlg.accepted):
        dlg.accept()  # even a programmatic accept is refused
    dlg.set_refusal(None)  # the breaker cleared while the dialog was open
    assert dlg.ok_button.isEnabled() and not dlg.refusal_label.isVisible()


# ---- protection kept, refusals shown (issue 13) ---------------------------------------------------
def test_emergency_button_says_resting_stops_stay_and_pulling_them_is_separate(qtbot) -> None:
    buttons = BigButtons()
    qtbot.addWidget(buttons)
    buttons.show()
    tip = buttons.emergency_button.toolTip()
    assert "stop-loss legs STAY at the venue" in tip and "No confirmation" in tip
    assert "Asks for a separate confirmation" in buttons.pull_stops_button.toolTip()
    with qtbot.assertNotEmitted(buttons.emergencyStop), qtbot.waitSignal(buttons.pullStopsRequested, timeout=1000):
        qtbot.mouseClick(buttons.pull_stops_button, Qt.MouseButton.LeftButton)


def test_pull_stops_dialog_needs_the_tick_and_enter_never_confirms(qtbot) -> None:
    dlg = PullStopsDialog(positions=2, stop_legs=2)
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    assert "2 resting stop-loss legs" in dlg.text_label.text() and "NO protection" in dlg.text_label.text()
    assert dlg.cancel_button.isDefault() and not dlg.confirm_button.isEnabled()
    with qtbot.assertNotEmitted(dlg.accepted):
        dlg.accept()  # not ticked: refused however it is called
        qtbot.keyClick(dlg, Qt.Key.Key_Return)  # Enter hits Cancel
    dlg.show()
    dlg.understood.setChecked(True)
    assert dlg.confirm_button.isEnabled()
    with qtbot.waitSignal(dlg.accepted, timeout=1000):
        qtbot.mouseClick(dlg.confirm_button, Qt.MouseButton.LeftButton)


def test_confirmation_dialogs_are_not_modal_and_carry_their_own_stop(qtbot) -> None:
    for dlg in (CloseAllDialog(POSITIONS, D("1"), 0), ResumeDialog(None)):
        qtbot.addWidget(dlg)
        assert not dlg.isModal()
        assert not dlg.stop_button.isDefault() and not dlg.stop_button.autoDefault()
        with qtbot.waitSignal(dlg.emergencyStop, timeout=1000):
            qtbot.mouseClick(dlg.stop_button, Qt.MouseButton.LeftButton)
        assert dlg.result() == 0  # stopping neither confirms nor cancels the dialog


def test_unprotected_positions_are_counted_in_red(qtbot, dark) -> None:
    buttons = BigButtons()
    qtbot.addWidget(buttons)
    buttons.show()
    assert not buttons.unprotected_label.isVisible()  # nothing open, nothing to say
    buttons.set_unprotected([], 2)
    assert buttons.unprotected_label.text() == "✔ 2 open positions, all protected"
    buttons.set_unprotected(["SOL/USDT", "BTC/USDT"], 3)
    assert buttons.unprotected_count == 2
    assert buttons.unprotected_label.text() == "⚠ 2 UNPROTECTED positions: BTC/USDT, SOL/USDT"
    image = buttons.unprotected_label.grab().toImage()
    reds = sum(
        1 for x in range(0, image.width(), 2) for y in range(0, image.height(), 2)
        if (c := image.pixelColor(x, y)).red() > 180 and c.green() < 120 and c.blue() < 120
    )  # fmt: skip
    assert reds > 10


def test_close_all_refusals_are_shown_per_symbol_with_retry_and_stop(qtbot) -> None:
    buttons = BigButtons()
    qtbot.addWidget(buttons)
    buttons.show()
    buttons.set_progress("close_all", "2 positions to flatten", 1, 2, details={
        "failures": {"ETH/USDT": "venue refused: Account has insufficient balance for requested action."},
        "positions_left": {"ETH/USDT": "0.5"},
    })  # fmt: skip
    assert buttons.progress_result == "busy"
    assert "ETH/USDT: venue refused: Account has insufficient balance" in buttons.failure_label.text()
    # running: the refusals show; Retry waits for the end, Stop only where the console can stop it
    assert not buttons.retry_button.isVisible() and not buttons.stop_trying_button.isVisible()
    buttons.can_stop_running = True
    buttons.set_progress("close_all", "2 positions to flatten", 1, 2, details={"failures": {"ETH/USDT": "x"}})
    assert buttons.stop_trying_button.isVisible() and buttons.stop_trying_button.text() == "Stop trying"
    assert not buttons.retry_button.isVisible()
    left = {"failures": {"ETH/USDT": "would not reduce"}, "positions_left": {"ETH/USDT": "0.5"}}
    buttons.set_progress("close_all", "NOT flat: 1 positions left (ETH/USDT)", 1, 2, True, False, left)
    assert buttons.progress_result == "fail" and "would not reduce" in buttons.failure_label.text()
    assert buttons.retry_button.isVisible()
    with qtbot.waitSignal(buttons.closeAllRetry, timeout=1000):
        qtbot.mouseClick(buttons.retry_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(buttons.closeAllStop, timeout=1000):
        qtbot.mouseClick(buttons.stop_trying_button, Qt.MouseButton.LeftButton)
    buttons.close_all_stopped(1)
    assert not buttons.retry_button.isVisible()
    assert "1 position left, HALTED; their resting stops stay" in buttons.progress_message.text()
    buttons.set_progress("close_all", "flat: 2 positions closed", 2, 2, True, True, {"failures": {}})
    assert not buttons.failure_label.isVisible() and not buttons.retry_button.isVisible()


def test_a_running_operation_with_no_news_says_so(qtbot) -> None:
    buttons = BigButtons()
    qtbot.addWidget(buttons)
    buttons.show()
    buttons.set_progress("close_all", "2 positions to flatten", 1, 2)
    started = buttons._last_news
    buttons.refresh_staleness(now=started + 1)
    assert "no progress" not in buttons.progress_message.text()
    buttons.refresh_staleness(now=started + STALE_AFTER_S + 7)
    assert f"no progress for {int(STALE_AFTER_S + 7)} s" in buttons.progress_message.text()
    buttons.set_progress("close_all", "1 positions to flatten", 1, 2)  # news: the warning goes
    assert "no progress" not in buttons.progress_message.text()


# ---- themes --------------------------------------------------------------------------------------


def test_themes_load_and_unknown_names_are_refused(qapp: QApplication) -> None:
    try:
        assert theme.apply_theme(qapp, "light").name == "light"
        assert "stateBadge" in qapp.styleSheet()
        assert theme.color("red") == QColor(theme.LIGHT.red)
        with pytest.raises(ValueError, match="unknown theme"):
            theme.apply_theme(qapp, "neon")
    finally:
        theme.apply_theme(qapp, "dark")
    assert theme.current_palette() is theme.DARK and theme.DARK.green == theme.GREEN


def test_resources_are_found_under_pyinstaller(monkeypatch, tmp_path: Path) -> None:
    (tmp_path / "resources").mkdir()
    (tmp_path / "resources" / "theme_dark.qss").write_text("/* frozen */", encoding="utf-8")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert theme.resources_dir() == tmp_path / "resources"
    assert theme.load_stylesheet("dark") == "/* frozen */"


def test_demo_renders_a_png(tmp_path: Path) -> None:
    out = tmp_path / "controls.png"
    result = subprocess.run(
        [sys.executable, "-m", "widgets.demo_controls", str(out), "--halted", "--live"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 10_000
