"""P&L accounting against hand-computed cases."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from engine.core.model import Fill, Side
from engine.oms.portfolio import Portfolio

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
_n = iter(range(1, 10_000))


def fill(
    side: Side, qty: str, price: str, fee: str = "0", minutes: int = 0, symbol: str = "BTC/USDT"
) -> Fill:
    n = next(_n)
    return Fill(f"f{n}", f"o{n}", symbol, side, D(qty), D(price), D(fee), T0 + timedelta(minutes=minutes))


def test_buy_then_sell_all_realizes_net_of_fees() -> None:
    pf = Portfolio(D("10000"))
    pf.apply_fill(fill(Side.BUY, "2", "100", fee="0.2"))
    # cash: 10000 - 200 - 0.2 = 9799.8
    assert pf.cash == D("9799.8")
    pf.mark("BTC/USDT", D("110"), T0)
    assert pf.unrealized == D("20")  # 2 * (110 - 100)
    assert pf.equity == D("10019.8")
    res = pf.apply_fill(fill(Side.SELL, "2", "110", fee="0.22", minutes=5))
    # realised: (110-100)*2 - 0.2 - 0.22 = 19.58
    assert pf.realized == D("19.58")
    assert pf.cash == D("10019.58")
    assert res.trade is not None
    assert res.trade.pnl == D("19.58")
    assert res.trade.fees == D("0.42")
    assert res.position.qty == 0


def test_partial_close_keeps_average_and_realizes_part() -> None:
    pf = Portfolio(D("10000"))
    pf.apply_fill(fill(Side.BUY, "1", "100"))
    pf.apply_fill(fill(Side.BUY, "1", "120"))  # avg (100 + 120) / 2 = 110
    assert pf.position("BTC/USDT").avg_price == D("110")
    res = pf.apply_fill(fill(Side.SELL, "0.5", "130", fee="0.1"))
    # realised (130 - 110) * 0.5 - 0.1 = 9.9; avg unchanged on a reduction
    assert res.realized == D("9.9")
    assert res.trade is None
    pos = pf.position("BTC/USDT")
    assert pos.qty == D("1.5") and pos.avg_price == D("110")


def test_reduced_then_increased_reaverages_on_the_remaining_quantity() -> None:
    pf = Portfolio(D("10000"))
    pf.apply_fill(fill(Side.BUY, "2", "100"))
    pf.apply_fill(fill(Side.SELL, "1", "90"))  # realise -10, 1 left @100
    pf.apply_fill(fill(Side.BUY, "1", "80"))  # avg (1*100 + 1*80) / 2 = 90
    pos = pf.position("BTC/USDT")
    assert pos.qty == D("2") and pos.avg_price == D("90")
    assert pf.realized == D("-10")
    res = pf.apply_fill(fill(Side.SELL, "2", "95"))
    # second leg realises (95 - 90) * 2 = 10; round trip total 0 gross, entry qty 3
    assert res.trade is not None
    assert res.trade.pnl == D("0")
    assert res.trade.qty == D("3")
    assert pf.realized == D("0")


def test_short_and_flip_through_zero() -> None:
    pf = Portfolio(D("10000"))
    pf.apply_fill(fill(Side.SELL, "1", "100"))  # short 1 @100
    pf.mark("BTC/USDT", D("90"), T0)
    assert pf.unrealized == D("10")
    res = pf.apply_fill(fill(Side.BUY, "3", "90", fee="0.3"))
    # closes the short: +10 gross, fee share 0.1 -> trade pnl 9.9; opens long 2 @90 with fee 0.2 paid
    assert res.trade is not None and res.trade.pnl == D("9.9")
    pos = pf.position("BTC/USDT")
    assert pos.qty == D("2") and pos.avg_price == D("90")
    assert pf.realized == D("9.7")  # 10 - 0.3 in fees paid so far
    assert res.opened


def test_equity_identity_holds() -> None:
    pf = Portfolio(D("5000"))
    pf.apply_fill(fill(Side.BUY, "3", "10", fee="0.03"))
    pf.apply_fill(fill(Side.SELL, "1", "12", fee="0.012"))
    pf.mark("BTC/USDT", D("11"), T0)
    assert pf.equity == pf.starting_cash + pf.realized + pf.unrealized


def test_day_pnl_and_drawdown_include_open_positions() -> None:
    pf = Portfolio(D("1000"))
    pf.mark("BTC/USDT", D("100"), T0)
    pf.apply_fill(fill(Side.BUY, "5", "100"))
    pf.mark("BTC/USDT", D("120"), T0 + timedelta(hours=1))
    assert pf.drawdown == 0 and pf.peak_equity == D("1100")
    pf.mark("BTC/USDT", D("78"), T0 + timedelta(hours=2))  # equity 1000 - 500 + 390 = 890
    assert pf.equity == D("890")
    assert pf.drawdown == (D("1100") - D("890")) / D("1100")
    assert pf.day_pnl == D("-110")
    # a new UTC day starts from the current equity
    pf.mark("BTC/USDT", D("78"), datetime(2026, 3, 3, 0, 0, 1, tzinfo=UTC))
    assert pf.day_pnl == 0


def test_trading_day_in_another_zone() -> None:
    pf = Portfolio(D("1000"), day_tz="America/New_York")
    pf.mark("X", D("1"), datetime(2026, 3, 2, 4, 0, tzinfo=UTC))  # 23:00 in New York, 1 March
    pf.apply_fill(fill(Side.BUY, "100", "1", symbol="X"))
    pf.mark("X", D("2"), datetime(2026, 3, 2, 4, 30, tzinfo=UTC))
    assert pf.day_pnl == D("100")
    pf.mark("X", D("2"), datetime(2026, 3, 2, 5, 1, tzinfo=UTC))  # 00:01 in New York: new day
    assert pf.day_pnl == 0
