"""The performance view: trade success, drawdown against the limits, results by symbol, strategy
and signal tag, for a chosen period, with CSV export of the trades and the equity curve.

It is handed a metrics report as a plain dict (the keys of `engine.analytics.metrics.report`, the very
dict `trading-console report --json` prints) plus the period's trades and equity samples for
export; the console computes them, so the view shows the report's figures and nothing else.
Figures are tiles that reflow with the width and scroll in a short dock rather than squash.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QBoxLayout,
    QButtonGroup,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.core.model import ClosedTrade
from widgets import format as fmt
from widgets.export_dir import ensure_export_dir
from widgets.performance_parts import (
    GROUP_COLUMNS,
    TILE_WIDTH,
    FigureTile,
    TileGrid,
    profit_factor_text,
    ratio_pct,
    tone_of,
    write_equity_csv,
    write_trades_csv,
)
from widgets.record_table import RecordTable
from widgets.theme import current_palette

PERIODS: tuple[tuple[str, str], ...] = (("today", "Today"), ("7d", "7 days"), ("30d", "30 days"), ("all", "All"))
GROUPS: tuple[tuple[str, str], ...] = (("symbol", "By symbol"), ("strategy", "By strategy"), ("tag", "By signal tag"))
WIDE_PX = 1100  # from this width the tables sit beside the figures
DEFAULT_LIMITS = {"max_drawdown": 0.15, "daily_loss_limit": 0.05, "warn_at": 0.8}
Report = Mapping[str, Any]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}es" if noun.endswith("s") else f"{n} {noun}s"


def _money(key: str) -> Callable[[Report], tuple[str, str, str]]:
    return lambda r: (fmt.fmt_money(r.get(key), signed=True), "", tone_of(r.get(key)))


def _sharpe(r: Report) -> tuple[str, str, str]:
    value = r.get("sharpe")
    if value is not None:
        return f"{value:,.2f}", "daily returns · ×√365", ""
    have, need = r.get("sharpe_returns"), r.get("sharpe_min_returns")
    if have is not None and need is not None and have >= need:
        return "undefined", "returns do not vary", ""
    return "not enough data", f"{have or 0} of {need or 30} daily returns", ""


def _recover(r: Report) -> tuple[str, str, str]:
    if not r.get("max_drawdown"):
        return "—", "no drawdown", ""
    t = r.get("time_to_recover_s")
    return ("not yet", "below the old peak", "neg") if t is None else (fmt.fmt_duration(t), "back to the peak", "")


# key (of the report), caption, tooltip, what to show: (value, line under it, tone)
_SUCCESS: tuple[tuple[str, str, str, Callable[[Report], tuple[str, str, str]]], ...] = (
    ("trades", "Closed trades", "Round trips closed in the period",
     lambda r: (f"{r.get('trades', 0):,}", f"{r.get('wins', 0)} won · {r.get('losses', 0)} lost · "
                f"{r.get('breakeven', 0)} even", "")),
    ("win_rate", "Win rate", "Winning trades / all trades; a breakeven trade counts as not winning",
     lambda r: (ratio_pct(r.get("win_rate")), "", "")),
    ("profit_factor", "Profit factor", "Gross profit / gross loss; above 1 makes money",
     lambda r: (profit_factor_text(r), "", "")),
    ("expectancy", "Expectancy", "Average P&L per trade, after fees", _money("expectancy")),
    ("avg_win", "Avg win / loss", "Average P&L of the winning trades / of the losing trades",
     lambda r: (f"{fmt.fmt_money(r.get('avg_win') if r.get('wins') else None, signed=True)} / "
                f"{fmt.fmt_money(r.get('avg_loss') if r.get('losses') else None, signed=True)}", "", "")),
    ("longest_win_streak", "Longest streaks", "Longest runs of winning and of losing trades, by close time",
     lambda r: (f"{r.get('longest_win_streak', 0)} / {r.get('longest_loss_streak', 0)}",
                f"{_count(r.get('longest_win_streak', 0), 'win')} / "
                f"{_count(r.get('longest_loss_streak', 0), 'loss')} in a row · "
                f"{_count(r.get('current_loss_streak', 0), 'loss')} now", "")),
    ("total_pnl", "Net P&L", "Sum of the closed trades' P&L after both fees; fees are every fill's, open "
     "positions' entries included",
     lambda r: (fmt.fmt_money(r.get("total_pnl"), signed=True), f"fees {fmt.fmt_money(r.get('total_fees'))}",
                tone_of(r.get("total_pnl")))),
)  # fmt: skip
# key, caption, limit key, tooltip
_LIMITED = (
    ("current_drawdown", "Current drawdown", "max_drawdown", "Below the period's highest equity, now"),
    ("max_drawdown", "Max drawdown", "max_drawdown", "Deepest fall from a peak in the period"),
    ("worst_daily_loss", "Worst day", "daily_loss_limit",
     "Deepest the equity went below a trading day's opening equity (open P&L included), against the daily "
     "loss limit: what the daily-loss breaker measures"),
)  # fmt: skip
_EQUITY: tuple[tuple[str, str, str, Callable[[Report], tuple[str, str, str]]], ...] = (
    ("sharpe", "Sharpe", "Mean / standard deviation of daily returns, risk-free 0, annualised by sqrt(365); "
     "shown from 30 daily returns", _sharpe),
    ("max_intraday_drawdown", "Worst intraday fall", "Deepest fall from a day's running high (its opening or a "
     "later high) within one trading day. Not what the daily-loss breaker measures: see Worst day",
     lambda r: (ratio_pct(r.get("max_intraday_drawdown")), "from a day's high", "")),
    ("time_to_recover_s", "Time to recover", "From the deepest point of the max drawdown back to the peak before it",
     _recover),
    ("total_return", "Return", "Last equity / first equity of the period; the period's last equity and its peak",
     lambda r: (fmt.fmt_pct(None if r.get("total_return") is None else r["total_return"] * 100),
                f"{fmt.fmt_money(r.get('final_equity'))} · peak {fmt.fmt_money(r.get('peak_equity'))}"
                if r.get("final_equity") else "", tone_of(r.get("total_return")))),
)  # fmt: skip


class PerformanceView(QWidget):
    periodChanged = Signal(str)
    exported = Signal(str, str, int)  # "trades" | "equity", path, rows written
    exportFailed = Signal(str, str)  # kind, message

    def __init__(self, parent: QWidget | None = None, period: str = "all") -> None:
        super().__init__(parent)
        self._period = period
        self._report: dict[str, Any] = {}
        self._trades: list[ClosedTrade] = []
        self._equity: tuple[Sequence[int], Sequence[float]] = ((), ())
        self.file_dialog: QFileDialog | None = None
        pal = current_palette()
        self.setStyleSheet(
            'QLabel[role="tile"] { font-size: 14pt; font-weight: bold; }'
            f'QLabel[role="sub"] {{ font-size: 8pt; color: {pal.muted}; }}'
            f"QFrame#figureTile {{ background: {pal.surface}; border: 1px solid {pal.border}; border-radius: 5px; }}"
            f'QPushButton[period="true"]:checked {{ background: {pal.accent}; color: #ffffff;'
            f" border-color: {pal.accent}; font-weight: bold; }}"
        )

        self.period_buttons: dict[str, QPushButton] = {}
        group = QButtonGroup(self)
        top = QHBoxLayout()
        top.setSpacing(2)
        for key, label in PERIODS:
            btn = QPushButton(label, self)
            btn.setCheckable(True)
            btn.setProperty("period", "true")
            btn.setToolTip("Trades closed, and equity recorded, in this period (engine time)")
            btn.setChecked(key == period)
            btn.clicked.connect(lambda _=False, k=key: self.set_period(k))
            group.addButton(btn)
            top.addWidget(btn)
            self.period_buttons[key] = btn
        top.addSpacing(12)
        self.status = QLabel("waiting for data", self)
        self.status.setProperty("role", "info")
        top.addWidget(self.status, 1)
        self.export_trades_button = QPushButton("Export trades…", self)
        self.export_trades_button.setToolTip("Save the period's closed trades as CSV")
        self.export_trades_button.clicked.connect(self.request_export_trades)
        self.export_equity_button = QPushButton("Export equity…", self)
        self.export_equity_button.setToolTip("Save the period's equity curve as CSV")
        self.export_equity_button.clicked.connect(self.request_export_equity)
        top.addWidget(self.export_trades_button)
        top.addWidget(self.export_equity_button)

        self.tiles: dict[str, FigureTile] = {}
        for key, caption, tip, _show in (*_SUCCESS, *_EQUITY):
            self.tiles[key] = FigureTile(caption, tip)
        for key, caption, _lim, tip in _LIMITED:
            self.tiles[key] = FigureTile(caption, tip, with_bar=True)
        # one grid, the money first: in a short dock the first rows are what is seen at a glance
        order = ["total_pnl", *(k for k, *_ in _SUCCESS if k != "total_pnl"), *(k for k, *_ in _LIMITED),
                 *(k for k, *_ in _EQUITY)]  # fmt: skip
        self.tile_grid = TileGrid([self.tiles[k] for k in order])
        figures = QWidget()
        fl = QVBoxLayout(figures)
        fl.setContentsMargins(0, 0, 0, 0)
        fl.addWidget(self.tile_grid)
        fl.addStretch(1)

        self.tabs = QTabWidget()
        self.tabs.setMinimumHeight(150)
        self.group_tables: dict[str, RecordTable] = {}
        for by, title in GROUPS:
            table = RecordTable(GROUP_COLUMNS, "group", sort_column="total_pnl", descending=True, parent=self)
            self.group_tables[by] = table
            self.tabs.addTab(table, title)

        # wide: figures and tables side by side; narrow: tables below; short: the whole scrolls
        content = QWidget()
        self.body = QBoxLayout(QBoxLayout.Direction.TopToBottom, content)
        self.body.setContentsMargins(0, 0, 0, 0)
        self.body.setSpacing(10)
        self.body.addWidget(figures, 0)
        self.body.addWidget(self.tabs, 1)
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addWidget(self.scroll, 1)
        self.set_report({})

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        width = event.size().width() - 30  # margins and a vertical scroll bar
        wide = width >= WIDE_PX
        self.body.setDirection(QBoxLayout.Direction.LeftToRight if wide else QBoxLayout.Direction.TopToBottom)
        figures_width = width - 480 if wide else width  # a wide dock leaves the tables 480 px
        per_row = max(1, int(figures_width // TILE_WIDTH))
        self.tile_grid.reflow(per_row)

    # ---- data in ------------------------------------------------------------------------------
    def period(self) -> str:
        return self._period

    def set_period(self, key: str) -> None:
        """Select a period (a key of PERIODS); the owner recomputes on `periodChanged`."""
        if key not in dict(PERIODS):
            raise ValueError(f"unknown period {key!r}; use one of {', '.join(k for k, _ in PERIODS)}")
        self.period_buttons[key].setChecked(True)
        if key != self._period:
            self._period = key
            self.periodChanged.emit(key)

    def set_report(
        self, report: Report, limits: Mapping[str, float] | None = None, as_of: datetime | None = None
    ) -> None:
        """Show a metrics report dict (engine.analytics.metrics.report keys); limits are fractions of equity."""
        lim = {**DEFAULT_LIMITS, **(limits or {})}
        self._report = r = dict(report)
        for key, _caption, _tip, show in (*_SUCCESS, *_EQUITY):
            self.tiles[key].set(*(show(r) if r else (fmt.EMPTY, "", "")))
        for key, _caption, limit_key, _tip in _LIMITED:
            self.tiles[key].set_limit(r.get(key), lim[limit_key], lim["warn_at"])
        for by, table in self.group_tables.items():
            groups: Mapping[str, Report] = r.get(f"per_{by}") or {}
            table.set_rows({**stats, "group": name} for name, stats in groups.items())
        label = dict(PERIODS)[self._period]
        when = f"  as of {fmt.fmt_time(as_of, with_date=True)} UTC" if as_of else ""
        if r:
            trades = fmt.fmt_count(r["trades"], "trade") if r.get("trades") else "no closed trades yet"
            self.status.setText(f"{label}: {trades}{when}")

    def set_trades(self, trades: Sequence[ClosedTrade]) -> None:
        """The period's closed trades, for the trades CSV."""
        self._trades = list(trades)

    def set_equity(self, epoch_us: Sequence[int], equity: Sequence[float]) -> None:
        """The period's equity samples (UTC epoch microseconds, equity), for the equity CSV."""
        self._equity = (epoch_us, equity)

    # ---- reads (tests, accessibility) ---------------------------------------------------------
    def figures(self) -> dict[str, Any]:
        """The report as shown."""
        return dict(self._report)

    def figure_text(self, key: str) -> str:
        """What a tile says: its value and the line under it."""
        return self.tiles[key].text()

    def group_rows(self, by: str) -> dict[str, dict[str, Any]]:
        table = self.group_tables[by]
        keys = table.model.keys()
        return {k: table.row(k) or {} for k in keys}

    # ---- export ---------------------------------------------------------------------------------
    def export_trades_csv(self, path: str | Path) -> int:
        return write_trades_csv(path, self._trades)

    def export_equity_csv(self, path: str | Path) -> int:
        return write_equity_csv(path, *self._equity)

    def request_export_trades(self) -> None:
        self._ask_path("trades", "Export trades", f"trades_{self._period}.csv", self.export_trades_csv)

    def request_export_equity(self) -> None:
        self._ask_path("equity", "Export equity curve", f"equity_{self._period}.csv", self.export_equity_csv)

    def _ask_path(self, kind: str, title: str, name: str, write: Callable[[str], int]) -> None:
        # open() and a signal, never exec(): a nested loop inside the qasync loop breaks it
        dlg = QFileDialog(self, title, str(ensure_export_dir() / name), "CSV files (*.csv);;All files (*)")
        dlg.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dlg.setDefaultSuffix("csv")
        dlg.fileSelected.connect(lambda path: self._export(kind, path, write))
        self.file_dialog = dlg
        dlg.open()

    def _export(self, kind: str, path: str, write: Callable[[str], int]) -> None:
        try:
            rows = write(path)
        except OSError as exc:
            self.status.setText(f"Export failed: {exc.strerror or exc}")
            self.exportFailed.emit(kind, str(exc))
            return
        self.status.setText(f"Saved {fmt.fmt_count(rows, 'trade' if kind == 'trades' else 'equity sample')} to {path}")
        self.exported.emit(kind, path, rows)
