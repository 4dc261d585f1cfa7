"""Known bad: boto3 runs in a thread, and the 2-minute warning is spent working.

Every S3 call goes through ``asyncio.to_thread`` so the loop never blocks on boto3, the way
most async code calls it. On a notice the handler starts the emergency upload in the background
(``asyncio.create_task`` of the threaded ``put_object``) and keeps training "to use the time":
the upload lands, but every step after it dies with the instance and the replacement does it
again. Caught by ``saved_before_deadline``: the instance kept working after the notice until
its deadline without saving that work. Scenario: ``scenarios/known_bad/thread_upload.yaml``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from harness.examples.handlers.basic import Handler, handler_target
from harness.examples.handlers.notices import Notice


class ThreadUpload(Handler):
    """Calls boto3 through ``asyncio.to_thread``; saves in the background on a notice and works
    on until the machine is gone."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.emergency: asyncio.Task[bool] | None = None

    async def s3(self, method: str, **params: Any) -> Any:
        call = getattr(self.ctx.s3_client, method)
        return await asyncio.to_thread(call, Bucket=self.ctx.bucket, **params)

    async def on_notice(self, notice: Notice) -> bool:
        if self.emergency is None:
            self.emergency = asyncio.create_task(self.checkpoint(f"notice:{notice.action}"))
        return False  # the mistake: keep working until the machine goes away


target = handler_target(ThreadUpload)
