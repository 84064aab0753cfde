"""Building the ccxt exchange object for a venue: options, sandbox, endpoint overrides; and dropping
a websocket client ccxt would otherwise go on trusting after a timeout."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from engine.core.model import VenueMode

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CcxtEndpoints:
    """Where to talk to: a testnet, a proxy or a compatible local server. None keeps ccxt's default."""

    rest_public: str | None = None  # e.g. https://api.binance.com/api/v3
    rest_private: str | None = None  # defaults to rest_public
    ws_public: str | None = None  # market streams, e.g. wss://stream.binance.com:9443/ws
    ws_private: str | None = None  # user data (Binance's websocket API), e.g. wss://ws-api.binance.com/ws-api/v3


def make_exchange(exchange_id: str, credentials: tuple[str, str], mode: VenueMode, endpoints: CcxtEndpoints,
                  timeout_s: float, extra_options: dict[str, Any]) -> Any:  # fmt: skip
    import ccxt.pro as ccxtpro  # lazily: only this venue needs ccxt

    api_key, secret = credentials
    options = {
        "defaultType": "spot",
        "fetchMarkets": {"types": ["spot"]},
        "fetchCurrencies": False,  # a private sapi call we do not need
        "fetchMargins": False,  # margin pair lists live on sapi
        "warnOnFetchOpenOrdersWithoutSymbol": False,
        **extra_options,
    }
    ex = getattr(ccxtpro, exchange_id)(
        {"apiKey": api_key, "secret": secret, "enableRateLimit": True, "timeout": int(timeout_s * 1000),
         "options": options}
    )  # fmt: skip
    if mode is VenueMode.TESTNET:
        ex.set_sandbox_mode(True)
    point_at(ex, endpoints)
    return ex


def point_at(ex: Any, ep: CcxtEndpoints) -> None:
    """Override ccxt's URLs; every other REST/ws URL goes to the same place so nothing strays elsewhere."""
    api = ex.urls["api"]
    if ep.rest_public or ep.rest_private:
        public = ep.rest_public or ep.rest_private
        for key, value in list(api.items()):
            if isinstance(value, str):
                api[key] = (ep.rest_private or public) if "rivate" in key else public
    ws = api.get("ws")
    if isinstance(ws, dict) and (ep.ws_public or ep.ws_private):
        for key, value in list(ws.items()):
            if isinstance(value, str) and ep.ws_public:
                ws[key] = ep.ws_public
            elif isinstance(value, dict) and ep.ws_private:
                ws[key] = dict.fromkeys(value, ep.ws_private)


def ws_api_url(ex: Any) -> str | None:
    ws = (ex.urls.get("api") or {}).get("ws") if ex is not None else None
    api = ws.get("ws-api") if isinstance(ws, dict) else None
    return api.get("spot") if isinstance(api, dict) else None


async def reset_websocket(ex: Any, private: bool, name: str) -> None:
    """Forget ccxt's websocket client(s) of one kind (the user stream's, or the market's) after a
    timeout: a subscription cut short leaves ccxt believing it is subscribed, waiting forever."""
    ws_api = ws_api_url(ex)
    clients = getattr(ex, "clients", None) or {}
    for url, client in list(clients.items()):
        if (url == ws_api) != private or url == "authenticationFlights":
            continue
        clients.pop(url, None)
        try:
            async with asyncio.timeout(1.0):
                await client.close()
        except Exception as exc:  # a half-open socket may not close cleanly; it is dropped either way
            log.debug("%s: closing websocket %s: %s", name, url, type(exc).__name__)
