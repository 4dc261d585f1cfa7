"""Background replication of the newest local checkpoint to S3, then the Redis pointer.

One upload at a time; a newer checkpoint submitted meanwhile replaces any older one still
waiting. Transient S3 errors are retried with exponential backoff unless a newer checkpoint has
superseded the one failing. The order per checkpoint is: object (verified), manifest, event
``checkpoint.durable`` (tier s3), Redis compare-and-set, event ``metadata.committed``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from redis.exceptions import RedisError

from harness.clock import Clock
from harness.history import Kind
from harness.runtime.config import RuntimeConfig
from harness.runtime.layout import CheckpointRecord
from harness.runtime.reports import report_durable, report_failed
from harness.runtime.store import Fenced, S3Tier
from harness.storage.redis import RedisMeta
from harness.storage.s3 import Upload
from harness.target import Emit, InstanceCrash

REDIS_ATTEMPTS = 3


@dataclass
class Bandwidth:
    """Upload bandwidth (bytes/s, nominal): the configured assumption until the first upload,
    then an exponential moving average of what uploads achieved."""

    estimate: float
    observed: int = 0

    def observe(self, nbytes: int, seconds: float) -> None:
        if nbytes <= 0 or seconds <= 0:
            return
        rate = nbytes / seconds
        self.estimate = rate if not self.observed else 0.5 * self.estimate + 0.5 * rate
        self.observed += 1

    def seconds_for(self, nbytes: int) -> float:
        return nbytes / self.estimate


@dataclass
class Replicator:
    s3: S3Tier
    redis: RedisMeta
    clock: Clock
    emit: Emit
    config: RuntimeConfig
    epoch: Callable[[], int]
    on_fenced: Callable[[str], None]
    on_crash: Callable[[BaseException], None]
    still_owner: Callable[[], Awaitable[bool]]
    bandwidth: Bandwidth = field(default_factory=lambda: Bandwidth(100e6))
    newest_durable: CheckpointRecord | None = None
    current: CheckpointRecord | None = None
    _pending: tuple[CheckpointRecord, bytes] | None = None
    _task: asyncio.Task[None] | None = None
    _upload: Upload | None = None

    def submit(self, record: CheckpointRecord, data: bytes) -> None:
        self._pending = (record, data)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._work())
            self._task.add_done_callback(self._finished)

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    def _finished(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self.on_crash(error)

    async def _work(self) -> None:
        while self._pending is not None:
            record, data = self._pending
            self._pending = None
            self.current = record
            try:
                await self._replicate(record, data)
            finally:
                self.current = None

    async def _replicate(self, record: CheckpointRecord, data: bytes) -> None:
        delay = self.config.retry_base
        while True:
            try:
                await self._attempt(record, data)
                return
            except Fenced as fenced:
                self.on_fenced(str(fenced))
                return
            except InstanceCrash:
                raise
            except Exception as error:
                report_failed(self.emit, record, "s3", error)
            if self._pending is not None:
                return  # superseded by a newer checkpoint
            await self.clock.sleep(delay)
            delay = min(delay * 2, self.config.retry_max)

    async def _attempt(self, record: CheckpointRecord, data: bytes) -> None:
        self.emit(
            Kind.CHECKPOINT_UPLOAD_STARTED, checkpoint_id=record.id, bytes=record.nominal_size
        )
        started = self.clock.monotonic()
        version_id = await self.s3.upload(record, data, on_upload=self._track)
        self.bandwidth.observe(record.nominal_size, self.clock.monotonic() - started)
        if not await self.still_owner():
            raise Fenced("a newer instance claimed the job")
        dropped = await self.s3.commit_manifest(record, self.epoch())
        self.newest_durable = record
        report_durable(self.emit, record, "s3", version_id=version_id)
        await self._commit_metadata(record)
        with contextlib.suppress(Exception):  # rotation is housekeeping; a failure is harmless
            await self.s3.delete(dropped)

    async def _commit_metadata(self, record: CheckpointRecord) -> None:
        delay = self.config.retry_base
        for attempt in range(REDIS_ATTEMPTS):
            try:
                committed = await self.redis.commit(self.epoch(), record.redis_fields("s3"))
            except (RedisError, OSError) as error:
                report_failed(self.emit, record, "redis", error)
                if attempt + 1 < REDIS_ATTEMPTS and self._pending is None:
                    await self.clock.sleep(delay)
                    delay *= 2
                    continue
                return  # the manifest stays authoritative; Redis catches up on the next commit
            if not committed:
                raise Fenced("Redis holds a newer epoch")
            self.emit(
                Kind.METADATA_COMMITTED,
                checkpoint_id=record.id,
                position=record.position,
                epoch=self.epoch(),
            )
            return

    def _track(self, upload: Upload | None) -> None:
        self._upload = upload

    async def wait(self, within: float | None = None) -> bool:
        """Wait until idle (or ``within`` seconds); True when everything submitted is done."""
        task = self._task
        if task is None or task.done():
            return True
        done, _ = await asyncio.wait({task}, timeout=within)
        return bool(done)

    async def cancel(self, reason: str) -> None:
        """Stop replicating, aborting an incomplete multipart upload so none is leaked."""
        self._pending = None
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        upload, self._upload = self._upload, None
        if upload is not None:
            with contextlib.suppress(Exception):
                await self.s3.store.abort_multipart(upload)
            self.emit(Kind.UPLOAD_ABORTED, key=upload.key, reason=reason)

    def kill(self) -> None:
        """The instance is gone: stop without any further I/O."""
        self._pending = None
        if self._task is not None and not self._task.done():
            self._task.remove_done_callback(self._finished)
            self._task.cancel()
