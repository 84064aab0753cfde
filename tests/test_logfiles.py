"""Log files: in the logs folder, owner-only, rotated, and never holding a secret."""

from __future__ import annotations

import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.core import logfiles
from engine.core.logfiles import register_secret, setup_logging


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    path = tmp_path / "logs" / "trading-console.log"
    assert setup_logging(path) == path
    yield path
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def read(path: Path) -> str:
    for handler in logging.getLogger().handlers:
        handler.flush()
    return path.read_text(encoding="utf-8")


def test_a_registered_secret_never_reaches_the_file_whatever_way_it_is_logged(log_file: Path) -> None:
    secret = "Zq8Wv4Lx9Pm2Rt6Yn-registered"
    register_secret(secret)
    log = logging.getLogger("engine.venues.test")
    log.warning("order refused with key %s", secret)
    log.error("payload %r", {"nested": [secret]})
    try:
        raise RuntimeError(f"venue said: bad signature for {secret}")
    except RuntimeError:
        log.exception("call failed")
    text = read(log_file)
    assert secret not in text
    assert text.count("***") >= 3 and "call failed" in text and "RuntimeError" in text


@pytest.mark.parametrize(
    "line",
    [
        "api_key=PKABCDEF123456 mode=paper",
        'config {"password": "hunter2hunter2", "user": "bob"}',
        "{'secret': 'abcdEFGH1234'}",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
        "posting to https://bob:pa55word@mail.example.com/x",
        "webhook https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX failed",
        "token: ghp_abcdefghijklmnop",
    ],
)
def test_things_shaped_like_secrets_are_masked(log_file: Path, line: str) -> None:
    logging.getLogger("engine.alerts").warning(line)
    text = read(log_file)
    for value in ("PKABCDEF123456", "hunter2hunter2", "abcdEFGH1234", "eyJhbGciOiJIUzI1NiJ9", "pa55word",
                  "XXXXXXXXXXXX", "ghp_abcdefghijklmnop"):  # fmt: skip
        assert value not in text
    assert "***" in text


def test_ordinary_lines_are_left_alone() -> None:
    line = "filled 0.5 BTC/USDT at 65000.10, equity 10012.34, state ACTIVE"
    assert logfiles.redact(line) == line


def test_the_log_file_and_its_rotations_are_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logfiles, "LOG_FILE_BYTES", 2000)
    path = tmp_path / "logs" / "trading-console.log"
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        setup_logging(path)
        for i in range(200):
            logging.getLogger("engine").warning("line %d %s", i, "x" * 50)
        files = sorted(path.parent.iterdir())
    finally:
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)
                handler.close()
    assert len(files) == 1 + logfiles.LOG_FILE_BACKUPS  # rotated, a bounded number kept
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_log_folder_that_cannot_be_created_does_not_stop_the_console(tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("")
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        assert setup_logging(blocker / "trading-console.log") is None
    finally:
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)
                handler.close()
