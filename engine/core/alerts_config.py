"""Settings for alert rules, delivery channels and the daily summary (`[alerts]` in the config).

Webhook URLs and SMTP passwords are secrets: the config holds only the keyring name
under which `engine.persistence.secrets.CredentialStore` keeps them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from engine.core.config_types import NonNegative, Positive, Section

LevelName = Literal["INFO", "WARNING", "CRITICAL", "EMERGENCY"]
_Section = Section


class AlertRulesConfig(_Section):
    cooldown_s: NonNegative = 300.0  # the same alert key is not repeated within this window
    profit_take_pct: Positive = 20.0  # "consider taking profit" when a position is up this much
    stale_loser_days: Positive = 30.0  # a position held this long at a loss
    market_data_stale_s: Positive = 30.0  # no tick for this long on a subscribed symbol


class DesktopChannelConfig(_Section):
    enabled: bool = True
    min_level: LevelName = "WARNING"


class SoundChannelConfig(_Section):
    enabled: bool = True  # muted from the console's View menu or here
    min_level: LevelName = "CRITICAL"


class WebhookConfig(_Section):
    name: str
    format: Literal["slack", "discord", "json"] = "json"
    url_secret: str  # keyring name of the URL; the URL itself never lives in the config
    min_level: LevelName = "WARNING"
    timeout_s: Positive = 5.0
    max_retries: int = Field(default=5, ge=0, le=20)
    rate_limit_per_min: Positive = 20.0


class EmailChannelConfig(_Section):
    enabled: bool = False
    host: str = ""
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    username: str = ""
    password_secret: str = ""  # keyring name of the SMTP password
    from_addr: str = ""
    to_addrs: list[str] = Field(default_factory=list)
    min_level: LevelName = "CRITICAL"
    timeout_s: Positive = 10.0

    @field_validator("to_addrs")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        for addr in v:
            if "@" not in addr:
                raise ValueError(f"{addr!r} is not an e-mail address")
        return v


class DailySummaryConfig(_Section):
    enabled: bool = True
    at: str = "23:59"  # local time (engine.trading_day_tz) at which the trading day ends
    send: bool = True  # also deliver it through the channels (INFO level, bypassing min_level)

    @field_validator("at")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        parts = v.split(":")
        ok = len(parts) == 2 and all(p.isdigit() for p in parts)
        if not ok or not (0 <= int(parts[0]) <= 23 and 0 <= int(parts[1]) <= 59):
            raise ValueError("is not a time of day HH:MM (e.g. 23:59)")
        return v


class AlertsConfig(_Section):
    rules: AlertRulesConfig = Field(default_factory=AlertRulesConfig)
    desktop: DesktopChannelConfig = Field(default_factory=DesktopChannelConfig)
    sound: SoundChannelConfig = Field(default_factory=SoundChannelConfig)
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    email: EmailChannelConfig = Field(default_factory=EmailChannelConfig)
    daily_summary: DailySummaryConfig = Field(default_factory=DailySummaryConfig)
