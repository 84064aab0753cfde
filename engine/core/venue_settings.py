"""Typed `[venues.binance]` and `[venues.alpaca]`: a mode that must be spelled out, endpoints
that move together, finite timeouts.

Why so strict: a Binance config whose mode was "Testnet", "paper" or missing used to trade
LIVE; a custom REST host alone sent the websockets to the exchange's production hosts. Now a
mode is one of the listed words exactly (no default: never LIVE by omission), and the custom
endpoints are all given or none. A known host that belongs to the other environment (a live
host under mode = "testnet") is refused too.
"""

from __future__ import annotations

import enum
from typing import Any, Literal

from pydantic import ValidationError, field_validator, model_validator

from engine.core.config_errors import ConfigProblem, describe, refuse
from engine.core.config_types import FrozenSection, NonNegative, PairList, Positive, PositiveInt, TickerList
from engine.core.environment import DEFAULT_ENDPOINTS, classify_endpoint


class BinanceMode(enum.StrEnum):
    TESTNET = "testnet"
    LIVE = "live"


class AlpacaMode(enum.StrEnum):
    PAPER = "paper"
    LIVE = "live"


def _url(v: str | None, schemes: tuple[str, ...]) -> str | None:
    if v is None:
        return None
    if not v.strip() or v.split("://", 1)[0] not in schemes or "://" not in v:
        raise ValueError(f"is not a URL starting with {' or '.join(s + '://' for s in schemes)}")
    return v.rstrip("/")


class _VenueSettings(FrozenSection):
    """What every real venue shares: the credential entry, symbols, timeouts, reconciliation."""

    account: str = "default"  # the credential store entry (keys live there, never here)
    timeout_s: Positive = 10.0  # every venue call
    poll_interval_s: Positive = 1.0  # REST polling when a stream is down
    backoff_s: Positive = 0.25  # between submit attempts
    ws_retry_s: Positive = 5.0  # before a lost stream is tried again
    ws_timeout_s: Positive | None = None  # websocket connect, authentication, subscription; None: timeout_s
    stream_grace_s: Positive = 1.0  # an acknowledged order the stream has not reported by then is polled
    submit_attempts: PositiveInt = 3
    cancel_attempts: PositiveInt = 3
    reconcile_interval_s: NonNegative = 60.0  # 0: reconcile only at start
    reconcile_attempts: PositiveInt = 3
    reconcile_backoff_s: NonNegative = 0.5
    reconcile_overlap_s: NonNegative = 60.0  # fills re-read from this far before the last reconciliation

    # Older code reads these as dicts; kept until every caller uses the attributes.
    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, None)
        return default if value is None else value

    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in type(self).model_fields and getattr(self, key) is not None

    def _check_endpoints(self, venue: str, mode: str, given: dict[str, str | None]) -> None:
        """All custom endpoints or none; none of them a known host of the other environment."""
        named = [k for k, v in given.items() if v]
        problems: list[ConfigProblem] = []
        if named and len(named) < len(given):
            rule = (f"is required with {', '.join(named)}: custom endpoints go all {len(given)} together "
                    f"({', '.join(given)}) or none, so no link falls back to the exchange's own hosts")
            problems += [ConfigProblem(k, "", rule) for k in given if k not in named]
        for key in named:
            url = given[key] or ""
            env = classify_endpoint(venue, url)
            if env in ("live", "paper", "testnet") and (env == "live") != (mode == "live"):
                problems.append(ConfigProblem(key, repr(url), f"is a {env} host but mode is {mode!r}"))
        if problems:
            refuse(problems)


class BinanceSettings(_VenueSettings):
    """Binance spot through ccxt."""

    mode: BinanceMode
    symbols: PairList | None = None  # None: the simulator's symbols
    rest_public: str | None = None  # e.g. https://api.binance.com/api/v3
    rest_private: str | None = None
    ws_public: str | None = None  # market streams, e.g. wss://stream.binance.com:9443/ws
    ws_private: str | None = None  # user data (websocket API), e.g. wss://ws-api.binance.com/ws-api/v3
    endpoint: str | None = None  # written by the wizard: the mode's own host, for the record
    market_silence_s: Positive = 30.0  # a subscribed market stream silent this long has failed

    @field_validator("rest_public", "rest_private")
    @classmethod
    def _rest(cls, v: str | None) -> str | None:
        return _url(v, ("http", "https"))

    @field_validator("ws_public", "ws_private")
    @classmethod
    def _ws(cls, v: str | None) -> str | None:
        return _url(v, ("ws", "wss"))

    @model_validator(mode="after")
    def _endpoints(self) -> BinanceSettings:
        _own_host_only(self.endpoint, "binance", self.mode.value, "rest_public, rest_private, ws_public, ws_private")
        self._check_endpoints("binance", self.mode.value, self._given())
        return self

    def _given(self) -> dict[str, str | None]:
        return {"rest_public": self.rest_public, "rest_private": self.rest_private,
                "ws_public": self.ws_public, "ws_private": self.ws_private}  # fmt: skip

    @property
    def custom_endpoints(self) -> tuple[str, str, str, str] | None:
        """(rest_public, rest_private, ws_public, ws_private), or None for the exchange's own."""
        if not self.rest_public or not self.rest_private or not self.ws_public or not self.ws_private:
            return None
        return self.rest_public, self.rest_private, self.ws_public, self.ws_private


class AlpacaSettings(_VenueSettings):
    """US equities (and crypto) through alpaca-py."""

    mode: AlpacaMode
    symbols: TickerList | None = None  # None: SPY, AAPL, MSFT
    feed: Literal["iex", "sip"] = "iex"  # market data feed: iex (free) or sip (paid)
    endpoint: str | None = None  # trading API (private REST); the mode's own host means none
    data_url: str | None = None  # market data REST
    stream_url: str | None = None  # trade updates websocket
    data_stream_url: str | None = None  # market data websocket

    @field_validator("endpoint", "data_url")
    @classmethod
    def _rest(cls, v: str | None) -> str | None:
        return _url(v, ("http", "https"))

    @field_validator("stream_url", "data_stream_url")
    @classmethod
    def _ws(cls, v: str | None) -> str | None:
        return _url(v, ("ws", "wss"))

    @model_validator(mode="after")
    def _endpoints(self) -> AlpacaSettings:
        endpoint = None if self.endpoint in _DEFAULT_HOSTS.values() else self.endpoint
        if endpoint is None:
            _own_host_only(self.endpoint, "alpaca", self.mode.value, "endpoint, data_url, stream_url, data_stream_url")
        given = {"endpoint": endpoint, "data_url": self.data_url, "stream_url": self.stream_url,
                 "data_stream_url": self.data_stream_url}  # fmt: skip
        self._check_endpoints("alpaca", self.mode.value, given)
        return self

    @property
    def trading_url(self) -> str | None:
        """The trading API when it is not the mode's own host."""
        return None if self.endpoint in _DEFAULT_HOSTS.values() else self.endpoint


_DEFAULT_HOSTS = {key: url.rstrip("/") for key, url in DEFAULT_ENDPOINTS.items()}


def _own_host_only(endpoint: str | None, venue: str, mode: str, the_four: str) -> None:
    """The wizard's single `endpoint`: only the mode's own host (a record, it changes nothing)."""
    if endpoint is None or endpoint == _DEFAULT_HOSTS.get((venue, mode)):
        return
    other = [m for (v, m), url in _DEFAULT_HOSTS.items() if v == venue and url == endpoint]
    if other:
        refuse([ConfigProblem("endpoint", repr(endpoint), f"is the {other[0]} host but mode is {mode!r}")])
    refuse([ConfigProblem("endpoint", repr(endpoint), "alone would leave the other links on the exchange's own "
                                                      f"hosts: remove it and set {the_four} together")])  # fmt: skip


class VenueSettingsRefused(ValueError):
    """Venue settings assigned in code (the wizard) that the config rules refuse."""


class VenuesConfig(FrozenSection):
    """`[venues.*]`: only the venues the engine knows."""

    binance: BinanceSettings | None = None
    alpaca: AlpacaSettings | None = None

    model_config = FrozenSection.model_config | {"frozen": False, "validate_assignment": True}

    def of(self, venue: str) -> BinanceSettings | AlpacaSettings | None:
        return getattr(self, venue, None) if venue in type(self).model_fields else None

    # Older code treats [venues] as a dict of dicts; kept until every caller uses the attributes.
    def get(self, venue: str, default: Any = None) -> Any:
        found = self.of(venue)
        return default if found is None else found

    def __getitem__(self, venue: str) -> BinanceSettings | AlpacaSettings:
        found = self.of(venue)
        if found is None:
            raise KeyError(venue)
        return found

    def __setitem__(self, venue: str, value: Any) -> None:
        if venue not in type(self).model_fields:
            raise KeyError(f"unknown venue {venue!r} (known: {', '.join(type(self).model_fields)})")
        try:
            setattr(self, venue, value)  # validated: a dict becomes the typed settings or is refused
        except ValidationError as exc:
            problems = [p for err in exc.errors() for p in describe(VenuesConfig, dict(err), "venues.")]
            raise VenueSettingsRefused("; ".join(map(str, problems))) from None

    def __contains__(self, venue: object) -> bool:
        return isinstance(venue, str) and self.of(venue) is not None


VenueSettings = BinanceSettings | AlpacaSettings
