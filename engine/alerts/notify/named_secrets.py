"""Named secrets for the alert channels: webhook URLs and SMTP passwords.

The config names a secret (``url_secret = "ops-slack"``); the value lives in the credential
store (OS keyring, or the encrypted file) as the entry ``<name>:named-secret``, kept apart
from venue API keys (``<venue>:<account>``). A headless host without a keyring may give it in
the environment as ``TRADING_CONSOLE_SECRET_<NAME>`` instead. Errors name the secret, never
its value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

from engine.persistence.secrets import CredentialError, CredentialStore

NAMED_ACCOUNT = "named-secret"
_KIND = "value"  # the store keeps (key, secret) pairs: the key slot only says what this is
ENV_PREFIX = "TRADING_CONSOLE_SECRET_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class SecretUnavailable(Exception):
    """A named secret could not be read; the message names it, never holds its value."""


def validate_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise CredentialError(
            f"invalid secret name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)"
        )
    return name


def env_var(name: str) -> str:
    """``ops-slack`` -> ``TRADING_CONSOLE_SECRET_OPS_SLACK``."""
    return ENV_PREFIX + re.sub(r"[^A-Z0-9]", "_", validate_name(name).upper())


def store_named_secret(store: CredentialStore, name: str, value: str) -> None:
    if not value:
        raise CredentialError(f"the secret {name!r} is empty")
    store.store(validate_name(name), NAMED_ACCOUNT, _KIND, value)


def load_named_secret(store: CredentialStore, name: str) -> str | None:
    found = store.load(validate_name(name), NAMED_ACCOUNT)
    return None if found is None else found[1]


def delete_named_secret(store: CredentialStore, name: str) -> bool:
    return store.delete(validate_name(name), NAMED_ACCOUNT)


def resolve_named_secret(
    name: str,
    store_factory: Callable[[], CredentialStore] | None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The credential store first, then the environment. Blocking (the keyring may be slow).

    Raises SecretUnavailable naming the secret and where it was looked for.
    """
    try:
        validate_name(name)
    except CredentialError as exc:
        raise SecretUnavailable(str(exc)) from None
    why = "no credential store"
    if store_factory is not None:
        try:
            store = store_factory()
            if store.needs_master_password:
                why = "no keyring here and the encrypted credential file needs the master password"
            else:
                value = load_named_secret(store, name)
                if value:
                    return value
                why = f"not in the {store.backend} credential store"
        except CredentialError as exc:  # its messages never hold a secret
            why = str(exc)
        except Exception as exc:  # a broken keyring backend: say what kind, not what it printed
            why = f"the credential store failed ({type(exc).__name__})"
    value = (environ if environ is not None else os.environ).get(env_var(name), "")
    if value:
        return value
    raise SecretUnavailable(f"secret {name!r} is not available: {why}, and {env_var(name)} is not set")
