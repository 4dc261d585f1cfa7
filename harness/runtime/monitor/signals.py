"""SIGTERM / SIGINT: a grace period starts when the signal arrives (Kubernetes, GCP soft off).

In simulation the world puts ``"SIGTERM"`` on the instance's queue; in real mode the command's
handlers (installed in the main thread with ``loop.add_signal_handler``) feed the same queue.
"""

from __future__ import annotations

import asyncio
from typing import Any

from harness.runtime.monitor.core import InterruptionNotice, Monitor
from harness.units import parse_duration

HANDLED = ("SIGTERM", "SIGINT")


class SignalSource:
    name = "signals"

    def __init__(self, queue: asyncio.Queue[str], *, grace: Any = None) -> None:
        self.queue = queue
        self.grace = None if grace is None else parse_duration(grace)
        self._count = 0

    async def run(self, monitor: Monitor) -> None:
        while True:
            signal_name = await self.queue.get()
            if signal_name not in HANDLED:
                continue
            self._count += 1
            grace = self.grace if self.grace is not None else monitor.config.grace_period
            monitor.report(
                InterruptionNotice(
                    source=self.name,
                    effect="terminate",  # a pod's or VM's disk may not come back
                    deadline=monitor.clock.monotonic() + grace,
                    ident=f"{signal_name}/{self._count}",
                    notice_time=None,
                )
            )
