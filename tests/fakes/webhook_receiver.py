"""A webhook receiver on 127.0.0.1 (aiohttp): scripted answers, or a request that hangs until released."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

SECRET_PATH = "/services/T0/B0/xoxb-very-secret-token"  # what a Slack URL's secret part looks like


class Receiver:
    """Answers from ``script`` (status, headers) in order, then 200; or hangs while ``hang`` is set."""

    def __init__(self, now: Callable[[], float] | None = None) -> None:
        self.script: list[tuple[int, dict[str, str]]] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.delivered: list[tuple[str, dict[str, Any]]] = []
        self.arrivals: list[float] = []
        self.hang = False
        self.hanging = 0
        self.release = asyncio.Event()
        self._now = now
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append((request.path, body))
        if self._now is not None:
            self.arrivals.append(self._now())
        if self.hang:
            self.hanging += 1
            await self.release.wait()
        status, headers = self.script.pop(0) if self.script else (200, {})
        if status < 300:
            self.delivered.append((request.path, body))
        return web.Response(status=status, headers=headers, text="ok")

    def url(self, path: str = SECRET_PATH) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        assert self._runner is not None
        await self._runner.cleanup()
