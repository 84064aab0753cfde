"""A keyed, declarative table model: columns are data, rows are plain dicts updated in place.

Why in place: the bridge flushes latest-per-key snapshots at ~20 Hz. Resetting
the model would drop the operator's selection and scroll position and re-sort
everything; upserting one row emits ``dataChanged`` for that row's changed
cells only, so the view repaints a few cells and the proxy re-sorts one row.

Roles: DisplayRole is formatted text (widgets.format); ``SortRole`` (and
``Qt.UserRole``) give a sort key of one type per column (float for numbers and
times, folded text otherwise) so a C++ QSortFilterProxyModel sorts 9 < 10 < 100;
``RawRole`` gives the stored Python value (Decimal, datetime, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from PySide6.QtCore import QAbstractTableModel, QEvent, QModelIndex, QPersistentModelIndex, QRect, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem, QWidget

from widgets import format as fmt
from widgets import theme

ColumnKind = Literal["text", "money", "qty", "price", "pct", "time", "age", "side"]
NUMERIC_KINDS = frozenset({"money", "qty", "price", "pct"})

USER_ROLE = int(Qt.ItemDataRole.UserRole)
SortRole = USER_ROLE + 1
RawRole = USER_ROLE + 2

_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_EDIT = int(Qt.ItemDataRole.EditRole)
_FOREGROUND = int(Qt.ItemDataRole.ForegroundRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_ALIGN = int(Qt.ItemDataRole.TextAlignmentRole)
_FONT = int(Qt.ItemDataRole.FontRole)
_NEG_INF = float("-inf")
_VALUE_ROLES = frozenset({_DISPLAY, _EDIT, _FOREGROUND, _TOOLTIP, SortRole, USER_ROLE, RawRole})
_POSITIVE_SIDES = frozenset({"buy", "long"})
_NEGATIVE_SIDES = frozenset({"sell", "short"})

Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True, slots=True)
class Column:
    """One column as data: what to show, how to format it, how to sort and colour it.

    ``signed`` marks P&L-like figures: explicit +/− sign and green/red text.
    ``value`` derives the cell from the whole record (instead of ``record[key]``).
    ``colour`` names a palette colour ("green", "amber", "red", "muted", ...) per record.
    ``button`` makes an action column: the cell shows that label when the value is truthy.
    ``sort_value`` overrides the sort key (a level shown as "⚠ WARNING" sorts by severity).
    """

    key: str
    title: str
    kind: ColumnKind = "text"
    align: Qt.AlignmentFlag | None = None
    tooltip: str = ""
    default_visible: bool = True
    signed: bool = False
    width: int | None = None
    bold: bool = False
    value: Callable[[Mapping[str, Any]], object] | None = None
    colour: Callable[[Mapping[str, Any]], str | None] | None = None
    button: str = ""
    sort_value: Callable[[Mapping[str, Any]], float | str] | None = None

    @property
    def alignment(self) -> Qt.AlignmentFlag:
        if self.align is not None:
            return self.align | Qt.AlignmentFlag.AlignVCenter
        if self.button:
            return Qt.AlignmentFlag.AlignCenter
        horizontal = (
            Qt.AlignmentFlag.AlignRight
            if self.kind in NUMERIC_KINDS or self.kind == "age"
            else Qt.AlignmentFlag.AlignLeft
        )
        return horizontal | Qt.AlignmentFlag.AlignVCenter


def _utc_now() -> datetime:
    return datetime.now(UTC)


class RecordTableModel(QAbstractTableModel):
    """Rows of plain dicts keyed by a string; `upsert` merges a partial record into its row."""

    def __init__(
        self,
        columns: Iterable[Column],
        key_field: str,
        *,
        max_rows: int | None = None,
        now: Callable[[], datetime] = _utc_now,
        parent: Any = None,
    ) -> None:
        super().__init__(parent)
        self.columns: tuple[Column, ...] = tuple(columns)
        self.key_field = key_field
        self.max_rows = max_rows
        self.now = now
        self._col_of = {c.key: i for i, c in enumerate(self.columns)}
        self._alignments = [c.alignment for c in self.columns]
        self._derived = [i for i, c in enumerate(self.columns) if c.value is not None]
        self._age_cols = [i for i, c in enumerate(self.columns) if c.kind == "age"]
        self._keys: list[str] = []
        self._records: list[dict[str, Any]] = []
        # sort keys per row, computed on demand: the proxy asks for them ~2·log2(n) times per upsert
        self._sort_cache: list[dict[int, float | str]] = []
        self._row_of: dict[str, int] = {}
        self._colours: dict[tuple[str, str], QColor] = {}
        self._bold = QFont()
        self._bold.setBold(True)
        # optional per-row override of the text colour (greyed acknowledged alerts, dead orders)
        self.row_colour: Callable[[Mapping[str, Any]], str | None] | None = None

    # ---- Qt model interface -------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._records)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = _DISPLAY) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.columns):
            return None
        col = self.columns[section]
        if role == _DISPLAY:
            return col.title
        if role == _TOOLTIP:
            return col.tooltip or col.title
        if role == _ALIGN:
            return self._alignments[section]
        return None

    def data(self, index: Index, role: int = _DISPLAY) -> Any:
        # hot path (every visible cell asks ~7 roles per paint): cheap roles first, no value lookup
        if role not in _VALUE_ROLES:
            if role == _ALIGN:
                return self._alignments[index.column()]
            if role == _FONT:
                return self._bold if self.columns[index.column()].bold else None
            return None
        row = index.row()
        if row < 0 or row >= len(self._records):
            return None
        col = self.columns[index.column()]
        record = self._records[row]
        value = record.get(col.key) if col.value is None else col.value(record)
        if role in (_DISPLAY, _EDIT):
            return self.display_text(col, value)
        if role == _FOREGROUND:
            return self._foreground(col, value, record)
        if role in (SortRole, USER_ROLE):
            cache = self._sort_cache[row]
            c = index.column()
            key = cache.get(c)
            if key is None:
                key = self.sort_key(col, value) if col.sort_value is None else col.sort_value(record)
                cache[c] = key
            return key
        if role == RawRole:
            return value
        return self._tooltip(col, value)

    # ---- formatting ---------------------------------------------------------------------------
    def display_text(self, col: Column, value: object) -> str:
        kind = col.kind
        if col.button:
            return col.button if value else ""
        if kind == "text":
            return "" if value is None else str(value)
        if kind == "money":
            return fmt.fmt_money(value, signed=col.signed)
        if kind == "price":
            return fmt.fmt_price(value)
        if kind == "qty":
            return fmt.fmt_qty(value, signed=col.signed)
        if kind == "pct":
            return fmt.fmt_pct(value, signed=col.signed)
        if kind == "time":
            return fmt.fmt_time(value)
        if kind == "age":
            return fmt.fmt_duration(fmt.age_seconds(value, self.now()))
        if kind == "side":
            return "" if value is None else str(value).upper()
        return str(value)

    def sort_key(self, col: Column, value: object) -> float | str:
        kind = col.kind
        if kind in NUMERIC_KINDS:
            f = fmt.to_float(value)
            return _NEG_INF if f is None else f
        if kind == "time":
            if isinstance(value, datetime):
                return fmt.as_utc(value).timestamp()
            f = fmt.to_float(value)
            return _NEG_INF if f is None else f
        if kind == "age":
            if isinstance(value, datetime):  # older start = larger age, without needing "now"
                return -fmt.as_utc(value).timestamp()
            f = fmt.to_float(value)
            return _NEG_INF if f is None else f
        return "" if value is None else str(value).casefold()

    def _colour(self, name: str) -> QColor:
        pal = theme.current_palette()
        key = (pal.name, name)
        c = self._colours.get(key)
        if c is None:
            c = self._colours[key] = QColor(getattr(pal, name))
        return c

    def _foreground(self, col: Column, value: object, record: Mapping[str, Any]) -> QColor | None:
        if self.row_colour is not None:
            name = self.row_colour(record)
            if name:
                return self._colour(name)
        if col.colour is not None:
            name = col.colour(record)
            return self._colour(name) if name else None
        if col.signed:
            d = fmt.to_decimal(value)
            if d is None or d == 0:
                return None
            return self._colour("green" if d > 0 else "red")
        if col.kind == "side" and value is not None:
            s = str(value).lower()
            if s in _POSITIVE_SIDES:
                return self._colour("green")
            if s in _NEGATIVE_SIDES:
                return self._colour("red")
        return None

    def _tooltip(self, col: Column, value: object) -> str:
        if col.button:
            return col.tooltip
        if col.kind == "time" or (col.kind == "age" and isinstance(value, datetime)):
            exact = fmt.fmt_timestamp_full(value)
        else:  # the exact stored value: full Decimal precision, untruncated text
            exact = "" if value is None else str(value)
        parts = [p for p in (col.tooltip, f"{col.title}: {exact}" if exact else "") if p]
        return "\n".join(parts)

    # ---- row access ---------------------------------------------------------------------------
    def get(self, key: str) -> dict[str, Any] | None:
        """A copy of the stored record, or None."""
        row = self._row_of.get(key)
        return None if row is None else dict(self._records[row])

    def keys(self) -> list[str]:
        return list(self._keys)

    def key_at(self, row: int) -> str:
        return self._keys[row]

    def record_at(self, row: int) -> Mapping[str, Any]:
        """The live record of a source row, without copying (read it, never mutate it)."""
        return self._records[row]

    def records(self) -> Iterator[Mapping[str, Any]]:
        return iter(self._records)

    def row_of(self, key: str) -> int | None:
        return self._row_of.get(key)

    def column_of(self, key: str) -> int:
        return self._col_of[key]

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, key: object) -> bool:
        return key in self._row_of

    # ---- mutation -----------------------------------------------------------------------------
    def upsert(self, key: str, record: Mapping[str, Any]) -> bool:
        """Merge ``record`` into row ``key`` (appending it when new). Returns True if a row was added."""
        row = self._row_of.get(key)
        if row is None:
            self._insert([(key, record)])
            return True
        current = self._records[row]
        changed = False
        first = last = -1
        for k, v in record.items():
            old = current.get(k, _MISSING)
            # same type and equal: nothing to repaint (Decimal 1.0 vs 1.00 display differently)
            if old is v or (type(old) is type(v) and old == v):
                continue
            changed = True
            current[k] = v
            c = self._col_of.get(k)
            if c is not None:
                first = c if first < 0 or c < first else first
                last = max(c, last)
        if not changed:
            return False
        self._sort_cache[row] = {}
        if first < 0 or self.row_colour is not None:
            # a field outside the columns (or the row colour) may change how the whole row looks
            first, last = 0, len(self.columns) - 1
        elif self._derived:  # derived cells may depend on any field
            first = min(first, *self._derived)
            last = max(last, *self._derived)
        self.dataChanged.emit(self.index(row, first), self.index(row, last))
        return False

    def upsert_many(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Upsert records keyed by ``key_field``; new rows are inserted in one batch."""
        new: list[tuple[str, Mapping[str, Any]]] = []
        for rec in records:
            key = str(rec[self.key_field])
            if key in self._row_of:
                self.upsert(key, rec)
            else:
                new.append((key, rec))
        if new:
            self._insert(new)

    def _insert(self, items: list[tuple[str, Mapping[str, Any]]]) -> None:
        dedup: dict[str, dict[str, Any]] = {}
        for key, rec in items:
            dedup.setdefault(key, {}).update(rec)
        start = len(self._records)
        self.beginInsertRows(QModelIndex(), start, start + len(dedup) - 1)
        for key, rec in dedup.items():
            rec.setdefault(self.key_field, key)
            self._row_of[key] = len(self._records)
            self._keys.append(key)
            self._records.append(rec)
            self._sort_cache.append({})
        self.endInsertRows()
        if self.max_rows is not None and len(self._records) > self.max_rows:
            self._remove_rows(0, len(self._records) - self.max_rows)

    def remove(self, key: str) -> bool:
        row = self._row_of.get(key)
        if row is None:
            return False
        self._remove_rows(row, 1)
        return True

    def _remove_rows(self, row: int, count: int) -> None:
        self.beginRemoveRows(QModelIndex(), row, row + count - 1)
        for key in self._keys[row : row + count]:
            del self._row_of[key]
        del self._keys[row : row + count]
        del self._records[row : row + count]
        del self._sort_cache[row : row + count]
        for i in range(row, len(self._keys)):
            self._row_of[self._keys[i]] = i
        self.endRemoveRows()

    def replace_all(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Make the table hold exactly ``records``: rows present stay in place (selection survives)."""
        incoming: dict[str, Mapping[str, Any]] = {str(r[self.key_field]): r for r in records}
        if not self._records or not incoming:
            self.beginResetModel()
            self._keys, self._records, self._row_of = [], [], {}
            for key, rec in incoming.items():
                self._row_of[key] = len(self._keys)
                self._keys.append(key)
                self._records.append({self.key_field: key, **rec})
            self._sort_cache = [{} for _ in self._records]
            self.endResetModel()
            return
        gone = [k for k in self._keys if k not in incoming]
        for key in gone:
            self.remove(key)
        for key, rec in incoming.items():
            row = self._row_of.get(key)
            if row is not None:
                # a snapshot replaces the whole record: fields it lacks become None
                stale = {k: None for k in self._records[row] if k not in rec and k != self.key_field}
                self.upsert(key, {**stale, **rec})
        self.upsert_many(rec for key, rec in incoming.items() if key not in self._row_of)

    def clear(self) -> None:
        self.beginResetModel()
        self._keys, self._records, self._row_of, self._sort_cache = [], [], {}, []
        self.endResetModel()

    def refresh_ages(self) -> None:
        """Age cells depend on the clock, not on data: repaint them (call from a 1 s timer)."""
        if self._age_cols and self._records:
            top = self.index(0, min(self._age_cols))
            bottom = self.index(len(self._records) - 1, max(self._age_cols))
            self.dataChanged.emit(top, bottom, [_DISPLAY, SortRole, _TOOLTIP])


_MISSING = object()


class ButtonDelegate(QStyledItemDelegate):
    """Paints a cell's text as a button and reports clicks; empty text means no button."""

    clicked = Signal(QModelIndex)

    def __init__(self, tone: str = "accent", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tone = tone

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        text = index.data()
        if not text:
            super().paint(painter, option, index)
            return
        pal = theme.current_palette()
        rect: QRect = option.rect.adjusted(4, 3, -4, -3)  # type: ignore[attr-defined]
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(getattr(pal, self.tone)), 1.5))
        painter.setBrush(QColor(pal.alt_surface))
        painter.drawRoundedRect(rect, 4, 4)
        painter.setPen(QColor(getattr(pal, self.tone)))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(text))
        painter.restore()

    def editorEvent(self, event: QEvent, model: Any, option: QStyleOptionViewItem, index: Index) -> bool:
        if (
            event.type() == QEvent.Type.MouseButtonRelease
            and isinstance(event, QMouseEvent)
            and event.button() == Qt.MouseButton.LeftButton
            and index.data()
            and option.rect.contains(event.position().toPoint())  # type: ignore[attr-defined]
        ):
            self.clicked.emit(QModelIndex(index))
            return True
        return super().editorEvent(event, model, option, index)
