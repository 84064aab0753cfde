"""Fault injection for the protocol-level fakes: what goes wrong on the next N requests of a path.

An aiohttp middleware applies the plan, so every route of a fake gets the same
faults without knowing about them. Venue-neutral: the Alpaca fake can use it too.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web


class FaultKind(enum.StrEnum):
    DELAY = "delay"  # hold the request for delay_s, then handle it (past the client's timeout)
    RATE_LIMIT = "rate_limit"  # 429 with Retry-After, nothing done
    SERVER_ERROR = "server_error"  # 5xx, nothing done
    MALFORMED = "malformed"  # 200 with a truncated JSON body, nothing done
    ACK_LOST = "ack_lost"  # handled (the order exists), then the connection drops or a 5xx comes back


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    delay_s: float = 0.0
    retry_after_s: int = 1
    status: int | None = None  # SERVER_ERROR: default 503; ACK_LOST: None drops the connection
    body: str = ""


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FaultPlan:
    def __init__(self) -> None:
        self._queues: dict[tuple[str, str], deque[Fault]] = {}
        self.injected: list[tuple[str, str, FaultKind]] = []  # what actually happened, for assertions

    def add(self, path: str, fault: Fault, n: int = 1, method: str = "*") -> None:
        self._queues.setdefault((method.upper(), path), deque()).extend([fault] * n)

    def clear(self) -> None:
        self._queues.clear()

    def pending(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def take(self, method: str, path: str) -> Fault | None:
        for key in ((method.upper(), path), ("*", path)):
            queue = self._queues.get(key)
            if queue:
                fault = queue.popleft()
                self.injected.append((method.upper(), path, fault.kind))
                return fault
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = self.take(request.method, request.path)
        if fault is None:
            return await handler(request)
        if fault.kind is FaultKind.DELAY:
            await request.read()  # the request arrived whole; only its handling is late
            await asyncio.sleep(fault.delay_s)
            return await handler(request)
        if fault.kind is FaultKind.RATE_LIMIT:
            body = fault.body or '{"code":-1003,"msg":"Too many requests; please use the websocket for live updates."}'
            return web.Response(
                status=429,
                text=body,
                content_type="application/json",
                headers={"Retry-After": str(fault.retry_after_s)},
            )
        if fault.kind is FaultKind.SERVER_ERROR:
            return web.Response(status=fault.status or 503, text=fault.body or "Service Unavailable")
        if fault.kind is FaultKind.MALFORMED:
            body = fault.body or '{"symbol": "BTCUSDT", "orderId": '
            return web.Response(status=200, text=body, content_type="application/json")
        # ACK_LOST: the venue did the work; only the answer goes missing.
        await handler(request)
        if fault.status is not None:
            return web.Response(status=fault.status, text=fault.body or "Gateway Timeout")
        if request.transport is not None:
            request.transport.close()
        raise ConnectionResetError("fault injection: acknowledgement dropped")
