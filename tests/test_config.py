"""A bad config names the file, the field, the value and the rule; a good one round-trips."""

from pathlib import Path

import pytest

from engine.core.config import ConfigError, Settings, load_settings, save_settings


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text)
    return p


def test_defaults_follow_the_operating_rules() -> None:
    s = Settings()
    assert s.risk.risk_per_trade == 0.005
    assert s.risk.size_schedule == [0.005, 0.01, 0.015, 0.02]
    assert s.risk.daily_loss_limit == 0.05
    assert s.risk.max_drawdown == 0.15
    assert s.risk.max_concurrent_positions == 5
    assert s.risk.max_new_positions_per_day == 3
    assert s.risk.cash_reserve == 0.25
    assert s.risk.stop_loss_required is True
    assert s.risk.max_slippage == 0.005
    assert s.approvals.enabled and s.approvals.timeout_s == 1800


def test_fraction_error_names_file_field_value_and_rule(tmp_path: Path) -> None:
    p = write(tmp_path, "[risk]\ndaily_loss_limit = 1.5\n")
    with pytest.raises(ConfigError) as err:
        load_settings(p)
    assert str(err.value) == f"{p}: risk.daily_loss_limit: 1.5 is not a fraction between 0 and 1"


def test_several_errors_are_all_reported(tmp_path: Path) -> None:
    p = write(
        tmp_path, '[risk]\nmax_concurrent_positions = 0\nmax_drawdwn = 0.1\n[simulator]\nspeed = "fast"\n'
    )
    with pytest.raises(ConfigError) as err:
        load_settings(p)
    msg = str(err.value)
    assert "risk.max_concurrent_positions: 0 must be a whole number of at least 1" in msg
    assert "risk.max_drawdwn: unknown setting" in msg
    assert "simulator.speed" in msg and "'fast'" in msg


def test_type_error_is_readable(tmp_path: Path) -> None:
    p = write(tmp_path, '[risk]\nmax_slippage = "lots"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(p)
    assert "risk.max_slippage: 'lots' is invalid" in str(err.value)


def test_schedule_and_strategy_rules(tmp_path: Path) -> None:
    p = write(tmp_path, "[risk]\nsize_schedule = [0.01, 0.005]\n[strategy]\nfast = 20\nslow = 10\n")
    with pytest.raises(ConfigError) as err:
        load_settings(p)
    assert "risk.size_schedule: [0.01, 0.005] must not decrease" in str(err.value)
    assert "strategy.slow: 10 must be greater than strategy.fast (20)" in str(err.value)


def test_bad_toml_and_bad_timezone(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[risk\n"))
    with pytest.raises(ConfigError, match=r"engine.trading_day_tz: 'Mars/Olympus' is not a known time zone"):
        load_settings(write(tmp_path, '[engine]\ntrading_day_tz = "Mars/Olympus"\n'))


def test_round_trip(tmp_path: Path) -> None:
    s = Settings()
    s.risk.daily_loss_limit = 0.03
    s.simulator.speed = "max"
    p = tmp_path / "c" / "config.toml"
    save_settings(s, p)
    again = load_settings(p)
    assert again == s
    assert load_settings(tmp_path / "missing.toml") == Settings()
