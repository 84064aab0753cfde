"""Alpaca's wire forms for the fake broker: order statuses and types as Alpaca spells them, times,
and its error body."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from aiohttp import web

from engine.core.model import OrderStatus, OrderType

NS = uuid.UUID("6f1c1d3e-9a53-4a44-8d8c-3c0d6c7e2a10")
STATUS = {OrderStatus.OPEN: "new", OrderStatus.PARTIALLY_FILLED: "partially_filled",
           OrderStatus.FILLED: "filled", OrderStatus.CANCELED: "canceled",
           OrderStatus.REJECTED: "rejected", OrderStatus.EXPIRED: "expired"}  # fmt: skip
TYPE = {OrderType.MARKET: "market", OrderType.LIMIT: "limit", OrderType.STOP_MARKET: "stop",
         OrderType.STOP_LIMIT: "stop_limit"}  # fmt: skip
KIND = {v: k for k, v in TYPE.items()}


def now() -> datetime:
    return datetime.now(UTC)  # test code: the fake keeps wall-clock time like the real broker


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message}, status=status)
