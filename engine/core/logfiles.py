"""Log files that survive the terminal, and never hold a secret.

A console started from the desktop menu, or a server restarted overnight, has no terminal to
read: every record also goes to a rotating file in the logs folder (0600, a few MB each, five
kept). Every line written anywhere passes a redactor first: values registered at run time
(the credential store registers each key and secret it hands out) and anything shaped like a
secret (``api_key=...``, ``"password": "..."``, ``Authorization: Bearer ...``, a URL's
``user:password@``, a Slack/Discord webhook path) is replaced by ``***``.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import threading
from pathlib import Path

MASK = "***"
LOG_FILE_BYTES = 5 * 1024 * 1024
LOG_FILE_BACKUPS = 5
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MIN_SECRET_LEN = 6  # shorter values would mask ordinary words

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_secret_pattern: re.Pattern[str] | None = None

_NAMES = r"(?:api[_-]?key|api[_-]?secret|secret(?:[_-]?key)?|access[_-]?token|refresh[_-]?token|token|password|passwd|pwd|passphrase|private[_-]?key|signature|auth)"  # noqa: E501
_SHAPES = [
    # "password": "value" (JSON, repr of a dict)
    re.compile(rf"""(?i)(["']{_NAMES}["']\s*:\s*["'])([^"']+)(["'])"""),
    # api_key=value, password: value, secret = value (config lines, query strings, messages)
    re.compile(rf"""(?i)(\b{_NAMES}\b\s*[=:]\s*)(?!\*\*\*)([^\s"'&,;}}\]]+)"""),
    # Authorization: Bearer xyz / Basic xyz
    re.compile(r"(?i)(\b(?:bearer|basic)\s+)([A-Za-z0-9._~+/=-]{8,})"),
    # https://user:password@host
    re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)([^@\s/]+)(@)"),
    # webhook URLs are credentials in themselves
    re.compile(r"(?i)(hooks\.slack\.com/services/|discord(?:app)?\.com/api/webhooks/)([^\s\"']+)"),
]


def register_secret(value: str | None) -> None:
    """Mask this exact value in every log line from now on (keys, secrets, webhook URLs...)."""
    global _secret_pattern
    if not value or len(value) < _MIN_SECRET_LEN:
        return
    with _secrets_lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)  # the longest first: no half-masked value
        _secret_pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact(text: str) -> str:
    pattern = _secret_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    for shape in _SHAPES:
        text = shape.sub(_mask_group, text)
    return text


def _mask_group(match: re.Match[str]) -> str:
    groups = match.groups()
    return groups[0] + MASK + (groups[2] if len(groups) > 2 and groups[2] else "")


class RedactingFormatter(logging.Formatter):
    """Redacts the whole formatted record: message, arguments and traceback alike."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler whose files (the first and every rotated one) are created 0600."""

    def _open(self):  # type: ignore[no-untyped-def]
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.chmod(self.baseFilename, 0o600)  # an older file may have been created 0644
        return os.fdopen(fd, self.mode.replace("w", "a"), encoding=self.encoding, errors=self.errors)


def setup_logging(log_file: Path | None, *, verbose: bool = False) -> Path | None:
    """Root logging: stderr at WARNING (INFO with `verbose`), and the rotating file at INFO.

    Both redacted. Returns the log file's path, or None when it could not be opened (reported on
    stderr; the console still runs).
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_trading_console", False):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    stderr = logging.StreamHandler()
    stderr.setLevel(logging.INFO if verbose else logging.WARNING)
    stderr.setFormatter(RedactingFormatter(_FORMAT))
    stderr._trading_console = True  # type: ignore[attr-defined]
    root.addHandler(stderr)
    if log_file is None:
        return None
    try:
        log_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handler = PrivateRotatingFileHandler(
            log_file, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8"
        )
    except OSError as exc:
        logging.getLogger(__name__).warning("no log file at %s: %s", log_file, exc.strerror or exc)
        return None
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    handler.setFormatter(RedactingFormatter(_FORMAT))
    handler._trading_console = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    return log_file
