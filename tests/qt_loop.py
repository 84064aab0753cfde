"""The qasync loop the GUI tests run their coroutines on, and the condition wait they poll with.

Under a qasync loop `qtbot.waitUntil` deadlocks, so tests poll with `until` (asyncio.sleep between
looks, a deadline, never a fixed sleep as synchronisation).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import qasync
from PySide6.QtWidgets import QApplication

Runner = Callable[[Coroutine[Any, Any, Any]], Any]


@contextmanager
def qasync_loop(qapp: QApplication, timeout_s: float = 100.0) -> Iterator[Runner]:
    """A qasync loop on the Qt main thread; yields run(coro), which fails after timeout_s."""
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    executor = ThreadPoolExecutor(max_workers=2)  # plain threads, joined below (no stray QThreads)
    loop.set_default_executor(executor)
    try:
        yield lambda coro: loop.run_until_complete(asyncio.wait_for(coro, timeout_s))
    finally:
        executor.shutdown(wait=True)
        loop.close()  # now, while Qt objects live; a close from __del__ at exit fails noisily
        asyncio.set_event_loop(None)


async def until(cond: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
