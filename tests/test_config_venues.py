"""Typed [venues.*]: a mode spelled exactly (never LIVE by omission), endpoints together or none,
and a stage that runs only the venue modes it allows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.core.config import ConfigError, Settings, load_settings, parse_settings, save_settings
from engine.core.environment import DEFAULT_ENDPOINTS
from engine.core.stage_venues import (
    StageVenueRefused,
    allowed_modes,
    check_stage_allows,
    running_venue_refusal,
    stage_venue_problem,
)
from engine.core.venue_settings import AlpacaMode, BinanceMode, VenueSettingsRefused

LOCAL = "127.0.0.1:8765"
BINANCE_LOCAL = {
    "rest_public": f"http://{LOCAL}/api/v3",
    "rest_private": f"http://{LOCAL}/api/v3",
    "ws_public": f"ws://{LOCAL}/ws",
    "ws_private": f"ws://{LOCAL}/ws-api/v3",
}
ALPACA_LOCAL = {
    "endpoint": f"http://{LOCAL}",
    "data_url": f"http://{LOCAL}",
    "stream_url": f"ws://{LOCAL}/stream",
    "data_stream_url": f"ws://{LOCAL}/data",
}


def venue(name: str, **conf: Any) -> Settings:
    return parse_settings({"venues": {name: conf}}, "config.toml")


def refused(name: str, **conf: Any) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        venue(name, **conf)
    assert "\n" not in str(err.value)
    return err.value


# --- modes --------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["Testnet", "TESTNET", "paper", "sandbox", "Live", "", "test net"])
def test_a_binance_mode_is_spelled_exactly_or_refused_listing_the_allowed(mode: str) -> None:
    err = refused("binance", mode=mode)
    assert (err.field, err.value) == ("venues.binance.mode", repr(mode))
    assert err.rule == "is not one of: testnet, live (written exactly so, lower case)"


@pytest.mark.parametrize("mode", ["Paper", "testnet", "sandbox", "LIVE"])
def test_an_alpaca_mode_is_spelled_exactly_or_refused(mode: str) -> None:
    err = refused("alpaca", mode=mode)
    assert err.field == "venues.alpaca.mode" and "is not one of: paper, live" in err.rule


@pytest.mark.parametrize("name", ["binance", "alpaca"])
def test_a_missing_mode_is_an_error_never_live(name: str, tmp_path: Path) -> None:
    p = tmp_path / "config.toml"
    p.write_text(f'[engine]\nvenue = "{name}"\n[venues.{name}]\naccount = "main"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(p)
    allowed = "testnet, live" if name == "binance" else "paper, live"
    assert str(err.value) == f"{p}: venues.{name}.mode: required (one of: {allowed})"


def test_modes_are_enums_and_defaults_are_as_documented() -> None:
    b = venue("binance", mode="testnet").venues.binance
    assert b is not None and b.mode is BinanceMode.TESTNET and b.custom_endpoints is None
    assert (b.reconcile_interval_s, b.reconcile_attempts, b.reconcile_backoff_s, b.reconcile_overlap_s) == (
        60.0, 3, 0.5, 60.0)  # fmt: skip
    assert (b.timeout_s, b.account, b.symbols) == (10.0, "default", None)
    a = venue("alpaca", mode="live").venues.alpaca
    assert a is not None and a.mode is AlpacaMode.LIVE and a.feed == "iex" and a.trading_url is None


def test_unknown_keys_and_venues_are_refused_listing_the_known_ones() -> None:
    err = refused("binance", mode="testnet", timeout=3)
    assert err.field == "venues.binance.timeout"
    assert err.rule.startswith("unknown setting (check the spelling; known: ") and "timeout_s" in err.rule
    assert "reconcile_overlap_s" in err.rule and "ws_private" in err.rule
    err = refused("kraken", mode="live")
    assert err.field == "venues.kraken" and "known: binance, alpaca" in err.rule
    err = refused("alpaca", mode="paper", url_override=f"http://{LOCAL}")
    assert err.field == "venues.alpaca.url_override" and "data_stream_url" in err.rule


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("timeout_s", 0, "must be greater than 0"),
        ("timeout_s", -1.5, "must be greater than 0"),
        ("timeout_s", "nan", "is not a finite number"),
        ("timeout_s", float("inf"), "is not a finite number"),
        ("timeout_s", "abc", "is invalid (input should be a valid number"),
        ("reconcile_attempts", 0, "must be a whole number of at least 1"),
        ("reconcile_backoff_s", -0.1, "must not be negative"),
        ("reconcile_interval_s", float("nan"), "is not a finite number"),
        ("poll_interval_s", 0, "must be greater than 0"),
    ],
)
def test_venue_numbers_are_finite_and_in_range(key: str, value: Any, rule: str) -> None:
    for name, mode in (("binance", "testnet"), ("alpaca", "paper")):
        err = refused(name, mode=mode, **{key: value})
        assert err.field == f"venues.{name}.{key}" and rule in err.rule, str(err)


def test_a_zero_reconcile_interval_means_only_at_start() -> None:
    b = venue("binance", mode="testnet", reconcile_interval_s=0).venues.binance
    assert b is not None and b.reconcile_interval_s == 0


def test_venue_symbols_are_the_venues_own_form() -> None:
    err = refused("binance", mode="testnet", symbols=["btc/usdt"])
    assert err.field == "venues.binance.symbols.0" and "expected 'BTC/USDT'" in err.rule
    assert refused("binance", mode="testnet", symbols=["BTCUSDT"]).field == "venues.binance.symbols.0"
    assert refused("alpaca", mode="paper", symbols=[]).field == "venues.alpaca.symbols"
    a = venue("alpaca", mode="paper", symbols=["AAPL", "BRK.B", "BTC/USD"]).venues.alpaca
    assert a is not None and a.symbols == ["AAPL", "BRK.B", "BTC/USD"]
    assert refused("alpaca", mode="paper", feed="IEX").field == "venues.alpaca.feed"


# --- endpoints ----------------------------------------------------------------------------

def test_binance_endpoints_go_all_four_together() -> None:
    b = venue("binance", mode="testnet", **BINANCE_LOCAL).venues.binance
    assert b is not None and b.custom_endpoints == tuple(BINANCE_LOCAL.values())
    partial = {k: BINANCE_LOCAL[k] for k in ("rest_public", "ws_public")}  # the leak from issue 15
    err = refused("binance", mode="testnet", **partial)
    assert [p.field for p in err.problems] == ["venues.binance.rest_private", "venues.binance.ws_private"]
    assert "is required with rest_public, ws_public: custom endpoints go all 4 together" in err.rule


def test_alpaca_endpoints_go_all_four_together() -> None:
    a = venue("alpaca", mode="paper", **ALPACA_LOCAL).venues.alpaca
    assert a is not None and a.trading_url == ALPACA_LOCAL["endpoint"]
    err = refused("alpaca", mode="paper", endpoint=ALPACA_LOCAL["endpoint"], data_url=ALPACA_LOCAL["data_url"])
    assert [p.field for p in err.problems] == ["venues.alpaca.stream_url", "venues.alpaca.data_stream_url"]


def test_an_endpoint_of_the_other_environment_is_refused() -> None:
    live = {"rest_public": "https://api.binance.com/api/v3", "rest_private": "https://api.binance.com/api/v3",
            "ws_public": "wss://stream.binance.com:9443/ws", "ws_private": f"ws://{LOCAL}/ws-api/v3"}  # fmt: skip
    err = refused("binance", mode="testnet", **live)
    assert err.field == "venues.binance.rest_public"
    assert err.rule == "is a live host but mode is 'testnet'"
    assert "venues.binance.ws_public" in str(err)


def test_an_endpoint_must_be_a_url_of_its_kind() -> None:
    err = refused("binance", mode="testnet", **{**BINANCE_LOCAL, "ws_public": f"http://{LOCAL}/ws"})
    assert err.field == "venues.binance.ws_public" and "is not a URL starting with ws:// or wss://" in err.rule
    err = refused("alpaca", mode="paper", **{**ALPACA_LOCAL, "data_url": LOCAL})
    assert err.field == "venues.alpaca.data_url" and "http:// or https://" in err.rule


@pytest.mark.parametrize(("name", "mode"), [k for k in DEFAULT_ENDPOINTS])
def test_what_the_wizard_writes_is_a_valid_config(name: str, mode: str, tmp_path: Path) -> None:
    """apply_setup writes {mode, endpoint, account}; the endpoint is the mode's own host."""
    s = Settings()
    s.engine.venue = name  # type: ignore[assignment]
    s.stages.initial = "testnet" if mode != "live" else "live_micro"
    s.venues[name] = {"mode": mode, "endpoint": DEFAULT_ENDPOINTS[(name, mode)], "account": "main"}
    p = tmp_path / "config.toml"
    save_settings(s, p)
    again = load_settings(p)
    assert again == s and again.venues[name]["mode"] == mode
    conf = again.venues.of(name)
    assert conf is not None and conf.account == "main"
    assert getattr(conf, "custom_endpoints", None) is None and getattr(conf, "trading_url", None) is None


def test_a_wizard_endpoint_that_is_not_the_modes_host_is_refused() -> None:
    err = refused("binance", mode="testnet", endpoint="https://api.binance.com")
    assert (err.field, err.rule) == ("venues.binance.endpoint", "is the live host but mode is 'testnet'")
    err = refused("alpaca", mode="paper", endpoint="https://api.alpaca.markets")
    assert (err.field, err.rule) == ("venues.alpaca.endpoint", "is the live host but mode is 'paper'")
    err = refused("binance", mode="testnet", endpoint=f"http://{LOCAL}")
    assert err.field == "venues.binance.endpoint" and "alone would leave the other links" in err.rule
    s = Settings()
    with pytest.raises(VenueSettingsRefused, match=r"venues\.binance\.endpoint: 'http://127\.0\.0\.1:8765' alone"):
        s.venues["binance"] = {"mode": "testnet", "endpoint": f"http://{LOCAL}"}  # the wizard's path
    assert s.venues.binance is None  # nothing half-applied


def test_venue_settings_are_replaced_whole_never_edited() -> None:
    s = venue("binance", mode="testnet")
    assert s.venues.binance is not None
    with pytest.raises(ValueError):
        s.venues.binance.mode = "live"  # type: ignore[assignment,misc]
    assert s.venues.binance.mode is BinanceMode.TESTNET


def test_the_older_dict_reads_still_answer() -> None:
    """Reconciler.for_engine reads `.get(key, default)` until it is rewired to the attributes."""
    s = venue("binance", mode="testnet", reconcile_attempts=5)
    opts = s.venues.get("binance", {})
    assert opts.get("reconcile_attempts", 3) == 5 and opts.get("reconcile_overlap_s", 60.0) == 60.0
    assert s.venues.get("simulated", {}) == {} and "binance" in s.venues and "alpaca" not in s.venues


# --- stages and venue modes -----------------------------------------------------------------

def configured(venue_name: str, mode: str | None = None, **stages: Any) -> Settings:
    data: dict[str, Any] = {"engine": {"venue": venue_name}, "stages": stages}
    if mode is not None:
        data["venues"] = {venue_name: {"mode": mode}}
    return parse_settings(data)


@pytest.mark.parametrize(
    ("stage", "venue_name", "mode", "allowed"),
    [
        ("paper", "simulated", None, True),
        ("paper", "binance", "testnet", False),
        ("paper", "binance", "live", False),
        ("paper", "alpaca", "paper", False),
        ("paper", "alpaca", "live", False),
        ("testnet", "simulated", None, True),
        ("testnet", "binance", "testnet", True),
        ("testnet", "alpaca", "paper", True),
        ("testnet", "binance", "live", False),
        ("testnet", "alpaca", "live", False),
        ("live_micro", "binance", "live", True),
        ("live_micro", "alpaca", "live", True),
        ("live_micro", "binance", "testnet", False),
        ("live_scaling", "alpaca", "live", True),
        ("production", "binance", "live", True),
        ("production", "simulated", None, False),
    ],
)
def test_a_stage_runs_only_its_venue_modes(stage: str, venue_name: str, mode: str | None, allowed: bool) -> None:
    s = configured(venue_name, mode)
    if allowed:
        check_stage_allows(s, stage)
        return
    with pytest.raises(StageVenueRefused) as err:
        check_stage_allows(s, stage, "config.toml")
    field = "engine.venue" if venue_name == "simulated" else f"venues.{venue_name}.mode"
    assert isinstance(err.value, ConfigError) and err.value.field == field
    assert err.value.value == repr(mode or "simulated") and "is not allowed at the" in err.value.rule


def test_the_refusal_says_what_the_stage_runs_and_what_to_change() -> None:
    problem = stage_venue_problem(configured("binance", "live"), "paper")
    assert problem is not None
    assert str(problem) == (
        "venues.binance.mode: 'live' is not allowed at the Paper stage, which runs only simulated (the config "
        "asks for binance in live mode); change venues.binance.mode or move the engine to a stage that allows it"
    )


def test_an_older_config_cannot_widen_the_paper_stage() -> None:
    """Configs saved before listed ["simulated", "paper"] for the paper stage: they load, but Alpaca paper
    still waits for the Testnet stage, and the message says why."""
    s = configured("alpaca", "paper", paper={"venue_modes": ["simulated", "paper"]})
    assert allowed_modes(s, "paper") == ["simulated"]
    with pytest.raises(StageVenueRefused, match=r"stages\.paper\.venue_modes lists 'paper', which the Paper"):
        check_stage_allows(s, "paper")


def test_a_live_stage_configured_narrower_is_narrower() -> None:
    s = configured("binance", "live", live_micro={"venue_modes": ["live"], "capital_cap": 1000})
    check_stage_allows(s, "live_micro")
    with pytest.raises(ValueError, match="unknown stage 'staging'"):
        check_stage_allows(s, "staging")


# --- the factory: refused before any credential is read or any venue reached ------------------

@pytest.fixture
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from engine.core.paths import AppPaths

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")  # never the developer's
    for name in ("BINANCE", "ALPACA"):
        monkeypatch.delenv(f"TRADING_CONSOLE_{name}_API_KEY", raising=False)
        monkeypatch.delenv(f"TRADING_CONSOLE_{name}_API_SECRET", raising=False)
    return AppPaths(tmp_path / "config", tmp_path / "data", tmp_path / "logs")


def test_the_factory_refuses_a_live_venue_at_the_paper_stage(paths: Any) -> None:
    from engine.app.factory import RunOptions, build_engine

    s = configured("binance", "live")
    with pytest.raises(StageVenueRefused) as err:  # no credentials are set: reading them would fail differently
        build_engine(s, paths, RunOptions(with_strategy=False))
    assert err.value.file == str(paths.config_file) and err.value.field == "venues.binance.mode"
    assert "Paper stage" in str(err.value)


def test_the_factory_follows_the_journaled_stage_not_the_initial_one(paths: Any) -> None:
    from engine.app.factory import RunOptions, build_engine
    from engine.persistence.journal import Journal

    paths.ensure()
    with Journal(paths.journal_file) as j:
        j.set_state("stage", "paper")  # demoted back to paper since the config was written
    s = configured("binance", "testnet", initial="testnet")
    with pytest.raises(StageVenueRefused, match="Paper stage"):
        build_engine(s, paths, RunOptions(with_strategy=False))


def test_the_factory_builds_binance_from_the_typed_settings(paths: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.app.factory import RunOptions, build_engine
    from engine.core.model import VenueMode

    monkeypatch.setenv("TRADING_CONSOLE_BINANCE_API_KEY", "typed-key")
    monkeypatch.setenv("TRADING_CONSOLE_BINANCE_API_SECRET", "typed-secret")
    s = parse_settings({"engine": {"venue": "binance"}, "stages": {"initial": "testnet"},
                        "venues": {"binance": {"mode": "testnet", "timeout_s": 2.5, "symbols": ["ETH/USDT"],
                                               "stream_grace_s": 0.5, "cancel_attempts": 5, "market_silence_s": 12,
                                               **BINANCE_LOCAL}}})  # fmt: skip
    e = build_engine(s, paths, RunOptions(with_strategy=False))
    try:
        v: Any = e.venue
        assert v.mode is VenueMode.TESTNET and v.symbols == ["ETH/USDT"] and v.timeout_s == 2.5
        assert (v.ws_timeout_s, v.stream_grace_s, v.cancel_attempts, v.market_silence_s) == (2.5, 0.5, 5, 12)
        ep = v.endpoints
        assert (ep.rest_public, ep.rest_private, ep.ws_public, ep.ws_private) == tuple(BINANCE_LOCAL.values())
    finally:
        e.journal.close()


def test_the_factory_refuses_a_real_venue_without_its_section(paths: Any) -> None:
    from engine.app.factory import RunOptions, build_engine

    s = Settings()
    s.engine.venue = "alpaca"  # set in code, past the load-time rule
    s.stages.initial = "testnet"
    with pytest.raises(ConfigError) as err:
        build_engine(s, paths, RunOptions(with_strategy=False))
    assert err.value.field == "venues.alpaca" and "is required when engine.venue is 'alpaca'" in err.value.rule
    assert err.value.file == str(paths.config_file)


def test_the_simulator_charges_fees_as_configured(paths: Any) -> None:
    from engine.app.factory import RunOptions, build_engine

    s = parse_settings({"simulator": {"fee_model": "binance_spot", "latency_ms": 5}})
    e = build_engine(s, paths, RunOptions(with_strategy=False))
    try:
        assert e.venue.matching.fee_model == "binance_spot"  # type: ignore[attr-defined]
    finally:
        e.journal.close()
    with pytest.raises(ConfigError, match=r"simulator\.fee_model: 'binance' is not one of: quote, binance_spot"):
        parse_settings({"simulator": {"fee_model": "binance"}})


def test_the_factory_reads_keys_from_the_store_the_window_unlocked(paths: Any) -> None:
    from engine.app.factory import RunOptions, build_engine
    from engine.persistence.secrets import CredentialStore

    paths.ensure()
    store = CredentialStore(paths.data_dir, master_password="master pw", use_keyring=False)
    store.store("binance", "main", "unlocked-key", "unlocked-secret")
    s = parse_settings({"engine": {"venue": "binance"}, "stages": {"initial": "testnet"},
                        "venues": {"binance": {"mode": "testnet", "account": "main", **BINANCE_LOCAL}}})  # fmt: skip
    e = build_engine(s, paths, RunOptions(with_strategy=False, credentials=store))
    try:
        assert e.venue._credentials == ("unlocked-key", "unlocked-secret")  # type: ignore[attr-defined]
    finally:
        e.journal.close()


# --- headless start: one line and exit code 2, never a traceback -----------------------------

@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (b'[engine]\nvenue = "binance"\n[venues.binance]\nmode = "live"\n',
         "venues.binance.mode: 'live' is not allowed at the Paper stage"),
        (b'[engine]\nvenue = "binance"\n[venues.binance]\nmode = "testnet"\ntimeout_s = "abc"\n',
         "venues.binance.timeout_s: 'abc' is invalid"),
        (b'[engine]\noperator = "Jos\xe9"\n', "is not UTF-8 text (byte 0xe9 on line 2, column 16)"),
        (b"[risk]\nstale_data_s = nan\n", "risk.stale_data_s: nan is not a finite number"),
    ],
)
def test_a_refused_config_stops_a_headless_start_with_one_line(tmp_path: Path, config: bytes, expected: str) -> None:
    import os
    import subprocess
    import sys

    (tmp_path / "config").mkdir()
    cfg = tmp_path / "config" / "config.toml"
    cfg.write_bytes(config)
    env = {**os.environ, "TRADING_CONSOLE_HOME": str(tmp_path), "QT_QPA_PLATFORM": "offscreen",
           "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",  # never the developer's keyring
           "TRADING_CONSOLE_BINANCE_API_KEY": "", "TRADING_CONSOLE_BINANCE_API_SECRET": ""}  # fmt: skip
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "console", "--headless", "--duration", "1"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0] == f"configuration error: {cfg}: " + lines[0].split(f"{cfg}: ", 1)[1]
    assert expected in lines[0]


def test_a_running_venue_the_new_stage_does_not_allow_is_named() -> None:
    s = Settings()
    assert running_venue_refusal(s, "testnet", "binance", "testnet") is None
    assert running_venue_refusal(s, "live_micro", "binance", "testnet") == (
        "the Live micro stage runs only live, but the engine is connected to binance in testnet mode: "
        "restart on a venue the stage allows"
    )
    assert running_venue_refusal(s, "testnet", "alpaca", "live") is not None  # demoted with live money


def test_the_stage_ceiling_knows_every_stage_of_the_activation_ladder() -> None:
    import typing

    from engine.activation.stages import STAGES
    from engine.core.config import StageName
    from engine.core.stage_venues import STAGE_CEILING

    assert tuple(STAGE_CEILING) == STAGES == typing.get_args(StageName)
