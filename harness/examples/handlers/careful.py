"""A careful spot handler written from scratch with plain boto3 and redis calls: the correct
counterpart of the known-bad handlers of this package.

- Notices from every cloud (:mod:`notices`): IMDSv2 with token refresh on 401, GCP's hanging
  GET, Azure Scheduled Events, a webhook receiver, SIGTERM with its grace period.
- An epoch per incarnation (``INCR careful:<job>:epoch``, reported as ``job.epoch``).
- A checkpoint is the state as JSON (with its own checksum) under a key of its own, written with
  ``put_object``; it is reported durable once the put has returned, and only then does the
  pointer (hash ``careful:<job>:latest``: key, position, checksum, epoch) move, through a
  compare-and-set on the epoch. An instance whose epoch is no longer the current one has been
  replaced: it stops (``job.stopped`` with reason ``superseded``).
- Transient S3 errors (throttling, 5xx, an unreachable endpoint) are retried with backoff; an
  emergency save keeps trying until its notice's deadline. A checkpoint is taken only once every
  output it covers is in S3 (a resume from it never redoes those items).
- Resume: the pointer's checkpoint, unless a newer one is listed after it (its pointer update was
  lost); every candidate is read back and checked (the pointer's checksum, the state's own);
  without a usable pointer, the newest intact checkpoint a listing finds.
- Outputs with ``If-None-Match: *`` (:class:`workload.Outputs`): redone steps never write twice.

Use it as ``{python: "harness.examples.handlers.careful:target"}``, or run the library against
it: ``harness run scenarios --target harness.examples.handlers.careful:target``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from harness.examples.handlers.basic import Handler, handler_target
from harness.examples.handlers.notices import Notice
from harness.examples.handlers.workload import State, sha256

T = TypeVar("T")

TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "InternalError",
        "ServiceUnavailable",
        "500",
        "502",
        "503",
    }
)
FIRST_BACKOFF = 0.2
MAX_BACKOFF = 20.0
#: How long a periodic checkpoint keeps retrying before the job moves on without it.
PERIODIC_PATIENCE = 30.0
#: An emergency save stops retrying this long before the deadline.
DEADLINE_MARGIN = 1.0

#: Move the pointer only if this instance's epoch is still the current one.
#: Returns 1 (moved), 0 (a newer instance claimed the job), -1 (Redis lost the epoch).
MOVE_POINTER = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then return -1 end
if epoch ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], 'key', ARGV[2], 'position', ARGV[3], 'checksum', ARGV[4],
           'epoch', ARGV[1])
return 1
"""


class OutputsPending(Exception):
    """Some outputs are not in S3 yet: retried like a transient error."""


def transient(error: Exception) -> bool:
    """Whether an S3 error is worth retrying (throttling, server errors, no connection)."""
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return code in TRANSIENT_CODES or status >= 500 or status == 429
    return isinstance(error, OutputsPending | BotoCoreError | ConnectionError | TimeoutError)


class Careful(Handler):
    """The careful handler (see the module's docstring)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.epoch: int | None = None
        self.epoch_key = f"careful:{self.job.name}:epoch"
        self.pointer_key = f"careful:{self.job.name}:latest"

    async def resume(self) -> dict[str, Any]:
        await self.claim_epoch()
        pointer = await self.read_pointer()
        after = pointer.get("key", "")
        listed = await self.retrying(lambda: self.list_checkpoints(start_after=after))
        candidates: list[tuple[str, str | None]] = [(k, None) for k in sorted(listed, reverse=True)]
        if after:
            candidates.append((after, pointer.get("checksum")))
        for key, expected in candidates:
            found = await self.load(key, expected)
            if found is not None:
                return found
        if after:  # the pointer's checkpoint is gone or damaged: the older ones, newest first
            older = await self.retrying(self.list_checkpoints)
            for key in sorted((k for k in older if k < after), reverse=True):
                found = await self.load(key, None)
                if found is not None:
                    return found
        return {"checkpoint_id": None, "tier": None}

    async def load(self, key: str, expected: str | None) -> dict[str, Any] | None:
        """Read ``key`` back; its ``job.resumed`` data if it is intact, else ``None``."""
        try:
            data = await self.retrying(lambda: self.get(key))
        except ClientError:
            return None  # deleted or never written
        try:
            if expected is not None and sha256(data) != expected:
                raise ValueError(f"checksum {sha256(data)}, the pointer says {expected}")
            self.state = State.decode(data, self.job)
        except ValueError as error:
            self.ctx.emit("checkpoint.rejected", checkpoint_id=key, tier="s3", reason=str(error))
            return None
        return {"checkpoint_id": key, "tier": "s3", "key": key, "checksum": sha256(data)}

    async def outputs_written(self) -> bool:
        try:
            await self.retrying(self._flush_outputs, until=self.patience())
        except OutputsPending:
            return False
        return True

    async def _flush_outputs(self) -> None:
        self.outputs.flush()
        if self.outputs.pending:
            raise OutputsPending(f"{len(self.outputs.pending)} output(s) not written")

    async def save(self, key: str, body: bytes, position: int) -> bool:
        try:
            await self.retrying(lambda: self.put(key, body), until=self.patience())
        except Exception as error:
            self.ctx.emit("checkpoint.failed", checkpoint_id=key, tier="s3", error=repr(error))
            return False
        self.durable(key, body, position)
        await self.move_pointer(key, position, sha256(body))
        return True

    def patience(self) -> float:
        """Until when a save keeps retrying: the notice's deadline if one is due, else a while."""
        notice = self.watcher.due()
        if notice is not None and notice.deadline is not None:
            return notice.deadline - DEADLINE_MARGIN
        return self.ctx.clock.monotonic() + PERIODIC_PATIENCE

    async def on_notice(self, notice: Notice) -> bool:
        saved = self.state.position <= self.saved_position
        if not saved:
            saved = await self.checkpoint(f"notice:{notice.action}")
        if saved and not self.halted:
            await self.watcher.approve(notice)  # Azure may start the event now: all is saved
        if not self.halted:  # a save that found the job taken over has stopped it already
            self.halt("notice")
        return True

    # -- Redis: epoch and pointer ---------------------------------------------------------------
    async def claim_epoch(self) -> None:
        try:
            self.epoch = int(await self.ctx.redis.incr(self.epoch_key))
        except Exception as error:  # Redis down: claim it at the next pointer move
            self.ctx.emit("careful.redis_unavailable", during="claim", error=repr(error))
            return
        self.ctx.emit("job.epoch", epoch=self.epoch)

    async def read_pointer(self) -> dict[str, str]:
        try:
            raw = await self.ctx.redis.hgetall(self.pointer_key)
        except Exception as error:  # the listing will find the checkpoints
            self.ctx.emit("careful.redis_unavailable", during="resume", error=repr(error))
            return {}
        return {_text(k): _text(v) for k, v in raw.items()}

    async def move_pointer(self, key: str, position: int, checksum: str) -> None:
        for _ in range(2):
            if self.epoch is None:
                await self.claim_epoch()
            if self.epoch is None:
                return
            try:
                moved = await self.ctx.redis.eval(
                    MOVE_POINTER,
                    2,
                    self.epoch_key,
                    self.pointer_key,
                    str(self.epoch),
                    key,
                    str(position),
                    checksum,
                )
            except Exception as error:  # the checkpoint is in S3; a resume lists it
                self.ctx.emit("careful.redis_unavailable", during="pointer", error=repr(error))
                return
            if moved == 1:
                self.ctx.emit(
                    "metadata.committed", checkpoint_id=key, position=position, epoch=self.epoch
                )
                return
            if moved == 0:
                self.halt("superseded")
                return
            self.epoch = None  # Redis restarted empty: claim a new epoch and try again

    # -- retries --------------------------------------------------------------------------------
    async def retrying(self, call: Callable[[], Awaitable[T]], *, until: float | None = None) -> T:
        """``call()``, retried with backoff on transient errors (until ``until``, if given)."""
        delay = FIRST_BACKOFF
        while True:
            try:
                return await call()
            except Exception as error:
                late = until is not None and self.ctx.clock.monotonic() + delay > until
                if not transient(error) or late:
                    raise
            await self.ctx.clock.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


target = handler_target(Careful)
