"""E-mail channel: stdlib smtplib on a daemon thread, with a socket timeout and a few retries.

Port 465 means TLS from the first byte (SMTP_SSL); otherwise STARTTLS when configured. A
password is never sent over an unencrypted connection to anything but this machine. The
password is read from the credential store by name when first needed; failures name the
server's reply code or the exception type, never the password.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import smtplib
import socket
import ssl
from collections.abc import Awaitable, Callable
from email.message import EmailMessage

from engine.alerts.notify.blocking import run_in_daemon_thread
from engine.alerts.notify.channel import DeliveryFailed, scrub
from engine.alerts.notify.formats import email_message
from engine.alerts.notify.named_secrets import SecretUnavailable
from engine.alerts.notify.pacing import backoff
from engine.core.alerts_config import EmailChannelConfig
from engine.core.events import AlertEvent
from engine.core.model import AlertLevel

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
RunBlocking = Callable[[Callable[[], object]], Awaitable[object]]


class _Permanent(Exception):
    """Retrying will not help (authentication refused, address rejected, TLS policy)."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class EmailChannel:
    def __init__(
        self,
        config: EmailChannelConfig,
        resolve_password: Callable[[], str] | None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_retries: int = 2,
        backoff_s: float = 2.0,
        sleep: Sleep = asyncio.sleep,
        run_blocking: RunBlocking = run_in_daemon_thread,
    ) -> None:
        self.config = config
        self.name = "e-mail"
        self.min_level = AlertLevel[config.min_level]
        self.retries = 0
        self._resolve = resolve_password
        self._ssl = ssl_context
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._sleep = sleep
        self._run_blocking = run_blocking
        self._password: str | None = None

    def problems(self) -> list[str]:
        """What makes this configuration unusable (said once at start, not on every alert)."""
        c = self.config
        missing = [n for n, v in (("host", c.host), ("from_addr", c.from_addr), ("to_addrs", c.to_addrs)) if not v]
        out = []
        if missing:
            out.append(f"e-mail is enabled but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} empty")
        if c.username and not c.password_secret:
            out.append("e-mail has a username but no password_secret")
        return out

    async def send(self, ev: AlertEvent) -> None:
        msg = email_message(ev, self.config.from_addr, list(self.config.to_addrs))
        password = await self._password_or_fail()
        attempts = 0
        while True:
            attempts += 1
            try:
                # the socket timeout bounds each step; this bounds the whole conversation
                await asyncio.wait_for(
                    self._run_blocking(lambda: self._deliver(msg, password)), self.config.timeout_s * 4
                )
                return
            except _Permanent as exc:
                self._password = None  # read it again next time: the operator may have fixed it
                raise DeliveryFailed(f"{scrub(str(exc), password)}; not retried", attempts) from None
            except TimeoutError:
                reason = f"no answer from the SMTP server within {self.config.timeout_s:g} s"
            except (smtplib.SMTPException, OSError) as exc:
                reason = _describe(exc, password)
            if attempts > self._max_retries:
                raise DeliveryFailed(f"{reason}; gave up after {attempts} attempt(s)", attempts)
            self.retries += 1
            log.info("%s: attempt %d failed (%s); retrying", self.name, attempts, reason)
            await self._sleep(backoff(attempts, self._backoff_s, 60.0))

    async def aclose(self) -> None:
        return None

    async def _password_or_fail(self) -> str:
        if not self.config.username:
            return ""
        if self._password is None:
            if self._resolve is None:
                raise DeliveryFailed("e-mail has a username but no password_secret", 0)
            try:
                self._password = str(await asyncio.wait_for(self._run_blocking(self._resolve), 15.0))
            except SecretUnavailable as exc:
                raise DeliveryFailed(f"the SMTP password is missing: {exc}", 0) from None
            except TimeoutError:
                raise DeliveryFailed("the credential store did not return the SMTP password in time", 0) from None
            except Exception as exc:
                raise DeliveryFailed(f"reading the SMTP password failed ({type(exc).__name__})", 0) from None
        return self._password

    def _deliver(self, msg: EmailMessage, password: str) -> None:
        """Blocking: one SMTP conversation."""
        c = self.config
        implicit_tls = c.port == 465
        encrypted = implicit_tls or c.starttls
        if c.username and not encrypted and not _is_loopback(c.host):
            raise _Permanent("refusing to send the SMTP password unencrypted: enable starttls or use port 465")
        context = self._ssl or (ssl.create_default_context() if encrypted else None)
        smtp: smtplib.SMTP
        if implicit_tls:
            smtp = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_s, context=context)
        else:
            smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout_s)
        with smtp:
            smtp.ehlo()
            if c.starttls and not implicit_tls:
                if not smtp.has_extn("starttls"):
                    raise _Permanent("the SMTP server does not offer STARTTLS")
                smtp.starttls(context=context)
                smtp.ehlo()
            try:
                if c.username:
                    smtp.login(c.username, password)
                smtp.send_message(msg, from_addr=c.from_addr, to_addrs=list(c.to_addrs))
            except (smtplib.SMTPAuthenticationError, smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
                raise _Permanent(_describe(exc, password)) from None
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code >= 500:
                    raise _Permanent(_describe(exc, password)) from None
                raise


def _describe(exc: BaseException, password: str) -> str:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"the SMTP server refused the login (code {exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return f"the SMTP server refused the recipient(s) {', '.join(sorted(exc.recipients))}"
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return scrub(f"SMTP error {exc.smtp_code}: {text[:120]}", password)
    if isinstance(exc, socket.timeout | TimeoutError):
        return "the SMTP server timed out"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({type(exc).__name__})"
    return f"{type(exc).__name__} talking to the SMTP server"
