"""A child process: start an engine on the simulated venue, press EMERGENCY STOP, and die by SIGKILL
the instant the command returns (0 ms), before anything else can run. The parent restarts and checks."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.engine_rig import make_engine, started


async def main(home: Path) -> None:
    e = await started(make_engine(home))
    result = e.api.emergency_stop("kill test", "tester")
    if result.ok:
        os.kill(os.getpid(), signal.SIGKILL)  # no await, no flush, no shutdown: the worst moment
    print("emergency stop was refused", result, file=sys.stderr)
    sys.exit(3)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
