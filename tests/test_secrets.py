"""Credentials: the keyring path, the encrypted-file fallback, and nothing secret on disk."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail

from engine.core.config import Settings, save_settings
from engine.core.environment import environment_check, infer_key_kind
from engine.core.paths import app_paths
from engine.persistence.journal import Journal
from engine.persistence.secrets import (
    CredentialError,
    CredentialStore,
    MasterPasswordRequired,
    WrongMasterPassword,
    keyring_available,
)

KEY = "PKTESTKEY7f3a9c2e1b"
SECRET = "s3cr3t-Zq8Wv4Lx9Pm2Rt6Yn"


class MemoryKeyring(KeyringBackend):
    """A keyring service that lives in a dict."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if (service, username) not in self.entries:
            raise keyring.errors.PasswordDeleteError("not found")
        del self.entries[(service, username)]


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    before = keyring.get_keyring()
    kr = MemoryKeyring()
    keyring.set_keyring(kr)
    yield kr
    keyring.set_keyring(before)


@pytest.fixture
def no_keyring() -> Iterator[None]:
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(before)


def test_keyring_round_trip_and_nothing_in_the_data_dir(memory_keyring: MemoryKeyring, tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    assert store.backend == "keyring" and not store.needs_master_password
    store.store("binance", "main", KEY, SECRET)
    assert store.load("binance", "main") == (KEY, SECRET)
    assert store.load("binance", "other") is None
    assert len(memory_keyring.entries) == 1
    assert not any(tmp_path.iterdir())  # the keyring holds it, not a file
    assert store.delete("binance", "main")
    assert store.load("binance", "main") is None
    assert not store.delete("binance", "main")


def test_fail_backend_and_empty_chainer_mean_no_keyring() -> None:
    assert not keyring_available(fail.Keyring())

    class EmptyChainer(chainer.ChainerBackend):
        backends = ()  # type: ignore[assignment]

    class FullChainer(chainer.ChainerBackend):
        backends = (MemoryKeyring(),)  # type: ignore[assignment]

    assert not keyring_available(EmptyChainer())
    assert keyring_available(FullChainer())
    assert keyring_available(MemoryKeyring())


def test_no_keyring_falls_back_to_the_encrypted_file(no_keyring: None, tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    assert store.backend == "file" and store.needs_master_password
    with pytest.raises(MasterPasswordRequired):
        store.store("alpaca", "paper", KEY, SECRET)
    store.set_master_password("correct horse battery staple")
    store.store("alpaca", "paper", KEY, SECRET)
    store.store("binance", "main", "BKEY", "BSECRET")
    raw = store.file.read_bytes()
    assert KEY.encode() not in raw and SECRET.encode() not in raw
    assert store.file.stat().st_mode & 0o077 == 0  # owner only

    again = CredentialStore(tmp_path, "correct horse battery staple")
    assert again.load("alpaca", "paper") == (KEY, SECRET)
    assert again.load("binance", "main") == ("BKEY", "BSECRET")
    assert again.delete("binance", "main")
    assert CredentialStore(tmp_path, "correct horse battery staple").load("binance", "main") is None


def test_wrong_master_password_is_refused_without_the_secret(no_keyring: None, tmp_path: Path) -> None:
    CredentialStore(tmp_path, "right password").store("alpaca", "paper", KEY, SECRET)
    wrong = CredentialStore(tmp_path, "wrong password")
    with pytest.raises(WrongMasterPassword) as info:
        wrong.load("alpaca", "paper")
    assert "master password is wrong" in str(info.value)
    assert SECRET not in str(info.value) and KEY not in str(info.value)
    with pytest.raises(WrongMasterPassword):  # nor can it overwrite the file
        wrong.store("alpaca", "paper", "PKOTHER", "other")
    assert CredentialStore(tmp_path, "right password").load("alpaca", "paper") == (KEY, SECRET)


@pytest.mark.parametrize("backend", ["keyring", "file"])
def test_nothing_secret_in_config_journal_or_logs(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TRADING_CONSOLE_HOME", str(tmp_path / "home"))
    paths = app_paths().ensure()
    before = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring() if backend == "keyring" else fail.Keyring())
    log_file = paths.log_dir / "console.log"
    handler = logging.FileHandler(log_file)
    logging.getLogger().addHandler(handler)
    caplog.set_level(logging.DEBUG)
    try:
        store = CredentialStore(paths.data_dir, "master pw")
        store.store("alpaca", "paper", KEY, SECRET)
        # what the wizard writes besides the credential: the venue choice and a journal note
        settings = Settings()
        settings.venues["alpaca"] = {"mode": "paper", "account": "paper", "endpoint": "https://paper-api.alpaca.markets"}
        save_settings(settings, paths.config_file)
        journal = Journal(paths.journal_file)
        journal.set_state("wizard_done", True)
        journal.close()
        assert store.load("alpaca", "paper") == (KEY, SECRET)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
        keyring.set_keyring(before)
    home = tmp_path / "home"
    files = [p for p in home.rglob("*") if p.is_file()]
    assert paths.config_file in files and paths.journal_file in files and log_file in files
    for p in files:
        data = p.read_bytes()
        assert KEY.encode() not in data, f"the API key is in {p}"
        assert SECRET.encode() not in data, f"the secret is in {p}"
    assert KEY not in caplog.text and SECRET not in caplog.text


# --- the environment check --------------------------------------------------------------------
def test_environment_check_refuses_crossed_keys_and_endpoints() -> None:
    ok, msg = environment_check("binance", "testnet", "live", "https://testnet.binance.vision")
    assert not ok and "LIVE key" in msg and "testnet" in msg.lower()
    ok, msg = environment_check("binance", "live", "testnet", "https://api.binance.com")
    assert not ok and "TESTNET key" in msg and "LIVE endpoint" in msg
    ok, msg = environment_check("alpaca", "paper", "paper", "https://api.alpaca.markets")
    assert not ok and "LIVE endpoint" in msg  # the endpoint does not match the mode
    ok, msg = environment_check("alpaca", "live", "live", "https://example.com")
    assert not ok and "not a known Alpaca endpoint" in msg
    ok, msg = environment_check("binance", "live", "", "https://api.binance.com")
    assert not ok and "live key or a paper/testnet key" in msg
    assert environment_check("binance", "testnet", "testnet", "https://testnet.binance.vision")[0]
    assert environment_check("alpaca", "paper", "paper", "https://paper-api.alpaca.markets")[0]
    assert environment_check("alpaca", "live", "live", "https://api.alpaca.markets")[0]
    assert environment_check("simulated", "simulated", "", "")[0]
    # a local test double stands for the chosen environment, and keys must still match it
    assert environment_check("binance", "testnet", "testnet", "http://127.0.0.1:8123")[0]
    assert not environment_check("binance", "testnet", "live", "http://127.0.0.1:8123")[0]


def test_alpaca_key_kind_is_inferred_from_the_prefix() -> None:
    assert infer_key_kind("alpaca", "PK123") == "paper"
    assert infer_key_kind("alpaca", "AK123") == "live"
    assert infer_key_kind("alpaca", "XX123") is None
    assert infer_key_kind("binance", "PK123") is None


# --- issue 14: file modes, scrypt cost, core dumps -------------------------------------------


def test_a_leftover_world_readable_temp_file_cannot_lend_its_mode(no_keyring: None, tmp_path: Path) -> None:
    import os
    import stat

    stale = tmp_path / "credentials.tmp"
    stale.write_text("left by a crash")
    os.chmod(stale, 0o644)
    store = CredentialStore(tmp_path, "pw")
    store.store("binance", "main", KEY, SECRET)
    assert stat.S_IMODE(store.file.stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".credentials.enc.")]  # no temp left behind


def test_new_files_use_scrypt_2_17_and_files_written_with_2_15_still_open(no_keyring: None, tmp_path: Path) -> None:
    import base64
    import json

    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    store = CredentialStore(tmp_path, "pw")
    store.store("binance", "main", KEY, SECRET)
    doc = json.loads(store.file.read_text())
    assert (doc["n"], doc["r"], doc["p"]) == (2**17, 8, 1)

    salt = b"0123456789abcdef"  # a file as the previous version wrote it: n = 2**15, no r or p
    kdf = Scrypt(salt=salt, length=32, n=2**15, r=8, p=1)
    token = Fernet(base64.urlsafe_b64encode(kdf.derive(b"pw"))).encrypt(
        json.dumps({"alpaca:paper": {"key": KEY, "secret": SECRET}}).encode()
    )
    old = {"version": 1, "kdf": "scrypt", "n": 2**15, "salt": base64.b64encode(salt).decode(), "token": token.decode()}
    store.file.write_text(json.dumps(old))
    assert CredentialStore(tmp_path, "pw").load("alpaca", "paper") == (KEY, SECRET)

    old["n"] = 2**30  # a forged cost would hang the dialog: refused by name
    store.file.write_text(json.dumps(old))
    with pytest.raises(CredentialError, match="scrypt parameters"):
        CredentialStore(tmp_path, "pw").load("alpaca", "paper")


def test_core_dumps_are_off_for_the_process() -> None:
    import subprocess
    import sys

    code = (
        "import ctypes, resource, sys\n"
        "from engine.persistence.secrets import disable_core_dumps\n"
        "done = disable_core_dumps()\n"
        "assert resource.getrlimit(resource.RLIMIT_CORE) == (0, 0), resource.getrlimit(resource.RLIMIT_CORE)\n"
        "if sys.platform.startswith('linux'):\n"
        "    assert ctypes.CDLL(None).prctl(3, 0, 0, 0, 0) == 0  # PR_GET_DUMPABLE\n"
        "print(','.join(done))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "RLIMIT_CORE=0" in out.stdout


def test_the_store_registers_what_it_hands_out_for_redaction(memory_keyring: MemoryKeyring, tmp_path: Path) -> None:
    from engine.core.logfiles import redact

    CredentialStore(tmp_path).store("binance", "main", "AKIAVERYSPECIALKEY", "zzTopSecretValue99")
    assert CredentialStore(tmp_path).load("binance", "main") is not None
    line = redact("connecting with AKIAVERYSPECIALKEY / zzTopSecretValue99")
    assert "AKIAVERYSPECIALKEY" not in line and "zzTopSecretValue99" not in line
