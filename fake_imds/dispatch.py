"""Work that notices start: the common part of the dispatchers that act when a notice is issued
(webhook deliveries, signal sequences).

A dispatcher subscribes to the plane's change notification, decides per notice in
:meth:`NoticeDispatcher.on_change` whether to act, and runs the work as tasks on the running
loop, which :meth:`~NoticeDispatcher.drain` waits for and :meth:`~NoticeDispatcher.close`
cancels.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from fake_imds.model import MetadataPlane, Notice


class NoticeDispatcher:
    """Base of the notice-driven dispatchers: subscription and task bookkeeping."""

    def __init__(self, plane: MetadataPlane) -> None:
        self.plane = plane
        self._tasks: dict[asyncio.Task[Any], None] = {}  # in start order: cancelled so
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        """Subscribe (inside the running loop) and act on the notices already there."""
        if self._unsubscribe is None:
            self._unsubscribe = self.plane.subscribe(self.on_change)
        for notice in self.plane.notices():
            self.on_change(notice)

    def on_change(self, notice: Notice) -> None:
        """Called for every notice that changed; subclasses start their work here."""
        raise NotImplementedError

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks[task] = None
        task.add_done_callback(lambda done: self._tasks.pop(done, None))

    async def drain(self) -> None:
        """Wait for all work in flight to end."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def close(self) -> None:
        """Unsubscribe and cancel the work in flight."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
