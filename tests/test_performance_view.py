"""The performance view shows the figures `trading-console report` prints, per period, and exports
the period's trades and equity curve as CSV. Journal-backed: a real Journal with known rows."""

from __future__ import annotations

import csv
import gc
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from console.cli import report as cli_report
from console.performance_dock import PerformanceDock, period_start
from engine.analytics import metrics
from engine.core.config import Settings, save_settings
from engine.core.model import ClosedTrade, Side
from engine.core.paths import AppPaths
from engine.persistence.journal import Journal
from widgets.format import fmt_duration
from widgets.performance_parts import EQUITY_CSV_HEADER, TRADE_CSV_HEADER

pytestmark = pytest.mark.timeout(60)

NY = "America/New_York"
NOW = datetime(2026, 2, 10, 15, tzinfo=UTC)  # 10:00 in New York; its day began at 05:00 UTC
TODAY = datetime(2026, 2, 10, 5, tzinfo=UTC)
# (closed how long before NOW, pnl, symbol, strategy, tag)
TRADES = [
    (timedelta(days=35), "120", "BTC/USDT", "ema_cross", "golden_cross"),
    (timedelta(days=20), "-80", "ETH/USDT", "ema_cross", "golden_cross"),
    (timedelta(days=10), "45.5", "BTC/USDT", "breakout", "range_break"),
    (timedelta(days=6), "-30", "SOL/USDT", "breakout", ""),
    (timedelta(days=3), "60", "ETH/USDT", "ema_cross", "golden_cross"),
    (timedelta(days=1), "-15", "BTC/USDT", "ema_cross", "golden_cross"),
    (timedelta(hours=5), "25", "SOL/USDT", "breakout", "range_break"),  # today in New York
    (timedelta(hours=2), "-40", "BTC/USDT", "ema_cross", "golden_cross"),
    (timedelta(minutes=30), "70", "ETH/USDT", "ema_cross", ""),
]
PERIOD_TRADES = {"today": 3, "7d": 6, "30d": 8, "all": 9}


def closed_trade(ago: timedelta, pnl: str, symbol: str, strategy: str, tag: str) -> ClosedTrade:
    closed = NOW - ago
    return ClosedTrade(symbol, Side.BUY, Decimal(1), Decimal(1000), Decimal(1000) + Decimal(pnl),
                       closed - timedelta(minutes=20), closed, Decimal(pnl), Decimal("0.75"), tag,
                       strategy)  # fmt: skip


def equity_at(i: int) -> Decimal:
    """Hourly equity with a few dips: 100,000 + 400 sin(i / 17) + 2 i, to the cent."""
    return Decimal(f"{100_000 + 400 * math.sin(i / 17) + 2 * i:.2f}")


def write_rows(journal: Journal, hours: range) -> None:
    first = NOW - timedelta(days=40)
    for i in hours:
        eq = equity_at(i)
        journal.record_equity(first + timedelta(hours=i), eq, eq, Decimal(0), Decimal(0), Decimal(0))
    assert journal.flush()


@pytest.fixture
def paths(tmp_path: Path) -> AppPaths:
    p = AppPaths(tmp_path / "config", tmp_path / "data", tmp_path / "logs").ensure()
    settings = Settings()
    settings.engine.trading_day_tz = NY
    save_settings(settings, p.config_file)
    with Journal(p.journal_file) as j:
        for row in TRADES:
            j.record_trade(closed_trade(*row))
        write_rows(j, range(0, 40 * 24 + 1))  # NOW - 40 days .. NOW, hourly
    return p


@pytest.fixture
def dock(paths: AppPaths, qtbot: Any) -> Iterator[PerformanceDock]:
    settings = Settings()
    settings.engine.trading_day_tz = NY
    journal = Journal(paths.journal_file)
    d = PerformanceDock(journal, settings, now=lambda: NOW)
    qtbot.addWidget(d.view)
    yield d
    d.close()
    journal.close()
    assert gc.isenabled()  # the collector is held off only while the worker computes


def cli_json(paths: AppPaths, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert cli_report(paths, "all", True) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def expected_for(paths: AppPaths, period: str) -> dict[str, Any]:
    """The report over the period's rows, filtered here by hand."""
    start = period_start(period, NOW, NY)
    with Journal(paths.journal_file) as j:
        trades, points = j.trades(), [(p.ts, p.equity) for p in j.equity_curve()]
        fills = j.fills()
    if start is not None:
        trades = [t for t in trades if t.closed_at >= start]
        fills = [f for f in fills if f.ts >= start]
        before = [e for ts, e in points if ts < start]
        points = [(start, before[-1])] + [(ts, e) for ts, e in points if ts >= start]
    return metrics.report(trades, points, fills=fills, tz=NY)


def test_all_shows_exactly_what_trading_console_report_prints(
    dock: PerformanceDock, paths: AppPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    dock.refresh_now()
    cli = cli_json(paths, capsys)
    shown = dock.view.figures()
    assert {k: v for k, v in shown.items() if k != "execution"} == {k: v for k, v in cli.items() if k != "execution"}
    assert shown["trades"] == 9 and shown["tz"] == NY
    # and the text on screen says those numbers
    view = dock.view
    assert view.figure_text("win_rate") == f"{cli['win_rate'] * 100:.2f} %"
    assert view.figure_text("profit_factor") == f"{cli['profit_factor']:.2f}"
    assert view.figure_text("total_pnl") == f"+{cli['total_pnl']:,.2f} fees {cli['total_fees']:,.2f}"
    assert view.figure_text("avg_win").split(" / ")[1].startswith("−")  # a true minus, not a hyphen
    # each drawdown against its configured limit, with the state in words
    dd, state = cli["max_drawdown"], view.tiles["max_drawdown"].state
    assert view.figure_text("max_drawdown") == f"{dd * 100:.2f} % of 15.00 % · {state.upper()}"
    assert state == ("ok" if dd < 0.8 * 0.15 else "warn" if dd < 0.15 else "limit")
    # the worst day, measured like the daily-loss breaker (below the day's open), against its limit
    assert view.figure_text("worst_daily_loss").startswith(f"{cli['worst_daily_loss'] * 100:.2f} % of 5.00 %")
    assert view.figure_text("max_intraday_drawdown") == f"{cli['max_intraday_drawdown'] * 100:.2f} % from a day's high"
    sharpe = cli["sharpe"]
    assert view.figure_text("sharpe").startswith("not enough data" if sharpe is None else f"{sharpe:,.2f}")
    assert cli["fees_basis"] == shown["fees_basis"] == "fills"
    recover = cli["time_to_recover_s"]
    assert view.figure_text("time_to_recover_s") == (
        "not yet below the old peak" if recover is None else f"{fmt_duration(recover)} back to the peak"
    )
    assert view.figure_text("trades") == "9 5 won · 4 lost · 0 even"
    by_symbol = view.group_rows("symbol")
    assert {k: r["trades"] for k, r in by_symbol.items()} == {k: g["trades"] for k, g in cli["per_symbol"].items()}
    assert set(view.group_rows("strategy")) == {"ema_cross", "breakout"}
    assert set(view.group_rows("tag")) == {"golden_cross", "range_break", ""}  # "" shows as "(none)"
    table = view.group_tables["tag"]
    assert table.cell_text("", "group") == "(none)"


def test_the_period_selector_changes_the_figures(dock: PerformanceDock, paths: AppPaths, qtbot: Any) -> None:
    dock.refresh_now()
    everything = dock.view.figures()
    for period in ("today", "7d", "30d", "all"):
        with qtbot.waitSignal(dock.view.periodChanged, timeout=1000, raising=False):
            qtbot.mouseClick(dock.view.period_buttons[period], Qt.MouseButton.LeftButton)
        assert dock.view.period() == period
        dock.refresh_now()
        shown = dock.view.figures()
        assert shown == expected_for(paths, period), period
        assert shown["trades"] == PERIOD_TRADES[period]
    dock.view.set_period("today")
    dock.refresh_now()
    today = dock.view.figures()
    assert today["total_pnl"] == pytest.approx(25 - 40 + 70)
    assert today["total_pnl"] != everything["total_pnl"]
    assert today["max_drawdown"] <= everything["max_drawdown"]
    assert dock.view.status.text().startswith("Today: 3 trades")
    with pytest.raises(ValueError, match="unknown period"):
        dock.view.set_period("yesterday")


def test_csv_export_writes_the_periods_trades_and_equity(dock: PerformanceDock, tmp_path: Path) -> None:
    dock.view.set_period("7d")
    dock.refresh_now()
    assert dock.view.export_trades_csv(tmp_path / "t.csv") == 6
    with open(tmp_path / "t.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == TRADE_CSV_HEADER and len(rows) == 1 + 6
    pnl = rows[0].index("pnl")
    assert [r[pnl] for r in rows[1:]] == ["-30", "60", "-15", "25", "-40", "70"]  # exact, oldest first
    assert rows[1][rows[0].index("closed_at")] == (NOW - timedelta(days=6)).isoformat()

    assert dock.view.export_equity_csv(tmp_path / "e.csv") == 7 * 24 + 1
    with open(tmp_path / "e.csv", newline="", encoding="utf-8") as fh:
        eq = list(csv.reader(fh))
    # hourly over 7 days, both ends; a sample sits exactly at the start, so no opening row is added
    assert eq[0] == EQUITY_CSV_HEADER and len(eq) == 1 + 7 * 24 + 1
    assert eq[1][0] == (NOW - timedelta(days=7)).isoformat()
    assert eq[-1][:2] == [NOW.isoformat(), str(float(equity_at(40 * 24)))]
    assert all(0 <= float(r[3]) < 1 for r in eq[1:])

    dock.view.set_period("all")
    dock.refresh_now()
    assert dock.view.export_trades_csv(tmp_path / "all.csv") == 9
    assert dock.view.export_equity_csv(tmp_path / "all_e.csv") == 40 * 24 + 1


def test_export_button_asks_for_a_file_without_blocking(dock: PerformanceDock, tmp_path: Path, qtbot: Any) -> None:
    dock.refresh_now()
    qtbot.mouseClick(dock.view.export_trades_button, Qt.MouseButton.LeftButton)
    dlg = dock.view.file_dialog
    assert isinstance(dlg, QFileDialog) and dlg.isVisible()  # open(), so the click returned at once
    target = tmp_path / "picked.csv"
    with qtbot.waitSignal(dock.view.exported, timeout=2000) as signal:
        dlg.fileSelected.emit(str(target))
    assert signal.args == ["trades", str(target), 9]
    assert target.read_text(encoding="utf-8").startswith(",".join(TRADE_CSV_HEADER))
    assert "Saved 9 trades" in dock.view.status.text()
    dlg.reject()
    dock.view._export("equity", str(tmp_path / "missing" / "e.csv"), dock.view.export_equity_csv)
    assert dock.view.status.text().startswith("Export failed")


def test_new_journal_rows_are_read_incrementally_and_agree_with_a_full_read(
    dock: PerformanceDock, paths: AppPaths, capsys: pytest.CaptureFixture[str], qtbot: Any
) -> None:
    dock.refresh_now()
    assert dock.view.figures()["trades"] == 9
    with Journal(paths.journal_file) as j:  # another trade at NOW's instant, and samples at NOW again
        j.record_trade(closed_trade(timedelta(0), "-5", "SOL/USDT", "breakout", ""))
        write_rows(j, range(40 * 24, 40 * 24 + 1))
    dock.view.show()  # the timer path: a worker thread, then the view on the Qt thread
    with qtbot.waitSignal(dock.refreshed, timeout=5000):
        dock.refresh()
        assert not gc.isenabled()  # no collection on the worker thread ...
    assert gc.isenabled()  # ... it resumes on the Qt thread with the result
    shown = dock.view.figures()
    cli = cli_json(paths, capsys)
    assert shown["trades"] == 10
    assert {k: v for k, v in shown.items() if k != "execution"} == {k: v for k, v in cli.items() if k != "execution"}


def test_period_start_on_the_engine_clock() -> None:
    assert period_start("all", NOW, NY) is None
    assert period_start("today", NOW, NY) == TODAY
    assert period_start("today", NOW, "UTC") == datetime(2026, 2, 10, tzinfo=UTC)
    assert period_start("7d", NOW, NY) == NOW - timedelta(days=7)
    assert period_start("30d", NOW, NY) == NOW - timedelta(days=30)


# --- in the window, on a real run ---------------------------------------------------------------


def test_the_window_has_a_performance_dock_that_agrees_with_the_report(
    qapp: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio
    import time
    from concurrent.futures import ThreadPoolExecutor

    import qasync
    from PySide6.QtCore import QSettings

    from console.app import build_window
    from engine.app.factory import RunOptions, build_engine
    from engine.core.paths import app_paths
    from widgets.theme import apply_theme

    monkeypatch.setenv("TRADING_CONSOLE_HOME", str(tmp_path / "home"))
    apply_theme(qapp, "dark")
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    executor = ThreadPoolExecutor(max_workers=2)
    loop.set_default_executor(executor)
    store_file = str(tmp_path / "layout.ini")

    async def wait(cond: Any, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.05)

    async def scenario() -> dict[str, Any]:
        engine = build_engine(Settings(), app_paths(), RunOptions(seed=7, speed="max", with_strategy=True))
        window, bridge = build_window(engine, QSettings(store_file, QSettings.Format.IniFormat))
        window.show()
        await engine.start()
        bridge.seed(engine)
        dock, perf = window.docks["performance"], window.performance
        view_menu = next(a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == "View")
        assert dock.toggleViewAction() in view_menu.actions()
        assert window.docks["alerts"] in window.dock_host.tabifiedDockWidgets(dock)  # a tab by the alerts
        dock.raise_()
        await wait(lambda: perf.view.isVisible(), "the performance tab on top")
        # refreshed by its own timer while visible: figures appear once a trade closes (the demo strategy
        # paces its entries over the simulated day, so one is what the first simulated hours hold)
        await wait(lambda: perf.view.figures().get("trades", 0) >= 1, "a closed trade in the view")
        await engine.shutdown("keep")
        bridge.detach()
        perf.refresh_now()  # after the last fill: compare like for like
        shown = perf.view.figures()
        dock.hide()
        window.save_layout()
        engine.journal.close()
        perf.close()
        window.finish_close()
        return shown

    async def reopened() -> bool:
        engine = build_engine(Settings(), app_paths(), RunOptions(seed=7, speed="max", with_strategy=False))
        window, _bridge = build_window(engine, QSettings(store_file, QSettings.Format.IniFormat))
        hidden = window.docks["performance"].isHidden()
        window.performance.close()
        engine.journal.close()
        window.finish_close()
        return hidden

    try:
        shown = loop.run_until_complete(asyncio.wait_for(scenario(), 100))
        cli = cli_json(app_paths(), capsys)
        assert {k: v for k, v in shown.items() if k != "execution"} == {
            k: v for k, v in cli.items() if k != "execution"
        }
        assert loop.run_until_complete(reopened())  # the saved layout remembers the closed dock
    finally:
        executor.shutdown(wait=True)
        loop.close()
        asyncio.set_event_loop(None)
