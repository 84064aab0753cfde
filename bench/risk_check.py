"""Latency of one full pre-trade check (all rules, sizing from the stop distance).

Prints a JSON object on its last line: {"median_us": ..., "p99_us": ...}.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.core.config import RiskConfig
from engine.core.model import Instrument, OrderIntent, Side
from engine.risk.risk_engine import CheckInput, RiskEngine


def main(n: int = 100_000) -> None:
    inst = Instrument("BTC/USDT", "BTC", "USDT", Decimal("0.01"), Decimal("0.00001"), Decimal("0.00001"),
                      Decimal("5"))
    risk = RiskEngine(RiskConfig(max_orders_per_second=1e9), lambda *a: None)
    intent = OrderIntent("BTC/USDT", Side.BUY, stop_loss=Decimal("59000.00"), take_profit=Decimal("62000.00"))
    samples = []
    approved = 0
    clock = time.perf_counter_ns
    for i in range(n):
        ci = CheckInput(intent=intent, instrument=inst, bid=Decimal("59999.99"), ask=Decimal("60000.00"),
                        last=Decimal("60000.00"), equity=Decimal("100000"), cash=Decimal("90000"),
                        position_qty=Decimal(0), open_positions=2, new_positions_today=1, now=i * 0.001)
        t0 = clock()
        d = risk.check(ci)
        samples.append(clock() - t0)
        approved += d.approved
    samples.sort()
    median = statistics.median(samples) / 1000
    p99 = samples[int(len(samples) * 0.99)] / 1000
    print(f"{n} checks ({approved} approved): median {median:.1f} us, p99 {p99:.1f} us")
    print(json.dumps({"median_us": round(median, 2), "p99_us": round(p99, 2), "checks": n}))


if __name__ == "__main__":
    main()
