"""The command line as an operator uses it: headless run, report, audit verify, signals."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

EXE = [sys.executable, "-m", "console"]


def cli(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRADING_CONSOLE_HOME": str(home)}
    env.pop("DISPLAY", None)
    return subprocess.run([*EXE, *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    homes = (tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b"))
    for home in homes:
        r = cli(home, "--headless", "--speed", "max", "--duration", "3600", "--seed", "7")
        assert r.returncode == 0, r.stderr
        assert "equity" in r.stdout
    return homes


def test_headless_run_journals_fills_and_reports_json(two_runs: tuple[Path, Path]) -> None:
    home = two_runs[0]
    with sqlite3.connect(home / "data" / "journal.sqlite") as db:
        assert db.execute("select count(*) from fills").fetchone()[0] > 0
    r = cli(home, "report", "--json")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    rep = json.loads(lines[0])
    for key in ("trades", "win_rate", "profit_factor", "max_drawdown", "sharpe"):
        assert key in rep
    for key in ("trades", "win_rate", "max_drawdown"):
        assert isinstance(rep[key], int | float)
    assert rep["sharpe"] is None  # one simulated hour is too few daily returns: "not enough data", never 0.0
    assert rep["trades"] > 0


def test_same_seed_same_report(two_runs: tuple[Path, Path]) -> None:
    a, b = (cli(home, "report", "--json").stdout for home in two_runs)
    assert a == b


def test_text_report_sections(two_runs: tuple[Path, Path]) -> None:
    r = cli(two_runs[0], "report", "--section", "trades")
    assert r.returncode == 0 and "win" in r.stdout.lower()


def test_audit_verify_detects_tampering(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    home = two_runs[1]
    assert cli(home, "audit", "verify").returncode == 0
    db_path = home / "data" / "journal.sqlite"
    with sqlite3.connect(db_path) as db:
        db.execute("drop trigger if exists audit_no_update")
        for (name,) in db.execute("select name from sqlite_master where type='trigger'").fetchall():
            db.execute(f"drop trigger {name}")
        db.execute("update audit set reason = 'nothing to see' where id = 1")
    r = cli(home, "audit", "verify")
    assert r.returncode != 0
    assert "1" in r.stdout


def test_bad_config_is_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text("[risk]\ndaily_loss_limit = 1.5\n")
    r = cli(tmp_path, "--headless", "--duration", "1")
    assert r.returncode == 2
    assert "risk.daily_loss_limit: 1.5 is not a fraction between 0 and 1" in r.stderr
    assert "Traceback" not in r.stderr


def test_sigterm_shuts_down_cleanly_and_cancels_orders(tmp_path: Path) -> None:
    env = {**os.environ, "TRADING_CONSOLE_HOME": str(tmp_path)}
    env.pop("DISPLAY", None)
    proc = subprocess.Popen([*EXE, "--headless", "--speed", "50"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the banner: the engine is running
    assert "trading-console headless" in first
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "received SIGTERM: shutting down (cancel_orders)" in out
    with sqlite3.connect(tmp_path / "data" / "journal.sqlite") as db:
        actions = [a for (a,) in db.execute("select action from audit order by id")]
    assert "engine_shutdown" in actions
