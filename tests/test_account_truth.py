"""Account truth against operator-like accounts on both fakes: 1,000 in cash and holdings from before.

Measured before: the engine assumed the configured 100,000 and sized ~5,000 orders against 1,000
USDT (InsufficientFunds); every reconciliation flagged the coins held before; a base-asset fee left
the book 0.001 BTC long so the round trip never closed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from engine.app.kernel import Engine
from engine.core.clock import SystemClock
from engine.core.model import OrderIntent, Side
from engine.persistence.journal import Journal
from engine.venues.alpaca_venue import AlpacaVenue
from engine.venues.ccxt_venue import CcxtEndpoints, CcxtVenue
from tests.engine_rig import settings_for, stop
from tests.fakes.alpaca import FakeAlpaca
from tests.fakes.binance import FakeBinance
from tests.fakes.harness import guard_loopback, run, wait_for

FAST = {"timeout_s": 1.0, "poll_interval_s": 0.05, "backoff_s": 0.01, "ws_retry_s": 0.3}


@pytest.fixture(autouse=True)
def only_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    guard_loopback(monkeypatch, ("127.0.0.1", "localhost"))


def _settings() -> Any:
    s = settings_for(cash_reserve=0.0, max_position_notional=0.25, max_volatility=1000.0)
    s.approvals.enabled = False
    s.engine.shutdown = "keep"
    return s


@contextlib.asynccontextmanager
async def on_binance(fake: FakeBinance, home: Path) -> AsyncIterator[Engine]:
    symbols = list(fake.instruments)
    ep = CcxtEndpoints(rest_public=fake.rest_url, ws_public=fake.ws_url, ws_private=fake.ws_api_url)
    venue = CcxtVenue(SystemClock(), "acct-key", "acct-secret-1", symbols=symbols, endpoints=ep, **FAST)  # type: ignore[arg-type]
    e = Engine(_settings(), venue, Journal(home / "journal.sqlite"), SystemClock(), symbols=symbols)
    await e.start()
    try:
        await wait_for(lambda: len(e.ticks) == len(symbols), what="ticks")
        yield e
    finally:
        await stop(e)


def _alerts(home: Path, code: str) -> list[str]:
    with Journal(home / "journal.sqlite") as j:
        return [a.message for a in j.alerts() if a.code == code]


def test_binance_small_account_sizes_from_its_cash_keeps_old_coins_and_closes_flat(tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeBinance.real_like(api_key="acct-key", api_secret="acct-secret-1") as fake:
            fake.start_ticking(0.1)
            usdt_before = fake.matching.balances()["USDT"].total
            async with on_binance(fake, tmp_path) as e:
                assert e.portfolio.cash == usdt_before == D(1000)  # the account's cash, not the config's 100,000
                inst, last = e.instruments["BTC/USDT"], e.ticks["BTC/USDT"].last
                stop_at = inst.round_price(last * D("0.98"))
                entry = e.submit_intent(OrderIntent("BTC/USDT", Side.BUY, None, stop_loss=stop_at))
                assert entry is not None and entry.qty * last <= D(1000) * D("0.25") + 1  # sized on 1,000
                await wait_for(lambda: e.portfolio.qty("BTC/USDT") > 0 and not e.execution.inflight, what="the entry")
                held = e.portfolio.qty("BTC/USDT")
                assert held < entry.qty  # the buy's fee was taken in BTC: the position is what the account got
                assert fake.matching.balances()["BTC"].total == held
                # the stop leg covers the position in whole lots, as the venue holds it (ccxt would trim more)
                await wait_for(lambda: any(o.role == "stop_loss" and o.status.is_working for o in e.book.working()),
                               what="the stop leg")  # fmt: skip
                [leg] = [o for o in e.book.working("BTC/USDT") if o.role == "stop_loss"]
                assert leg.qty == inst.round_qty(held) < held
                assert [o.qty for o in fake.matching.open_orders("BTC/USDT")] == [leg.qty]
                summary = await e.close_all("round trip", "tester")
                assert summary["ok"], summary
                assert e.portfolio.qty("BTC/USDT") == 0  # the round trip closed (a fee remainder is dust, kept apart)
                btc_left = fake.matching.balances()["BTC"].total if "BTC" in fake.matching.balances() else D(0)
                assert btc_left == e.portfolio.dust.get("BTC/USDT", D(0)) < e.instruments["BTC/USDT"].lot_size
                # what the account shows: its cash change plus the dust it still holds, at the last price
                account_pnl = fake.matching.balances()["USDT"].total - usdt_before + btc_left * e.ticks["BTC/USDT"].last
                engine_pnl = sum((t.pnl for t in e.portfolio.closed_trades), D(0))
                assert abs(engine_pnl - account_pnl) < D("0.01"), (engine_pnl, account_pnl)
                assert fake.matching.balances()["ETH"].total == D(10)  # the coins from before: untouched
            async with on_binance(fake, tmp_path) as again:  # a restart: the same baseline, nothing flagged
                assert again.account.baseline_for("ETH/USDT") == D(10)
                assert again.reconciler.last_report is not None and again.reconciler.last_report.mismatches == ()  # type: ignore[union-attr]
            assert _alerts(tmp_path, "position_mismatch") == []
            assert fake.matching.balances()["ETH"].total == D(10)

    run(main)


def test_alpaca_small_account_never_sells_the_shares_it_held_before(tmp_path: Path) -> None:
    async def main() -> None:
        symbols = ["AAPL", "MSFT"]
        async with FakeAlpaca.real_like(api_key="PKACCT", secret_key="acct-secret-2", symbols=symbols) as fake:
            venue = AlpacaVenue(SystemClock(), "PKACCT", "acct-secret-2", url_override=fake.url, data_url=fake.url,
                                symbols=symbols, **FAST)  # type: ignore[arg-type]  # fmt: skip
            e = Engine(_settings(), venue, Journal(tmp_path / "journal.sqlite"), SystemClock(), symbols=symbols)
            await e.start()
            try:
                await wait_for(lambda: len(e.ticks) == len(symbols), what="quotes")
                assert e.portfolio.cash == D(1000)
                assert e.account.baseline_for("AAPL") == D(5)
                stop_at = e.instruments["AAPL"].round_price(e.ticks["AAPL"].last * D("0.99"))  # risk 0.2% of 1,000
                assert e.submit_intent(OrderIntent("AAPL", Side.BUY, D(1), stop_loss=stop_at)) is not None
                await wait_for(lambda: e.portfolio.qty("AAPL") == 1 and not e.execution.inflight, what="the buy")
                summary = await e.close_all("end of day", "tester")
                assert summary["ok"], summary
                await wait_for(lambda: fake.matching.positions().get("AAPL") == D(5), what="the venue back at 5")
                assert e.portfolio.qty("AAPL") == 0
                assert e.reconciler.last_report is not None and e.reconciler.last_report.mismatches == ()  # type: ignore[union-attr]
            finally:
                await stop(e)

    run(main)
