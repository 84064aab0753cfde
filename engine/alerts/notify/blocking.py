"""Run a blocking call (keyring, smtplib) on a daemon thread and await it from the loop.

Not the loop's default executor: a hung SMTP server or keyring prompt must neither starve
the pool the engine uses (the journal flush at shutdown) nor keep the process alive at exit
(ThreadPoolExecutor threads are joined at interpreter exit; daemon threads are not).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def run_in_daemon_thread(fn: Callable[[], T], name: str = "tc-notify") -> asyncio.Future[T]:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: object) -> None:
        if fut.done():
            return  # the awaiting side gave up (timeout, cancel)
        if ok:
            fut.set_result(value)  # type: ignore[arg-type]
        else:
            fut.set_exception(value)  # type: ignore[arg-type]

    def work() -> None:
        try:
            result: object = fn()
            ok = True
        except BaseException as exc:
            result, ok = exc, False
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, ok, result)

    threading.Thread(target=work, name=name, daemon=True).start()
    return fut
