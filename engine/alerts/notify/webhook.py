"""Webhook channel: Slack, Discord or generic JSON over aiohttp.

Retries 5xx, network errors and timeouts with exponential backoff; on 429 waits what
Retry-After says; paces itself with a token bucket so an alert storm cannot get the
webhook banned. The URL is a secret (Slack and Discord URLs carry the token), so nothing
this module logs or raises contains it: failures are described by status code or
exception type only, never by ``str(exc)`` (aiohttp puts the URL there).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from engine.alerts.notify.blocking import run_in_daemon_thread
from engine.alerts.notify.channel import DeliveryFailed
from engine.alerts.notify.formats import webhook_body
from engine.alerts.notify.named_secrets import SecretUnavailable
from engine.alerts.notify.pacing import TokenBucket, backoff, per_minute_bucket, retry_after_s
from engine.core.alerts_config import WebhookConfig
from engine.core.events import AlertEvent
from engine.core.model import AlertLevel

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
RunBlocking = Callable[[Callable[[], str]], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class _Attempt:
    ok: bool
    retryable: bool = False
    reason: str = ""
    retry_after: float | None = None


class WebhookChannel:
    def __init__(
        self,
        config: WebhookConfig,
        resolve_url: Callable[[], str],
        *,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        max_retry_after_s: float = 300.0,
        resolve_timeout_s: float = 15.0,
        sleep: Sleep = asyncio.sleep,
        monotonic: Callable[[], float] | None = None,
        run_blocking: RunBlocking = run_in_daemon_thread,
    ) -> None:
        self.config = config
        self.name = f"webhook '{config.name}'"
        self.min_level = AlertLevel[config.min_level]
        self.retries = 0
        self._resolve = resolve_url
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._max_retry_after_s = max_retry_after_s
        self._resolve_timeout_s = resolve_timeout_s
        self._sleep = sleep
        self._monotonic = monotonic
        self._run_blocking = run_blocking
        self._url: str | None = None
        self._session: aiohttp.ClientSession | None = None
        self._bucket: TokenBucket | None = None

    # --- the channel -----------------------------------------------------------------------
    async def send(self, ev: AlertEvent) -> None:
        url = await self._url_or_fail()
        body = webhook_body(self.config.format, ev)
        max_attempts = 1 + self.config.max_retries
        attempts = 0
        while True:
            await self._pace()
            attempts += 1
            result = await self._post(url, body)
            if result.ok:
                return
            if not result.retryable or attempts >= max_attempts:
                if not result.retryable:
                    self._url = None  # read the secret again next time: the operator may have fixed it
                raise DeliveryFailed(f"{result.reason}; gave up after {attempts} attempt(s)", attempts)
            self.retries += 1
            wait = result.retry_after
            if wait is None:
                wait = backoff(attempts, self._backoff_s, self._max_backoff_s)
            wait = min(wait, self._max_retry_after_s)
            log.info("%s: attempt %d failed (%s); retrying in %.1f s", self.name, attempts, result.reason, wait)
            await self._sleep(wait)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- pieces ------------------------------------------------------------------------------
    async def _url_or_fail(self) -> str:
        if self._url is not None:
            return self._url
        secret = self.config.url_secret
        try:
            url = await asyncio.wait_for(self._run_blocking(self._resolve), self._resolve_timeout_s)
        except SecretUnavailable as exc:
            raise DeliveryFailed(f"the URL is missing: {exc}", 0) from None
        except TimeoutError:
            raise DeliveryFailed(f"the credential store did not return secret {secret!r} in time", 0) from None
        except Exception as exc:
            raise DeliveryFailed(f"reading secret {secret!r} failed ({type(exc).__name__})", 0) from None
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DeliveryFailed(f"secret {secret!r} does not hold an http(s) URL", 0)
        self._url = url.strip()
        return self._url

    def _now(self) -> float:
        return self._monotonic() if self._monotonic is not None else asyncio.get_running_loop().time()

    async def _pace(self) -> None:
        if self._bucket is None:
            self._bucket = per_minute_bucket(self.config.rate_limit_per_min, self._now)
        while (wait := self._bucket.wait_time()) > 0:
            await self._sleep(wait)
        self._bucket.take()

    def _client(self) -> aiohttp.ClientSession:
        import aiohttp  # imported on first use: most runs configure no webhook

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers={"User-Agent": "trading-console"})
        return self._session

    async def _post(self, url: str, body: dict[str, Any]) -> _Attempt:
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
        try:
            async with self._client().post(url, json=body, timeout=timeout) as resp:
                await resp.read()
                status, headers = resp.status, resp.headers
        except TimeoutError:
            return _Attempt(False, True, f"no answer within {self.config.timeout_s:g} s")
        except aiohttp.InvalidURL:
            return _Attempt(False, False, "the stored URL is not valid")
        except (aiohttp.ClientError, OSError) as exc:  # never str(exc): it names host and URL
            return _Attempt(False, True, f"network error ({type(exc).__name__})")
        if 200 <= status < 300:
            return _Attempt(True)
        if status == 429:
            return _Attempt(False, True, "HTTP 429 (rate limited)", retry_after_s(headers))
        if status >= 500:
            return _Attempt(False, True, f"HTTP {status}")
        return _Attempt(False, False, f"HTTP {status} (not retried)")
