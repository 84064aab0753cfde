"""API credentials: in the OS keyring, or an encrypted file where no keyring service runs.

Never in the config file, never in a log line or an exception message: errors name the
venue and account, never the key or the secret. The encrypted file is a Fernet token over
the whole credential set, keyed by scrypt from a master password the GUI asks for; this
module only takes the password as an argument.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import json
import logging
import secrets as _random
import sys
from pathlib import Path
from typing import Any

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

from engine.core.logfiles import register_secret
from engine.persistence.errors import AuditKeyError
from engine.persistence.private_files import ensure_private_dir, write_private_file

log = logging.getLogger(__name__)

SERVICE = "trading-console"
FILE_NAME = "credentials.enc"
# OWASP's current minimum for scrypt: ~0.3 s and 128 MiB per derivation. New files use these;
# a file records its own parameters, so files written with 2**15 still open (and are re-written
# with these on the next store).
_SCRYPT_N = 2**17
_SCRYPT_R = 8
_SCRYPT_P = 1
_SCRYPT_N_RANGE = (2**14, 2**20)  # what a file may ask for: a forged n cannot make us hang


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
        self._derived: dict[tuple[bytes, int, int, int], Any] = {}  # one slow derivation per salt
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
        self._derived.clear()

    # --- the API ------------------------------------------------------------------------
    def store(self, venue: str, account: str, key: str, secret: str) -> None:
        if not key or not secret:
            raise CredentialError(f"the API key and secret for {venue} are both required")
        name = _entry(venue, account)
        _registered(key, secret)
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
                return _registered(str(d["key"]), str(d["secret"]))
            except (ValueError, KeyError, TypeError):
                raise CredentialError(f"the keyring entry {name} is not a credential of this app") from None
        if not self.file.exists():
            return None
        d = self._read_file().get(name)
        return None if d is None else _registered(str(d["key"]), str(d["secret"]))

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
    def _fernet(self, salt: bytes, n: int = _SCRYPT_N, r: int = _SCRYPT_R, p: int = _SCRYPT_P) -> Any:
        from cryptography.fernet import Fernet
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

        if not self._password:
            raise MasterPasswordRequired("no keyring service runs here: a master password is required")
        cached = self._derived.get((salt, n, r, p))
        if cached is None:
            kdf = Scrypt(salt=salt, length=32, n=n, r=r, p=p)
            cached = Fernet(base64.urlsafe_b64encode(kdf.derive(self._password.encode("utf-8"))))
            self._derived[(salt, n, r, p)] = cached
        return cached

    def _read_file(self) -> dict[str, dict[str, str]]:
        from cryptography.fernet import InvalidToken

        if not self.file.exists():
            if not self._password:
                raise MasterPasswordRequired("no keyring service runs here: a master password is required")
            return {}
        try:
            doc = json.loads(self.file.read_text(encoding="utf-8"))
            salt = base64.b64decode(doc["salt"])
            token = doc["token"].encode("ascii")
            n, r, p = int(doc.get("n", 2**15)), int(doc.get("r", _SCRYPT_R)), int(doc.get("p", _SCRYPT_P))
        except (OSError, ValueError, KeyError, TypeError):
            raise CredentialError(f"{self.file} is not a readable credential file") from None
        if not (_SCRYPT_N_RANGE[0] <= n <= _SCRYPT_N_RANGE[1] and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
            raise CredentialError(f"{self.file} asks for scrypt parameters this app does not accept")
        try:
            plain = self._fernet(salt, n, r, p).decrypt(token)
        except InvalidToken:
            raise WrongMasterPassword("the master password is wrong (the credential file did not decrypt)") from None
        return dict(json.loads(plain))

    def _write_file(self, entries: dict[str, dict[str, str]]) -> None:
        salt = _random.token_bytes(16)  # a fresh salt per write: an old token teaches nothing
        token = self._fernet(salt).encrypt(json.dumps(entries).encode("utf-8"))
        doc = {"version": 1, "kdf": "scrypt", "n": _SCRYPT_N, "r": _SCRYPT_R, "p": _SCRYPT_P,
               "salt": base64.b64encode(salt).decode("ascii"), "token": token.decode("ascii")}  # fmt: skip
        ensure_private_dir(self.data_dir)
        # a fresh O_EXCL 0600 temporary, then a rename: a stale credentials.tmp cannot lend its mode
        write_private_file(self.file, json.dumps(doc))


def _registered(key: str, secret: str) -> tuple[str, str]:
    """Whatever the store hands out is masked in every log line from then on."""
    register_secret(key)
    register_secret(secret)
    return key, secret


# --- the audit chain's key --------------------------------------------------------------------

_AUDIT_ENTRY = "audit-key:{journal_id}"


def load_audit_key(journal_id: str, key_dir: Path, *, create: bool) -> tuple[bytes, str]:
    """The HMAC key of a journal's audit chain, and where it is kept ("keyring" or the file).

    In the OS keyring when one runs; otherwise in a 0600 file under `key_dir` (the config folder,
    apart from the journal), so a headless server needs no password to start. With `create`, a
    missing key is made (a new journal, or one whose chain was never keyed); without it a missing
    key is an AuditKeyError: inventing a new one would make the existing chain unverifiable.
    """
    if not journal_id or not journal_id.isalnum():
        raise AuditKeyError(f"invalid journal id {journal_id!r}")
    name = _AUDIT_ENTRY.format(journal_id=journal_id)
    file = Path(key_dir) / f"{journal_id}.key"
    use_keyring = keyring_available()
    found, where = None, "keyring" if use_keyring else str(file)
    try:  # both places: a key made where no keyring ran is still found once one runs, and back
        if use_keyring:
            found = keyring.get_password(SERVICE, name)
        if found is None and file.exists():
            found, where = file.read_text(encoding="ascii").strip(), str(file)
        if found is None and create:
            found = _random.token_hex(32)
            if use_keyring:
                keyring.set_password(SERVICE, name, found)
            else:
                write_private_file(file, found)
    except keyring.errors.KeyringError:
        raise AuditKeyError(f"the keyring could not read or store the audit key of journal {journal_id}") from None
    except (OSError, ValueError):
        raise AuditKeyError(f"the audit key file {file} is unreadable") from None
    if found is None:
        raise AuditKeyError(
            f"the audit key of journal {journal_id} is missing ({where}): the keyed audit chain cannot be "
            "checked or extended; restore the key, or start a new journal with --new-journal"
        )
    try:
        return bytes.fromhex(found), where
    except ValueError:
        raise AuditKeyError(f"the audit key of journal {journal_id} ({where}) is not a key") from None


# --- the process ------------------------------------------------------------------------------

_PR_SET_DUMPABLE = 4


def disable_core_dumps() -> list[str]:
    """No core file and no ptrace-readable memory for this process: a crash must not leave the API
    key and secret on disk. Call first thing in main. Returns what was done, for the log."""
    done: list[str] = []
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        done.append("RLIMIT_CORE=0")
    except (ImportError, ValueError, OSError) as exc:  # Windows has no resource module
        log.debug("core dump limit not set: %s", exc)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0:
                done.append("PR_SET_DUMPABLE=0")
        except (OSError, AttributeError) as exc:
            log.debug("prctl(PR_SET_DUMPABLE) not available: %s", exc)
    return done
