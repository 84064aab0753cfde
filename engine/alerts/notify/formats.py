"""What an alert looks like on each channel: Slack, Discord, generic JSON, e-mail."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from engine.core.events import AlertEvent
from engine.core.model import AlertLevel

DAILY_SUMMARY = "daily_summary"
DELIVERY_FAILED = "alert_delivery_failed"
DISCORD_LIMIT = 2000  # Discord rejects longer content with 400
SLACK_LIMIT = 4000  # Slack's advice for the text field; longer messages get truncated there anyway
TAGS = {
    AlertLevel.INFO: "ℹ INFO",
    AlertLevel.WARNING: "⚠ WARNING",
    AlertLevel.CRITICAL: "✖ CRITICAL",
    AlertLevel.EMERGENCY: "‼ EMERGENCY",
}


def level_name(level: object) -> str:
    try:
        return AlertLevel(level).name  # type: ignore[arg-type]
    except ValueError:
        return str(level)


def alert_text(ev: AlertEvent) -> str:
    """One readable text: level and code on the first line, then the message."""
    if ev.code == DAILY_SUMMARY:
        return ev.message  # the summary is a finished text of its own
    tag = TAGS.get(ev.level, level_name(ev.level))  # type: ignore[call-overload]
    return f"{tag} · {ev.code}\n{ev.message}"


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def webhook_body(fmt: str, ev: AlertEvent) -> dict[str, Any]:
    if fmt == "slack":
        return {"text": truncate(alert_text(ev), SLACK_LIMIT)}
    if fmt == "discord":
        return {"content": truncate(alert_text(ev), DISCORD_LIMIT)}
    return {
        "ts": ev.ts.isoformat(),
        "level": level_name(ev.level),
        "code": ev.code,
        "message": ev.message,
        "alert_id": ev.alert_id,
        "key": ev.key,
    }


def email_message(ev: AlertEvent, from_addr: str, to_addrs: list[str]) -> EmailMessage:
    msg = EmailMessage()
    if ev.code == DAILY_SUMMARY:
        subject = f"[trading-console] Daily summary {ev.ts:%Y-%m-%d}"
    else:
        first = ev.message.splitlines()[0] if ev.message else ev.code
        subject = f"[trading-console] {level_name(ev.level)}: {truncate(first, 90)}"
    msg["Subject"] = subject
    msg["From"] = from_addr
    msg["To"] = ", ".join(to_addrs)
    msg["Date"] = format_datetime(ev.ts)
    msg["Message-ID"] = make_msgid(domain="trading-console.invalid")  # no getfqdn() (slow DNS)
    footer = f"\n\n--\nlevel {level_name(ev.level)} · code {ev.code} · {ev.ts.isoformat()}"
    msg.set_content(alert_text(ev) + footer)
    return msg
