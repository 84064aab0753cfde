"""The shared record table: a QTableView over a sorting proxy over a RecordTableModel.

It takes plain dicts keyed by a field, updates rows in place, lets the operator choose
columns from the header's context menu (the header state is saved by the console) and
offers per-row buttons and a row context menu that subclasses fill in. The trading tables
(`widgets.trading_tables`), the alert feed and the performance view build on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from PySide6.QtCore import (
    QByteArray,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QMenu, QTableView, QVBoxLayout, QWidget

from widgets.table_model import ButtonDelegate, Column, RecordTableModel, SortRole

Record = Mapping[str, Any]
Index = QModelIndex | QPersistentModelIndex


class RecordTable(QWidget):
    """The shared table widget: view, proxy, header menu for columns, row context menu."""

    columnVisibilityChanged = Signal(str, bool)

    def __init__(
        self,
        columns: Iterable[Column],
        key_field: str,
        *,
        sort_column: str | None = None,
        stretch_column: str | None = None,
        descending: bool = False,
        max_rows: int | None = None,
        now: Callable[[], datetime] | None = None,
        proxy: QSortFilterProxyModel | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        kwargs: dict[str, Any] = {"max_rows": max_rows}
        if now is not None:
            kwargs["now"] = now
        self.model = RecordTableModel(columns, key_field, parent=self, **kwargs)
        self.proxy = proxy or QSortFilterProxyModel(self)  # a subclass may filter rows
        if self.proxy.parent() is None:
            self.proxy.setParent(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SortRole)
        self.proxy.setDynamicSortFilter(True)
        self.view = QTableView(self)
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.setAlternatingRowColors(True)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(26)
        self.view.setWordWrap(False)
        header = self.view.horizontalHeader()
        header.setSectionsMovable(True)
        header.setHighlightSections(False)
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._header_menu)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._row_menu)
        self._delegates: list[ButtonDelegate] = []
        for i, col in enumerate(self.model.columns):
            self.view.setColumnHidden(i, not col.default_visible)
            if col.width:
                self.view.setColumnWidth(i, col.width)
            if col.button:
                delegate = ButtonDelegate(self.button_tone(col), self.view)
                delegate.clicked.connect(self._on_button)
                self.view.setItemDelegateForColumn(i, delegate)
                self._delegates.append(delegate)
        if stretch_column is not None:
            header.setSectionResizeMode(self.model.column_of(stretch_column), QHeaderView.ResizeMode.Stretch)
        self._fitted = False
        self.model.rowsInserted.connect(self._fit_once)
        self.model.modelReset.connect(self._fit_once)
        if sort_column is not None:
            order = Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder
            self.view.sortByColumn(self.model.column_of(sort_column), order)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)

    def fit_columns(self) -> None:
        """Size columns to header and contents (once data arrives; the operator may resize after)."""
        self.view.resizeColumnsToContents()
        for i, col in enumerate(self.model.columns):
            if col.width and self.view.columnWidth(i) < col.width:
                self.view.setColumnWidth(i, col.width)

    def _fit_once(self) -> None:
        if not self._fitted and self.model.rowCount() > 0:
            self._fitted = True
            self.fit_columns()

    # ---- data API -----------------------------------------------------------------------------
    def normalise(self, record: Record) -> Record:
        """Subclasses map accepted aliases onto the column keys."""
        return record

    def set_rows(self, records: Iterable[Record]) -> None:
        """Show exactly these rows; rows already shown are updated in place."""
        self.model.replace_all(self.normalise(r) for r in records)

    def upsert(self, record: Record) -> None:
        rec = self.normalise(record)
        self.model.upsert(str(rec[self.model.key_field]), rec)

    def remove(self, key: str) -> bool:
        return self.model.remove(key)

    def clear(self) -> None:
        self.model.clear()

    def row(self, key: str) -> dict[str, Any] | None:
        return self.model.get(key)

    def row_count(self) -> int:
        return self.model.rowCount()

    def keys_in_view_order(self) -> list[str]:
        """Row keys as the operator sees them (sorted, filtered)."""
        return [self._key_of(self.proxy.index(r, 0)) for r in range(self.proxy.rowCount())]

    def cell_text(self, key: str, column: str) -> str:
        row = self.model.row_of(key)
        if row is None:
            raise KeyError(key)
        return str(self.model.index(row, self.model.column_of(column)).data())

    def selected_key(self) -> str | None:
        rows = self.view.selectionModel().selectedRows()
        return self._key_of(rows[0]) if rows else None

    def select_key(self, key: str) -> None:
        row = self.model.row_of(key)
        if row is not None:
            self.view.selectRow(self.proxy.mapFromSource(self.model.index(row, 0)).row())

    def _key_of(self, proxy_index: Index) -> str:
        return self.model.key_at(self.proxy.mapToSource(proxy_index).row())

    # ---- columns ------------------------------------------------------------------------------
    def set_column_visible(self, key: str, visible: bool) -> None:
        col = self.model.column_of(key)
        if self.view.isColumnHidden(col) == (not visible):
            return
        self.view.setColumnHidden(col, not visible)
        self.columnVisibilityChanged.emit(key, visible)

    def is_column_visible(self, key: str) -> bool:
        return not self.view.isColumnHidden(self.model.column_of(key))

    def header_state(self) -> bytes:
        """Column order, widths, visibility and sort, for the console to persist."""
        return bytes(self.view.horizontalHeader().saveState().data())

    def restore_header_state(self, state: bytes) -> bool:
        return self.view.horizontalHeader().restoreState(QByteArray(state))

    def _header_menu(self, pos: QPoint) -> None:
        self.column_menu().popup(self.view.horizontalHeader().mapToGlobal(pos))

    def column_menu(self) -> QMenu:
        menu = QMenu(self)
        visible = [c for c in self.model.columns if self.is_column_visible(c.key)]
        for col in self.model.columns:
            action = menu.addAction(col.title or col.button or col.key)
            action.setCheckable(True)
            shown = self.is_column_visible(col.key)
            action.setChecked(shown)
            action.setEnabled(not (shown and len(visible) == 1))  # never hide the last column
            action.setToolTip(col.tooltip)
            action.toggled.connect(lambda on, k=col.key: self.set_column_visible(k, on))
        return menu

    # ---- actions ------------------------------------------------------------------------------
    def button_tone(self, column: Column) -> str:
        return "accent"

    def row_actions(self, key: str) -> list[tuple[str, Callable[[], None]]]:
        """(label, callback) pairs for the row context menu."""
        return []

    def button_clicked(self, key: str, column: str) -> None:
        """Called when the button in ``column`` of row ``key`` is clicked."""

    def _on_button(self, proxy_index: QModelIndex) -> None:
        self.button_clicked(self._key_of(proxy_index), self.model.columns[proxy_index.column()].key)

    def _row_menu(self, pos: QPoint) -> None:
        index = self.view.indexAt(pos)
        if not index.isValid():
            return
        actions = self.row_actions(self._key_of(index))
        if not actions:
            return
        menu = QMenu(self)
        for label, callback in actions:
            menu.addAction(label).triggered.connect(lambda _=False, cb=callback: cb())
        menu.popup(self.view.viewport().mapToGlobal(pos))
