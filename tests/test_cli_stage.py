"""`trading-console stage [--json]` as an operator runs it against a journal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from engine.core.model import ClosedTrade, Side
from engine.persistence.journal import Journal
from engine.persistence.journal_schema import dt_to_text


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRADING_CONSOLE_HOME": str(home)}
    env.pop("DISPLAY", None)
    return subprocess.run([sys.executable, "-m", "console", *args], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def _shape(obj: dict) -> None:
    assert isinstance(obj["stage"], str)
    assert obj["criteria"], "a stage always has criteria"
    for c in obj["criteria"]:
        assert {"name", "value", "threshold", "passed"} <= set(c)
        assert isinstance(c["name"], str) and isinstance(c["passed"], bool)
        assert c["value"] is None or isinstance(c["value"], int | float)
        assert isinstance(c["threshold"], int | float)


def test_stage_json_after_a_headless_run(tmp_path: Path) -> None:
    r = cli(tmp_path, "--headless", "--speed", "max", "--duration", "3600", "--seed", "7")
    assert r.returncode == 0, r.stderr
    r = cli(tmp_path, "stage", "--json")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    _shape(obj)
    assert obj["stage"] == "paper" and obj["passed"] is False
    days = next(c for c in obj["criteria"] if c["name"] == "days")
    assert days["threshold"] == 7 and 0 < days["value"] < 0.05  # one hour of engine time


def test_stage_json_reads_the_persisted_stage_and_its_evidence(tmp_path: Path) -> None:
    since = datetime(2026, 3, 1, tzinfo=UTC)
    with Journal(tmp_path / "data" / "journal.sqlite") as j:
        j.set_state("stage", "live_scaling")
        j.set_state("stage_since", dt_to_text(since))
        for i, pnl in enumerate([10, 10, -5, 10]):
            at = since + timedelta(days=4 * i + 1)
            j.record_trade(ClosedTrade("BTC/USDT", Side.BUY, Decimal(1), Decimal(100), Decimal(100 + pnl),
                                       at - timedelta(hours=1), at, Decimal(pnl), Decimal(0)))  # fmt: skip
            j.record_equity(at, Decimal(1000 + i), Decimal(1000), Decimal(0), Decimal(0), Decimal(0))
    obj = json.loads(cli(tmp_path, "stage", "--json").stdout)
    _shape(obj)
    assert obj["stage"] == "live_scaling"
    crit = {c["name"]: c for c in obj["criteria"]}
    assert set(crit) == {"days", "win_rate", "max_drawdown"}
    assert crit["win_rate"]["value"] == 0.75 and crit["win_rate"]["passed"]
    assert crit["days"]["value"] == 13 and not crit["days"]["passed"]  # 13 of 14 days so far
    # day 13 of 14 at live scaling: the second half of [1.5%, 2%], capital capped at 5000
    assert obj["limits"]["risk_per_trade"] == 0.02 and obj["limits"]["size_step"] == 2
    assert obj["limits"]["capital_cap"] == 5000
    text = cli(tmp_path, "stage").stdout
    assert "capital cap 5,000" in text
    assert "Live scaling" in text and "[FAIL]" in text and "off by 1.00 days" in text


def test_stage_json_without_a_journal_shows_the_initial_stage(tmp_path: Path) -> None:
    r = cli(tmp_path, "stage", "--json")
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    _shape(obj)
    assert obj["stage"] == "paper"
    assert not (tmp_path / "data" / "journal.sqlite").exists()


def test_approvals_list_empty_and_unknown_id(tmp_path: Path) -> None:
    Journal(tmp_path / "data" / "journal.sqlite").close()
    r = cli(tmp_path, "approvals", "list", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == []
    r = cli(tmp_path, "approvals", "approve", "nope", "--wait", "0")
    assert r.returncode == 1 and "no pending approval nope" in r.stderr
