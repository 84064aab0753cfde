"""The e-mail channel against a local SMTP server (tests/fakes/smtp.py): plain, STARTTLS + login, refusals."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from pathlib import Path
from typing import Any

import pytest

from engine.alerts.notify.dispatcher import AlertDispatcher
from engine.alerts.notify.email import EmailChannel
from engine.alerts.notify.named_secrets import resolve_named_secret, store_named_secret
from engine.core.alerts_config import AlertsConfig, EmailChannelConfig
from engine.core.events import AlertEvent, EventBus
from engine.core.model import AlertLevel
from engine.persistence.secrets import CredentialStore
from tests.engine_rig import until
from tests.fakes.smtp import FakeSmtpServer
from tests.test_secrets import memory_keyring  # noqa: F401  (the fixture, used through pytestmark)

pytestmark = pytest.mark.timeout(60)
TS = dt.datetime(2026, 2, 2, 9, 30, tzinfo=dt.UTC)
PASSWORD = "smtp-Pa55-w0rd-zz9"


pytestmark = pytest.mark.usefixtures("memory_keyring")  # never the operator's keyring

def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def email_config(port: int, **kw: Any) -> EmailChannelConfig:
    base: dict[str, Any] = dict(enabled=True, host="127.0.0.1", port=port, starttls=False,
                                from_addr="bot@example.com", to_addrs=["ops@example.com"])  # fmt: skip
    return EmailChannelConfig(**{**base, **kw})


async def dispatch(chan: EmailChannel, *events: AlertEvent, until_alerts: int = 0) -> list[AlertEvent]:
    """Publish ``events`` through a dispatcher; return every alert the bus saw once the lane is idle."""
    bus = EventBus()
    seen: list[AlertEvent] = []
    bus.subscribe(seen.append, AlertEvent)
    d = AlertDispatcher(bus, [chan], lambda lv, c, m, k: bus.publish(AlertEvent(TS, lv, c, m, k)))
    d.start()
    for ev in events:
        bus.publish(ev)
    s = d.stats
    await until(lambda: s()["e-mail"].queued == 0 and s()["e-mail"].delivered + s()["e-mail"].failed >= 1,
                what="the e-mail lane to finish", timeout=20)  # fmt: skip
    await until(lambda: len(seen) >= until_alerts, what="alerts")
    await d.aclose()
    return seen


def self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh certificate for 127.0.0.1, and a client context trusting only it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))  # fmt: skip
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(pem)
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))  # fmt: skip
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client = ssl.create_default_context(cadata=pem.decode())
    return server, client


def test_a_critical_alert_arrives_by_mail_and_a_warning_does_not() -> None:
    async def scenario() -> FakeSmtpServer:
        smtp = await FakeSmtpServer().start()
        chan = EmailChannel(email_config(smtp.port), None)
        await dispatch(chan,
                       AlertEvent(TS, AlertLevel.WARNING, "stale_data", "no tick for 31 s"),
                       AlertEvent(TS, AlertLevel.CRITICAL, "breaker_trip", "Daily loss limit hit: trading HALTED"))
        await smtp.close()  # fmt: skip
        return smtp

    smtp = run(scenario())
    assert len(smtp.mails) == 1
    mail = smtp.mails[0]
    assert mail.mail_from == "bot@example.com" and mail.rcpt_to == ["ops@example.com"]
    assert mail.message["Subject"] == "[trading-console] CRITICAL: Daily loss limit hit: trading HALTED"
    body = mail.message.get_content()
    assert "Daily loss limit hit: trading HALTED" in body and "breaker_trip" in body


def test_starttls_and_login_with_the_password_from_the_keyring(tmp_path: Path) -> None:
    server_tls, client_tls = self_signed(tmp_path)
    store_named_secret(CredentialStore(tmp_path), "smtp-pass", PASSWORD)

    async def scenario() -> FakeSmtpServer:
        smtp = await FakeSmtpServer(tls=server_tls, users={"bot": PASSWORD}).start()
        cfg = email_config(smtp.port, starttls=True, username="bot", password_secret="smtp-pass")
        chan = EmailChannel(cfg, lambda: resolve_named_secret("smtp-pass", lambda: CredentialStore(tmp_path)),
                            ssl_context=client_tls)  # fmt: skip
        await dispatch(chan, AlertEvent(TS, AlertLevel.EMERGENCY, "estop_failed", "cancel-all did not finish"))
        await smtp.close()
        return smtp

    smtp = run(scenario())
    assert len(smtp.mails) == 1
    assert smtp.mails[0].tls and smtp.mails[0].user == "bot"


def test_a_refused_login_is_reported_once_without_the_password(tmp_path: Path) -> None:
    server_tls, client_tls = self_signed(tmp_path)

    async def scenario() -> tuple[FakeSmtpServer, list[AlertEvent]]:
        smtp = await FakeSmtpServer(tls=server_tls, users={"bot": "another password"}).start()
        cfg = email_config(smtp.port, starttls=True, username="bot", password_secret="smtp-pass")
        chan = EmailChannel(cfg, lambda: PASSWORD, ssl_context=client_tls, backoff_s=0.01)
        seen = await dispatch(chan, AlertEvent(TS, AlertLevel.CRITICAL, "breaker_trip", "halted"), until_alerts=2)
        await smtp.close()
        return smtp, seen

    smtp, seen = run(scenario())
    failed = [a for a in seen if a.code == "alert_delivery_failed"]
    assert len(failed) == 1 and smtp.failed_logins == 1  # authentication is not retried
    assert "e-mail" in failed[0].message and "refused the login" in failed[0].message
    assert PASSWORD not in failed[0].message


def test_no_password_over_an_unencrypted_connection_to_another_host() -> None:
    async def scenario() -> list[AlertEvent]:
        cfg = email_config(25, host="smtp.example.invalid", username="bot", password_secret="smtp-pass")
        chan = EmailChannel(cfg, lambda: PASSWORD)
        return await dispatch(chan, AlertEvent(TS, AlertLevel.CRITICAL, "breaker_trip", "halted"), until_alerts=2)

    failed = [a for a in run(scenario()) if a.code == "alert_delivery_failed"]
    assert len(failed) == 1 and "unencrypted" in failed[0].message and PASSWORD not in failed[0].message


def test_an_incomplete_email_config_is_said_once_at_start() -> None:
    async def scenario() -> tuple[AlertDispatcher, list[AlertEvent]]:
        bus = EventBus()
        seen: list[AlertEvent] = []
        bus.subscribe(seen.append, AlertEvent)
        alerts = AlertsConfig(email=EmailChannelConfig(enabled=True, host="smtp.example.com"))
        d = AlertDispatcher.from_settings(alerts, bus, lambda lv, c, m, k: bus.publish(AlertEvent(TS, lv, c, m, k)),
                                          None)  # fmt: skip
        d.start()
        await d.aclose()
        return d, seen

    d, seen = run(scenario())
    assert d.channel_names == []
    assert [a.code for a in seen] == ["alert_channel_config"]
    assert "from_addr, to_addrs are empty" in seen[0].message
