"""Background replication of the newest local checkpoint to S3, then the Redis pointer.

One upload at a time; a newer checkpoint submitted meanwhile replaces any older one still
waiting. Transient S3 errors are retried with exponential backoff unless a newer checkpoint has
superseded the one failing. The order per checkpoint is: object (verified), manifest, event
``checkpoint.durable`` (tier s3), Redis compare-and-set, event ``metadata.committed``. A retry
resumes after the last step that succeeded: an object already stored is not sent again.

Multipart uploads that a failure left incomplete (their abort failed too, or the create's answer
was lost) are aborted between uploads as soon as S3 answers again, with backoff while it does
not; the job does not complete while one is left.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from redis.exceptions import RedisError

from harness.clock import Clock
from harness.history import Kind
from harness.retry import RetryPolicy
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
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    newest_durable: CheckpointRecord | None = None
    current: CheckpointRecord | None = None
    _pending: tuple[CheckpointRecord, bytes] | None = None
    _task: asyncio.Task[None] | None = None
    _upload: Upload | None = None
    #: Set while no checkpoint waits or uploads (cleaning up after failures may go on).
    _idle: asyncio.Event = field(default_factory=asyncio.Event)
    #: Checkpoint id -> version id of objects stored by an attempt that failed later on.
    _stored: dict[str, str | None] = field(default_factory=dict)
    #: Checkpoint id of the last attempt that failed (its object may have landed unseen).
    _failed: str | None = None
    #: Set by :meth:`submit`: wakes the clean-up backoff so a new checkpoint never waits.
    _submitted: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._idle.set()

    def submit(self, record: CheckpointRecord, data: bytes) -> None:
        self._pending = (record, data)
        self._idle.clear()
        self._submitted.set()
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._work())
            self._task.add_done_callback(self._finished)

    @property
    def busy(self) -> bool:
        """A checkpoint waits or is uploading."""
        return not self._idle.is_set() and self._task is not None and not self._task.done()

    def _finished(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self.on_crash(error)

    async def _work(self) -> None:
        try:
            backoff = self.retry.backoff()
            while True:
                if self._pending is not None:
                    await self._replicate_pending()
                    continue
                self._idle.set()
                self._submitted.clear()
                if await self._abort_unfinished():
                    return
                await self._nap(backoff.next())
        finally:
            self._idle.set()

    async def _nap(self, seconds: float) -> None:
        """Wait ``seconds``, or until a checkpoint is submitted."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._submitted.wait()

    async def _replicate_pending(self) -> None:
        assert self._pending is not None
        record, data = self._pending
        self._pending = None
        self.current = record
        try:
            await self._replicate(record, data)
        finally:
            self.current = None

    async def _abort_unfinished(self) -> bool:
        """Abort incomplete uploads failures left behind; True when none is left."""
        if not self.s3.unfinished:
            return True
        try:
            await self.s3.abort_unfinished(on_aborted=self._report_cleaned)
        except InstanceCrash:
            raise
        except Exception:
            return False
        return not self.s3.unfinished

    def _report_cleaned(self, key: str) -> None:
        self.emit(Kind.UPLOAD_ABORTED, key=key, reason="left by a failed upload; aborted later")

    async def _replicate(self, record: CheckpointRecord, data: bytes) -> None:
        backoff = self.retry.backoff()
        while True:
            try:
                await self.attempt(record, data)
                return
            except Fenced as fenced:
                self.on_fenced(str(fenced))
                return
            except InstanceCrash:
                raise
            except Exception as error:
                report_failed(self.emit, record, "s3", error)
                self._failed = record.id
            if self._pending is not None:
                return  # superseded by a newer checkpoint
            await self.clock.sleep(backoff.next())

    async def attempt(self, record: CheckpointRecord, data: bytes) -> None:
        """One replication attempt, in the order that keeps every pointer honest: the object,
        then the manifest naming it, then the Redis metadata (:meth:`commit_metadata`). A
        variant that changes the order (a known-bad target) overrides this."""
        await self._abort_unfinished()  # before a new upload may reuse a key
        if record.id in self._stored:
            version_id = self._stored[record.id]  # an earlier attempt stored it
        else:
            version_id = await self._store_object(record, data)
        if not await self.still_owner():
            raise Fenced("a newer instance claimed the job")
        dropped = await self.s3.commit_manifest(record, self.epoch())
        self._stored.clear()
        self._failed = None
        self.newest_durable = record
        report_durable(self.emit, record, "s3", version_id=version_id)
        await self.commit_metadata(record)
        with contextlib.suppress(Exception):  # rotation is housekeeping; a failure is harmless
            await self.s3.delete(dropped)

    async def _store_object(self, record: CheckpointRecord, data: bytes) -> str | None:
        self.emit(
            Kind.CHECKPOINT_UPLOAD_STARTED, checkpoint_id=record.id, bytes=record.nominal_size
        )
        if self._failed == record.id:  # an answer lost last time may hide a stored object
            found, version_id = await self.s3.stored(record)
            if found:
                self._stored = {record.id: version_id}
                return version_id
        started = self.clock.monotonic()
        version_id = await self.s3.upload(record, data, on_upload=self._track)
        self.bandwidth.observe(record.nominal_size, self.clock.monotonic() - started)
        self._stored = {record.id: version_id}
        return version_id

    async def commit_metadata(self, record: CheckpointRecord) -> None:
        """Point Redis at ``record`` (a hint for the next recovery); Fenced if a newer epoch
        holds it, retried a few times while Redis is down."""
        backoff = self.retry.backoff()
        for attempt in range(REDIS_ATTEMPTS):
            try:
                committed = await self.redis.commit(self.epoch(), record.redis_fields("s3"))
            except (RedisError, OSError) as error:
                report_failed(self.emit, record, "redis", error)
                if attempt + 1 < REDIS_ATTEMPTS and self._pending is None:
                    await self.clock.sleep(backoff.next())
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

    async def wait(self, within: float | None = None, *, cleaned: bool = False) -> bool:
        """Wait until everything submitted is done (and, if ``cleaned``, every upload a failure
        left incomplete is aborted), for at most ``within`` seconds; True when it is."""
        task = self._task
        if task is None or task.done():
            return True
        waiter = task if cleaned else asyncio.ensure_future(self._idle.wait())
        try:
            done, _ = await asyncio.wait({waiter}, timeout=within)
        finally:
            if waiter is not task:
                waiter.cancel()
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
        if upload is not None and await self.s3.abort_or_remember(upload):
            self.emit(Kind.UPLOAD_ABORTED, key=upload.key, reason=reason)
        # An abort that failed is remembered: the next upload's clean-up or, if this instance
        # uploads nothing more, the next recovery's sweep of stale uploads aborts it.

    def kill(self) -> None:
        """The instance is gone: stop without any further I/O."""
        self._pending = None
        if self._task is not None and not self._task.done():
            self._task.remove_done_callback(self._finished)
            self._task.cancel()
