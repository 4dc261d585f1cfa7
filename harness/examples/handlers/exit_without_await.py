"""Known bad: on a notice the upload is started and the process exits without awaiting it.

``asyncio.create_task(upload())`` and then ``sys.exit(0)``, the usual "save and exit" written
in a hurry: the task never gets to run, because the process is gone first. Nothing reaches S3
between the notice and the deadline, and the work since the last periodic checkpoint is lost.
Caught by ``saved_before_deadline``: the simulation ends every task an incarnation started
when it exits, as a real process exit does, so the upload never runs.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from harness.examples.handlers.basic import Handler, handler_target
from harness.examples.handlers.notices import Notice


class ExitWithoutAwait(Handler):
    """Starts the emergency upload as a task and exits at once."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.uploads: set[asyncio.Task[bool]] = set()

    async def on_notice(self, notice: Notice) -> bool:
        upload = asyncio.create_task(self.checkpoint(f"notice:{notice.action}"))
        self.uploads.add(upload)
        self.halt("notice")
        sys.exit(0)  # the mistake: the upload task is never awaited


target = handler_target(ExitWithoutAwait)
