"""Render the chart and gauge widgets with sample data to a PNG, for a visual check.

python -m widgets.demo_charts out.png            # dark theme
python -m widgets.demo_charts out.png --light    # light theme
python -m widgets.demo_charts --show             # open a window instead
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, date, datetime, timedelta

import numpy as np

from engine.core.model import RuleValue

_NOW = datetime(2025, 3, 14, 15, 30, tzinfo=UTC)  # fixed, so the picture is reproducible


def sample_equity(rng: np.random.Generator, days: int = 30) -> list[tuple[datetime, float]]:
    n = days * 24 * 60
    steps = rng.normal(0.6, 18.0, n)
    steps[n // 2 : n // 2 + 2500] -= 2.2  # a visible drawdown in the middle of the month
    values = 100_000 + np.cumsum(steps)
    start = _NOW - timedelta(minutes=n)
    return [(start + timedelta(minutes=i), float(v)) for i, v in enumerate(values)]


def daily_pnl(points: list[tuple[datetime, float]]) -> list[tuple[date, float]]:
    first: dict[date, float] = {}
    last: dict[date, float] = {}
    for ts, v in points:
        first.setdefault(ts.date(), v)
        last[ts.date()] = v
    return [(d, last[d] - first[d]) for d in first]


def sample_rules() -> list[RuleValue]:
    return [
        RuleValue("daily_loss", "Daily loss", 0.012, 0.05, "%", "Loss since 00:00 UTC as a share of equity."),
        RuleValue(
            "drawdown", "Drawdown", 0.071, 0.10, "%", "Fall from the equity peak; trips a halt.", warn_at=0.7
        ),
        RuleValue("positions", "Open positions", 5, 5, "", "Number of symbols with an open position."),
        RuleValue("order_rate", "Order rate", 2.4, 10, "/s", "Orders sent per second, all venues."),
        RuleValue("exposure", "Gross exposure", 45_250.5, 100_000, "USDT", "Sum of position notionals."),
        RuleValue("losses", "Losing streak", 3, 4, "", "Consecutive losing trades before a pause."),
    ]


def build(window_parent: object = None) -> object:
    from PySide6.QtWidgets import QGridLayout, QWidget

    from widgets.equity_chart import EquityChart
    from widgets.gauges import GaugePanel
    from widgets.price_chart import PriceChart

    rng = np.random.default_rng(7)
    root = QWidget()
    root.setWindowTitle("Charts demo")
    grid = QGridLayout(root)

    equity = EquityChart(root)
    history = sample_equity(rng)
    equity.set_history(history[:-30])
    for ts, v in history[-30:]:
        equity.append(ts, v)  # the live path, throttled
    equity.set_daily_pnl(daily_pnl(history))
    equity.set_range("1M")
    equity.flush()

    price = PriceChart(root)
    t0 = _NOW - timedelta(hours=6)
    prices = 64_000 + np.cumsum(rng.normal(0, 25, 6 * 60))
    for i, p in enumerate(prices):
        price.append_price("BTC/USDT", t0 + timedelta(minutes=i), float(p))
        price.append_price("ETH/USDT", t0 + timedelta(minutes=i), float(p / 20))
    for i, side in ((40, "buy"), (120, "buy"), (200, "sell"), (300, "sell")):
        price.add_fill("BTC/USDT", t0 + timedelta(minutes=i), side, float(prices[i]), 0.05)
    entry = float(np.mean(prices[[40, 120]]))
    price.set_levels("BTC/USDT", stop=entry - 600, take_profit=entry + 900, entry=entry)
    price.set_symbol("BTC/USDT")

    gauges = GaugePanel(root, columns=3)
    gauges.set_rules(sample_rules())

    grid.addWidget(equity, 0, 0, 1, 2)
    grid.addWidget(price, 1, 0)
    grid.addWidget(gauges, 1, 1)
    grid.setRowStretch(0, 5)
    grid.setRowStretch(1, 5)
    grid.setColumnStretch(0, 3)
    grid.setColumnStretch(1, 2)
    root.resize(1400, 900)
    return root


def main(argv: list[str]) -> int:
    show = "--show" in argv
    light = "--light" in argv
    paths = [a for a in argv if not a.startswith("--")]
    if not show and not paths:
        print(__doc__)
        return 2
    if not show:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtWidgets import QApplication

    from widgets.theme import apply_theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_theme(app, "light" if light else "dark")
    root = build()
    root.show()
    for _ in range(5):  # let layouts settle and pyqtgraph auto-range before grabbing
        app.processEvents()
    if show:
        return app.exec()
    for path in paths:
        if not root.grab().save(path):
            print(f"could not write {path}", file=sys.stderr)
            return 1
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
