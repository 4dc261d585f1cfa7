"""Recovery: find the newest checkpoint that verifies, claim a new epoch, resume after it.

Candidates come from the S3 manifest (or, if it is unreadable, a listing of checkpoint objects),
the local manifest and the Redis pointer. Redis is never trusted alone: its pointer is only a
candidate, read back and verified like any other. Candidates are tried newest first (position,
then epoch); the first whose content verifies wins, read from the local disk when it is there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from redis.exceptions import RedisError

from harness.clock import Clock
from harness.history import Kind
from harness.retry import RetryPolicy
from harness.runtime.job import JobSpec, state_digest
from harness.runtime.layout import CheckpointRecord, Manifest
from harness.runtime.store import CorruptCheckpoint, LocalTier, S3Tier
from harness.storage.redis import RedisMeta
from harness.target import Emit

T = TypeVar("T")

#: Claims of a higher epoch after finding the one claimed already on the manifest.
MAX_RECLAIMS = 3


@dataclass(frozen=True)
class Recovered:
    position: int
    digest: bytes
    record: CheckpointRecord | None
    tier: str | None  # "local" | "s3" | None (fresh start)
    epoch: int
    s3_newest: CheckpointRecord | None  # newest checkpoint known durable in S3
    content: bytes | None = None  # the chosen checkpoint's verified content
    #: Why this instance must not write (another instance claimed the job during recovery).
    fenced: str | None = None


@dataclass
class Recovery:
    spec: JobSpec
    local: LocalTier
    s3: S3Tier
    redis: RedisMeta
    clock: Clock
    emit: Emit
    patience: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    _wait_out_outages: bool = field(default=False, init=False)

    async def run(self) -> Recovered:
        self.local.disk.remove_temp_files(self.local.folder)
        redis_epoch, redis_meta, redis_answered = await self._redis_read()
        local_manifest = await self.local.manifest()
        hints = bool(redis_meta or local_manifest.checkpoints or redis_epoch)
        # The job has run before (or Redis, which would say so, did not answer): its
        # checkpoints may be in S3, so an outage is waited out rather than taken for an empty
        # bucket (starting over would throw durable work away).
        self._wait_out_outages = hints or not redis_answered
        s3_manifest, s3_records = await self._s3_candidates(list_if_missing=self._wait_out_outages)
        local_ids = {r.id for r in local_manifest.checkpoints}
        candidates = _merge(s3_records, local_manifest.checkpoints, redis_meta)
        chosen, tier, digest, content = await self._first_valid(candidates, local_ids)
        known_epochs = [redis_epoch, local_manifest.epoch, s3_manifest.epoch if s3_manifest else 0]
        known_epochs += [r.epoch for r in candidates]
        epoch, fenced = await self._claim(max(known_epochs) + 1, s3_records)
        await self._sweep_uploads()
        position = chosen.position if chosen else 0
        self.emit(Kind.EPOCH, epoch=epoch)
        self.emit(
            Kind.RESUMED,
            position=position,
            checkpoint_id=chosen.id if chosen else None,
            tier=tier,
            key=chosen.key if chosen else None,
            checksum=chosen.checksum if chosen else None,
        )
        s3_ids = {r.id for r in s3_records}
        s3_newest = chosen if chosen is not None and chosen.id in s3_ids else None
        return Recovered(
            position=position,
            digest=digest if chosen else state_digest(self.spec, 0),
            record=chosen,
            tier=tier,
            epoch=epoch,
            s3_newest=s3_newest,
            content=content,
            fenced=fenced,
        )

    async def _first_valid(
        self, candidates: list[CheckpointRecord], local_ids: set[str]
    ) -> tuple[CheckpointRecord | None, str | None, bytes, bytes | None]:
        for record in candidates:
            for tier in ("local", "s3") if record.id in local_ids else ("s3",):
                data = await self._read(tier, record)
                if data is None:
                    self._reject(record, tier, "missing")
                    continue
                try:
                    header = await self.local.verify(record, data)
                    digest = bytes.fromhex(str(header["state"]))
                except (CorruptCheckpoint, ValueError, KeyError) as error:
                    self._reject(record, tier, str(error))
                    continue
                return record, tier, digest, data
        return None, None, b"", None

    async def _read(self, tier: str, record: CheckpointRecord) -> bytes | None:
        if tier == "local":
            try:
                return await self.local.read(record)
            except OSError:
                return None
        return await self._patiently(lambda: self.s3.read(record), default=None)

    def _reject(self, record: CheckpointRecord, tier: str, reason: str) -> None:
        self.emit(Kind.CHECKPOINT_REJECTED, checkpoint_id=record.id, tier=tier, reason=reason)

    async def _s3_candidates(
        self, *, list_if_missing: bool
    ) -> tuple[Manifest | None, list[CheckpointRecord]]:
        """The S3 manifest's checkpoints; if it is unreadable, or missing while Redis or the
        local disk say the job has run before, the checkpoint objects found by listing."""

        async def load() -> tuple[Manifest | None, list[CheckpointRecord]]:
            try:
                manifest = await self.s3.manifest()
            except ValueError:
                return None, await self.s3.listed_records()  # unreadable manifest: list
            if manifest is None:
                return None, await self.s3.listed_records() if list_if_missing else []
            return manifest, list(manifest.checkpoints)

        return await self._patiently(load, default=(None, []))

    async def _redis_read(self) -> tuple[int, dict[str, str], bool]:
        """``(epoch, meta, answered)``; Redis down: recover from storage alone (fencing resumes
        with the commit), and ``answered`` is False: nothing says the job never ran."""
        try:
            epoch, meta = await self.redis.read()
        except (RedisError, OSError):
            return 0, {}, False
        return epoch, meta, True

    async def _claim(self, at_least: int, found: list[CheckpointRecord]) -> tuple[int, str | None]:
        """``(epoch, fenced)``: an epoch claimed in Redis (or, Redis unreachable, a provisional
        one) and stamped on the S3 manifest.

        Epochs must be unique. A provisional epoch is not a claim: when the manifest already
        names it or a newer one, another instance claimed the job meanwhile, and this one is
        fenced. An epoch claimed in Redis that the manifest already names was taken
        provisionally by an instance cut off from Redis: a higher one is claimed."""
        for _ in range(MAX_RECLAIMS):
            epoch, provisional = await self._claim_epoch(at_least)
            taken = await self._claim_manifest(epoch, found)
            if taken is None or taken > epoch:
                return epoch, None  # stamped (or a newer manifest fences this one later)
            if provisional:
                return epoch, (
                    f"the S3 manifest names epoch {taken}, which this instance took without "
                    "Redis: another instance claimed the job meanwhile"
                )
            at_least = taken + 1
        return epoch, None

    async def _claim_epoch(self, at_least: int) -> tuple[int, bool]:
        """``(epoch, provisional)``."""
        deadline = self.clock.monotonic() + self.patience
        backoff = self.retry.backoff()
        while True:
            try:
                return await self.redis.claim_epoch(at_least), False
            except (RedisError, OSError):
                delay = backoff.next()
                if self.clock.monotonic() + delay > deadline:
                    return at_least, True  # the first metadata commit records it
                await self.clock.sleep(delay)

    async def _claim_manifest(self, epoch: int, found: list[CheckpointRecord]) -> int | None:
        """Stamp the S3 manifest with the new epoch (a conditional write), so that an older
        instance's next manifest write fails its condition and finds itself fenced; returns
        the manifest's epoch when it already named ``epoch`` or a newer one (nothing stamped).

        The stamp is the fence that holds while Redis is down for the older instance too, so it
        is retried like the reads (an outage is waited out when the job has run before)."""

        async def claim() -> int | None:
            return await self.s3.claim(epoch, found)

        return await self._patiently(claim, default=None)

    async def _sweep_uploads(self) -> None:
        try:
            swept = await self.s3.sweep_uploads()
        except Exception:
            return  # left for the next recovery
        for key in swept:
            self.emit(Kind.UPLOAD_ABORTED, key=key, reason="stale upload of an earlier instance")

    async def _patiently(self, action: Callable[[], Awaitable[T]], *, default: T) -> T:
        """Retry S3 errors with backoff for up to ``patience``, then fall back to ``default``;
        for as long as it takes when the job has run before (see :meth:`run`)."""
        deadline = self.clock.monotonic() + self.patience
        backoff = self.retry.backoff()
        while True:
            try:
                return await action()
            except asyncio.CancelledError:
                raise
            except Exception:
                delay = backoff.next()
                if not self._wait_out_outages and self.clock.monotonic() + delay > deadline:
                    return default
                await self.clock.sleep(delay)


def _merge(
    s3_records: list[CheckpointRecord],
    local_records: tuple[CheckpointRecord, ...],
    redis_meta: dict[str, str],
) -> list[CheckpointRecord]:
    by_id = {r.id: r for r in local_records}
    by_id.update({r.id: r for r in s3_records})
    pointer = CheckpointRecord.from_redis(redis_meta) if redis_meta else None
    if pointer is not None and pointer.id not in by_id:
        by_id[pointer.id] = pointer
    return sorted(by_id.values(), key=lambda r: (r.position, r.epoch, r.id), reverse=True)
