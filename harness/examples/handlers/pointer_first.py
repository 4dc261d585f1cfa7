"""Known bad: the ``latest`` pointer moves before the checkpoint is uploaded.

The handler keeps its own Redis hash ``trainer:meta`` (``latest``: the checkpoint's key, its
position and checksum) and updates it first, then calls ``put_object``. Until the upload
returns, and forever if it fails or the machine dies meanwhile, the pointer names an object S3
does not hold, and the next instance resumes from nothing. The handler reports nothing about
its pointer: ``durable`` catches it from the harness's own records, a Redis ``HSET`` naming an
S3 object before any write of that object completed. Scenario:
``scenarios/known_bad/pointer_first.yaml``.
"""

from __future__ import annotations

from typing import Any

from harness.examples.handlers.basic import Handler, handler_target
from harness.examples.handlers.workload import State, sha256

META = "trainer:meta"


class PointerFirst(Handler):
    """Resumes from ``trainer:meta``; moves it before each upload."""

    async def resume(self) -> dict[str, Any]:
        meta = await self.ctx.redis.hgetall(META)
        if not meta:
            return {"checkpoint_id": None, "tier": None}
        key = meta[b"latest"].decode()
        data = await self.get(key)
        self.state = State.decode(data, self.job)
        return {"checkpoint_id": key, "tier": "s3", "key": key, "checksum": sha256(data)}

    async def save(self, key: str, body: bytes, position: int) -> bool:
        pointer = {"latest": key, "position": position, "checksum": sha256(body)}
        await self.ctx.redis.hset(META, mapping=pointer)  # the mistake: before the upload
        return await self.upload(key, body, position)


target = handler_target(PointerFirst)
