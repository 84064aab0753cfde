"""The risk gauges as data: breaker values plus the live use of the pre-trade limits."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.core.model import RuleValue

if TYPE_CHECKING:
    from engine.ports import RiskHost


def rule_values(engine: RiskHost) -> list[RuleValue]:
    cfg = engine.risk.cfg
    pf = engine.portfolio
    equity = float(pf.equity) or 1.0
    exposure = float(pf.gross_exposure) / equity
    gauges = engine.breakers.rule_values()
    gauges += [
        RuleValue(
            "exposure",
            "Exposure",
            exposure,
            1.0 - cfg.cash_reserve,
            "%",
            f"Gross position value as a share of equity; {cfg.cash_reserve:.0%} is kept as cash reserve.",
            cfg.warn_at,
        ),
        RuleValue(
            "open_positions",
            "Open positions",
            float(pf.open_count()),
            float(cfg.max_concurrent_positions),
            "",
            "Concurrent open positions; at the limit new positions are refused.",
            cfg.warn_at,
        ),
        RuleValue(
            "new_positions",
            "New today",
            float(engine.new_positions_today),
            float(cfg.max_new_positions_per_day),
            "",
            "Positions opened this trading day; at the limit new positions are refused.",
            cfg.warn_at,
        ),
        RuleValue(
            "order_rate",
            "Order rate",
            float(engine.risk.orders_last_second(engine.clock.monotonic())),
            cfg.max_orders_per_second,
            "/s",
            "Orders in the last second; above the limit orders are refused.",
            cfg.warn_at,
        ),
    ]
    stage = engine.risk.stage
    if stage is not None and stage.capital_cap is not None:
        gauges.append(
            RuleValue(
                "stage_capital",
                "Stage capital",
                float(pf.gross_exposure),
                float(stage.capital_cap),
                "",
                f"Position value against the {stage.stage} stage's capital cap; above it new exposure is refused.",
                cfg.warn_at,
            )
        )
    return gauges
