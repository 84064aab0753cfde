"""Building alpaca-py's clients for a venue, and telling paper from live by endpoint and key."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from engine.venues import alpaca_wire as wire


def make_clients(key: str, secret: str, *, paper: bool, url_override: str | None, data_url: str | None,
                 timeout_s: float) -> tuple[Any, Any, Any]:  # fmt: skip
    """(trading, stock data, crypto data), each bounded by timeout_s and never retrying on its own."""
    from alpaca.data.historical import CryptoHistoricalDataClient, StockHistoricalDataClient
    from alpaca.trading.client import TradingClient

    trading = TradingClient(key, secret, paper=paper, raw_data=True, url_override=url_override)
    stock = StockHistoricalDataClient(key, secret, raw_data=True, url_override=data_url)
    crypto = CryptoHistoricalDataClient(key, secret, raw_data=True, url_override=data_url)
    for client in (trading, stock, crypto):
        wire.timeout_session(client._session, timeout_s)
        client._retry, client._retry_codes = 0, []  # its retries sleep in our pool and hide 429s
    return trading, stock, crypto


def endpoint_kind(endpoint: str) -> str:
    host = urlparse(endpoint).hostname or ""
    return "paper" if host == wire.PAPER_HOST else "live" if host == wire.LIVE_HOST else "custom"


def key_kind(key: str) -> str:
    return "paper" if key.startswith("PK") else "live" if key.startswith("AK") else "unknown"
