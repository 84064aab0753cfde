"""The daily summary: its figures against the journal of a real run, once a day across restarts,
the files, the alert, and the schedule (when a day falls due and which missed days are caught up)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from engine.alerts.daily_summary import DayData, build_daily_summary, day_window
from engine.alerts.daily_summary_schedule import STATE_KEY, due_days, fire_time
from engine.analytics import metrics
from engine.core.config import save_settings
from engine.core.events import AlertEvent
from engine.core.model import AlertLevel, ClosedTrade, Fill, Side
from engine.core.paths import AppPaths
from engine.persistence.journal import Journal
from engine.persistence.journal_schema import AlertRecord
from tests.engine_rig import START, buy, make_engine, settings_for, started, stop, until

pytestmark = pytest.mark.timeout(120)

TOKYO = "Asia/Tokyo"  # UTC+9: the rig starts at 09:00 UTC = 18:00 in Tokyo on Mon 2 Feb 2026
DAY = date(2026, 2, 2)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 100))


# --- the schedule (pure) --------------------------------------------------------------------------


def at_tokyo(d: date, hh: int, mm: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, hh, mm, tzinfo=UTC) - timedelta(hours=9)


def test_fire_time_evening_is_the_same_day_morning_is_the_next() -> None:
    assert fire_time(DAY, "23:59", TOKYO) == at_tokyo(DAY, 23, 59)
    assert fire_time(DAY, "00:05", TOKYO) == at_tokyo(DAY + timedelta(days=1), 0, 5)  # the complete day


def test_due_days() -> None:
    started_at = at_tokyo(DAY, 9)
    # before 23:59 nothing is due; from 23:59 the day is, once
    assert due_days(at_tokyo(DAY, 23, 58), None, started_at, "23:59", TOKYO) == []
    assert due_days(at_tokyo(DAY, 23, 59), None, started_at, "23:59", TOKYO) == [DAY]
    assert due_days(at_tokyo(DAY, 23, 59), DAY, started_at, "23:59", TOKYO) == []
    # a fast simulator that ran three days between two checks gets all three, oldest first
    later = at_tokyo(DAY + timedelta(days=3), 1)
    assert due_days(later, None, started_at, "23:59", TOKYO) == [DAY + timedelta(days=i) for i in range(3)]
    # a fresh journal started after the day's time: nothing to catch up on
    assert due_days(at_tokyo(DAY, 23, 59, ), None, at_tokyo(DAY, 23, 59, ) + timedelta(seconds=1), "23:59",
                    TOKYO) == []  # fmt: skip
    # stopped for a weekend: one catch-up for the latest missed day, not one per day
    monday = date(2026, 2, 9)
    restart = at_tokyo(monday, 8)
    assert due_days(restart, date(2026, 2, 5), restart, "23:59", TOKYO) == [date(2026, 2, 8)]


# --- the figures (pure, hand-made day) ------------------------------------------------------------


def row(ts: datetime, equity: str, cash: str, unrealized: str = "0") -> dict[str, object]:
    return {"ts": ts, "equity": Decimal(equity), "cash": Decimal(cash), "unrealized": Decimal(unrealized),
            "realized": Decimal(0), "drawdown": Decimal(0)}  # fmt: skip


def fill(n: int, ts: datetime, side: Side, qty: str, price: str, symbol: str = "BTC/USDT") -> Fill:
    return Fill(f"f{n}", f"c{n}", symbol, side, Decimal(qty), Decimal(price), Decimal("0.5"), ts)


def test_summary_of_a_hand_made_day() -> None:
    start, end = day_window(DAY, TOKYO)  # 15:00 UTC on Feb 1 .. 15:00 UTC on Feb 2
    h = timedelta(hours=1)
    data = DayData(
        opening=row(start - h, "1000", "1000"),  # yesterday's close opens the day
        samples=[row(start + h, "990", "790", "-10"), row(start + 5 * h, "1030", "830", "30")],
        fills=[
            fill(1, start - 2 * h, Side.BUY, "1", "200", "ETH/USDT"),  # yesterday: still held today
            fill(2, start + h, Side.BUY, "2", "100"),
            fill(3, start + 2 * h, Side.SELL, "2", "110"),
        ],
        trades=[ClosedTrade("BTC/USDT", Side.BUY, Decimal(2), Decimal(100), Decimal(110), start + h,
                            start + 2 * h, Decimal("19"), Decimal("1"), tag="breakout", strategy="ema")],
        alerts=[
            AlertRecord(1, start + 3 * h, AlertLevel.WARNING, "breaker_warning:daily_loss", "at 80%", "k"),
            AlertRecord(2, start + 3 * h, AlertLevel.WARNING, "stop_loss_hit", "not a breaker", "k2"),
            AlertRecord(3, end + h, AlertLevel.CRITICAL, "breaker_trip:drawdown", "tomorrow", "k3"),
        ],
    )  # fmt: skip
    s = build_daily_summary(data, DAY, TOKYO)
    assert (s.start_equity, s.end_equity, s.day_pnl) == (Decimal(1000), Decimal(1030), Decimal(30))
    assert s.day_pnl_pct == pytest.approx(3.0)  # 30 / 1000
    assert (s.cash, s.unrealized) == (Decimal(830), Decimal(30))  # the day's last sample
    assert [f.fill_id for f in s.fills] == ["f2", "f3"]  # yesterday's fill is not today's trade
    assert s.fees == Decimal("1.0")
    assert [(t.symbol, t.pnl) for t in s.closed] == [("BTC/USDT", Decimal(19))]
    assert (s.realized_pnl, s.wins, s.losses) == (Decimal(19), 1, 0)
    assert [(p.symbol, p.qty, p.avg_price) for p in s.positions] == [("ETH/USDT", Decimal(1), Decimal(200))]
    assert [a.code for a in s.breaker_events] == ["breaker_warning:daily_loss"]
    assert s.complete
    # the day P&L is the one the metrics report shows for that trading day
    curve = [(r["ts"], r["equity"]) for r in [data.opening, *data.samples]]  # type: ignore[index]
    assert metrics.daily_pnl(curve, TOKYO)[-1][:2] == (DAY, 30.0)

    text = s.text()
    assert text.isascii()
    assert "Daily summary Mon 2026-02-02 (Asia/Tokyo, complete day)" in text
    assert "1,000.00 -> 1,030.00" in text and "day P&L +30.00 (+3.00 %)" in text
    assert "2 fills, 1 closed positions (1 won, 0 lost), realized +19.00" in text
    assert "100.00 -> 110.00" in text and "breakout" in text
    assert "ETH/USDT  long  1  @ 200.00" in text
    assert "breaker_warning:daily_loss" in text and "tomorrow" not in text
    doc = json.loads(s.to_json())
    assert doc["day"] == "2026-02-02" and doc["day_pnl"] == "30" and doc["closed_count"] == 1
    assert doc["open_positions"] == [{"symbol": "ETH/USDT", "qty": "1", "avg_price": "200",
                                      "opened_at": (start - 2 * h).isoformat(timespec="microseconds")}]  # fmt: skip


def test_a_day_cut_short_and_a_day_without_data() -> None:
    start, _ = day_window(DAY, "UTC")
    data = DayData(samples=[row(start + timedelta(hours=1), "100", "100"), row(start + timedelta(hours=3), "90", "90")])
    s = build_daily_summary(data, DAY, "UTC", until=start + timedelta(hours=2))
    assert not s.complete
    assert (s.start_equity, s.end_equity) == (Decimal(100), Decimal(100))  # the 03:00 sample is after `until`
    assert "up to 02:00" in s.text()
    empty = build_daily_summary(DayData(), DAY, "UTC")
    assert empty.start_equity is None and empty.day_pnl is None
    assert "did not run" in empty.text()
    json.loads(empty.to_json())


# --- a real engine run ----------------------------------------------------------------------------


def tokyo_settings(at: str = "18:10"):  # type: ignore[no-untyped-def]
    s = settings_for()
    s.engine.trading_day_tz = TOKYO
    s.alerts.daily_summary.at = at
    return s


def test_summary_of_a_real_run_matches_the_journal_and_is_sent_once_across_a_restart(tmp_path: Path) -> None:
    home = tmp_path / "data"  # the rig puts the journal here: TRADING_CONSOLE_HOME=tmp_path
    settings = tokyo_settings()
    fire = fire_time(DAY, "18:10", TOKYO)  # 09:10 UTC, ten simulated minutes after the start
    assert fire - timedelta(minutes=10) == START
    alerts: list[AlertEvent] = []

    async def first_run() -> None:
        e = make_engine(home, settings)
        e.bus.subscribe(alerts.append, AlertEvent)
        await started(e)
        assert e.clock.now() < fire
        for symbol in ("BTC/USDT", "ETH/USDT"):
            assert e.submit_intent(buy(e, symbol)) is not None
        await until(lambda: e.portfolio.open_count() == 2, what="two positions")
        assert e.close_position("BTC/USDT", "alice") is not None
        await until(lambda: len(e.portfolio.closed_trades) == 1, what="a round trip")
        e.alert(AlertLevel.WARNING, "breaker_warning:daily_loss", "Daily loss at 80% of its limit", "bw")
        assert e.clock.now() < fire, "the test must trade before the summary time"
        await until(lambda: bool(e.daily_summary.sent), timeout=60, what="the daily summary")
        await until(lambda: not e.daily_summary.busy, what="the summary job to end")
        await stop(e)

    run(first_run())
    sent = [a for a in alerts if a.code == "daily_summary"]
    assert len(sent) == 1
    assert sent[0].level is AlertLevel.INFO and sent[0].key == "daily_summary:2026-02-02"

    txt, js = home / "summaries" / "2026-02-02.txt", home / "summaries" / "2026-02-02.json"
    assert txt.read_text(encoding="utf-8") == sent[0].message
    doc = json.loads(js.read_text(encoding="utf-8"))
    # times are compared as times: Python's isoformat() drops ".000000" when the microseconds are 0,
    # the journal's text never does, so comparing strings failed whenever the clock hit a whole second
    assert doc["complete"] is False and datetime.fromisoformat(doc["end"]) == fire + timedelta(microseconds=1)

    with Journal(home / "journal.sqlite") as j:  # recompute every figure from the raw journal
        assert j.get_state(STATE_KEY) == "2026-02-02"
        start, _ = day_window(DAY, TOKYO)
        fills = [f for f in j.fills() if start <= f.ts <= fire]
        trades = [t for t in j.trades() if start <= t.closed_at <= fire]
        curve = [(p.ts, p.equity) for p in j.equity_curve() if p.ts <= fire]
        last = j.equity_samples(start, fire + timedelta(microseconds=1))[-1]  # the last one at or before
        again = build_daily_summary(j, DAY, TOKYO, until=fire)
    assert again.to_dict() == doc and again.text() == sent[0].message  # file, message and journal agree
    assert [f["fill_id"] for f in doc["fills"]] == [f.fill_id for f in fills] and len(fills) == 3
    assert [datetime.fromisoformat(t["closed_at"]) for t in doc["closed_positions"]] == [t.closed_at for t in trades]
    assert Decimal(doc["realized_pnl"]) == sum(t.pnl for t in trades) and len(trades) == 1
    assert Decimal(doc["fees"]) == sum(f.fee for f in fills)
    assert Decimal(doc["start_equity"]) == curve[0][1]  # the engine's first day: its first sample
    assert (Decimal(doc["end_equity"]), Decimal(doc["cash"])) == (last["equity"], last["cash"])
    assert float(doc["day_pnl"]) == pytest.approx(metrics.daily_pnl(curve, TOKYO)[-1][1])
    eth = sum(f.qty if f.side is Side.BUY else -f.qty for f in fills if f.symbol == "ETH/USDT")
    assert [(p["symbol"], Decimal(p["qty"])) for p in doc["open_positions"]] == [("ETH/USDT", eth)]
    assert [b["code"] for b in doc["breaker_events"]] == ["breaker_warning:daily_loss"]
    assert "breaker_warning:daily_loss" in sent[0].message and "BTC/USDT" in sent[0].message
    written = txt.stat().st_mtime_ns

    async def second_run() -> None:  # the clock starts at 09:00 again and passes 09:10 again
        e = make_engine(home, settings)
        e.bus.subscribe(alerts.append, AlertEvent)
        await started(e)
        sched = e.daily_summary
        await until(lambda: sched.checked_at is not None and sched.checked_at > fire + timedelta(minutes=1),
                    timeout=60, what="a check after the summary time")  # fmt: skip
        assert sched.sent == [] and not sched.busy
        await stop(e)

    run(second_run())
    assert len([a for a in alerts if a.code == "daily_summary"]) == 1  # still the one from the first run
    assert txt.stat().st_mtime_ns == written


def test_cli_summary_prints_the_journal_day(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from console.cli import summary

    paths = AppPaths(tmp_path / "config", tmp_path / "data", tmp_path / "logs")
    settings = tokyo_settings("23:59")
    save_settings(settings, paths.config_file)

    async def trade() -> None:
        e = make_engine(paths.data_dir, settings)
        await started(e)
        assert e.submit_intent(buy(e, "SOL/USDT")) is not None
        await until(lambda: e.portfolio.open_count() == 1, what="a position")
        await stop(e)

    run(trade())
    assert summary(paths, "2026-02-02", as_json=True) == 0
    doc = json.loads(capsys.readouterr().out)
    # the journal's latest day is still running: it is summarised up to its last record
    assert doc["complete"] is False
    until_ = datetime.fromisoformat(doc["end"]) - timedelta(microseconds=1)
    with Journal(paths.journal_file) as j:
        expected = build_daily_summary(j, DAY, TOKYO, until=until_).to_dict()
        assert until_ == max(j.last_fill_ts(), j.equity_curve()[-1].ts)  # type: ignore[type-var]
    assert doc == expected and doc["tz"] == TOKYO and doc["fills_count"] == 1
    assert summary(paths, None, as_json=False) == 0  # the journal's latest day, in text
    out = capsys.readouterr().out
    assert out.startswith("Daily summary Mon 2026-02-02 (Asia/Tokyo, up to ")
    assert "SOL/USDT" in out
    assert summary(paths, "yesterday", as_json=False) == 2



def test_a_breakeven_trade_is_neither_won_nor_lost_in_the_summary() -> None:
    start, _ = day_window(DAY, "UTC")

    def closed(pnl: str, minute: int) -> ClosedTrade:
        at = start + timedelta(hours=10, minutes=minute)
        p = Decimal(pnl)
        return ClosedTrade("BTC/USDT", Side.BUY, Decimal(1), Decimal(100), 100 + p, at, at, p, Decimal(0))

    summary = build_daily_summary(DayData(trades=[closed("5", 1), closed("0", 2), closed("-3", 3)]), DAY)
    assert (summary.wins, summary.losses, summary.breakeven) == (1, 1, 1)
    assert summary.to_dict()["breakeven"] == 1
    assert "3 closed positions (1 won, 1 lost, 1 even)" in summary.text()
