"""Pieces of the performance view: figure formatting, figure tiles that reflow, the per-group
table columns and the CSV writers. Plain values in, no engine internals."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

from engine.core.model import ClosedTrade
from widgets import format as fmt
from widgets.table_model import Column
from widgets.theme import current_palette, repolish

_EPS = 1e-9
STATE_WORDS = {"ok": "OK", "warn": "WARN", "limit": "LIMIT"}
TILE_WIDTH = 140  # a tile's share of the width when the grid decides how many fit in a row


def profit_factor_text(stats: Mapping[str, Any]) -> str:
    """The ratio, "no losses" when there are winners and no loser (unbounded), "—" without trades."""
    pf = stats.get("profit_factor")
    if pf is None:
        return "no losses" if stats.get("wins") else fmt.EMPTY
    return f"{pf:,.2f}"


def ratio_pct(value: object) -> str:
    """A fraction (0.154) as an unsigned percent ("15.40 %")."""
    f = fmt.to_float(value)
    return fmt.EMPTY if f is None else fmt.fmt_pct(f * 100, signed=False)


def tone_of(value: object) -> str:
    f = fmt.to_float(value)
    return "flat" if not f else ("pos" if f > 0 else "neg")


class FigureTile(QFrame):
    """One figure: a caption, the value in large type, a small line under it, and for a figure
    with a limit a thin bar, so a drawdown is said three ways (number, bar, OK/WARN/LIMIT)."""

    def __init__(self, caption: str, tooltip: str = "", with_bar: bool = False, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("figureTile")
        self.setToolTip(tooltip)
        self.caption = QLabel(caption.upper(), self)
        self.caption.setProperty("role", "caption")
        self.value = QLabel(fmt.EMPTY, self)
        self.value.setProperty("role", "tile")
        self.value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.sub = QLabel("", self)
        self.sub.setProperty("role", "sub")
        box = QVBoxLayout(self)
        box.setContentsMargins(8, 5, 8, 6)
        box.setSpacing(1)
        box.addWidget(self.caption)
        box.addWidget(self.value)
        self.bar: QProgressBar | None = None
        if with_bar:
            self.bar = QProgressBar(self)
            self.bar.setRange(0, 1000)
            self.bar.setTextVisible(False)
            self.bar.setFixedHeight(5)
            box.addWidget(self.bar)
        box.addWidget(self.sub)
        self.state = "ok"
        self._styled = ""

    def set(self, value: str, sub: str = "", tone: str = "") -> None:
        self.value.setText(value)
        self.sub.setText(sub)
        if self.value.property("tone") != tone:
            self.value.setProperty("tone", tone)
            repolish(self.value)

    def text(self) -> str:
        return f"{self.value.text()} {self.sub.text()}".strip()

    def set_limit(self, value: float | None, limit: float, warn_at: float = 0.8) -> None:
        """A fraction against its limit: "4.20 %", bar, "of 15.00 % · OK"."""
        assert self.bar is not None
        if value is None or not math.isfinite(value):
            self.set(fmt.EMPTY)
            self.bar.setValue(0)
            return
        ratio = value / limit if limit > 0 else 0.0
        self.state = "limit" if ratio >= 1 - _EPS else "warn" if ratio >= warn_at - _EPS else "ok"
        self.set(ratio_pct(value), f"of {ratio_pct(limit)} · {STATE_WORDS[self.state]}")
        self.bar.setValue(round(min(1.0, ratio) * 1000))
        pal = current_palette()
        colour = {"ok": pal.green, "warn": pal.amber, "limit": pal.red}[self.state]
        if colour != self._styled:  # restyle only on a change of state (or theme)
            self._styled = colour
            self.bar.setStyleSheet(f"QProgressBar::chunk {{ background: {colour}; border-radius: 2px; }}")
            self.sub.setStyleSheet("" if self.state == "ok" else f"color: {colour}; font-weight: bold;")
        self.setToolTip(f"{self.toolTip().split(chr(10))[0]}\n{ratio:.0%} of the configured limit; "
                        f"amber from {warn_at:.0%}, red at the limit")  # fmt: skip


class TileGrid(QWidget):
    """Tiles in rows that reflow to the width, so a narrow dock stacks them instead of squashing."""

    def __init__(self, tiles: Sequence[QWidget], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tiles = list(tiles)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(6)
        self.columns = 0
        self.reflow(4)

    def reflow(self, columns: int) -> None:
        columns = max(1, min(columns, len(self.tiles)))
        if columns == self.columns:
            return
        self.columns = columns
        for tile in self.tiles:
            self.grid.removeWidget(tile)
        for i, tile in enumerate(self.tiles):
            self.grid.addWidget(tile, i // columns, i % columns)
        for c in range(len(self.tiles)):
            self.grid.setColumnStretch(c, 1 if c < columns else 0)


def _group_name(r: Mapping[str, Any]) -> str:
    return str(r.get("group") or "(none)")


GROUP_COLUMNS = (
    Column("group", "Group", bold=True, value=_group_name, width=110),
    Column("trades", "Trades", "qty", tooltip="Closed positions (round trips)"),
    Column("win_rate", "Win rate", "pct", value=lambda r: (r.get("win_rate") or 0.0) * 100,
           tooltip="Winning trades / all trades (breakeven counts as not winning)"),
    Column("profit_factor", "Profit factor", value=profit_factor_text,
           sort_value=lambda r: math.inf if r.get("profit_factor") is None and r.get("wins") else
           float(r.get("profit_factor") or 0.0),
           align=Qt.AlignmentFlag.AlignRight, tooltip="Gross profit / gross loss"),
    Column("expectancy", "Expectancy", "money", signed=True, tooltip="Average P&L per trade, after fees"),
    Column("avg_win", "Avg win", "money", signed=True, default_visible=False),
    Column("avg_loss", "Avg loss", "money", signed=True, default_visible=False),
    Column("streaks", "Streak W / L", align=Qt.AlignmentFlag.AlignRight,
           value=lambda r: f"{r.get('longest_win_streak', 0)} / {r.get('longest_loss_streak', 0)}",
           tooltip="Longest run of winning / losing trades", default_visible=False),
    Column("total_pnl", "Net P&L", "money", signed=True, bold=True, width=112, tooltip="Sum of P&L after fees"),
)  # fmt: skip

TRADE_CSV_HEADER = [
    "symbol", "side", "qty", "entry_price", "exit_price", "opened_at", "closed_at", "hold_s",
    "pnl", "fees", "strategy", "tag",
]  # fmt: skip
EQUITY_CSV_HEADER = ["timestamp", "equity", "peak", "drawdown"]


def _iso(ts: datetime) -> str:
    return fmt.as_utc(ts).isoformat()


def write_trades_csv(path: str | Path, trades: Sequence[ClosedTrade]) -> int:
    """One row per closed position, money as exact decimals, times as UTC ISO 8601."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(TRADE_CSV_HEADER)
        for t in trades:
            hold = (t.closed_at - t.opened_at).total_seconds()
            out.writerow([t.symbol, str(t.side), t.qty, t.entry_price, t.exit_price, _iso(t.opened_at),
                          _iso(t.closed_at), f"{hold:g}", t.pnl, t.fees, t.strategy, t.tag])  # fmt: skip
    return len(trades)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def write_equity_csv(path: str | Path, epoch_us: Sequence[int], equity: Sequence[float]) -> int:
    """Equity samples with the running peak and the drawdown from it (a fraction, as the report)."""
    peak = -math.inf
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(EQUITY_CSV_HEADER)
        for us, value in zip(epoch_us, equity, strict=True):
            peak = max(peak, value)
            dd = (peak - value) / peak if peak > 0 else 0.0
            stamp = (_EPOCH + timedelta(microseconds=int(us))).isoformat()
            out.writerow([stamp, repr(float(value)), repr(float(peak)), f"{dd:.10g}"])
    return len(equity)
