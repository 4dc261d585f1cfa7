"""The reference runtime: recover, work through items, checkpoint, and stop cleanly on a notice.

:func:`reference_target` is the in-process target (one call per instance incarnation). The
same code runs in real mode (``harness runtime run``): only the context differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import replace

from redis.exceptions import RedisError

from harness.history import Kind
from harness.retry import RetryPolicy, seeded_random
from harness.runtime.config import RuntimeConfig
from harness.runtime.job import (
    JobSpec,
    advance_digest,
    checksum,
    encode_state,
    output_content,
    output_index_completed_at,
    output_key,
    output_range,
)
from harness.runtime.layout import CheckpointRecord, checkpoint_id, checkpoint_key, redis_prefix
from harness.runtime.monitor import InterruptionNotice, Monitor, NoticeSource, build_sources
from harness.runtime.recovery import Recovery
from harness.runtime.replicator import Bandwidth, Replicator
from harness.runtime.reports import describe, report_durable, report_failed
from harness.runtime.store import LocalTier, S3Tier
from harness.storage.local import LocalDisk
from harness.storage.redis import RedisMeta
from harness.storage.s3 import S3Store, is_precondition_failed
from harness.target import InstanceContext, InstanceCrash

_EPSILON = 1e-9


class Runtime:
    """One instance incarnation of the reference job.

    A variant (the known-bad targets of :mod:`harness.examples.broken`) changes it through the
    hooks below and by overriding methods, never by replacing attributes of an instance.
    """

    #: The Redis metadata, the storage tiers, the background replicator and the recovery it
    #: builds.
    meta_class: type[RedisMeta] = RedisMeta
    local_tier_class: type[LocalTier] = LocalTier
    s3_tier_class: type[S3Tier] = S3Tier
    replicator_class: type[Replicator] = Replicator
    recovery_class: type[Recovery] = Recovery

    def __init__(self, ctx: InstanceContext, spec: JobSpec, config: RuntimeConfig) -> None:
        self.ctx = ctx
        self.spec = spec
        self.config = config
        self.clock = ctx.clock
        self.emit = ctx.emit
        # boto3 always goes through the executor: a worker thread in real mode, in simulation a
        # call the harness suspends for the modelled transfer time while the job goes on.
        self.s3_store = S3Store(ctx.s3_client, ctx.bucket, ctx.io_hook, inline_io=False)
        disk = LocalDisk(ctx.local_dir, ctx.io_hook, inline_io=ctx.inline_io)
        self.local = self.local_tier_class(disk, spec.name, spec.seed, keep=config.keep_local)
        self.s3 = self.s3_tier_class(
            self.s3_store,
            spec.name,
            keep=config.keep_s3,
            multipart_threshold=config.multipart_threshold,
            part_size=config.part_size,
        )
        self.redis = self.meta_class(ctx.redis, ctx.io_hook, prefix=redis_prefix(spec.name))
        self.monitor = Monitor(ctx.clock, ctx.emit, config)
        #: Every retry loop's backoff; the jitter is seeded per job and instance (deterministic
        #: in simulation, spread across a real fleet).
        self.retry = RetryPolicy(
            config.retry_base, config.retry_max, seeded_random("retry", spec.seed, ctx.instance_id)
        )
        self.replicator = self.replicator_class(
            self.s3,
            self.redis,
            ctx.clock,
            ctx.emit,
            config,
            epoch=lambda: self.epoch,
            on_fenced=self._fenced,
            on_crash=self._background_crash,
            still_owner=self._still_owner,
            bandwidth=Bandwidth(config.assumed_upload_bandwidth),
            retry=self.retry,
        )
        self.epoch = 0
        self.position = 0
        self.digest = b""
        self.safe: tuple[int, bytes] = (0, b"")  # newest position whose outputs are committed
        self.latest_local: CheckpointRecord | None = None
        self.fenced_reason: str | None = None
        self._serial = 0
        self._first_chunk = True
        self._crash: BaseException | None = None
        self._main: asyncio.Task[object] | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    async def run(self) -> None:
        self._main = asyncio.current_task()
        self.emit(Kind.JOB_STARTED, items=self.spec.items)
        self.monitor.start(self.notice_sources())
        graceful = False
        try:
            await self._recover()
            await self._work()
            graceful = True
        except asyncio.CancelledError:
            if self._crash is not None:
                raise self._crash from None
            raise
        finally:
            if graceful:  # normally idle by now; a fenced instance abandons its upload
                await self.replicator.cancel("the instance is leaving")
            else:
                self.replicator.kill()
            await self.monitor.close()

    def notice_sources(self) -> list[NoticeSource]:
        """The interruption signals the monitor watches: those of the instance's cloud."""
        return build_sources(
            self.config.sources_for(self.ctx.cloud),
            base_url=self.ctx.imds_url,
            signals=self.ctx.signals,
            extra=self.ctx.extra,
            webhook_port=self.config.webhook_port,
        )

    def _background_crash(self, error: BaseException) -> None:
        """A background task died (an InstanceCrash in the replicator kills the instance)."""
        self._crash = error
        if self._main is not None and not self._main.done():
            self._main.cancel()

    async def _still_owner(self) -> bool:
        """Whether no newer instance has claimed the job (asked of Redis before each write
        others may also make; unknown while Redis is down, then the S3 conditions fence)."""
        if self.fenced_reason is not None:
            return False
        try:
            newest = await self.redis.current_epoch()
        except (RedisError, OSError):
            return True
        if newest > self.epoch:
            self._fenced(f"epoch {newest} claimed by a newer instance (this one is {self.epoch})")
            return False
        return True

    def _fenced(self, reason: str) -> None:
        self.fenced_reason = reason
        self.monitor.wake.set()

    async def _recover(self) -> None:
        recovered = await self.recovery_class(
            self.spec,
            self.local,
            self.s3,
            self.redis,
            self.clock,
            self.emit,
            patience=self.config.recovery_patience,
            retry=self.retry,
        ).run()
        self.epoch = recovered.epoch
        self.position = recovered.position
        self.digest = recovered.digest
        self.safe = (self.position, self.digest)
        self.replicator.newest_durable = recovered.s3_newest
        if recovered.fenced is not None:
            self._fenced(recovered.fenced)
        if recovered.tier == "local" and recovered.record is not None:
            self.latest_local = recovered.record
            if recovered.s3_newest is None and recovered.content is not None:
                # a stop kept it only locally: copy it to S3 now
                self.replicator.submit(recovered.record, recovered.content)

    # -- the work loop -------------------------------------------------------------------------
    async def _work(self) -> None:
        every = self.spec.checkpoint_every
        next_checkpoint = self.clock.monotonic() + every
        while self.position < self.spec.items:
            if await self._should_stop():
                return
            if self.monitor.take_rebalance() is not None:
                await self._checkpoint("rebalance")
                next_checkpoint = self.clock.monotonic() + every
                continue
            await self._run_items(next_checkpoint)
            if await self._should_stop():
                return
            index = output_index_completed_at(self.spec, self.position)
            if index is not None and not await self._commit_output(index):
                continue  # a notice interrupted the retries: handled at the top
            if self.clock.monotonic() >= next_checkpoint - _EPSILON:
                await self._checkpoint("periodic")
                next_checkpoint = self.clock.monotonic() + every
        await self._finish()

    async def _run_items(self, next_checkpoint: float) -> None:
        """Work until the next output boundary or checkpoint, or until a notice arrives."""
        spi = self.spec.seconds_per_item
        to_boundary = self.spec.output_every - self.position % self.spec.output_every
        to_checkpoint = max(1, math.ceil((next_checkpoint - self.clock.monotonic()) / spi - 1e-6))
        count = min(to_boundary, to_checkpoint, self.spec.items - self.position)
        if self._first_chunk:  # the first item after a resume is reported on its own
            count, self._first_chunk = 1, False
        started = self.clock.monotonic()
        finished = await self._work_until(started + count * spi, stop_on_rebalance=True)
        done = count if finished else self._items_since(started)
        quiet = self.monitor.urgent is None and self.fenced_reason is None
        # "checkpoint soon": finish the item in progress rather than lose it
        if done < count and quiet and await self._work_until(started + (done + 1) * spi):
            done += 1
        self._advance(done)

    def _items_since(self, started: float) -> int:
        return int((self.clock.monotonic() - started) / self.spec.seconds_per_item + 1e-6)

    async def _work_until(self, end: float, *, stop_on_rebalance: bool = False) -> bool:
        """Sleep until ``end``; False if an urgent notice or a fence (or, if asked, a
        rebalance recommendation) cut it short."""
        while (remaining := end - self.clock.monotonic()) > 1e-9:
            self.monitor.wake.clear()
            if not await self._wait_for_wake(remaining):
                return True
            if self.monitor.urgent is not None or self.fenced_reason is not None:
                return False
            if stop_on_rebalance and self.monitor.rebalance is not None:
                return False
        return True

    async def _wait_for_wake(self, seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                await self.monitor.wake.wait()
        except TimeoutError:
            return False
        return True

    def _advance(self, count: int) -> None:
        if count <= 0:
            return
        self.digest = advance_digest(self.digest, self.position + 1, count)
        self.position += count
        self.emit(Kind.ITEM_DONE, position=self.position)
        if output_index_completed_at(self.spec, self.position) is None:
            self.safe = (self.position, self.digest)  # no output pending at this position

    async def _should_stop(self) -> bool:
        if self.fenced_reason is not None:
            self.emit(Kind.JOB_STOPPED, position=self.position, reason="fenced")
            return True
        notice = self.monitor.urgent
        if notice is None:
            return False
        await self._emergency(notice)
        return True

    # -- outputs -------------------------------------------------------------------------------
    async def _commit_output(self, index: int) -> bool:
        """Write output ``index`` exactly once; False if a notice cut the retries short."""
        key = output_key(self.spec, index)
        data = output_content(self.spec, index)
        first, last = output_range(self.spec, index)
        digest = checksum(data)
        backoff = self.retry.backoff()
        while True:
            if not await self._still_owner():
                return False
            try:
                existing = await self._put_output(key, data, digest)
            except InstanceCrash:
                raise
            except Exception as error:
                self.emit(Kind.OUTPUT_FAILED, key=key, error=describe(error))
                self.monitor.wake.clear()
                if await self._wait_for_wake(backoff.next()) and self.monitor.urgent is not None:
                    return False
                if self.fenced_reason is not None:
                    return False
                continue
            self.emit(
                Kind.OUTPUT_COMMITTED,
                key=key,
                first=first,
                last=last,
                checksum=digest,
                existing=existing,
            )
            self.safe = (self.position, self.digest)
            return True

    async def _put_output(self, key: str, data: bytes, digest: str) -> bool:
        """Put once; True if an identical object was already there (an earlier instance's)."""
        try:
            await self.s3_store.put(
                key, data, nominal=self.spec.output_size, if_none_match=True, sha256_hex=digest
            )
            return False
        except Exception as error:
            if not is_precondition_failed(error):
                raise
        found = await self.s3_store.get(key, nominal=self.spec.output_size)
        if found is not None and checksum(found[0]) == digest:
            return True
        # Present but wrong (damaged): replace exactly that version.
        await self.s3_store.put(
            key,
            data,
            nominal=self.spec.output_size,
            if_match=found[1] if found else None,
            sha256_hex=digest,
        )
        return False

    # -- checkpoints ---------------------------------------------------------------------------
    def _new_record(self, position: int, digest: bytes) -> tuple[CheckpointRecord, bytes]:
        self._serial += 1
        ident = checkpoint_id(position, self.epoch, self._serial)
        data = encode_state(self.spec, position, digest)
        record = CheckpointRecord(
            id=ident,
            position=position,
            epoch=self.epoch,
            checksum="",
            size=len(data),
            nominal_size=self.spec.state_size,
            key=checkpoint_key(self.spec.name, ident),
        )
        return record, data

    async def _checkpoint(
        self, reason: str, *, local: bool = True, remote: bool = True
    ) -> tuple[CheckpointRecord, bytes]:
        position, digest = self.safe
        record, data = self._new_record(position, digest)
        self.emit(
            Kind.CHECKPOINT_STARTED, checkpoint_id=record.id, position=position, reason=reason
        )
        if local:
            record = await self._save_local(record, data)
        if not record.checksum:
            record = replace(record, checksum=await self.local.disk.call(checksum, data))
        if remote:
            self.replicator.submit(record, data)
        return record, data

    async def _save_local(self, record: CheckpointRecord, data: bytes) -> CheckpointRecord:
        try:
            record = await self.local.save(record, data, self.epoch)
        except InstanceCrash:
            raise
        except Exception as error:
            report_failed(self.emit, record, "local", error)
            return record
        self.latest_local = record
        report_durable(self.emit, record, "local")
        with contextlib.suppress(Exception):  # rotation is housekeeping: retried next time
            await self.local.rotate(record)
        return record

    async def _finish(self) -> None:
        newest = self.replicator.newest_durable
        if newest is None or newest.position < self.spec.items:
            await self._checkpoint("final")
        # Completion waits for the uploads and for aborting any a failure left incomplete.
        while not await self.replicator.wait(within=self.config.poll_interval, cleaned=True):
            if self.monitor.urgent is not None or self.fenced_reason is not None:
                await self._should_stop()
                return
        if self.fenced_reason is not None:
            await self._should_stop()
            return
        self.emit(Kind.JOB_COMPLETED, position=self.position)

    # -- emergency save ------------------------------------------------------------------------
    async def _emergency(self, notice: InterruptionNotice) -> None:
        """Save what fits before the deadline on a tier that survives the action, then stop."""
        deadline = notice.deadline
        if deadline is None:
            deadline = self.clock.monotonic() + self.config.grace_period
        position = self.safe[0]
        nominal = self.spec.state_size
        if notice.effect == "terminate":
            await self._emergency_remote(position, deadline, nominal)
        else:
            await self._emergency_local(position, deadline, nominal)
        saved = self._saved_position(notice.effect)
        if saved is not None and saved >= position:
            # Azure: approving starts the event at once. Only with the work saved; a save that
            # did not make it keeps every second the deadline still leaves.
            await self.monitor.acknowledge()
        self.emit(
            Kind.JOB_STOPPED,
            position=self.position,
            saved_position=self._saved_position(notice.effect),
            reason="notice",
            action=notice.action or notice.effect,
        )

    def _budget(self, deadline: float) -> float:
        return deadline - self.clock.monotonic() - self.config.safety_margin

    async def _emergency_remote(self, position: int, deadline: float, nominal: int) -> None:
        newest = self.replicator.newest_durable
        in_flight = self.replicator.current
        upload_time = self.replicator.bandwidth.seconds_for(nominal)
        if newest is not None and newest.position >= position:
            pass
        elif in_flight is not None and in_flight.position >= position:
            pass  # the upload in flight already holds this position
        elif upload_time <= self._budget(deadline):
            if in_flight is not None:
                await self.replicator.cancel("superseded by the emergency checkpoint")
            await self._checkpoint("notice:terminate", local=False)
        await self._drain(deadline)

    async def _emergency_local(self, position: int, deadline: float, nominal: int) -> None:
        latest = self.latest_local
        disk_time = nominal / self.config.assumed_disk_bandwidth
        if (latest is None or latest.position < position) and disk_time <= self._budget(deadline):
            record, data = await self._checkpoint("notice:stop", remote=False)
            saved = self.latest_local == record  # the local save succeeded
            upload_time = self.replicator.bandwidth.seconds_for(nominal)
            if saved and not self.replicator.busy and upload_time <= self._budget(deadline):
                self.replicator.submit(record, data)  # what was just saved, not read back
        await self._drain(deadline)

    async def _drain(self, deadline: float) -> None:
        """Let replication finish if it can before the deadline; abort it cleanly if not."""
        budget = self._budget(deadline)
        if budget > 0 and await self.replicator.wait(within=budget):
            return
        await self.replicator.cancel("deadline: would not finish in time")

    def _saved_position(self, action: str) -> int | None:
        durable = self.replicator.newest_durable
        positions = [durable.position] if durable else []
        if action != "terminate" and self.latest_local is not None:
            positions.append(self.latest_local.position)
        return max(positions) if positions else None


async def reference_target(ctx: InstanceContext) -> None:
    """The bundled target: the reference job with the runtime's settings from ``ctx.job``."""
    spec = JobSpec.from_mapping(ctx.job)
    config = RuntimeConfig.from_mapping(spec.extra.get("runtime"))
    await Runtime(ctx, spec, config).run()
