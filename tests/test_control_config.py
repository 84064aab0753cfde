"""`[control]` in the config: a server's engine is configured in its file, flags win, bad values are refused."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from console.__main__ import build_parser
from console.control_cli import control_options_from
from engine.core.config import ConfigError, Settings, load_settings, save_settings
from tests.headless_rig import env_for, serve_headless


def _load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return load_settings(path)


def _refused(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    return caught.value


def test_serving_beyond_loopback_without_tls_is_refused_naming_the_host(tmp_path: Path) -> None:
    err = _refused(tmp_path, '[control]\nhost = "0.0.0.0"\n')
    assert "control.host" in str(err) and "'0.0.0.0'" in str(err) and "cert, key and ca" in str(err)


def test_tls_files_are_set_together(tmp_path: Path) -> None:
    err = _refused(tmp_path, '[control]\ncert = "server.pem"\n')
    assert "control.key, ca" in str(err) and "set together" in str(err)


def test_a_port_out_of_range_names_field_and_rule(tmp_path: Path) -> None:
    err = _refused(tmp_path, "[control]\nport = 70000\n")
    assert err.field == "control.port" and "70000" in str(err) and "65535" in str(err)


def test_the_heartbeat_url_is_a_secret_and_never_lives_in_the_config(tmp_path: Path) -> None:
    err = _refused(tmp_path, '[control]\nheartbeat_url = "https://hc.example/ping/s3cr3t-uuid"\n')
    assert err.field == "control.heartbeat_url" and "heartbeat_secret" in str(err)
    assert "s3cr3t" not in str(err)  # the refusal does not print the secret either


def test_flags_win_over_the_config_and_the_config_over_the_defaults(tmp_path: Path) -> None:
    settings = _load(tmp_path, '[control]\nport = 9911\nheartbeat_secret = "hc"\nheartbeat_every_s = 30\n'
                               'host = "::1"\n')  # fmt: skip
    from_file = control_options_from(build_parser().parse_args(["--headless"]), settings.control)
    assert (from_file.enabled, from_file.host, from_file.port) == (True, "::1", 9911)
    assert (from_file.heartbeat_secret, from_file.heartbeat_every_s) == ("hc", 30.0)
    flags = build_parser().parse_args(["--headless", "--control-port", "9912", "--heartbeat-every", "5",
                                       "--control-host", "127.0.0.1"])  # fmt: skip
    overridden = control_options_from(flags, settings.control)
    assert (overridden.host, overridden.port, overridden.heartbeat_every_s) == ("127.0.0.1", 9912, 5.0)
    assert overridden.heartbeat_secret == "hc"
    off = _load(tmp_path, "[control]\nenabled = false\n")
    assert not control_options_from(build_parser().parse_args(["--headless"]), off.control).enabled
    assert not control_options_from(build_parser().parse_args(["--headless", "--no-control"]), settings.control).enabled


def test_the_section_survives_a_save_and_load(tmp_path: Path) -> None:
    settings = _load(tmp_path, '[control]\nhost = "10.0.0.5"\ncert = "s.pem"\nkey = "s.key"\nca = "ca.pem"\n')
    save_settings(settings, tmp_path / "again.toml")
    again = load_settings(tmp_path / "again.toml")
    assert again.control == settings.control


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_headless_engine_serves_on_the_configured_port(tmp_path: Path) -> None:
    port = _free_port()
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text(f"[control]\nport = {port}\n")
    proc, _paths = serve_headless(tmp_path, "--duration", "600", stdout=subprocess.PIPE)
    env = env_for(tmp_path)
    try:
        status = subprocess.run([sys.executable, "-m", "console", "status"], env=env, capture_output=True,
                                text=True, timeout=60)  # fmt: skip
        assert status.returncode == 0, status.stderr
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    assert f"control API on http://127.0.0.1:{port}" in out, (out, err)
