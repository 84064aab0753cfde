"""Max drawdown and Sharpe against a second implementation: empyrical-reloaded (a dev-only dependency).

empyrical works on period returns; our figures on the equity curve. The curves here are daily closes
(with an opening sample), so the two see the same returns: empyrical.max_drawdown starts its
cumulative curve at 1 before the first return, which is our opening sample.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from engine.analytics import metrics

empyrical = pytest.importorskip("empyrical")

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def daily_curve(returns: np.ndarray, start: float = 100_000.0) -> list[tuple[datetime, Decimal]]:
    points, value = [(T0, Decimal(repr(start)))], start
    for i, r in enumerate(returns):
        value *= 1 + float(r)
        points.append((T0 + timedelta(days=i, hours=23), Decimal(repr(value))))
    return points


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("days", [30, 45, 120])
def test_sharpe_and_max_drawdown_match_empyrical(seed: int, days: int) -> None:
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0005 * (seed - 3), 0.01 + 0.002 * seed, days)
    curve = daily_curve(returns)
    ours_returns = metrics.daily_returns(curve).to_numpy()
    assert ours_returns == pytest.approx(returns, rel=1e-9, abs=1e-12)  # the same returns go in
    expected_sharpe = empyrical.sharpe_ratio(returns, risk_free=0.0, annualization=365)
    assert metrics.sharpe(curve) == pytest.approx(expected_sharpe, rel=1e-9)
    expected_dd = -empyrical.max_drawdown(returns)  # empyrical's is negative
    assert metrics.drawdown_stats(curve)["max_drawdown"] == pytest.approx(expected_dd, rel=1e-9, abs=1e-12)


def test_below_the_minimum_sample_we_say_none_where_empyrical_gives_a_number() -> None:
    # Three daily returns: empyrical computes a figure (here about -11); we refuse to (None).
    returns = np.array([-0.02, 0.01, -0.03])
    assert np.isfinite(empyrical.sharpe_ratio(returns, annualization=365))
    assert metrics.sharpe(daily_curve(returns)) is None
    assert metrics.sharpe(daily_curve(returns), min_returns=3) == pytest.approx(
        empyrical.sharpe_ratio(returns, annualization=365), rel=1e-9
    )

