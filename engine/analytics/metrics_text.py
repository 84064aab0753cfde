"""Text rendering of a metrics report for the terminal (`trading-console report`)."""

from __future__ import annotations

from typing import Any

from engine.analytics.metrics import _GROUP_KEYS

_TRADE_ROWS = [
    ("trades", "Trades", "int"), ("wins", "Wins", "int"), ("losses", "Losses", "int"),
    ("breakeven", "Breakeven", "int"), ("win_rate", "Win rate", "pct"),
    ("profit_factor", "Profit factor", "ratio"), ("expectancy", "Expectancy", "money"),
    ("avg_win", "Average win", "money"), ("avg_loss", "Average loss", "money"),
    ("largest_win", "Largest win", "money"), ("largest_loss", "Largest loss", "money"),
    ("longest_win_streak", "Longest win streak", "int"),
    ("longest_loss_streak", "Longest loss streak", "int"),
    ("current_loss_streak", "Losses in a row now", "int"),
    ("total_pnl", "Total P&L (net)", "money"), ("total_fees", "Total fees", "money"),
    ("avg_hold_s", "Average hold", "secs"),
]  # fmt: skip
_EQUITY_ROWS = [
    ("final_equity", "Final equity", "money"), ("peak_equity", "Peak equity", "money"),
    ("total_return", "Total return", "pct"), ("max_drawdown", "Max drawdown", "pct"),
    ("current_drawdown", "Current drawdown", "pct"),
    ("worst_daily_loss", "Worst day (loss from its open)", "pct"),
    ("max_intraday_drawdown", "Worst intraday fall from a day's high", "pct"),
    ("time_to_recover_s", "Time to recover", "secs"), ("sharpe", "Sharpe", "ratio"),
]  # fmt: skip
_EXECUTION_ROWS = [
    ("orders", "Entry orders", "int"), ("filled_orders", "Filled completely", "int"),
    ("partially_filled_orders", "Filled in part", "int"), ("rejected", "Rejected", "int"),
    ("order_fill_rate", "Fill rate (orders)", "pct"), ("notional_fill_rate", "Fill rate (notional)", "pct"),
    ("avg_slippage", "Average slippage", "bp"), ("max_slippage", "Worst slippage", "bp"),
]  # fmt: skip
_NONE_TEXT = {
    "time_to_recover_s": "not recovered",
    "profit_factor": "n/a",
    "sharpe": "not enough data",
    "notional_fill_rate": "n/a (several quote currencies)",
}


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def _fmt(key: str, value: Any, kind: str) -> str:
    if value is None:
        return _NONE_TEXT.get(key, "-")
    if kind == "int":
        return f"{value:,d}"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "pct":
        return f"{value * 100:.2f} %"
    if kind == "bp":
        return f"{value * 10_000:.1f} bp"
    if kind == "secs":
        return _duration(value)
    return f"{value:.2f}"


def _cell(key: str, values: dict[str, Any], kind: str) -> str:
    # None means "undefined": with winners and no loser the ratio is unbounded, not missing
    if key == "profit_factor" and values[key] is None and values.get("wins"):
        return "no losses"
    if key == "sharpe" and values[key] is None:
        have, need = values.get("sharpe_returns"), values.get("sharpe_min_returns")
        if have is not None and need is not None and have >= need:
            return "undefined (returns do not vary)"
        if have is not None and need is not None:
            return f"not enough data ({have} of {need} daily returns)"
    if key == "notional_fill_rate" and values[key] is None and not values.get("notional_fill_rate_by_quote"):
        return "-"
    if key == "total_fees" and values.get("fees_basis") == "closed trades":
        return f"{values[key]:,.2f} (closed trades only)"
    return _fmt(key, values[key], kind)


def _block(title: str, values: dict[str, Any], rows: list[tuple[str, str, str]]) -> list[str]:
    cells = [(label, _cell(key, values, kind)) for key, label, kind in rows if key in values]
    lw, vw = max(len(c[0]) for c in cells), max(len(c[1]) for c in cells)
    return [title, "-" * len(title), *(f"  {label:<{lw}}  {value:>{vw}}" for label, value in cells), ""]


def _table(title: str, header: list[str], rows: list[list[str]]) -> list[str]:
    """First column left-aligned, numbers right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [title, "-" * len(title)]
    for r in [header, *rows]:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        lines.append("  " + "  ".join(cells))
    return [*lines, ""]


def format_report(rep: dict[str, Any]) -> str:
    """Aligned plain text of a report() dict for the terminal; shows whichever sections it holds."""
    out = [
        f"Performance report ({rep.get('section', 'all')}; trading days in {rep.get('tz', 'UTC')})",
        f"Period: {rep.get('start') or '-'} .. {rep.get('end') or '-'}",
        "",
    ]
    if "trades" in rep:
        out += _block("Trades", rep, _TRADE_ROWS)
    if "max_drawdown" in rep:
        sharpe_label = "Sharpe (daily returns, x sqrt(365))"
        rows = [(k, sharpe_label if k == "sharpe" else label, kind) for k, label, kind in _EQUITY_ROWS]
        out += _block("Equity and drawdown", rep, rows)
    if rep.get("execution"):
        out += _block("Execution", rep["execution"], _EXECUTION_ROWS)
    columns = [("trades", "Trades", "int"), ("win_rate", "Win rate", "pct"),
               ("profit_factor", "Profit factor", "ratio"), ("expectancy", "Expectancy", "money"),
               ("total_pnl", "Total P&L", "money")]  # fmt: skip
    for by in _GROUP_KEYS:
        groups: dict[str, dict[str, Any]] = rep.get(f"per_{by}") or {}
        rows = [
            [name or "(none)"] + [_cell(k, g, kind) for k, _, kind in columns] for name, g in groups.items()
        ]
        if rows:
            out += _table(f"By {by}", [by.capitalize()] + [label for _, label, _ in columns], rows)
    if rep.get("daily"):
        rows = [
            [d["date"], _fmt("pnl", d["pnl"], "money"), f"{d['pnl_pct']:.2f} %", f"{d.get('max_loss_pct', 0.0):.2f} %"]
            for d in rep["daily"]
        ]
        out += _table("Daily P&L", ["Date", "P&L", "P&L %", "Deepest below open"], rows)
    return "\n".join(out).rstrip() + "\n"
