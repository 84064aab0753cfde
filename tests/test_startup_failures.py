"""Start-up failures through the real command line: one clear line and a distinct exit code, never a
traceback; a journal that existed and is gone or empty is never a silent fresh start; a venue that
cannot be reached starts HALTED and says why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXE = [sys.executable, "-m", "console"]
ROOT = Path(__file__).resolve().parents[1]


def cli(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if k != "DISPLAY" and not k.startswith("TRADING_CONSOLE_")}
    full = {**inherited, "TRADING_CONSOLE_HOME": str(home), **(env or {})}
    return subprocess.run([*EXE, *args], env=full, capture_output=True, text=True, timeout=120, cwd=ROOT)


def _short_run(home: Path) -> subprocess.CompletedProcess[str]:
    return cli(home, "--headless", "--speed", "max", "--duration", "600", "--seed", "3", "--no-control")


def _one_clear_line(r: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert lines, "no message"
    return lines[-1]


def test_an_emptied_journal_is_refused_not_a_silent_fresh_start(tmp_path: Path) -> None:
    assert _short_run(tmp_path).returncode == 0
    journal = tmp_path / "data" / "journal.sqlite"
    journal.write_bytes(b"")  # a 0-byte journal where one existed
    for suffix in ("-wal", "-shm"):
        Path(f"{journal}{suffix}").unlink(missing_ok=True)
    r = _short_run(tmp_path)
    assert r.returncode == 21, (r.returncode, r.stderr)
    line = _one_clear_line(r)
    assert "journal" in line and "--new-journal" in line
    assert journal.stat().st_size == 0  # nothing written over it
    again = cli(tmp_path, "--headless", "--speed", "max", "--duration", "600", "--seed", "3", "--no-control",
                "--new-journal")  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert list((tmp_path / "data" / "archive").iterdir())  # the old one kept, not deleted


def test_a_missing_journal_where_one_existed_is_refused(tmp_path: Path) -> None:
    assert _short_run(tmp_path).returncode == 0
    for f in (tmp_path / "data").glob("journal.sqlite*"):
        f.unlink()
    r = _short_run(tmp_path)
    assert r.returncode == 21
    assert "journal" in _one_clear_line(r)


def test_a_binance_config_without_credentials_says_so_and_exits_10(tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    cfg.mkdir(parents=True)
    (cfg / "config.toml").write_text(
        '[engine]\nvenue = "binance"\n\n[stages]\ninitial = "testnet"\n\n'
        '[venues.binance]\nmode = "testnet"\n'
    )
    r = cli(tmp_path, "--headless", "--duration", "1", "--no-control")
    assert r.returncode == 10, (r.returncode, r.stderr)
    line = _one_clear_line(r)
    assert "credentials" in line and "TRADING_CONSOLE_BINANCE_API_KEY" in line


def test_a_venue_that_cannot_be_reached_starts_halted_and_says_why(tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    cfg.mkdir(parents=True)
    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    (cfg / "config.toml").write_text(
        '[engine]\nvenue = "binance"\nshutdown = "keep"\n\n[stages]\ninitial = "testnet"\n\n'
        f'[venues.binance]\nmode = "testnet"\ntimeout_s = 1.0\nrest_public = "{dead}/api/v3"\n'
        f'rest_private = "{dead}/api/v3"\nws_public = "ws://127.0.0.1:9/ws"\nws_private = "ws://127.0.0.1:9/ws-api/v3"\n'
    )
    env = {"TRADING_CONSOLE_BINANCE_API_KEY": "k-start", "TRADING_CONSOLE_BINANCE_API_SECRET": "s-start-secret"}
    r = cli(tmp_path, "--headless", "--duration", "8", "--no-control", env=env)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert "HALTED" in first and "unreachable at start" in first
