"""A bad config names the file, the field, the value and the rule; a good one round-trips."""

import math
import re
import tomllib
import typing
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from engine.core.config import ConfigError, Settings, load_settings, parse_settings, save_settings
from engine.core.config_rules import RiskChangeRefused, apply_risk_changes, validate_risk_changes


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


# --- finite numbers everywhere ---------------------------------------------------------------

def _fields(model: type[BaseModel], kinds: tuple[str, ...], path: str = "") -> Iterator[str]:
    """Every field of these kinds in the settings tree, nested sections and lists of sections included."""
    for name, field in model.model_fields.items():
        ann = field.annotation
        is_list = typing.get_origin(ann) is list
        sub = [a for a in (ann, *typing.get_args(ann)) if isinstance(a, type) and issubclass(a, BaseModel)]
        if sub:
            yield from _fields(sub[0], kinds, f"{path}{name}.{'0.' if is_list else ''}")
        elif any(kind in repr(ann) for kind in kinds):
            yield path + name


def _float_fields(model: type[BaseModel]) -> Iterator[str]:
    return _fields(model, ("float", "Decimal"))


# what a section needs besides the field under test
REQUIRED = {"venues.binance": {"mode": "testnet"}, "venues.alpaca": {"mode": "paper"},
            "alerts.webhooks.0": {"name": "ops", "url_secret": "ops-hook"}}  # fmt: skip
EVERY_FLOAT = sorted(_float_fields(Settings))


def _nested(path: str, value: Any) -> dict[str, Any]:
    *parents, leaf = path.split(".")
    data: Any = {**REQUIRED.get(".".join(parents), {}), leaf: [value] if leaf == "size_schedule" else value}
    for i in range(len(parents) - 1, -1, -1):
        if parents[i] == "0":
            continue
        data = {parents[i]: [data] if i + 1 < len(parents) and parents[i + 1] == "0" else data}
    return data  # type: ignore[no-any-return]


def test_the_walk_finds_the_safety_fields() -> None:
    for path in ("risk.stale_data_s", "risk.max_orders_per_second", "approvals.timeout_s",
                 "simulator.starting_cash", "simulator.speed", "alerts.rules.cooldown_s",
                 "stages.live_micro.capital_cap", "stages.paper.criteria.min_days", "venues.binance.timeout_s",
                 "venues.alpaca.reconcile_backoff_s", "risk.size_schedule"):  # fmt: skip
        assert path in EVERY_FLOAT
    assert len(EVERY_FLOAT) > 60


@pytest.mark.parametrize("path", EVERY_FLOAT)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "nan", "inf", "-inf", "NaN", "Infinity"])
def test_nan_and_inf_are_refused_by_name_everywhere(path: str, bad: Any) -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings(_nested(path, bad), "cfg.toml")
    exc = err.value
    assert exc.file == "cfg.toml" and exc.field.startswith(path), str(exc)
    assert "finite" in exc.rule or "positive, finite" in exc.rule, str(exc)
    assert "\n" not in str(exc)


EVERY_INT = sorted(set(_fields(Settings, ("int",))) - set(EVERY_FLOAT))


@pytest.mark.parametrize("path", EVERY_INT)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_whole_number_fields_refuse_nan_and_inf_too(path: str, bad: float) -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings(_nested(path, bad), "cfg.toml")
    assert err.value.field == path and "finite" in err.value.rule, str(err.value)


def test_toml_nan_and_inf_literals_are_refused_with_file_field_value_and_rule(tmp_path: Path) -> None:
    p = write(tmp_path, "[risk]\nstale_data_s = nan\nmax_orders_per_second = inf\n"
                        '[approvals]\ntimeout_s = "nan"\n[simulator]\nstarting_cash = -inf\n')  # fmt: skip
    with pytest.raises(ConfigError) as err:
        load_settings(p)
    msg = str(err.value)
    assert msg.startswith(f"{p}: risk.max_orders_per_second: inf is not a finite number")
    assert "risk.stale_data_s: nan is not a finite number" in msg
    assert "approvals.timeout_s: 'nan' is not a finite number" in msg
    assert "simulator.starting_cash: -inf is not a finite number" in msg
    assert (err.value.field, err.value.value) == ("risk.max_orders_per_second", "inf")


def test_a_list_item_that_is_nan_is_named_with_its_index() -> None:
    with pytest.raises(ConfigError, match=r"risk\.size_schedule\.1: nan is not a finite number"):
        parse_settings({"risk": {"size_schedule": [0.005, math.nan]}})


# --- the file itself ----------------------------------------------------------------------

def test_a_file_that_is_not_utf8_is_one_line_naming_the_file(tmp_path: Path) -> None:
    p = tmp_path / "config.toml"
    p.write_bytes(b'[engine]\noperator = "Jos\xe9"\n')  # Latin-1
    with pytest.raises(ConfigError) as err:
        load_settings(p)
    assert str(err.value) == f"{p}: is not UTF-8 text (byte 0xe9 on line 2, column 16): save it as UTF-8"
    assert err.value.file == str(p) and err.value.field == ""


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    p = tmp_path / "config.toml"
    p.write_bytes("\ufeff[risk]\ndaily_loss_limit = 0.04\n".encode())
    assert load_settings(p).risk.daily_loss_limit == 0.04


def test_not_toml_and_unreadable_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, "[risk]\ndaily_loss_limit = = 0.1\n"))
    assert "not valid TOML" in err.value.rule and "\n" not in str(err.value)
    folder = tmp_path / "is_a_dir.toml"
    folder.mkdir()
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings(folder)


def test_a_wrong_type_under_a_venue_names_file_field_value_and_rule(tmp_path: Path) -> None:
    p = write(tmp_path, '[venues.binance]\nmode = "testnet"\ntimeout_s = "abc"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(p)
    exc = err.value
    assert (exc.file, exc.field, exc.value) == (str(p), "venues.binance.timeout_s", "'abc'")
    assert exc.rule.startswith("is invalid (input should be a valid number")
    assert str(exc).count("\n") == 0


def test_every_problem_is_kept_for_a_dialog(tmp_path: Path) -> None:
    p = write(tmp_path, "[risk]\nmax_drawdown = 2\nstale_data_s = nan\n")
    with pytest.raises(ConfigError) as err:
        load_settings(p)
    shown = [(q.field, q.value) for q in err.value.problems]
    assert shown == [("risk.max_drawdown", "2"), ("risk.stale_data_s", "nan")]


# --- rules between fields -----------------------------------------------------------------

@pytest.mark.parametrize(
    ("risk", "field", "rule"),
    [
        ({"daily_loss_limit": 0.2, "max_drawdown": 0.1}, "risk.daily_loss_limit",
         "must not exceed risk.max_drawdown (0.1)"),
        ({"risk_per_trade": 0.05, "daily_loss_limit": 0.05}, "risk.risk_per_trade",
         "must be below risk.daily_loss_limit"),
        ({"daily_loss_limit": 0.015, "risk_per_trade": 0.005}, "risk.size_schedule",
         "must stay below risk.daily_loss_limit (0.015)"),
        ({"max_position_notional": 0.9, "cash_reserve": 0.25}, "risk.max_position_notional",
         "must not exceed 1 - risk.cash_reserve (0.75)"),
    ],
)
def test_contradictory_risk_limits_are_refused_by_name(
    tmp_path: Path, risk: dict[str, float], field: str, rule: str
) -> None:
    p = write(tmp_path, "[risk]\n" + "".join(f"{k} = {v}\n" for k, v in risk.items()))
    with pytest.raises(ConfigError) as err:
        load_settings(p)
    found = {q.field: q for q in err.value.problems}
    assert field in found, str(err.value)
    assert rule in found[field].rule
    assert str(err.value).startswith(f"{p}: ")


def test_equal_daily_loss_and_drawdown_are_allowed() -> None:
    s = parse_settings({"risk": {"daily_loss_limit": 0.5, "max_drawdown": 0.5}})
    assert s.risk.daily_loss_limit == s.risk.max_drawdown


def test_other_contradictions_between_sections() -> None:
    with pytest.raises(ConfigError, match=r"stages\.live_scaling\.capital_cap: 2000\.0 must not be below "
                                          r"stages\.live_micro\.capital_cap \(3000\.0\)"):  # fmt: skip
        parse_settings({"stages": {"live_micro": {"capital_cap": 3000}, "live_scaling": {"capital_cap": 2000}}})
    with pytest.raises(ConfigError, match=r"stages\.paper\.venue_modes: \['simulated', 'live'\] must not list 'live'"):
        parse_settings({"stages": {"paper": {"venue_modes": ["simulated", "live"]}}})
    with pytest.raises(ConfigError, match=r"stages\.testnet\.venue_modes: \[\] is empty"):
        parse_settings({"stages": {"testnet": {"venue_modes": []}}})
    with pytest.raises(ConfigError, match=r"approvals\.stages\.0: 'live' is not one of: paper, testnet, live_micro"):
        parse_settings({"approvals": {"stages": ["live"]}})
    with pytest.raises(ConfigError, match=r"approvals\.timeout_s: 0 must be greater than 0"):
        parse_settings({"approvals": {"timeout_s": 0}})


def test_a_real_venue_without_its_section_is_refused_never_live_by_default() -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings({"engine": {"venue": "binance"}})
    assert err.value.field == "venues.binance" and "is required when engine.venue is 'binance'" in err.value.rule


# --- symbols ------------------------------------------------------------------------------

def test_symbols_in_the_wrong_form_are_refused_with_the_expected_form() -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings({"simulator": {"symbols": ["btc/usdt", "ETHUSDT", " SOL/USDT"]}})
    msg = str(err.value)
    assert "simulator.symbols.0: 'btc/usdt' is not a symbol as the venue lists it (expected 'BTC/USDT'" in msg
    assert "simulator.symbols.1: 'ETHUSDT' is not a symbol" in msg and "BASE/QUOTE" in msg
    assert "simulator.symbols.2: ' SOL/USDT'" in msg and "expected 'SOL/USDT'" in msg
    with pytest.raises(ConfigError, match=r"risk\.symbol_allowlist\.0: 'aapl' is not a symbol .*expected 'AAPL'"):
        parse_settings({"risk": {"symbol_allowlist": ["aapl"]}})


def test_empty_and_repeated_symbol_lists_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"simulator\.symbols: \[\] is empty: list at least one symbol"):
        parse_settings({"simulator": {"symbols": []}})
    with pytest.raises(ConfigError, match=r"venues\.binance\.symbols: \[\] is empty"):
        parse_settings({"venues": {"binance": {"mode": "testnet", "symbols": []}}})
    with pytest.raises(ConfigError, match=r"simulator\.symbols: .* lists 'BTC/USDT' twice"):
        parse_settings({"simulator": {"symbols": ["BTC/USDT", "BTC/USDT"]}})
    assert parse_settings({"risk": {"symbol_allowlist": []}}).risk.symbol_allowlist == []  # empty: every symbol


# --- runtime risk changes -----------------------------------------------------------------

def test_a_valid_risk_change_gives_new_limits_and_leaves_the_current_ones() -> None:
    current = Settings().risk
    new = validate_risk_changes(current, {"daily_loss_limit": 0.04, "max_drawdown": 0.1})
    assert (new.daily_loss_limit, new.max_drawdown) == (0.04, 0.1)
    assert (current.daily_loss_limit, current.max_drawdown) == (0.05, 0.15)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"stale_data_s": math.nan}, "risk.stale_data_s"),
        ({"max_orders_per_second": "inf"}, "risk.max_orders_per_second"),
        ({"max_orders_per_second": Decimal("NaN")}, "risk.max_orders_per_second"),
        ({"daily_loss_limit": 1.5}, "risk.daily_loss_limit"),
        ({"daily_loss_limit": 0.3}, "risk.daily_loss_limit"),  # above max_drawdown 0.15
        ({"max_drawdown": 0.01}, "risk.daily_loss_limit"),  # now below the daily loss limit
        ({"risk_per_trade": 0.06}, "risk.risk_per_trade"),
        ({"max_drawdwn": 0.1}, "risk.max_drawdwn"),
        ({"symbol_allowlist": ["btc/usdt"]}, "risk.symbol_allowlist.0"),
    ],
)
def test_a_bad_risk_change_names_the_field_and_applies_nothing(changes: dict[str, Any], field: str) -> None:
    current = Settings().risk
    before = current.model_dump()
    with pytest.raises(ValueError) as err:
        apply_risk_changes(current, {"max_concurrent_positions": 2, **changes})
    assert isinstance(err.value, RiskChangeRefused) and field in {p.field for p in err.value.problems}
    assert field in str(err.value)
    assert current.model_dump() == before


def test_risk_changes_apply_in_place_together() -> None:
    s = Settings()
    held = s.risk  # the risk engine and the breakers hold this object
    # one at a time, raising the daily limit first would contradict the old drawdown; together they hold
    applied = apply_risk_changes(held, {"daily_loss_limit": 0.25, "max_drawdown": 0.3})
    assert applied == {"daily_loss_limit": 0.25, "max_drawdown": 0.3}
    assert s.risk is held and (held.daily_loss_limit, held.max_drawdown) == (0.25, 0.3)


# --- the shipped example and the README agree with the rules ------------------------------

def test_the_readme_venue_example_is_a_valid_config() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", readme, flags=re.S)
    venue_block = next(b for b in blocks if "[venues.binance]" in b)
    s = parse_settings(tomllib.loads(venue_block), "README.md")
    assert s.venues.binance is not None and s.venues.binance.mode == "testnet"
    assert s.venues.alpaca is not None and s.venues.alpaca.mode == "paper"


def test_a_config_that_would_not_load_is_never_written(tmp_path: Path) -> None:
    p = tmp_path / "config.toml"
    save_settings(Settings(), p)
    before = p.read_bytes()
    s = Settings()
    s.risk.max_drawdown = 0.01  # each field valid alone; together with daily_loss_limit 0.05 they contradict
    with pytest.raises(ConfigError, match=r"risk\.daily_loss_limit: 0\.05 must not exceed risk\.max_drawdown"):
        save_settings(s, p)
    assert p.read_bytes() == before and not p.with_suffix(".tmp").exists()


def test_a_section_assignment_that_contradicts_is_refused_and_undone() -> None:
    s = Settings()
    held = s.risk
    wider = held.model_copy(update={"daily_loss_limit": 0.3})  # above max_drawdown 0.15
    with pytest.raises(ValueError, match=r"risk\.daily_loss_limit: 0\.3 must not exceed risk\.max_drawdown"):
        s.risk = wider
    assert s.risk is held and s.risk.daily_loss_limit == 0.05


def test_an_allowlist_that_allows_nothing_traded_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"risk\.symbol_allowlist: \['DOGE/USDT'\] allows none of the symbols the "
                                          r"engine trades \(BTC/USDT, ETH/USDT, SOL/USDT\)"):  # fmt: skip
        parse_settings({"risk": {"symbol_allowlist": ["DOGE/USDT"]}})
    ok = parse_settings({"risk": {"symbol_allowlist": ["ETH/USDT", "DOGE/USDT"]}})
    assert ok.risk.symbol_allowlist == ["ETH/USDT", "DOGE/USDT"]
    with pytest.raises(RiskChangeRefused, match=r"risk\.symbol_allowlist: \['DOGE/USDT'\] allows none"):
        validate_risk_changes(Settings().risk, {"symbol_allowlist": ["DOGE/USDT"]}, traded=["BTC/USDT"])
