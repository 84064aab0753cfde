"""Render the control widgets (top bar, big buttons, tables, alert feed) with sample data to a PNG.

python -m widgets.demo_controls out.png                     # dark theme, ACTIVE, paper
python -m widgets.demo_controls out.png --light             # light theme
python -m widgets.demo_controls out.png --halted --live     # HALTED on a LIVE account
python -m widgets.demo_controls out.png --dialogs           # also dialogs: out-closeall.png, out-resume.png
python -m widgets.demo_controls --show                      # open a window instead
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

_NOW = datetime(2025, 3, 14, 15, 30, 12, tzinfo=UTC)  # fixed, so the picture is reproducible

POSITIONS: list[dict[str, Any]] = [
    {"symbol": "BTC/USDT", "qty": D("0.250"), "avg_price": D("64210.50"), "last": D("65102.10"),
     "unrealized_pnl": D("222.90"), "unrealized_pct": D("1.39"), "stop_loss": D("62900.00"),
     "take_profit": D("68000.00"), "opened_at": _NOW - timedelta(hours=3, minutes=12)},
    {"symbol": "ETH/USDT", "qty": D("-4.5"), "avg_price": D("3120.40"), "last": D("3188.75"),
     "unrealized_pnl": D("-307.58"), "unrealized_pct": D("-2.19"), "stop_loss": D("3250.00"),
     "take_profit": None, "opened_at": _NOW - timedelta(minutes=47, seconds=5)},
    {"symbol": "SOL/USDT", "qty": D("120"), "avg_price": D("148.215"), "last": D("148.215"),
     "unrealized_pnl": D("0"), "unrealized_pct": D("0"), "stop_loss": D("141.00"),
     "take_profit": D("160.00"), "opened_at": _NOW - timedelta(seconds=42)},
    {"symbol": "DOGE/USDT", "qty": D("25000"), "avg_price": D("0.16104"), "last": D("0.16822"),
     "unrealized_pnl": D("179.50"), "unrealized_pct": D("4.46"), "stop_loss": None,
     "take_profit": None, "opened_at": _NOW - timedelta(days=2, hours=4)},
]

ORDERS: list[dict[str, Any]] = [
    {"client_id": "tc-000131", "created_at": _NOW - timedelta(minutes=2), "symbol": "BTC/USDT",
     "side": "sell",
     "order_type": "stop_market", "qty": D("0.250"), "filled_qty": D("0"), "price": None,
     "stop_price": D("62900.00"), "status": "open", "role": "stop_loss"},
    {"client_id": "tc-000132", "created_at": _NOW - timedelta(minutes=1), "symbol": "BTC/USDT",
     "side": "sell",
     "order_type": "limit", "qty": D("0.250"), "filled_qty": D("0.100"), "price": D("68000.00"),
     "stop_price": None, "status": "partially_filled", "role": "take_profit"},
    {"client_id": "tc-000133", "created_at": _NOW - timedelta(seconds=20), "symbol": "ETH/USDT",
     "side": "buy",
     "order_type": "limit", "qty": D("1.0"), "filled_qty": D("0"), "price": D("3050.00"),
     "stop_price": None, "status": "canceled", "role": "entry"},
    {"client_id": "tc-000134", "created_at": _NOW - timedelta(seconds=5), "symbol": "SOL/USDT",
     "side": "buy",
     "order_type": "market", "qty": D("10"), "filled_qty": D("0"), "price": None,
     "stop_price": None, "status": "rejected", "role": "entry"},
]

FILLS: list[dict[str, Any]] = [
    {"fill_id": f"f{i}", "ts": _NOW - timedelta(minutes=9 * i), "symbol": sym, "side": side, "qty": qty,
     "price": price, "fee": fee, "liquidity": liq, "client_id": f"tc-0001{20 + i}"}
    for i, (sym, side, qty, price, fee, liq) in enumerate([
        ("BTC/USDT", "buy", D("0.150"), D("64190.00"), D("9.63"), "taker"),
        ("BTC/USDT", "buy", D("0.100"), D("64241.25"), D("3.21"), "maker"),
        ("ETH/USDT", "sell", D("4.5"), D("3120.40"), D("14.04"), "taker"),
        ("SOL/USDT", "buy", D("120"), D("148.215"), D("17.79"), "taker"),
        ("DOGE/USDT", "buy", D("25000"), D("0.16104"), D("4.03"), "maker"),
    ])
]

ALERTS: list[tuple[str, str, str, timedelta, bool]] = [
    ("a1", "INFO", "Connected to simulated venue (4 instruments)", timedelta(minutes=30), True),
    ("a2", "WARNING", "Market data for ETH/USDT is 7.2 s old", timedelta(minutes=12), False),
    ("a3", "CRITICAL", "Daily loss at 82 % of limit (−1,640.00 of −2,000.00)", timedelta(minutes=4), False),
    ("a4", "INFO", "Order tc-000133 canceled by operator", timedelta(minutes=3), True),
    ("a5", "EMERGENCY", "Emergency stop by operator: all orders canceled", timedelta(seconds=30), False),
]


def build(*, halted: bool = False, live: bool = False) -> Any:
    from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

    from widgets.alert_feed import AlertFeed
    from widgets.big_buttons import BigButtons
    from widgets.top_bar import TopBar
    from widgets.trading_tables import FillsTable, OrdersTable, PositionsTable

    root = QWidget()
    root.setObjectName("demoRoot")
    top = TopBar(currency="USDT")
    top.set_venue("Binance spot" if live else "Simulated exchange", "live" if live else "paper")
    top.set_stage("pilot (2 of 4)")
    top.set_connection(True, 38.0, 0.4)
    if halted:
        top.set_state("HALTED", "Emergency stop by operator")
    else:
        top.set_state("ACTIVE")
    top.set_equity(D("102345.67"))
    top.set_day_pnl(D("-1234.56"), D("-1.19"))

    buttons = BigButtons()
    buttons.setFixedWidth(440)
    buttons.set_state("HALTED" if halted else "ACTIVE")
    if halted:
        buttons.set_progress("emergency_stop", "all open orders canceled (7 of 7)", 7, 7, True, True)
    else:
        buttons.set_progress("close_all", "flattening ETH/USDT", 2, 4)

    positions = PositionsTable(now=lambda: _NOW)
    positions.set_rows(POSITIONS)
    orders = OrdersTable()
    orders.set_rows(ORDERS)
    fills = FillsTable()
    fills.set_rows(FILLS)
    feed = AlertFeed()
    for alert_id, level, msg, ago, ack in ALERTS:
        feed.add_alert(alert_id, level, msg, _NOW - ago, acknowledged=ack)

    def titled(title: str, w: QWidget) -> QWidget:
        box = QWidget()
        g = QGridLayout(box)
        g.setContentsMargins(0, 0, 0, 0)
        caption = QLabel(title)
        caption.setProperty("role", "caption")
        g.addWidget(caption, 0, 0)
        g.addWidget(w, 1, 0)
        return box

    def row(*widgets: tuple[QWidget, int]) -> QWidget:
        box = QWidget()
        h = QHBoxLayout(box)
        h.setContentsMargins(0, 0, 0, 0)
        for w, stretch in widgets:
            h.addWidget(w, stretch)
        return box

    layout = QVBoxLayout(root)
    layout.addWidget(top)
    layout.addWidget(row((titled("POSITIONS", positions), 1), (buttons, 0)), 3)
    layout.addWidget(titled("ORDERS", orders), 2)
    layout.addWidget(row((titled("FILLS", fills), 2), (titled("ALERTS", feed), 3)), 3)
    root.resize(1600, 1000)
    return root


def build_dialogs() -> tuple[Any, Any]:
    from widgets.dialogs import CloseAllDialog, ResumeDialog

    close_all = CloseAllDialog(POSITIONS, D("94.82"), 3, currency="USDT")
    resume = ResumeDialog("Daily loss limit breached (−2,104.10 of −2,000.00); resets at 00:00 UTC")
    resume.reason_edit.setText("checked the book after the outage")
    return close_all, resume


def main(argv: list[str]) -> int:
    show = "--show" in argv
    paths = [a for a in argv if not a.startswith("--")]
    if not show and not paths:
        print(__doc__)
        return 2
    if not show:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtWidgets import QApplication

    from widgets.theme import apply_theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_theme(app, "light" if "--light" in argv else "dark")
    root = build(halted="--halted" in argv, live="--live" in argv)
    root.show()
    extra: list[tuple[str, Any]] = []
    if "--dialogs" in argv:
        close_all, resume = build_dialogs()
        extra = [("closeall", close_all), ("resume", resume)]
        for _, dlg in extra:
            dlg.open()
    for _ in range(5):  # let layouts and style polish settle before grabbing
        app.processEvents()
    if show:
        return app.exec()
    for path in paths:
        targets = [(path, root)] + [(_suffixed(path, s), d) for s, d in extra]
        for target, widget in targets:
            if not widget.grab().save(target):
                print(f"could not write {target}", file=sys.stderr)
                return 1
            print(target)
    return 0


def _suffixed(path: str, suffix: str) -> str:
    p = Path(path)
    return str(p.with_name(f"{p.stem}-{suffix}{p.suffix}"))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
