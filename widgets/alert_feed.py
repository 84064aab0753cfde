"""The alert feed: newest first, levels shown by colour AND a tag, acknowledge, filter.

An alert's level reads as text ("⚠ WARNING") and its acknowledgement as a
status column ("NEW" / "ACK 14:03:10"), so greying acknowledged rows is only an
extra cue. The feed is bounded (oldest dropped first) so a storm of alerts
cannot grow memory without limit.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from widgets import format as fmt
from widgets import theme
from widgets.elided_label import ElidedLabel
from widgets.record_table import RecordTable
from widgets.table_model import Column, RecordTableModel

LEVELS: dict[str, int] = {"INFO": 10, "WARNING": 20, "CRITICAL": 30, "EMERGENCY": 40}
LEVEL_TAGS: dict[int, str] = {10: "ℹ INFO", 20: "⚠ WARNING", 30: "✖ CRITICAL", 40: "‼ EMERGENCY"}
LEVEL_COLOURS: dict[int, str] = {10: "accent", 20: "amber", 30: "red", 40: "red"}
FILTERS: tuple[tuple[str, int], ...] = (
    ("All levels", 0),
    ("Warning and above", 20),
    ("Critical and above", 30),
    ("Emergency only", 40),
)


def level_value(level: object) -> int:
    """AlertLevel, its int value or its name (any case) -> 10/20/30/40."""
    if isinstance(level, enum.Enum):
        level = level.value if isinstance(level.value, int) else level.name
    if isinstance(level, int):
        return level
    name = str(level).strip().upper()
    if name not in LEVELS:
        raise ValueError(f"unknown alert level {level!r}")
    return LEVELS[name]


def _status_text(r: dict[str, Any]) -> str:
    if not r.get("acknowledged"):
        return "NEW"
    at = r.get("acknowledged_at")
    return f"ACK {fmt.fmt_time(at)}" if isinstance(at, datetime) else "ACK"


COLUMNS = (
    Column("ts", "Time", "time", tooltip="When the alert was raised (UTC)", width=80),
    Column("level", "Level", value=lambda r: LEVEL_TAGS.get(r["level"], str(r["level"])), bold=True,
           colour=lambda r: LEVEL_COLOURS.get(r["level"]), width=120, sort_value=lambda r: float(r["level"]),
           tooltip="INFO, WARNING, CRITICAL, EMERGENCY"),
    Column("status", "Status", value=_status_text, width=100,
           tooltip="NEW until acknowledged by the operator"),
    Column("message", "Message", tooltip="What happened"),
    Column("code", "Code", default_visible=False, tooltip="Machine-readable alert code"),
    Column("seq", "#", "qty", default_visible=False, tooltip="Arrival order"),
    Column("ack", "", button="Acknowledge", value=lambda r: not r.get("acknowledged"), width=110,
           tooltip="Mark this alert as seen"),
)


class AlertFilterProxy(QSortFilterProxyModel):
    """Minimum level, a case-insensitive text match on message/code, and unacknowledged-only."""

    def __init__(self) -> None:
        super().__init__()
        self.min_level = 0
        self.text = ""
        self.unacknowledged_only = False

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        model = self.sourceModel()
        if not isinstance(model, RecordTableModel):
            return True
        rec = model.record_at(source_row)
        if rec.get("level", 0) < self.min_level:
            return False
        if self.unacknowledged_only and rec.get("acknowledged"):
            return False
        if self.text:
            haystack = f"{rec.get('message', '')} {rec.get('code', '')}".casefold()
            return self.text in haystack
        return True

    def configure(self, **settings: object) -> None:
        """Change filter settings (min_level, text, unacknowledged_only) and re-filter the rows."""
        if hasattr(self, "endFilterChange"):  # Qt >= 6.10; invalidateRowsFilter is deprecated there
            self.beginFilterChange()
            self._apply(settings)
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self._apply(settings)
            self.invalidateRowsFilter()

    def _apply(self, settings: dict[str, object]) -> None:
        for name, value in settings.items():
            if not hasattr(self, name):
                raise AttributeError(name)
            setattr(self, name, value)


class _AlertTable(RecordTable):
    def __init__(self, feed: AlertFeed, proxy: AlertFilterProxy, max_alerts: int) -> None:
        super().__init__(COLUMNS, "alert_id", sort_column="seq", descending=True, max_rows=max_alerts,
                         stretch_column="message",
                         proxy=proxy, parent=feed)
        self._feed = feed

    def button_clicked(self, key: str, column: str) -> None:
        self._feed.acknowledge(key)

    def row_actions(self, key: str) -> list[tuple[str, Callable[[], None]]]:
        return [("Acknowledge", lambda: self._feed.acknowledge(key))]


class AlertFeed(QWidget):
    """Alerts newest first. ``acknowledged(alert_id)`` fires when the operator acknowledges one."""

    acknowledged = Signal(str)
    unacknowledgedCountChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None, *, max_alerts: int = 2000) -> None:
        super().__init__(parent)
        self.max_alerts = max_alerts
        self._seq = itertools.count(1)
        self._unack = 0
        self._filter = AlertFilterProxy()
        self.table = _AlertTable(self, self._filter, max_alerts)
        self.model = self.table.model
        self.model.row_colour = lambda r: "muted" if r.get("acknowledged") else None

        self.level_combo = QComboBox()
        for label, minimum in FILTERS:
            self.level_combo.addItem(label, minimum)
        self.level_combo.setToolTip("Show only alerts at or above this level")
        self.level_combo.currentIndexChanged.connect(
            lambda _i: self.set_level_filter(int(self.level_combo.currentData())))
        self.text_filter = QLineEdit()
        self.text_filter.setPlaceholderText("Filter messages…")
        self.text_filter.setClearButtonEnabled(True)
        self.text_filter.setMinimumWidth(80)  # the filter gives way first on a narrow dock, never the buttons
        self.text_filter.setToolTip("Show only alerts whose message or code contains this text")
        self.text_filter.textChanged.connect(self.set_text_filter)
        self.unack_only = QCheckBox("Unacknowledged only")
        self.unack_only.toggled.connect(self.set_unacknowledged_only)
        self.count_label = ElidedLabel(min_chars=4)
        self.count_label.setObjectName("unackCount")
        self.count_label.setToolTip("Alerts not yet acknowledged")
        self.ack_selected_button = QPushButton("Acknowledge")
        self.ack_selected_button.setToolTip("Acknowledge the selected alerts")
        self.ack_selected_button.clicked.connect(self._ack_selected)
        self.ack_all_button = QPushButton("Acknowledge all")
        self.ack_all_button.setToolTip("Acknowledge every alert, including those hidden by the filter")
        self.ack_all_button.clicked.connect(self.acknowledge_all)

        for button in (self.ack_selected_button, self.ack_all_button):
            button.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Fixed)  # never cut
        bar = QHBoxLayout()
        bar.addWidget(self.level_combo)
        bar.addWidget(self.text_filter, 1)
        bar.addWidget(self.unack_only)
        bar.addWidget(self.count_label)
        bar.addWidget(self.ack_selected_button)
        bar.addWidget(self.ack_all_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.table)
        self._update_count(force=True)

    # ---- data ---------------------------------------------------------------------------------
    def add_alert(
        self,
        alert_id: str,
        level: object,
        message: str,
        ts: datetime | None = None,
        *,
        code: str = "",
        acknowledged: bool = False,
    ) -> None:
        """Add (or update, when the id is known) an alert; ``ts`` defaults to now (UTC)."""
        rec: dict[str, Any] = {
            "alert_id": alert_id, "level": level_value(level), "message": message,
            "ts": ts or datetime.now(UTC), "code": code, "acknowledged": acknowledged,
        }
        if alert_id not in self.model:
            rec["seq"] = next(self._seq)
        self.model.upsert(alert_id, rec)
        self._update_count()

    def alert(self, alert_id: str) -> dict[str, Any] | None:
        return self.model.get(alert_id)

    def acknowledge(self, alert_id: str, *, notify: bool = True) -> bool:
        """Mark one alert seen; emits ``acknowledged`` unless ``notify`` is False (syncing from storage)."""
        done = self._mark([alert_id])
        if notify and done:
            self.acknowledged.emit(alert_id)
        return bool(done)

    def acknowledge_all(self, *, notify: bool = True) -> int:
        """Acknowledge every alert, including those hidden by the filters; returns how many."""
        done = self._mark(self.model.keys())
        if notify:
            for alert_id in done:
                self.acknowledged.emit(alert_id)
        return len(done)

    def _mark(self, alert_ids: list[str]) -> list[str]:
        now = datetime.now(UTC)
        done = []
        for alert_id in alert_ids:
            row = self.model.row_of(alert_id)
            if row is not None and not self.model.record_at(row).get("acknowledged"):
                self.model.upsert(alert_id, {"acknowledged": True, "acknowledged_at": now})
                done.append(alert_id)
        if done:
            if self._filter.unacknowledged_only:
                self._filter.configure()
            self._update_count()
        return done

    def clear(self) -> None:
        self.model.clear()
        self._update_count()

    def _ack_selected(self) -> None:
        key = self.table.selected_key()
        if key is not None:
            self.acknowledge(key)

    # ---- filters ------------------------------------------------------------------------------
    def set_level_filter(self, min_level: object) -> None:
        """Show alerts at or above ``min_level`` (0 or None: all)."""
        value = 0 if min_level in (None, 0) else level_value(min_level)
        self._filter.configure(min_level=value)
        idx = self.level_combo.findData(value)
        if idx >= 0 and idx != self.level_combo.currentIndex():
            self.level_combo.setCurrentIndex(idx)

    def set_text_filter(self, text: str) -> None:
        self._filter.configure(text=text.strip().casefold())
        if self.text_filter.text() != text:
            self.text_filter.setText(text)

    def set_unacknowledged_only(self, on: bool) -> None:
        self._filter.configure(unacknowledged_only=on)
        if self.unack_only.isChecked() != on:
            self.unack_only.setChecked(on)

    def visible_alert_ids(self) -> list[str]:
        """Ids in display order (newest first), after filtering."""
        return self.table.keys_in_view_order()

    # ---- count --------------------------------------------------------------------------------
    @property
    def unacknowledged_count(self) -> int:
        return self._unack

    def _update_count(self, force: bool = False) -> None:
        count = sum(1 for r in self.model.records() if not r.get("acknowledged"))
        if count == self._unack and not force:
            return
        self._unack = count
        self.count_label.setText(f"{fmt.fmt_count(count, 'alert')} unacknowledged" if count else "All acknowledged")
        self.count_label.setProperty("tone", "alert" if count else "calm")
        theme.repolish(self.count_label)
        self.ack_all_button.setEnabled(count > 0)
        self.unacknowledgedCountChanged.emit(count)
