"""`[control]`: how a headless engine serves its control API and pings its dead-man check.

A server's engine is started by a unit file or a script; putting these in the config keeps the
command line short and the setting reviewable. Flags given on the command line win. The
heartbeat URL embeds the check's secret, so the config names it in the keyring
(`heartbeat_secret`) and never holds the URL itself.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from engine.core.config_errors import ConfigProblem, refuse
from engine.core.config_types import Positive, Section

LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ControlConfig(Section):
    enabled: bool = True
    host: str = "127.0.0.1"  # anything but loopback needs cert, key and ca (mutual TLS)
    port: Annotated[int, Field(ge=0, le=65535)] | None = None  # None: 8765, or a free port when taken
    cert: str | None = None  # server certificate (from `trading-console certs`)
    key: str | None = None
    ca: str | None = None  # the CA whose client certificates may connect
    heartbeat_secret: str | None = None  # keyring name of the dead-man ping URL
    heartbeat_every_s: Positive = 60.0

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        if not v.strip() or any(c.isspace() for c in v):
            raise ValueError("is not a host name or address")
        return v

    @model_validator(mode="after")
    def _tls_together(self) -> ControlConfig:
        given = {name: getattr(self, name) for name in ("cert", "key", "ca")}
        missing = [name for name, value in given.items() if not value]
        problems = []
        if 0 < len(missing) < 3:
            problems.append(ConfigProblem(", ".join(missing), "", "missing: cert, key and ca are set together"))
        elif missing and not is_loopback(self.host):
            problems.append(ConfigProblem(
                "host", repr(self.host), "is not loopback: serving beyond this machine needs cert, key and ca "
                "(mutual TLS; `trading-console certs` makes them)"))  # fmt: skip
        if problems:
            refuse(problems)
        return self
