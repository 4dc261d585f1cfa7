"""Known-bad targets: the reference runtime with exactly one of the mistakes real checkpoint
handlers make. Each proves that a check can tell good from bad; scenarios in
``scenarios/known_bad/`` run them with the broken check marked ``fails:``.

Use one as ``target: {python: "harness.examples.broken:<name>"}``:

- ``blind_on_401``: plain IMDSv1 GETs; the 401 of an IMDSv2-only instance is read as "no
  notice", so the notice is never seen (breaks ``saved_before_deadline``).
- ``torn_checkpoint``: the local checkpoint is rewritten in place, no temp file and rename
  (breaks ``durable``).
- ``pointer_before_upload``: the ``latest`` pointer (Redis) moves to a checkpoint before it is
  uploaded (breaks ``durable``).
- ``off_by_one_resume``: resumes one item after the checkpoint's position (breaks
  ``resume_correct``).
- ``upload_not_awaited``: the emergency upload is started, then the process exits without
  waiting for it (breaks ``saved_before_deadline``).
- ``duplicate_outputs``: outputs are written without ``If-None-Match``, so redone items write
  them again (breaks ``exactly_once``).
- ``unfenced``: metadata and manifest are written without the epoch check, so a superseded
  instance keeps moving them (breaks ``fenced``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from harness.history import Kind
from harness.runtime.config import RuntimeConfig
from harness.runtime.job import JobSpec, checksum, decode_state
from harness.runtime.layout import CheckpointRecord, checkpoint_folder, manifest_key
from harness.runtime.monitor.aws import INSTANCE_ACTION, AwsImdsSource, parse_notice
from harness.runtime.monitor.azure import EVENTS, HEADERS, AzureEventsSource, parse_events
from harness.runtime.monitor.core import Monitor, NoticeSource
from harness.runtime.monitor.http import HttpSession, Unreachable, new_session, request
from harness.runtime.replicator import Replicator
from harness.runtime.runtime import Runtime
from harness.runtime.store import CorruptCheckpoint, LocalTier, S3Tier
from harness.storage.redis import RedisMeta
from harness.target import InstanceContext, Target

__all__ = [
    "BROKEN",
    "blind_on_401",
    "duplicate_outputs",
    "off_by_one_resume",
    "pointer_before_upload",
    "torn_checkpoint",
    "unfenced",
    "upload_not_awaited",
]


# -- blind_on_401 ---------------------------------------------------------------------------------


class NaiveImdsSource(AwsImdsSource):
    """Polls the notice path with plain IMDSv1 GETs and takes any non-200 answer for "no
    notice": with IMDSv2 required every answer is 401, and the notice is never seen."""

    async def run(self, monitor: Monitor) -> None:
        async with new_session() as session:
            while True:
                try:
                    reply = await request(
                        session,
                        "GET",
                        self.base_url + INSTANCE_ACTION,
                        headers={},
                        timeout=monitor.config.http_timeout,
                    )
                except Unreachable:
                    reply = None
                if reply is not None and reply.status == 200:
                    notice = parse_notice(INSTANCE_ACTION, reply.text, monitor)
                    if notice is not None:
                        monitor.report(notice)
                await monitor.clock.sleep(monitor.config.poll_interval)


class _BlindOn401(Runtime):
    def notice_sources(self) -> list[NoticeSource]:
        return [_naive(source) for source in super().notice_sources()]


def _naive(source: NoticeSource) -> NoticeSource:
    if isinstance(source, AwsImdsSource):
        return NaiveImdsSource(source.base_url)
    return source


# -- torn_checkpoint ------------------------------------------------------------------------------


class _TornCheckpoint(Runtime):
    """Saves the local checkpoint by rewriting one file in place (``latest.ckpt``), the way
    ``torch.save(state, path)`` does: between the two halves the only local checkpoint is torn."""

    async def _save_local(self, record: CheckpointRecord, data: bytes) -> CheckpointRecord:
        name = f"{checkpoint_folder(self.spec.name)}/latest.ckpt"
        path = self.ctx.local_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        half = len(data) // 2
        nominal = self.spec.state_size
        await self.ctx.io_hook("local.write", nbytes=nominal // 2, key=name)
        path.write_bytes(data[:half])
        await self.ctx.io_hook("local.write", nbytes=nominal - nominal // 2, key=name)
        with path.open("ab") as handle:
            handle.write(data[half:])
        record = replace(record, checksum=checksum(data))
        local = replace(record, key=name)
        manifest = (await self.local.manifest()).with_newest(local, self.epoch, keep=2)
        await self.local.disk.write_atomic(manifest_key(self.spec.name), manifest.encode())
        self.latest_local = local
        self.emit(
            Kind.CHECKPOINT_DURABLE,
            checkpoint_id=record.id,
            tier="local",
            position=record.position,
            key=name,
            checksum=record.checksum,
        )
        return record  # replicated to S3 under its own key


# -- pointer_before_upload ------------------------------------------------------------------------


class _PointerFirstReplicator(Replicator):
    async def attempt(self, record: CheckpointRecord, data: bytes) -> None:
        await self.commit_metadata(record)
        await super().attempt(record, data)


class _PointerBeforeUpload(Runtime):
    """Moves the ``latest`` pointer (Redis metadata) to a checkpoint before uploading it: a
    crash or a failed upload leaves the pointer naming an object that does not exist."""

    replicator_class = _PointerFirstReplicator


# -- off_by_one_resume ----------------------------------------------------------------------------


class _OffByOne(Runtime):
    """Takes the checkpoint's position for the last item done *before* it, not the count of items
    done: the first item after a resume is skipped."""

    async def _recover(self) -> None:
        await super()._recover()
        if self.position > 0:
            self.position += 1  # item position + 1 is never done: the state misses it
            self.safe = (self.position, self.digest)


# -- upload_not_awaited ---------------------------------------------------------------------------


class _UploadNotAwaited(Runtime):
    """On a terminate notice, starts the upload and exits at once; the process's exit kills the
    upload (``asyncio.create_task(upload)`` never awaited)."""

    async def _emergency_remote(self, position: int, deadline: float, nominal: int) -> None:
        await self._checkpoint("notice:terminate", local=False)

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            self.replicator.kill()


# -- duplicate_outputs ----------------------------------------------------------------------------


class _DuplicateOutputs(Runtime):
    """Writes each output unconditionally, so items redone after a resume write it again."""

    async def _put_output(self, key: str, data: bytes, digest: str) -> bool:
        await self.s3_store.put(key, data, nominal=self.spec.output_size)
        return False


# -- unfenced -------------------------------------------------------------------------------------


class _UnfencedRedis(RedisMeta):
    async def commit(self, epoch: int, fields: Mapping[str, str | int]) -> bool:
        await self._hook("redis.write", key=self.meta_key)
        await self.client.delete(self.meta_key)
        await self.client.hset(self.meta_key, mapping={k: str(v) for k, v in fields.items()})
        return True


class _UnfencedTier(S3Tier):
    async def commit_manifest(self, record: CheckpointRecord, epoch: int) -> list[CheckpointRecord]:
        current = await self._current_manifest()
        updated = current.with_newest(record, epoch, self.keep)
        updated = replace(updated, epoch=epoch)
        result = await self.store.put(manifest_key(self.job), updated.encode())
        self.manifest_etag = str(result["etag"])
        self._cached = updated
        return current.dropped_by(updated)


class _Unfenced(Runtime):
    """Never checks its epoch: a superseded instance keeps moving the metadata."""

    meta_class = _UnfencedRedis
    s3_tier_class = _UnfencedTier

    async def _still_owner(self) -> bool:
        return True


# -- targets --------------------------------------------------------------------------------------


def _target(runtime: type[Runtime]) -> Target:
    async def target(ctx: InstanceContext) -> None:
        spec = JobSpec.from_mapping(ctx.job)
        config = RuntimeConfig.from_mapping(spec.extra.get("runtime"))
        await runtime(ctx, spec, config).run()

    target.__doc__ = runtime.__doc__
    return target


blind_on_401 = _target(_BlindOn401)
torn_checkpoint = _target(_TornCheckpoint)
pointer_before_upload = _target(_PointerBeforeUpload)
off_by_one_resume = _target(_OffByOne)
upload_not_awaited = _target(_UploadNotAwaited)
duplicate_outputs = _target(_DuplicateOutputs)
unfenced = _target(_Unfenced)

#: name -> (target, the check it breaks)
BROKEN: Mapping[str, tuple[Callable[[InstanceContext], Awaitable[None]], str]] = {
    "blind_on_401": (blind_on_401, "saved_before_deadline"),
    "torn_checkpoint": (torn_checkpoint, "durable"),
    "pointer_before_upload": (pointer_before_upload, "durable"),
    "off_by_one_resume": (off_by_one_resume, "resume_correct"),
    "upload_not_awaited": (upload_not_awaited, "saved_before_deadline"),
    "duplicate_outputs": (duplicate_outputs, "exactly_once"),
    "unfenced": (unfenced, "fenced"),
}


# -- shared_epoch ---------------------------------------------------------------------------------


class _SharedEpochRedis(RedisMeta):
    """Reads the newest epoch and takes it as its own (a GET where an INCR belongs)."""

    async def claim_epoch(self, at_least: int = 0) -> int:
        newest = await self.current_epoch()
        await self._hook("redis.write", key=self.epoch_key)
        epoch = max(newest, at_least - 1, 1)
        await self.client.set(self.epoch_key, epoch)
        return epoch


class _SharedEpoch(Runtime):
    """A replacement takes the epoch of the instance it replaces instead of a newer one: a
    superseded instance still running is never fenced and keeps moving the metadata."""

    meta_class = _SharedEpochRedis


shared_epoch = _target(_SharedEpoch)
BROKEN = {**BROKEN, "shared_epoch": (shared_epoch, "fenced")}
__all__ += ["shared_epoch"]


# -- stale_save_on_notice -------------------------------------------------------------------------


class _StaleSaveOnNotice(Runtime):
    """On a notice, saves the state kept in memory at the last periodic checkpoint instead of
    the current one (a snapshot taken for the background upload and reused): the emergency
    upload lands in time but the work since the last checkpoint is lost."""

    _snapshot: tuple[int, bytes] = (0, b"")

    async def _recover(self) -> None:
        await super()._recover()
        self._snapshot = self.safe

    async def _checkpoint(
        self, reason: str, *, local: bool = True, remote: bool = True
    ) -> tuple[CheckpointRecord, bytes]:
        if not reason.startswith("notice:"):
            self._snapshot = self.safe
            return await super()._checkpoint(reason, local=local, remote=remote)
        current, self.safe = self.safe, self._snapshot
        try:
            return await super()._checkpoint(reason, local=local, remote=remote)
        finally:
            self.safe = current


stale_save_on_notice = _target(_StaleSaveOnNotice)
BROKEN = {**BROKEN, "stale_save_on_notice": (stale_save_on_notice, "saved_before_deadline")}
__all__ += ["stale_save_on_notice"]


# -- azure_lowercase_types ------------------------------------------------------------------------


class _LowercaseTypesSource(AzureEventsSource):
    """Reads the Scheduled Events document but looks for event types in lower case: Azure
    spells them ``Preempt`` and ``Terminate``, so no eviction is ever noticed."""

    async def _poll(self, session: HttpSession, monitor: Monitor) -> None:
        try:
            reply = await request(
                session,
                "GET",
                self.base_url + EVENTS,
                headers=HEADERS,
                timeout=monitor.config.http_timeout,
            )
        except Unreachable:
            return
        if reply.status != 200:
            return
        monitor.sighted(self.name)
        events = json.loads(reply.text).get("Events") or []
        wanted = [e for e in events if e.get("EventType") in ("preempt", "terminate")]
        for notice in parse_events(json.dumps({"Events": wanted}), monitor):
            monitor.report(notice)


class _AzureLowercaseTypes(Runtime):
    def notice_sources(self) -> list[NoticeSource]:
        return [
            _LowercaseTypesSource(s.base_url) if isinstance(s, AzureEventsSource) else s
            for s in super().notice_sources()
        ]


azure_lowercase_types = _target(_AzureLowercaseTypes)
BROKEN = {**BROKEN, "azure_lowercase_types": (azure_lowercase_types, "detects_notice")}
__all__ += ["azure_lowercase_types"]


# -- restore_unverified ---------------------------------------------------------------------------


class _HeaderOnlyTier(LocalTier):
    """Checks that restored content parses and names the job and position, never its digest."""

    async def verify(self, record: CheckpointRecord, data: bytes) -> dict[str, Any]:
        try:
            header = decode_state(data)
        except ValueError as error:
            raise CorruptCheckpoint(f"{record.id}: {error}") from None
        if (header.get("position"), header.get("job")) != (record.position, self.job):
            raise CorruptCheckpoint(f"{record.id}: header does not match the job or position")
        return header


class _RestoreUnverified(Runtime):
    """Restores a checkpoint once it parses, without comparing its SHA-256 with the recorded
    one: silently corrupted content is resumed from as if it were the state."""

    local_tier_class = _HeaderOnlyTier


restore_unverified = _target(_RestoreUnverified)
BROKEN = {**BROKEN, "restore_unverified": (restore_unverified, "resume_correct")}
__all__ += ["restore_unverified"]
