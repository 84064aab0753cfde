"""Dead-man pings: the engine tells a watcher, every N seconds, that it is alive.

Healthchecks-style: a GET (or a POST with a one-line status) to a URL the operator
configured (healthchecks.io, Uptime Kuma, a cron monitor...). When the pings stop, because
the host died, the process was killed or the network is gone, the watcher alerts; the
engine cannot report its own death. The URL usually embeds a secret check id, so it is
never logged or shown: failures name the HTTP status or the error only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

FAILURES_BEFORE_WARNING = 3


class HeartbeatPinger:
    def __init__(
        self,
        url: str,
        every_s: float,
        status: Callable[[], dict[str, Any]] | None = None,
        method: str = "POST",
        timeout_s: float = 10.0,
        warn: Callable[[str], object] | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("the heartbeat URL must start with http:// or https://")
        if every_s <= 0:
            raise ValueError("the heartbeat interval must be positive")
        self._url = url
        self.every_s = every_s
        self._status = status
        self.method = method.upper()
        self._timeout = aiohttp.ClientTimeout(total=min(timeout_s, every_s * 2))
        self._warn = warn
        self.sent = 0
        self.failures = 0  # consecutive
        self.last_error = ""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        async with aiohttp.ClientSession(timeout=self._timeout) as session:
            while True:
                await self.ping(session)
                await asyncio.sleep(self.every_s)

    async def ping(self, session: aiohttp.ClientSession) -> bool:
        body = None
        if self.method == "POST" and self._status is not None:
            try:
                body = json.dumps(self._status(), default=str)
            except Exception as exc:  # a status that fails to build must not stop the pings
                body = json.dumps({"error": f"status unavailable: {type(exc).__name__}"})
        try:
            async with session.request(self.method, self._url, data=body) as resp:
                ok = resp.status < 400
                self.last_error = "" if ok else f"HTTP {resp.status}"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            ok = False
            self.last_error = type(exc).__name__  # never str(exc): it may quote the URL
        if ok:
            self.sent += 1
            self.failures = 0
            return True
        self.failures += 1
        log.warning("heartbeat ping failed (%s), %d in a row", self.last_error, self.failures)
        if self.failures == FAILURES_BEFORE_WARNING and self._warn is not None:
            self._warn(f"Heartbeat pings are failing ({self.last_error}): the dead-man watcher will think "
                       "this engine is down")  # fmt: skip
        return False
