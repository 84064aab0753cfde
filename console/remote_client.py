"""Talking to an engine's control server: where it is, who we are, and its commands.

`ControlClient` sends OperatorAPI commands over HTTP and returns the same
`CommandResult` values the in-process API returns. A command keeps its command id across
retries, so a request resent after a dropped connection executes once on the engine.
Failures are sorted into what the operator must do about them: the engine is unreachable,
our credentials are refused, or the engine refused the command itself.
"""

from __future__ import annotations

import asyncio
import getpass
import ssl
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from engine.app.control_files import endpoint_path, read_endpoint, read_token, token_path
from engine.app.operator_api import CommandResult
from engine.core.paths import AppPaths

RETRY_DELAYS_S = (0.2, 0.5, 1.0)


class RemoteError(Exception):
    """Why a request did not get an answer from the engine; `kind` picks the CLI's exit code."""

    UNREACHABLE = "unreachable"
    AUTH = "authentication"
    USAGE = "usage"

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Endpoint:
    url: str
    token: str | None = None
    ssl_context: ssl.SSLContext | None = None
    name: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @property
    def ssl(self) -> ssl.SSLContext | bool:
        return self.ssl_context if self.ssl_context is not None else True

    @classmethod
    def local(cls, paths: AppPaths) -> Endpoint:
        """The engine on this machine, found through the 0600 endpoint file it writes at start."""
        found = read_endpoint(paths)
        if found is None:
            raise RemoteError(RemoteError.UNREACHABLE,
                              f"no running engine found on this machine (no {endpoint_path(paths)}); "
                              "start one with `trading-console --headless`, or give --engine URL")  # fmt: skip
        tfile = Path(str(found.get("token_file") or token_path(paths)))
        try:
            token = read_token(tfile)
        except OSError as exc:
            raise RemoteError(RemoteError.AUTH, f"cannot read the control token {tfile}: {exc.strerror}") from None
        return cls(found["url"], token, None, str(found.get("name", "")))

    @classmethod
    def from_options(
        cls,
        url: str,
        token: str | None = None,
        token_file: str | None = None,
        cert: str | None = None,
        key: str | None = None,
        ca: str | None = None,
    ) -> Endpoint:
        """`--engine URL` with `--token`/`--token-file`, or `--cert/--key/--ca` for mutual TLS."""
        if not url.startswith(("http://", "https://")):
            raise RemoteError(RemoteError.USAGE, f"{url!r} is not an engine URL (http://127.0.0.1:8765 or https://...)")
        if token_file:
            try:
                token = read_token(Path(token_file).expanduser())
            except OSError as exc:
                raise RemoteError(RemoteError.USAGE, f"cannot read {token_file}: {exc.strerror}") from None
        context = None
        if cert or key or ca:
            if not (cert and key and ca):
                raise RemoteError(RemoteError.USAGE, "mutual TLS needs all three of --cert, --key and --ca")
            if not url.startswith("https://"):
                raise RemoteError(RemoteError.USAGE, "client certificates need an https:// engine URL")
            from engine.app.certs import client_ssl_context

            try:
                context = client_ssl_context(Path(cert).expanduser(), Path(key).expanduser(), Path(ca).expanduser())
            except (OSError, ssl.SSLError) as exc:
                raise RemoteError(RemoteError.USAGE, f"cannot load the certificates: {exc}") from None
        return cls(url.rstrip("/"), token, context)


def default_operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


class ControlClient:
    """HTTP side of the control API: status, snapshot and every OperatorAPI command."""

    def __init__(self, endpoint: Endpoint, timeout_s: float = 5.0, session: aiohttp.ClientSession | None = None):
        self.endpoint = endpoint
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session = session
        self._own_session = session is None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> ControlClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        url = f"{self.endpoint.url}/v1/{path}"
        try:
            async with self.session.request(
                method, url, json=body, headers=self.endpoint.headers, ssl=self.endpoint.ssl, timeout=self.timeout
            ) as resp:
                try:
                    data = await resp.json(content_type=None)
                except ValueError:
                    data = {"error": (await resp.text())[:200]}
                status = resp.status
        except aiohttp.ClientSSLError as exc:
            raise RemoteError(RemoteError.AUTH, f"TLS with {self.endpoint.url} failed: {_ssl_reason(exc)}") from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            if self.endpoint.ssl_context is not None and _looks_like_tls_refusal(exc):
                raise RemoteError(RemoteError.AUTH,
                                  f"{self.endpoint.url} closed the TLS connection without a reply: our client "
                                  f"certificate is probably not signed by its CA ({_describe(exc)})") from None
            raise RemoteError(RemoteError.UNREACHABLE, f"cannot reach the engine at {self.endpoint.url}: "
                                                       f"{_describe(exc)}") from None  # fmt: skip
        if status in (401, 403):
            raise RemoteError(RemoteError.AUTH, f"{self.endpoint.url} refused our credentials (wrong or missing token "
                                                "or certificate)")  # fmt: skip
        if status == 429:
            raise RemoteError(RemoteError.AUTH, f"{self.endpoint.url}: too many failed authentications; wait a minute")
        return status, data

    async def status(self) -> dict[str, Any]:
        return await self._get("status")

    async def snapshot(self) -> dict[str, Any]:
        return await self._get("snapshot")

    async def preview_close_all(self) -> dict[str, Any]:
        return await self._get("close-all/preview")

    async def _get(self, path: str) -> dict[str, Any]:
        status, data = await self.request("GET", path)
        if status != 200 or not isinstance(data, dict):
            raise RemoteError(RemoteError.UNREACHABLE, f"{self.endpoint.url} answered {status} to {path}")
        return data

    async def command(
        self, name: str, *, operator: str = "", command_id: str | None = None, deadline_s: float = 10.0, **args: Any
    ) -> CommandResult:
        """Send one command; retried with the same id on a dropped connection, so it runs once."""
        cid = command_id or uuid.uuid4().hex
        body = {"command_id": cid, "operator": operator or default_operator(), **args}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        attempt = 0
        while True:
            try:
                status, data = await self.request("POST", f"commands/{name}", body)
                break
            except RemoteError as exc:
                if exc.kind != RemoteError.UNREACHABLE or loop.time() >= deadline:
                    raise
                await asyncio.sleep(RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)])
                attempt += 1
        if status in (400, 404):
            raise RemoteError(RemoteError.USAGE, str(data.get("message") or data.get("error") or status))
        if not isinstance(data, dict) or "ok" not in data:
            raise RemoteError(RemoteError.UNREACHABLE, f"{self.endpoint.url} answered {status} without a result")
        return CommandResult(bool(data["ok"]), str(data.get("message", "")), str(data.get("command", name)),
                             str(data.get("command_id", cid)), dict(data.get("details") or {}))  # fmt: skip


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:200] + "…"


def _ssl_reason(exc: aiohttp.ClientSSLError) -> str:
    inner = getattr(exc, "os_error", None) or exc
    return getattr(inner, "reason", None) or _describe(inner)


def _looks_like_tls_refusal(exc: BaseException) -> bool:
    """With TLS 1.3 the server checks our certificate after the handshake and just hangs up.

    The client sees a disconnect with no reply, which an engine dying mid-request would also
    give; for a TLS endpoint we name the likelier cause (a retry would meet a refused port).
    """
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return True
    if isinstance(exc, aiohttp.ClientOSError) and not isinstance(exc, aiohttp.ClientConnectorError):
        return True  # connected, then reset: the TLS layer hung up on us
    text = f"{exc!r} {getattr(exc, 'os_error', '')!r}".lower()
    return any(w in text for w in ("alert", "certificate", "ssl", "tls"))
