"""Last-price chart for the selected symbol with fills and stop / take-profit / entry levels.

Prices for every symbol are buffered (bounded) as they arrive, so switching the
selected symbol shows its recent history at once. Redraws are throttled like the
equity chart: many ticks a second cost at most ~10 repaints.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from widgets.equity_chart import REDRAW_MS, GroupedAxis, to_epoch
from widgets.format import fmt_instrument_price, fmt_instrument_qty
from widgets.theme import current_palette


class _PriceBuffer:
    """The last `cap` points, contiguous: arrays of 2*cap, shifted back once full (amortised O(1))."""

    def __init__(self, cap: int) -> None:
        self.cap = max(2, cap)
        self.x = np.empty(2 * self.cap)
        self.y = np.empty(2 * self.cap)
        self.n = 0

    def append(self, x: float, y: float) -> bool:
        if self.n and x < self.x[self.n - 1]:
            return False  # out of order; a time axis must stay monotonic
        if self.n == len(self.x):
            # New arrays, not an in-place shift: the plot may still hold views of the old ones.
            x_old, y_old = self.x, self.y
            self.x, self.y = np.empty(2 * self.cap), np.empty(2 * self.cap)
            self.x[: self.cap], self.y[: self.cap] = x_old[-self.cap :], y_old[-self.cap :]
            self.n = self.cap
        self.x[self.n] = x
        self.y[self.n] = y
        self.n += 1
        return True

    def views(self) -> tuple[np.ndarray, np.ndarray]:
        start = max(0, self.n - self.cap)
        return self.x[start : self.n], self.y[start : self.n]


# protection states whose stop level is real, and how the line says so
STOP_DRAWN = {"venue": " (at venue)", "watched": " (watched)"}


@dataclass(frozen=True, slots=True)
class _Fill:
    x: float
    side: str
    price: float
    qty: float


@dataclass(frozen=True, slots=True)
class Levels:
    stop: float | None = None
    take_profit: float | None = None
    entry: float | None = None
    stop_status: str = ""  # "venue" (a stop order rests there) or "watched" (the engine exits at market)


class PriceChart(QWidget):
    def __init__(
        self, parent: QWidget | None = None, max_points: int = 20_000, max_fills: int = 2_000
    ) -> None:
        super().__init__(parent)
        self._max_points = max_points
        self._max_fills = max_fills
        self._prices: dict[str, _PriceBuffer] = {}
        self._fills: dict[str, deque[_Fill]] = {}
        self._levels: dict[str, Levels] = {}
        self._symbol: str | None = None

        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(REDRAW_MS)
        self._redraw_timer.timeout.connect(self.flush)

        self._title = QLabel(self)
        font = QFont(self._title.font())
        font.setPointSizeF(font.pointSizeF() * 1.25)
        self._title.setFont(font)
        self._title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self._canvas = pg.GraphicsLayoutWidget(self)
        self.plot = self._canvas.addPlot(
            axisItems={
                "bottom": pg.DateAxisItem(orientation="bottom", utcOffset=0),
                "right": GroupedAxis("right"),
            }
        )
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setMenuEnabled(False)
        self.plot.showAxis("right")  # price on the right, as on most trading screens
        self.plot.hideAxis("left")
        self.plot.setLabel("bottom", "time (UTC)")

        self.price_item = self.plot.plot()
        self.price_item.setDownsampling(auto=True, method="peak")
        self.price_item.setClipToView(True)

        def tip(x: float, y: float, data: object) -> str:
            return str(data)

        # Shape carries the side (▲ buy, ▼ sell) as well as colour.
        self.buy_scatter = pg.ScatterPlotItem(symbol="t1", size=15, hoverable=True, tip=tip)
        self.sell_scatter = pg.ScatterPlotItem(symbol="t", size=15, hoverable=True, tip=tip)
        # Invisible points at the level prices so auto-range keeps a stop in view, never off-screen.
        self._level_anchor = pg.ScatterPlotItem(size=1, pen=None, brush=pg.mkBrush(0, 0, 0, 0))
        for item in (self.buy_scatter, self.sell_scatter, self._level_anchor):
            self.plot.addItem(item)

        self.stop_line = self._level_line(0.9)
        self.take_profit_line = self._level_line(0.9)
        self.entry_line = self._level_line(0.1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self._title)
        layout.addWidget(self._canvas, 1)
        self._apply_theme()
        self._update_title()

    def _level_line(self, label_pos: float) -> pg.InfiniteLine:
        line = pg.InfiniteLine(
            angle=0,
            movable=False,
            label="",
            # the label sits just above the line, not across it
            labelOpts={"position": label_pos, "anchors": [(0.5, 1.0), (0.5, 1.0)]},
        )
        line.setVisible(False)
        self.plot.addItem(line, ignoreBounds=True)
        return line

    # ---- feeding -------------------------------------------------------------------------------

    def set_symbol(self, symbol: str) -> None:
        if symbol == self._symbol:
            return
        self._symbol = symbol
        self.plot.enableAutoRange()  # a new symbol's prices live on another scale
        self.flush()

    def symbol(self) -> str | None:
        return self._symbol

    def append_price(self, symbol: str, ts: datetime, price: float) -> None:
        buf = self._prices.get(symbol)
        if buf is None:
            buf = self._prices[symbol] = _PriceBuffer(self._max_points)
        if buf.append(to_epoch(ts), float(price)) and symbol == self._symbol:
            self._schedule()

    def add_fill(self, symbol: str, ts: datetime, side: str, price: float, qty: float) -> None:
        side = side.lower()
        if side not in ("buy", "sell"):
            raise ValueError(f"side must be 'buy' or 'sell', not {side!r}")
        fills = self._fills.setdefault(symbol, deque(maxlen=self._max_fills))
        fills.append(_Fill(to_epoch(ts), side, float(price), float(qty)))
        if symbol == self._symbol:
            self._schedule()

    def set_levels(
        self, symbol: str, stop: float | None, take_profit: float | None, entry: float | None,
        *, stop_status: str | None = None,
    ) -> None:  # fmt: skip
        """Levels to draw. With ``stop_status``, the SL line is drawn only if the stop really guards the
        position ("venue": resting there, "watched": the engine exits at market); a planned stop that
        nothing holds is not drawn, so the chart never shows protection that is not there."""

        def f(v: float | None) -> float | None:
            return None if v is None else float(v)

        status = "" if stop_status is None else str(getattr(stop_status, "value", stop_status)).lower()
        if stop_status is not None and status not in STOP_DRAWN:
            stop = None
        self._levels[symbol] = Levels(f(stop), f(take_profit), f(entry), status if stop is not None else "")
        if symbol == self._symbol:
            self._schedule()

    def levels(self, symbol: str | None = None) -> Levels:
        return self._levels.get(symbol or self._symbol or "", Levels())

    def price_data(self, symbol: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the buffered times (epoch s) and prices for a symbol (default: the selected one)."""
        buf = self._prices.get(symbol or self._symbol or "")
        if buf is None:
            return np.empty(0), np.empty(0)
        x, y = buf.views()
        return x.copy(), y.copy()

    # ---- drawing -------------------------------------------------------------------------------

    def _schedule(self) -> None:
        if not self._redraw_timer.isActive():
            self._redraw_timer.start()

    def flush(self) -> None:
        """Redraw now (normally called by the throttle timer)."""
        self._redraw_timer.stop()
        symbol = self._symbol or ""
        buf = self._prices.get(symbol)
        x, y = buf.views() if buf is not None else (np.empty(0), np.empty(0))
        self.price_item.setData(x, y)
        self._draw_fills(self._fills.get(symbol, ()))
        self._draw_levels(self._levels.get(symbol, Levels()), float(x[-1]) if len(x) else None)
        self._update_title()

    def _draw_fills(self, fills: deque[_Fill] | tuple[()]) -> None:
        for side, scatter in (("buy", self.buy_scatter), ("sell", self.sell_scatter)):
            mine = [f for f in fills if f.side == side]
            scatter.setData(
                x=[f.x for f in mine],
                y=[f.price for f in mine],
                data=[self._fill_text(f, self._symbol) for f in mine],
            )

    @staticmethod
    def _fill_text(f: _Fill, symbol: str | None) -> str:
        when = datetime.fromtimestamp(f.x, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"{f.side.upper()} {fmt_instrument_qty(f.qty, symbol)} @ {fmt_instrument_price(f.price, symbol)}\n{when}"

    def _draw_levels(self, lv: Levels, last_x: float | None) -> None:
        shown: list[float] = []
        for line, value, prefix, suffix in (
            (self.stop_line, lv.stop, "SL", STOP_DRAWN.get(lv.stop_status, "")),
            (self.take_profit_line, lv.take_profit, "TP", ""),
            (self.entry_line, lv.entry, "Entry", ""),
        ):
            line.setVisible(value is not None)
            if value is not None:
                line.setValue(value)
                line.label.setFormat(f"{prefix} {fmt_instrument_price(value, self._symbol)}{suffix}")
                shown.append(value)
        if last_x is not None and shown:
            self._level_anchor.setData(x=[last_x] * len(shown), y=shown)
        else:
            self._level_anchor.setData(x=[], y=[])

    def _update_title(self) -> None:
        pal = current_palette()
        if self._symbol is None:
            self._title.setText("No symbol selected")
            return
        buf = self._prices.get(self._symbol)
        if buf is not None and buf.n:
            last = f"last {fmt_instrument_price(float(buf.y[buf.n - 1]), self._symbol)}"
        else:
            last = "no prices yet"
        lv = self._levels.get(self._symbol, Levels())
        extra = "".join(
            f"&nbsp;&nbsp;<span style='color:{c}'>{p} {fmt_instrument_price(v, self._symbol)}{suffix}</span>"
            for p, v, c, suffix in (
                ("SL", lv.stop, pal.red, STOP_DRAWN.get(lv.stop_status, "")),
                ("TP", lv.take_profit, pal.green, ""),
                ("Entry", lv.entry, pal.muted, ""),
            )
            if v is not None
        )
        self._title.setText(f"<b>{self._symbol}</b>&nbsp;&nbsp;{last}{extra}")

    def title_text(self) -> str:
        return self._title.text()

    def _apply_theme(self) -> None:
        """Background and axes follow the widget's QPalette; signal colours come from the theme."""
        pal = current_palette()
        bg = self.palette().color(QPalette.ColorRole.Base)
        fg = self.palette().color(QPalette.ColorRole.Text)
        self._canvas.setBackground(bg)
        for side in ("right", "bottom"):
            axis = self.plot.getAxis(side)
            axis.setPen(pg.mkPen(fg))
            axis.setTextPen(pg.mkPen(fg))
        self.price_item.setPen(pg.mkPen(pal.accent, width=2))
        outline = pg.mkPen(bg, width=1.5)  # separates markers from the price line beneath
        self.buy_scatter.setPen(outline)
        self.buy_scatter.setBrush(pg.mkBrush(pal.green))
        self.sell_scatter.setPen(outline)
        self.sell_scatter.setBrush(pg.mkBrush(pal.red))
        for line, colour, style in (
            (self.stop_line, pal.red, Qt.PenStyle.DashLine),
            (self.take_profit_line, pal.green, Qt.PenStyle.DashLine),
            (self.entry_line, pal.muted, Qt.PenStyle.SolidLine),
        ):
            line.setPen(pg.mkPen(colour, width=1.5, style=style))
            fill = QColor(colour)
            fill.setAlpha(220)
            line.label.fill = pg.mkBrush(fill)
            line.label.setColor(pal.on_strong)
        self._update_title()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_theme()
        super().changeEvent(event)
