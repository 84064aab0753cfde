"""The control server's small files: the per-install token and the local endpoint.

Both are 0600 from the first byte (created with os.open's mode, never chmod'ed after),
so no other user on the host can read the token or learn where the engine listens.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from engine.core.paths import AppPaths

TOKEN_FILE = "control-token"
ENDPOINT_FILE = "control-endpoint.json"


def write_private(path: Path, text: str) -> None:
    """Write atomically, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def token_path(paths: AppPaths) -> Path:
    return paths.config_dir / TOKEN_FILE


def endpoint_path(paths: AppPaths) -> Path:
    return paths.data_dir / ENDPOINT_FILE


def ensure_token(paths: AppPaths) -> str:
    """The install's token, made on first use."""
    path = token_path(paths)
    if path.exists():
        token = read_token(path)
        if token:
            return token
    token = secrets.token_urlsafe(32)
    write_private(path, token + "\n")
    return token


def read_token(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip()


def write_endpoint(paths: AppPaths, url: str, name: str, tls: bool) -> Path:
    path = endpoint_path(paths)
    body = {"url": url, "name": name, "pid": os.getpid(), "tls": tls, "token_file": str(token_path(paths))}
    write_private(path, json.dumps(body) + "\n")
    return path


def read_endpoint(paths: AppPaths) -> dict[str, Any] | None:
    try:
        data = json.loads(endpoint_path(paths).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("url"), str) else None


def remove_endpoint(paths: AppPaths) -> None:
    """Remove the endpoint file if this process wrote it (a second engine's file stays)."""
    found = read_endpoint(paths)
    if found is not None and found.get("pid") == os.getpid():
        with contextlib.suppress(OSError):
            endpoint_path(paths).unlink()
