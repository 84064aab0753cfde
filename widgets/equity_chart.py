"""Equity curve with drawdown shading and daily P&L bars.

The widget is fed plain values (UTC datetimes and floats). `append` is cheap and may
be called many times a second: points land in numpy arrays and the plot is redrawn
at most every `REDRAW_MS` milliseconds, so a burst of ticks costs one repaint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QColor, QFontMetrics, QPalette, QResizeEvent, QShowEvent
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from widgets.format import MINUS, fmt_money, fmt_pct
from widgets.theme import current_palette

REDRAW_MS = 100  # at most ~10 redraws a second, whatever the feed rate
RANGES: dict[str, float | None] = {
    "1H": 3600.0,
    "1D": 86400.0,
    "1W": 7 * 86400.0,
    "1M": 30 * 86400.0,
    "All": None,
}
_DAY = 86400.0


def to_epoch(ts: datetime) -> float:
    """Seconds since the epoch; a naive datetime is taken as UTC (never as local time)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.timestamp()


class GroupedAxis(pg.AxisItem):
    """Value axis in plain units with thousands separators: "115,000", never "115 (x1000)" or "23.000".

    pyqtgraph's automatic SI prefix rescales the ticks and appends "(x0.001)" to a label without
    units; it is switched off for good (updateAutoSIPrefix also runs on every range change, see
    pyqtgraph issue 2899), and a tick shows only the decimals its spacing needs.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.enableAutoSIPrefix(False)

    def updateAutoSIPrefix(self) -> None:
        self.autoSIPrefixScale = 1.0
        self.labelUnitPrefix = ""
        self._updateLabel()

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return axis_tick_strings(values, spacing * scale, scale)


def axis_tick_strings(values: Sequence[float], step: float, scale: float = 1.0) -> list[str]:
    """Tick labels: separators, and decimals only when the step is below 1 (0.5 -> 1 decimal)."""
    if step <= 0 or not math.isfinite(step):
        decimals = 0
    else:
        decimals = 0 if step >= 1 else min(8, math.ceil(-math.log10(step) - 1e-9))
    out = []
    for v in values:
        text = f"{v * scale:,.{decimals}f}"
        out.append("0" if text.lstrip("-").strip("0.,") == "" else text.replace("-", MINUS))
    return out


class _CoalescedFill(pg.FillBetweenItem):
    """Drawdown fill between the peak and equity curves as they are *displayed* (clipped, downsampled).

    pyqtgraph's FillBetweenItem rebuilds its path on every change of either curve, i.e.
    twice per redraw and again on every pan step; here the changes only (re)start a
    zero-delay timer, so the path is rebuilt once per event-loop turn.
    """

    def __init__(self, curve1: pg.PlotCurveItem, curve2: pg.PlotCurveItem, timer: QTimer) -> None:
        super().__init__(curve1, curve2)
        self._timer = timer

    def curveChanged(self) -> None:
        timer = getattr(self, "_timer", None)  # None while the base __init__ runs
        if timer is not None:
            timer.start()


class _EquitySeries:
    """Time, equity and running peak in arrays that grow by doubling.

    Past `max_points` the oldest quarter is dropped, which keeps appends amortised
    O(1) and memory bounded; the stored peaks stay right because they were computed
    over the whole history.
    """

    def __init__(self, max_points: int) -> None:
        self.max_points = max(16, max_points)
        self.n = 0
        self._alloc(min(1024, self.max_points))

    def _alloc(self, cap: int) -> None:
        self.x = np.empty(cap)
        self.y = np.empty(cap)
        self.peak = np.empty(cap)

    def _make_room(self) -> None:
        cap = len(self.x)
        if cap < self.max_points:
            new_cap = min(cap * 2, self.max_points)
            x, y, peak = self.x, self.y, self.peak
            self._alloc(new_cap)
            self.x[: self.n], self.y[: self.n], self.peak[: self.n] = x[: self.n], y[: self.n], peak[: self.n]
            return
        drop = self.n // 4
        keep = self.n - drop
        # Fresh arrays rather than in-place shifts: the plot may still hold views of the old ones.
        x, y, peak = self.x, self.y, self.peak
        self._alloc(cap)
        self.x[:keep], self.y[:keep], self.peak[:keep] = (
            x[drop : self.n],
            y[drop : self.n],
            peak[drop : self.n],
        )
        self.n = keep

    def append(self, x: float, y: float) -> bool:
        if self.n and x < self.x[self.n - 1]:
            return False  # out of order: a time axis must be monotonic (clipToView relies on it)
        if self.n == len(self.x):
            self._make_room()
        prev_peak = self.peak[self.n - 1] if self.n else y
        self.x[self.n] = x
        self.y[self.n] = y
        self.peak[self.n] = max(prev_peak, y)
        self.n += 1
        return True

    def replace(self, xs: np.ndarray, ys: np.ndarray) -> None:
        order = np.argsort(xs, kind="stable")
        xs, ys = xs[order][-self.max_points :], ys[order][-self.max_points :]
        self.n = len(xs)
        self._alloc(min(self.max_points, max(1024, 1 << max(0, self.n - 1).bit_length())))
        self.x[: self.n] = xs
        self.y[: self.n] = ys
        if self.n:
            self.peak[: self.n] = np.maximum.accumulate(ys)

    def views(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.x[: self.n], self.y[: self.n], self.peak[: self.n]


class EquityChart(QWidget):
    """Equity line, drawdown from the running peak shaded red, daily P&L bars below."""

    def __init__(self, parent: QWidget | None = None, max_points: int = 2_000_000) -> None:
        super().__init__(parent)
        self._series = _EquitySeries(max_points)
        self._range: str | None = "All"
        self._daily: list[tuple[date, float]] = []

        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(REDRAW_MS)
        self._redraw_timer.timeout.connect(self.flush)
        # a timer the widget owns (not QTimer.singleShot on a bound method): it dies with the widget
        self._label_timer = QTimer(self)
        self._label_timer.setSingleShot(True)
        self._label_timer.setInterval(0)
        self._label_timer.timeout.connect(self._fit_axis_labels)

        self._stats = QLabel("Equity —", self)
        self._stats.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # the figures line takes what is left: the range buttons keep their width on a narrow dock
        self._stats.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._buttons = QButtonGroup(self)
        self._buttons.setExclusive(True)
        self._button_row = QWidget(self)
        row = QHBoxLayout(self._button_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(2)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self._button_row)
        for name, span in RANGES.items():
            btn = QPushButton(name, self._button_row)
            btn.setCheckable(True)
            btn.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Fixed)
            btn.setObjectName(f"range_{name}")
            btn.setToolTip(
                "Show all history" if span is None else f"Show the last {name}, following new data"
            )
            btn.clicked.connect(lambda _=False, n=name: self.set_range(n))
            self._buttons.addButton(btn)
            row.addWidget(btn)
        top.addSpacing(12)
        top.addStretch(1)
        top.addWidget(self._stats)

        self._canvas = pg.GraphicsLayoutWidget(self)
        self.equity_plot = self._canvas.addPlot(row=0, col=0, axisItems=self._axes())
        self.pnl_plot = self._canvas.addPlot(row=1, col=0, axisItems=self._axes())
        self._canvas.ci.layout.setRowStretchFactor(0, 3)
        self._canvas.ci.layout.setRowStretchFactor(1, 1)
        self.pnl_plot.setXLink(self.equity_plot)
        self.equity_plot.getAxis("bottom").setStyle(showValues=False)
        self.equity_plot.setLabel("left", "Equity")
        self.pnl_plot.setLabel("left", "Daily P&L")
        self.pnl_plot.setLabel("bottom", "time (UTC)")
        for plot in (self.equity_plot, self.pnl_plot):
            plot.showGrid(x=True, y=True, alpha=0.15)
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.getViewBox().sigRangeChangedManually.connect(self._on_manual_range)
        self._zero_line = self.pnl_plot.addLine(y=0)

        # The peak (high-water mark) is drawn faintly: the red fill down to equity is the drawdown.
        self.peak_item = self.equity_plot.plot()
        self.equity_item = self.equity_plot.plot()
        for item in (self.peak_item, self.equity_item):
            item.setDownsampling(auto=True, method="peak")
            item.setClipToView(True)
            # "peak" keeps each bucket's min and max, so ~2 buckets per pixel lose nothing visible
            # and keep the fill path small (pyqtgraph's default is 5).
            item.opts["autoDownsampleFactor"] = 2.0
        self._fill_timer = QTimer(self)
        self._fill_timer.setSingleShot(True)
        self._fill_timer.setInterval(0)
        # The fill follows the displayed curves (PlotCurveItem), so it re-clips on zoom and pan too.
        self.drawdown_fill = _CoalescedFill(self.peak_item.curve, self.equity_item.curve, self._fill_timer)
        self._fill_timer.timeout.connect(self._rebuild_fill)
        self._fill_stale = False
        self.equity_plot.addItem(self.drawdown_fill)
        self.pnl_bars = pg.BarGraphItem(x=[], height=[], width=_DAY * 0.8, pen=None)
        self.pnl_plot.addItem(self.pnl_bars)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self._canvas, 1)
        self._apply_theme()
        self.set_range("All")

    @staticmethod
    def _axes() -> dict[str, pg.AxisItem]:
        # utcOffset=0: the time axis is always UTC, whatever the host's zone
        return {"bottom": pg.DateAxisItem(orientation="bottom", utcOffset=0), "left": GroupedAxis("left")}

    # ---- feeding -------------------------------------------------------------------------------

    def append(self, ts: datetime, equity: float) -> None:
        """Add one point; cheap, the redraw happens later on a timer."""
        if self._series.append(to_epoch(ts), float(equity)) and not self._redraw_timer.isActive():
            self._redraw_timer.start()

    def set_history(self, points: Sequence[tuple[datetime, float]]) -> None:
        xs = np.fromiter((to_epoch(ts) for ts, _ in points), dtype=float, count=len(points))
        ys = np.fromiter((float(v) for _, v in points), dtype=float, count=len(points))
        self._series.replace(xs, ys)
        self.flush()

    def set_daily_pnl(self, days: Sequence[tuple[date, float]]) -> None:
        self._daily = sorted((d, float(v)) for d, v in days)
        xs = [datetime.combine(d, time(12), tzinfo=UTC).timestamp() for d, _ in self._daily]
        heights = [v for _, v in self._daily]
        pal = current_palette()
        brushes = [pg.mkBrush(pal.green if v > 0 else pal.red if v < 0 else pal.muted) for v in heights]
        self.pnl_bars.setOpts(x=xs, height=heights, width=_DAY * 0.8, brushes=brushes)
        self._update_stats()

    def clear(self) -> None:
        self._series.replace(np.empty(0), np.empty(0))
        self.set_daily_pnl([])
        self.flush()

    # ---- view ----------------------------------------------------------------------------------

    def set_range(self, name: str) -> None:
        """Show the last hour/day/week/month (following new points) or all history."""
        if name not in RANGES:
            raise ValueError(f"unknown range {name!r}; expected one of {', '.join(RANGES)}")
        self._range = name
        for btn in self._buttons.buttons():
            if btn.text() == name:
                btn.setChecked(True)
        vb = self.equity_plot.getViewBox()
        vb.setAutoVisible(y=True)  # y fits what is visible, not the whole history
        vb.enableAutoRange(y=True)
        self._follow()
        self.pnl_plot.getViewBox().setAutoVisible(y=True)
        self.pnl_plot.getViewBox().enableAutoRange(y=True)

    def current_range(self) -> str | None:
        """The selected range button, or None after the operator panned or zoomed by hand."""
        return self._range

    def _follow(self) -> None:
        # x is always set explicitly (never auto-ranged), "All" included: pyqtgraph then knows the
        # visible span before the data is drawn and downsamples a long history from the first frame.
        if self._range is None or not self._series.n:
            return
        first, last = float(self._series.x[0]), float(self._series.x[self._series.n - 1])
        span = RANGES[self._range]
        if span is None:
            span = max(last - first, 60.0)
        self.equity_plot.setXRange(last - span, last + span * 0.02, padding=0)

    def _on_manual_range(self, *_: object) -> None:
        # The operator took over the view: stop following so the chart does not jump under the mouse.
        self._range = None
        self._buttons.setExclusive(False)
        for btn in self._buttons.buttons():
            btn.setChecked(False)
        self._buttons.setExclusive(True)

    # ---- drawing -------------------------------------------------------------------------------

    def flush(self) -> None:
        """Redraw now (normally called by the throttle timer)."""
        self._redraw_timer.stop()
        x, y, peak = self._series.views()
        self._follow()  # range first, so setData already downsamples for the new window
        self.equity_item.setData(x, y)
        self.peak_item.setData(x, peak)
        # Rebuild the fill now rather than on the next loop turn, so it never lags the line it shades.
        self._fill_timer.stop()
        self._rebuild_fill()
        self._update_stats()

    def _rebuild_fill(self) -> None:
        # While hidden the view has no width, so curves are not downsampled and a fill over a long
        # history would cost seconds; wait until the chart is shown.
        if not self.isVisible():
            self._fill_stale = True
            return
        self._fill_stale = False
        self.drawdown_fill.updatePath()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._fill_stale:
            self._fill_timer.start()
        self._label_timer.start()  # once pyqtgraph has laid its plots out

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._label_timer.start()

    def _fit_axis_labels(self) -> None:
        """A vertical axis title longer than its plot is tall would run into the next one: hide it then
        (the dock's title names both plots)."""
        fm = QFontMetrics(self.font())
        for plot, text in ((self.equity_plot, "Equity"), (self.pnl_plot, "Daily P&L")):
            tall_enough = plot.getViewBox().height() >= fm.horizontalAdvance(text) + 12
            plot.getAxis("left").showLabel(tall_enough)

    def equity_data(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the times (epoch s) and equity values held by the chart."""
        x, y, _ = self._series.views()
        return x.copy(), y.copy()

    def drawdown_data(self) -> tuple[np.ndarray, np.ndarray]:
        """Times and drawdown in money (running peak minus equity, >= 0): what the red fill shows."""
        x, y, peak = self._series.views()
        return x.copy(), peak - y

    def _update_stats(self) -> None:
        pal = current_palette()
        parts: list[str] = []
        if self._series.n:
            i = self._series.n - 1
            equity, peak = float(self._series.y[i]), float(self._series.peak[i])
            dd = peak - equity
            dd_pct = dd / peak * 100 if peak > 0 else 0.0
            parts.append(f"Equity <b>{fmt_money(equity)}</b>")
            parts.append(f"Peak {fmt_money(peak)}")
            if dd > 0:
                dd_text = f"Drawdown {fmt_money(-dd)} ({fmt_pct(-dd_pct)})"
                parts.append(f"<span style='color:{pal.red}'>{dd_text}</span>")
            else:
                parts.append("Drawdown 0.00 (at peak)")
        else:
            parts.append("Equity —")
        if self._daily:
            d, v = self._daily[-1]
            colour = pal.green if v > 0 else pal.red if v < 0 else pal.muted
            parts.append(f"P&amp;L {d:%d %b} <span style='color:{colour}'>{fmt_money(v, signed=True)}</span>")
        self._stats.setText("&nbsp;&nbsp;·&nbsp;&nbsp;".join(parts))

    def _apply_theme(self) -> None:
        """Background and axes follow the widget's QPalette; signal colours come from the theme."""
        pal = current_palette()
        self._canvas.setBackground(self.palette().color(QPalette.ColorRole.Base))
        fg = self.palette().color(QPalette.ColorRole.Text)
        for plot in (self.equity_plot, self.pnl_plot):
            for side in ("left", "bottom"):
                axis = plot.getAxis(side)
                axis.setPen(pg.mkPen(fg))
                axis.setTextPen(pg.mkPen(fg))
        self._zero_line.setPen(pg.mkPen(pal.muted, width=1))
        self.peak_item.setPen(pg.mkPen(pal.muted, width=1, style=Qt.PenStyle.DotLine))
        self.equity_item.setPen(pg.mkPen(pal.accent, width=2))
        fill = QColor(pal.red)
        fill.setAlpha(80)  # translucent: the equity line must stay readable through it
        self.drawdown_fill.setBrush(fill)
        self.set_daily_pnl(self._daily)
        # The shared QSS has no :checked look, so the selected range is styled here.
        self._button_row.setStyleSheet(
            f"QPushButton {{ padding: 2px 6px; }}"
            f"QPushButton:checked {{ background: {pal.accent}; color: {pal.on_strong};"
            f" border-color: {pal.accent}; font-weight: bold; }}"
        )

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_theme()
        super().changeEvent(event)
