"""The Redis facade: job metadata with a fencing epoch, moved only by compare-and-set (Lua).

Keys (``prefix`` is e.g. ``spot-harness:job:``): ``{prefix}epoch`` holds the newest instance epoch
(an integer); ``{prefix}meta`` is a hash describing the newest checkpoint durable in S3. A writer
whose epoch is older than ``{prefix}epoch`` can never change ``{prefix}meta``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.target import IoHook

# KEYS[1] = epoch key; ARGV[1] = the smallest acceptable new epoch. Returns the new epoch.
_CLAIM_EPOCH = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local wanted = tonumber(ARGV[1])
local epoch = current + 1
if wanted > epoch then epoch = wanted end
redis.call('SET', KEYS[1], epoch)
return epoch
"""

# KEYS[1] = epoch key, KEYS[2] = meta hash; ARGV[1] = writer epoch, ARGV[2..] = field, value...
# Returns 1 when written, 0 when the writer is superseded (fenced).
_COMMIT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local mine = tonumber(ARGV[1])
if current > mine then return 0 end
if current < mine then redis.call('SET', KEYS[1], mine) end
redis.call('DEL', KEYS[2])
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
"""


class RedisMeta:
    """Epoch and checkpoint metadata of one job in Redis."""

    def __init__(self, client: Any, hook: IoHook, *, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._hook = hook

    @property
    def epoch_key(self) -> str:
        return f"{self.prefix}epoch"

    @property
    def meta_key(self) -> str:
        return f"{self.prefix}meta"

    async def read(self) -> tuple[int, dict[str, str]]:
        """``(epoch, meta)``; ``(0, {})`` when Redis holds nothing (new job, or restarted empty)."""
        await self._hook("redis.read", key=self.meta_key)
        epoch_raw, meta_raw = await _pipeline_read(self.client, self.epoch_key, self.meta_key)
        epoch = int(epoch_raw) if epoch_raw is not None else 0
        return epoch, {_text(k): _text(v) for k, v in (meta_raw or {}).items()}

    async def current_epoch(self) -> int:
        """The newest claimed epoch (0 if none)."""
        await self._hook("redis.read", key=self.epoch_key)
        raw = await self.client.get(self.epoch_key)
        return int(raw) if raw is not None else 0

    async def claim_epoch(self, at_least: int = 0) -> int:
        """Become the newest instance: a fresh epoch above every earlier one (and ``at_least``)."""
        await self._hook("redis.write", key=self.epoch_key)
        result = await self.client.eval(_CLAIM_EPOCH, 1, self.epoch_key, str(at_least))
        return int(result)

    async def commit(self, epoch: int, fields: Mapping[str, str | int]) -> bool:
        """Replace the metadata if ``epoch`` is still the newest; ``False`` means fenced."""
        await self._hook("redis.write", key=self.meta_key)
        args: list[str] = [str(epoch)]
        for name, value in fields.items():
            args += [name, str(value)]
        result = await self.client.eval(_COMMIT, 2, self.epoch_key, self.meta_key, *args)
        return int(result) == 1


async def _pipeline_read(client: Any, epoch_key: str, meta_key: str) -> tuple[Any, Any]:
    async with client.pipeline(transaction=False) as pipe:
        pipe.get(epoch_key)
        pipe.hgetall(meta_key)
        epoch_raw, meta_raw = await pipe.execute()
    return epoch_raw, meta_raw


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
