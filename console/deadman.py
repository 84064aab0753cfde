"""The dead-man alarm on the watching side: an attached engine that goes silent is CRITICAL.

Every attached engine streams at least a heartbeat a second. When nothing has arrived for
`silent_after_s` (the process died, the host is down, the network is cut: from here they
look the same and all need a human), one CRITICAL alert is raised per silence, and an INFO
when the engine speaks again. The window shows these in its alert feed; `trading-console
watch` sends them through the configured alert channels.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from console.remote_engine import RemoteEngine
from engine.core.events import AlertEvent
from engine.core.model import AlertLevel

DEFAULT_SILENT_AFTER_S = 15.0


class DeadManMonitor:
    def __init__(
        self,
        engines: Sequence[RemoteEngine],
        raise_alert: Callable[[AlertEvent], object],
        silent_after_s: float = DEFAULT_SILENT_AFTER_S,
    ) -> None:
        self.engines = list(engines)
        self._raise = raise_alert
        self.silent_after_s = silent_after_s
        self.silent: set[str] = set()  # urls of engines currently alarmed
        self._since = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    def add(self, engine: RemoteEngine) -> None:
        self.engines.append(engine)

    def remove(self, engine: RemoteEngine) -> None:
        self.engines = [e for e in self.engines if e is not engine]
        self.silent.discard(engine.url)

    def silence_of(self, engine: RemoteEngine) -> float:
        if engine.last_message_mono is None:  # never heard from: silent since we started watching
            return time.monotonic() - self._since
        return engine.silent_for()

    def check(self) -> list[AlertEvent]:
        raised: list[AlertEvent] = []
        now = datetime.now(UTC)
        for engine in self.engines:
            silence = self.silence_of(engine)
            if silence >= self.silent_after_s and engine.url not in self.silent:
                self.silent.add(engine.url)
                who = engine.url if engine.name == engine.url else f"{engine.name} ({engine.url})"
                text = (f"Engine {who} silent for {silence:.0f} s (last heard "
                        f"{engine.stale_since()}): it may have died; check the host")  # fmt: skip
                ev = AlertEvent(now, AlertLevel.CRITICAL, "engine_silent", text, key=f"engine_silent:{engine.url}",
                                alert_id=f"deadman-{engine.url}-{int(now.timestamp())}")  # fmt: skip
                raised.append(ev)
            elif silence < self.silent_after_s and engine.url in self.silent:
                self.silent.discard(engine.url)
                raised.append(AlertEvent(now, AlertLevel.INFO, "engine_back", f"Engine {engine.name} is back",
                                         key=f"engine_back:{engine.url}",
                                         alert_id=f"deadman-back-{engine.url}-{int(now.timestamp())}"))  # fmt: skip
        for ev in raised:
            self._raise(ev)
        return raised

    def start(self, every_s: float = 0.5) -> None:
        async def loop() -> None:
            while True:
                self.check()
                await asyncio.sleep(every_s)

        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(loop(), name="deadman")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
