"""Plain-text rendering of a DailySummary: ASCII only, so a Slack message, an e-mail and any
terminal (a Windows console too) show it alike. Times are local to the trading-day zone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from engine.alerts.daily_summary import DailySummary


def _money(v: Decimal | None, signed: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:+,.2f}" if signed else f"{v:,.2f}"


def _num(v: Decimal) -> str:
    """A quantity as recorded, without trailing zeros or exponents."""
    return f"{v.normalize():f}"


def _price(v: Decimal) -> str:
    """A price with its tick precision; a computed average is cut to 8 decimals; 2 decimals at least."""
    exp = v.as_tuple().exponent
    if isinstance(exp, int) and exp < -8:
        v = v.quantize(Decimal("1e-8")).normalize()
    whole, _, frac = f"{v:f}".partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def _rows(title: str, lines: Sequence[str], max_rows: int) -> list[str]:
    out = [f"{title} ({len(lines)})"]
    out += [f"  {line}" for line in lines[:max_rows]]
    if len(lines) > max_rows:
        out.append(f"  ... and {len(lines) - max_rows} more (see the .json file)")
    return [*out, ""]


def _table(rows: list[list[str]], right: set[int]) -> list[str]:
    """Columns padded to one width each; the indices in `right` are right-aligned (numbers)."""
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        .rstrip()
        for r in rows
    ]


def render(s: DailySummary, max_rows: int = 20) -> str:
    zone = ZoneInfo(s.tz)

    def hm(ts: datetime, seconds: bool = False) -> str:
        return ts.astimezone(zone).strftime("%H:%M:%S" if seconds else "%H:%M")

    def local(ts: datetime | None) -> str:
        return "-" if ts is None else ts.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    scope = "complete day" if s.complete else f"up to {hm(s.end)}"
    pct = "" if s.day_pnl_pct is None else f" ({s.day_pnl_pct:+.2f} %)"
    lines = [
        f"Daily summary {s.day:%a %Y-%m-%d} ({s.tz}, {scope})",
        f"Equity     {_money(s.start_equity)} -> {_money(s.end_equity)}   day P&L {_money(s.day_pnl, True)}{pct}",
        f"Cash       {_money(s.cash)}   unrealized P&L {_money(s.unrealized, True)}",
        f"Trades     {len(s.fills)} fills, {len(s.closed)} closed positions ({s.wins} won, {s.losses} lost"
        f"{f', {s.breakeven} even' if s.breakeven else ''}), "
        f"realized {_money(s.realized_pnl, True)}, fees {_money(s.fees)}",
        f"Open       {len(s.positions)} positions at the end of the day",
        f"Breakers   {len(s.breaker_events) or 'no'} events",
        "",
    ]
    if s.start_equity is None:
        lines.insert(1, "No equity was recorded for this day (the engine did not run).")
    closed = _table(
        [[hm(t.closed_at), t.symbol, str(t.side).upper(), _num(t.qty),
          f"{_price(t.entry_price)} -> {_price(t.exit_price)}", f"P&L {_money(t.pnl, True)}",
          t.strategy or "", t.tag or ""] for t in s.closed],
        right={3, 5},
    )  # fmt: skip
    if closed:
        lines += _rows("Closed positions", closed, max_rows)
    opened = _table(
        [[p.symbol, "long" if p.qty > 0 else "short", _num(abs(p.qty)), f"@ {_price(p.avg_price)}",
          f"since {local(p.opened_at)}"] for p in s.positions],
        right={2},
    )  # fmt: skip
    if opened:
        lines += _rows("Open positions at the end", opened, max_rows)
    breakers = [f"{hm(a.ts)}  {a.level.name:<9} {a.code}: {a.message}" for a in s.breaker_events]
    if breakers:
        lines += _rows("Breaker events", breakers, max_rows)
    fills = _table(
        [[hm(f.ts, True), str(f.side).upper(), _num(f.qty), f.symbol, f"@ {_price(f.price)}", f"fee {_money(f.fee)}"]
         for f in s.fills],
        right={2},
    )  # fmt: skip
    if fills:
        lines += _rows("Fills", fills, max_rows)
    return "\n".join(lines).rstrip() + "\n"
