"""Known bad: the local checkpoint file is rewritten in place.

The handler keeps ``state.json`` on the local disk for a fast restart and uploads each
checkpoint to S3 as well. It saves with ``open(path, "wb")`` and writes the state in pieces,
yielding to the loop between them so the notice poller keeps running; there is no temporary
file and no rename, so from the ``open`` on, the only local copy is truncated. A crash in the
middle leaves a torn file; the machine comes back with it, the handler cannot parse it, takes
that for "no checkpoint" and starts the job over, although S3 holds a good one. Caught by
``resume_correct``. Scenario: ``scenarios/known_bad/save_in_place.yaml``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from harness.examples.handlers.basic import Handler, handler_target
from harness.examples.handlers.workload import State

STATE_FILE = "state.json"
PIECE = 64  # bytes per write (a real state streams out in megabytes)


class SaveInPlace(Handler):
    """Rewrites ``state.json`` in place before each upload; trusts it on restart."""

    async def resume(self) -> dict[str, Any]:
        path = self.ctx.local_dir / STATE_FILE
        if not path.exists():
            return await super().resume()
        data = path.read_bytes()
        try:
            self.state = State.decode(data, self.job)
        except ValueError:
            return {"checkpoint_id": None, "tier": None}  # the consequence: start over
        return {"checkpoint_id": STATE_FILE, "tier": "local", "key": STATE_FILE}

    async def save(self, key: str, body: bytes, position: int) -> bool:
        # The mistake: opened in place (truncated now), no temp file and rename.
        with open(self.ctx.local_dir / STATE_FILE, "wb") as file:  # noqa: ASYNC230
            for start in range(0, len(body), PIECE):
                file.write(body[start : start + PIECE])
                await asyncio.sleep(0)  # let the notice poller run while the state streams out
        return await self.upload(key, body, position)


target = handler_target(SaveInPlace)
