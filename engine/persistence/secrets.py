"""API credentials: in the OS keyring, or an encrypted file where no keyring service runs.

Never in the config file, never in a log line or an exception message: errors name the
venue and account, never the key or the secret. The encrypted file is a Fernet token over
the whole credential set, keyed by scrypt from a master password the GUI asks for; this
module only takes the password as an argument.
"""

from __future__ import annotations

import base64
import json
import os
import secrets as _random
from pathlib import Path
from typing import Any

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

SERVICE = "trading-console"
FILE_NAME = "credentials.enc"
_SCRYPT_N = 2**15  # ~50 ms per derivation: slow enough to hurt guessing, fast enough for a dialog
_SCRYPT_R = 8
_SCRYPT_P = 1


class CredentialError(Exception):
    """A credential could not be stored or read; the message never contains the secret."""


class MasterPasswordRequired(CredentialError):
    pass


class WrongMasterPassword(CredentialError):
    pass


def keyring_available(backend: KeyringBackend | None = None) -> bool:
    """False for keyring's fail/null backends and for a chainer holding no real backend."""
    from keyring.backends import chainer, fail

    kr = backend if backend is not None else keyring.get_keyring()
    if isinstance(kr, fail.Keyring) or type(kr).__module__ == "keyring.backends.null":
        return False
    if isinstance(kr, chainer.ChainerBackend):
        return any(keyring_available(b) for b in kr.backends)
    return True


def _entry(venue: str, account: str) -> str:
    if not venue or ":" in venue:
        raise CredentialError(f"invalid venue name {venue!r}")
    return f"{venue}:{account or 'default'}"


class CredentialStore:
    """store / load / delete (key, secret) per venue and account.

    ``use_keyring=None`` picks the keyring when a real one runs, else the encrypted file
    under ``data_dir`` (which then needs ``master_password``).
    """

    def __init__(self, data_dir: Path, master_password: str | None = None, use_keyring: bool | None = None) -> None:
        self.data_dir = Path(data_dir)
        self._password = master_password
        self.uses_keyring = keyring_available() if use_keyring is None else use_keyring

    @property
    def backend(self) -> str:
        return "keyring" if self.uses_keyring else "file"

    @property
    def file(self) -> Path:
        return self.data_dir / FILE_NAME

    @property
    def needs_master_password(self) -> bool:
        return not self.uses_keyring and not self._password

    def set_master_password(self, password: str) -> None:
        self._password = password

    # --- the API ------------------------------------------------------------------------
    def store(self, venue: str, account: str, key: str, secret: str) -> None:
        if not key or not secret:
            raise CredentialError(f"the API key and secret for {venue} are both required")
        name = _entry(venue, account)
        blob = json.dumps({"key": key, "secret": secret})
        if self.uses_keyring:
            try:
                keyring.set_password(SERVICE, name, blob)
            except keyring.errors.KeyringError:
                raise CredentialError(f"the keyring refused to store the credential {name}") from None
            return
        entries = self._read_file()
        entries[name] = {"key": key, "secret": secret}
        self._write_file(entries)

    def load(self, venue: str, account: str) -> tuple[str, str] | None:
        name = _entry(venue, account)
        if self.uses_keyring:
            try:
                blob = keyring.get_password(SERVICE, name)
            except keyring.errors.KeyringError:
                raise CredentialError(f"the keyring could not read the credential {name}") from None
            if blob is None:
                return None
            try:
                d = json.loads(blob)
                return str(d["key"]), str(d["secret"])
            except (ValueError, KeyError, TypeError):
                raise CredentialError(f"the keyring entry {name} is not a credential of this app") from None
        if not self.file.exists():
            return None
        d = self._read_file().get(name)
        return None if d is None else (str(d["key"]), str(d["secret"]))

    def delete(self, venue: str, account: str) -> bool:
        name = _entry(venue, account)
        if self.uses_keyring:
            try:
                keyring.delete_password(SERVICE, name)
            except keyring.errors.PasswordDeleteError:
                return False
            except keyring.errors.KeyringError:
                raise CredentialError(f"the keyring could not delete the credential {name}") from None
            return True
        if not self.file.exists():
            return False
        entries = self._read_file()
        if entries.pop(name, None) is None:
            return False
        self._write_file(entries)
        return True

    # --- the encrypted file --------------------------------------------------------------
    def _fernet(self, salt: bytes) -> Any:
        from cryptography.fernet import Fernet
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

        if not self._password:
            raise MasterPasswordRequired("no keyring service runs here: a master password is required")
        kdf = Scrypt(salt=salt, length=32, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
        return Fernet(base64.urlsafe_b64encode(kdf.derive(self._password.encode("utf-8"))))

    def _read_file(self) -> dict[str, dict[str, str]]:
        from cryptography.fernet import InvalidToken

        if not self.file.exists():
            self._fernet(b"0" * 16)  # a first store still needs the password
            return {}
        try:
            doc = json.loads(self.file.read_text(encoding="utf-8"))
            salt = base64.b64decode(doc["salt"])
            token = doc["token"].encode("ascii")
        except (OSError, ValueError, KeyError, TypeError):
            raise CredentialError(f"{self.file} is not a readable credential file") from None
        try:
            plain = self._fernet(salt).decrypt(token)
        except InvalidToken:
            raise WrongMasterPassword("the master password is wrong (the credential file did not decrypt)") from None
        return dict(json.loads(plain))

    def _write_file(self, entries: dict[str, dict[str, str]]) -> None:
        salt = _random.token_bytes(16)  # a fresh salt per write: an old token teaches nothing
        token = self._fernet(salt).encrypt(json.dumps(entries).encode("utf-8"))
        doc = {"version": 1, "kdf": "scrypt", "n": _SCRYPT_N, "salt": base64.b64encode(salt).decode("ascii"),
               "token": token.decode("ascii")}  # fmt: skip
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # owner only, from the start
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(doc))
        os.replace(tmp, self.file)
