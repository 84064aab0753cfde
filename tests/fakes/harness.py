"""What every venue test against a local fake needs: a loopback-only guard and condition waits."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest


def guard_loopback(monkeypatch: pytest.MonkeyPatch, allowed: tuple[str, ...] = ("127.0.0.1",)) -> None:
    """Any name lookup outside `allowed` fails the test: nothing may reach a real exchange."""
    real = socket.getaddrinfo
    names = {*allowed, *(a.encode() for a in allowed)}

    def guarded(host: Any, *args: Any, **kw: Any) -> Any:
        if host not in names:
            raise AssertionError(f"network access to {host!r} attempted")
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)


def run(coro_fn: Callable[[], Awaitable[Any]], timeout: float = 30) -> Any:
    return asyncio.run(asyncio.wait_for(coro_fn(), timeout=timeout))


async def wait_for(cond: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"{what} not met in time")
        await asyncio.sleep(0.01)
