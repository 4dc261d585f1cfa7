"""Seeded bugs in the reference runtime: each class changes one step, in one to three lines,
through a subclass and the runtime's class hooks (``local_tier_class``, ``recovery_class``,
``replicator_class``, ``s3_tier_class``, :meth:`Runtime.notice_sources`), never by replacing an
attribute of a live object. The registry in :mod:`harness.examples.yardstick` says what real
failure each one models and which check catches it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar, cast

from harness.clock import Clock
from harness.runtime.config import RuntimeConfig
from harness.runtime.job import JobSpec, checksum, output_content, output_key
from harness.runtime.layout import CheckpointRecord, Manifest, manifest_key
from harness.runtime.monitor.aws import INSTANCE_ACTION, AwsImdsSource
from harness.runtime.monitor.azure import AzureEventsSource
from harness.runtime.monitor.core import InterruptionNotice, Monitor, NoticeSource
from harness.runtime.monitor.gcp import HEADERS as GCP_HEADERS
from harness.runtime.monitor.gcp import GcpPreemptionSource
from harness.runtime.monitor.http import HttpSession, Unreachable, new_session, request
from harness.runtime.monitor.signals import SignalSource
from harness.runtime.recovery import Recovery
from harness.runtime.replicator import Replicator
from harness.runtime.runtime import Runtime
from harness.runtime.store import LocalTier, S3Tier
from harness.storage.redis import RedisMeta
from harness.storage.s3 import Upload
from harness.target import InstanceContext, Target

T = TypeVar("T")
#: A timeout so long it is none: what ``requests.get(url)`` without ``timeout=`` waits.
FOREVER = 10.0**9


def runtime_target(runtime: type[Runtime]) -> Target:
    """The in-process target running ``runtime`` instead of the reference :class:`Runtime`."""

    async def target(ctx: InstanceContext) -> None:
        spec = JobSpec.from_mapping(ctx.job)
        config = RuntimeConfig.from_mapping(spec.extra.get("runtime"))
        await runtime(ctx, spec, config).run()

    target.__doc__ = runtime.__doc__
    # Goldens are cached per target label: one per variant.
    target.__qualname__ = f"{runtime.__name__}.target"
    return target


class _MonitorView:
    """The monitor as an adapter sees it, with some of its attributes given other values (a
    variant's wrong clock, a report that drops or changes notices); the rest is forwarded."""

    def __init__(self, monitor: Monitor, overrides: dict[str, Any]) -> None:
        self._monitor = monitor
        self._overrides = overrides

    def __getattr__(self, name: str) -> Any:
        if name in self._overrides:
            return self._overrides[name]
        return getattr(self._monitor, name)


def _view(monitor: Monitor, **overrides: Any) -> Monitor:
    return cast(Monitor, _MonitorView(monitor, overrides))


def _swap(
    sources: list[NoticeSource], old: type[Any], new: Callable[[Any], NoticeSource]
) -> list[NoticeSource]:
    """``sources`` with each adapter of class ``old`` replaced by ``new(adapter)``."""
    return [new(s) if type(s) is old else s for s in sources]


class _SourceSwap(Runtime):
    """A runtime whose adapter of class :attr:`replaced` is built as :attr:`variant`."""

    replaced: type[Any] = AwsImdsSource
    variant: type[Any] = AwsImdsSource

    def notice_sources(self) -> list[NoticeSource]:
        return _swap(super().notice_sources(), self.replaced, self.rebuild)

    def rebuild(self, source: Any) -> NoticeSource:
        built: NoticeSource = self.variant(source.base_url)
        return built


# -- the metadata monitor (AWS) ---------------------------------------------------------------


class _TokenCachedForever(AwsImdsSource):
    async def _auth_headers(
        self, session: HttpSession, monitor: Monitor, *, fresh: bool
    ) -> dict[str, str]:
        if self._token is None:  # the bug: neither the token's expiry nor a 401 renews it
            await self._fetch_token(session, monitor)
        return {"X-aws-ec2-metadata-token": self._token} if self._token else {}


class TokenCachedForever(_SourceSwap):
    """Fetches the IMDSv2 session token once and reuses it past its TTL, even after a 401."""

    variant = _TokenCachedForever


class _ErrorIsANotice(AwsImdsSource):
    async def _poll(self, session: HttpSession, monitor: Monitor, path: str) -> Any:
        answer = await super()._poll(session, monitor, path)
        if answer is None and path == INSTANCE_ACTION:  # the bug: "not 404" means a notice
            monitor.report(
                InterruptionNotice(
                    source=self.name,
                    effect="terminate",
                    action="terminate",
                    deadline=None,
                    ident=f"error/{monitor.clock.monotonic():.0f}",
                )
            )
        return answer


class ErrorIsANotice(_SourceSwap):
    """Takes any answer of ``spot/instance-action`` other than 404 (a 5xx, a timeout) for a
    termination notice, and stops at once."""

    variant = _ErrorIsANotice


class _NaiveNoticeTime(AwsImdsSource):
    async def run(self, monitor: Monitor) -> None:
        await super().run(_view(monitor, clock=_NaiveCalendar(monitor.clock)))


class _NaiveCalendar:
    """A clock whose calendar time has no zone: ``datetime.utcnow()``, the usual slip."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def monotonic(self) -> float:
        return self._clock.monotonic()

    def now(self) -> datetime:
        return self._clock.now().replace(tzinfo=None)  # the bug

    async def sleep(self, seconds: float) -> None:
        await self._clock.sleep(seconds)


class NaiveNoticeTime(_SourceSwap):
    """Compares the notice's ``time`` (UTC, aware) with ``datetime.utcnow()`` (naive): the
    subtraction raises, the adapter dies, and the notice is never acted on."""

    variant = _NaiveNoticeTime


class _RebalanceIsTermination(AwsImdsSource):
    @staticmethod
    def _report(monitor: Monitor, notice: InterruptionNotice | None) -> None:
        if notice is not None and notice.effect == "rebalance" and notice.ident.startswith("re"):
            notice = replace(notice, effect="terminate", action="terminate")  # the bug
        if notice is not None:
            monitor.report(notice)


class RebalanceIsTermination(_SourceSwap):
    """Treats a rebalance recommendation as the interruption itself: saves in a hurry and stops
    a machine that may run for hours more."""

    variant = _RebalanceIsTermination


class _LifecycleIgnored(AwsImdsSource):
    async def _poll_slow(self, session: HttpSession, monitor: Monitor, path: str) -> float:
        if path.endswith("target-lifecycle-state"):
            return monitor.config.maintenance_interval  # the bug: never asked
        return await super()._poll_slow(session, monitor, path)


class LifecycleIgnored(_SourceSwap):
    """Watches only the spot notice: an Auto Scaling scale-in (``Terminated`` lifecycle state)
    takes the instance without a save."""

    variant = _LifecycleIgnored


# -- deadline logic ---------------------------------------------------------------------------


class MarginAddedToBudget(Runtime):
    """Adds the safety margin to the time left instead of subtracting it: starts an emergency
    upload that cannot finish, cancelling the one already in flight."""

    def _budget(self, deadline: float) -> float:
        return deadline - self.clock.monotonic() + self.config.safety_margin  # the bug: + not -


class _FixedLead(AwsImdsSource):
    async def run(self, monitor: Monitor) -> None:
        def report(notice: InterruptionNotice) -> None:
            if notice.deadline is not None and notice.effect != "rebalance":
                later = monitor.clock.monotonic() + 120.0  # the bug: the lead, not the time
                notice = replace(notice, deadline=later)
            monitor.report(notice)

        await super().run(_view(monitor, report=report))


class DeadlineAssumedTwoMinutes(_SourceSwap):
    """Ignores the notice's ``time`` and assumes the documented two minutes from when it was
    seen: a notice seen late (an IMDS outage, a slow poll) leaves less time than it believes."""

    variant = _FixedLead


class DeadlineOnCalendarScale(Runtime):
    """Takes the deadline from the calendar (epoch seconds) and compares it with the monotonic
    clock: every deadline looks days away, so no save is ever cut short or skipped."""

    async def _emergency(self, notice: InterruptionNotice) -> None:
        if notice.deadline is not None:  # the bug: wall-clock seconds on the monotonic scale
            offset = self.clock.now().timestamp() - self.clock.monotonic()
            notice = replace(notice, deadline=notice.deadline + offset)
        await super()._emergency(notice)


class JustInTimeSave(Runtime):
    """Defers the emergency save until its upload estimate says it must start (three estimated
    uploads and the margin before the deadline), in case the event is cancelled or moved, as
    Azure and GCP events may be: S3 trouble that begins late in the lead leaves no time."""

    async def _emergency(self, notice: InterruptionNotice) -> None:
        if notice.deadline is not None:
            estimate = self.replicator.bandwidth.seconds_for(self.spec.state_size)
            start_by = notice.deadline - 3 * estimate - self.config.safety_margin  # the bug
            await self.clock.sleep(max(0.0, start_by - self.clock.monotonic()))
        await super()._emergency(notice)


# -- fencing ----------------------------------------------------------------------------------


class _ReadNotClaim(RedisMeta):
    async def claim_epoch(self, at_least: int = 0) -> int:
        current, _ = await self.read()  # the bug: reads the epoch instead of claiming the next
        return max(current, at_least - 1)


class SharedEpoch(Runtime):
    """Claims the newest epoch it finds instead of the next one: a replacement shares its
    predecessor's epoch, so neither ever sees the other as superseded."""

    meta_class = _ReadNotClaim


class _UnconditionalManifest(S3Tier):
    async def _put_manifest(self, manifest: Manifest) -> None:
        result = await self.store.put(manifest_key(self.job), manifest.encode())  # no If-Match
        self.manifest_etag = str(result["etag"])
        self._cached = manifest


class ManifestWithoutCondition(Runtime):
    """Writes the S3 manifest without ``If-Match``: while Redis cannot fence, an instance that
    was replaced overwrites its successor's manifest."""

    s3_tier_class = _UnconditionalManifest


class _NoManifestClaim(Recovery):
    async def _claim_manifest(self, epoch: int, found: list[CheckpointRecord]) -> int | None:
        return None  # the bug: the new epoch is claimed in Redis only


class ManifestNotClaimedOnRecovery(Runtime):
    """Recovery claims the new epoch in Redis but does not stamp the S3 manifest with it: an
    older instance that cannot reach Redis still holds the manifest's current ETag, so its
    conditional write goes through after the takeover."""

    recovery_class = _NoManifestClaim


# -- rotation and retention -------------------------------------------------------------------


class _CleanFirstReplicator(Replicator):
    async def attempt(self, record: CheckpointRecord, data: bytes) -> None:
        manifest = await self.s3._current_manifest()
        await self.s3.delete([r for r in manifest.checkpoints if r.id != record.id])  # the bug
        await super().attempt(record, data)


class DeleteOldBeforeUpload(Runtime):
    """Deletes the older S3 checkpoints to make room *before* uploading the new one: until the
    upload lands (or forever, if it fails) S3 holds no valid checkpoint."""

    replicator_class = _CleanFirstReplicator


class _InvertedRotation(LocalTier):
    async def rotate(self, newest: CheckpointRecord) -> list[str]:
        listed = {r.key for r in (self._written or await self.manifest()).checkpoints}
        doomed = [k for k in listed if k != newest.key] or [newest.key]  # the bug: keeps none
        for name in doomed:
            await self.disk.delete(name)
        return doomed


class LocalRotationDeletesNewest(Runtime):
    """Local retention deletes the files the manifest names instead of those it no longer
    names; with one checkpoint listed it deletes the one just saved."""

    local_tier_class = _InvertedRotation


# -- restore ----------------------------------------------------------------------------------


class _HeaderOnlyTier(LocalTier):
    async def verify(self, record: CheckpointRecord, data: bytes) -> dict[str, Any]:
        unchecked = replace(record, checksum=checksum(data), size=len(data))  # the bug
        return await super().verify(unchecked, data)


class RestoreWithoutDigest(Runtime):
    """Restores a checkpoint after parsing its header, without comparing its SHA-256 with the
    one the manifest recorded: a damaged body whose header still parses is resumed from."""

    local_tier_class = _HeaderOnlyTier


class _OldestFirst(Recovery):
    async def _first_valid(
        self, candidates: list[CheckpointRecord], local_ids: set[str]
    ) -> tuple[CheckpointRecord | None, str | None, bytes, bytes | None]:
        return await super()._first_valid(candidates[::-1], local_ids)  # the bug: ascending


class RestoreOldestFirst(Runtime):
    """Sorts the candidate checkpoints ascending and takes the first that verifies: resumes
    from the oldest one kept, redoing (and re-emitting) work."""

    recovery_class = _OldestFirst


class _FirstOrNothing(Recovery):
    async def _first_valid(
        self, candidates: list[CheckpointRecord], local_ids: set[str]
    ) -> tuple[CheckpointRecord | None, str | None, bytes, bytes | None]:
        return await super()._first_valid(candidates[:1], local_ids)  # the bug: newest only


class RestoreNewestOrNothing(Runtime):
    """Tries only the newest checkpoint named anywhere; if it is damaged or missing, starts the
    job over from item 0 although older valid checkpoints exist."""

    recovery_class = _FirstOrNothing


# -- multipart uploads ------------------------------------------------------------------------


class _NoAbortTier(S3Tier):
    async def abort_or_remember(self, upload: Upload) -> bool:
        return True  # the bug: a failed upload's parts are left for S3 to bill

    async def sweep_uploads(self) -> list[str]:
        return []


class MultipartNeverAborted(Runtime):
    """Never aborts a multipart upload that failed or was cut short: its parts stay in S3,
    invisible and billed, forever."""

    s3_tier_class = _NoAbortTier


class _ReversedParts(S3Tier):
    async def _upload_parts(
        self, upload: Upload, record: CheckpointRecord, data: bytes
    ) -> list[dict[str, Any]]:
        chunks = [data[i : i + self.part_size] for i in range(0, len(data), self.part_size)]
        shuffled = b"".join(reversed(chunks))  # the bug: part 1 carries the last chunk
        return await super()._upload_parts(upload, record, shuffled)


class MultipartPartsReordered(Runtime):
    """Numbers the parts in the order their uploads finished, not by offset: the completed
    object holds the state's chunks in the wrong order."""

    s3_tier_class = _ReversedParts


class _LastPartDropped(S3Tier):
    async def _upload_parts(
        self, upload: Upload, record: CheckpointRecord, data: bytes
    ) -> list[dict[str, Any]]:
        parts = await super()._upload_parts(upload, record, data)
        return parts[:-1] if len(parts) > 1 else parts  # the bug: the short tail part is lost


class MultipartWithoutLastPart(Runtime):
    """Completes the multipart upload with every full-size part but not the short last one: the
    object is truncated, and reported durable."""

    s3_tier_class = _LastPartDropped


# -- recovery ---------------------------------------------------------------------------------


class _Impatient(Recovery):
    async def _patiently(self, action: Callable[[], Awaitable[T]], *, default: T) -> T:
        for _ in range(3):  # the bug: three tries, then "the bucket is empty"
            try:
                return await action()
            except asyncio.CancelledError:
                raise
            except Exception:
                await self.clock.sleep(1.0)
        return default


class RecoveryGivesUpOnOutage(Runtime):
    """Recovery tries S3 three times and then takes the outage for an empty bucket: it starts
    the job over from item 0."""

    recovery_class = _Impatient


class _RedisIsTruth(Recovery):
    async def _s3_candidates(self, *, list_if_missing: bool) -> Any:
        manifest, records = await super()._s3_candidates(list_if_missing=list_if_missing)
        epoch, meta, _answered = await self._redis_read()
        return (manifest, records) if epoch or meta else (None, [])  # the bug: Redis decides


class RedisDecidesFreshStart(Runtime):
    """Asks Redis whether the job ever ran: after Redis restarts empty, it starts over from
    item 0 although S3 holds the checkpoints."""

    recovery_class = _RedisIsTruth


class CheckpointAheadOfOutputs(Runtime):
    """Checkpoints the position reached, not the newest position whose outputs are committed:
    an output that failed to upload is never written after a resume."""

    def _advance(self, count: int) -> None:
        super()._advance(count)
        self.safe = (self.position, self.digest)  # the bug: outputs pending are covered too


class OutputRewrittenOnResume(Runtime):
    """Flushes the last output again when it resumes, the way a buffered writer re-emits its
    last batch: the object gets a second version."""

    async def _recover(self) -> None:
        await super()._recover()
        index = (self.position - 1) // self.spec.output_every
        if self.position > 0:  # the bug: an unconditional put of what is already there
            key = output_key(self.spec, index)
            await self.s3_store.put(key, output_content(self.spec, index))


# -- Azure ------------------------------------------------------------------------------------


class _ApproveAtOnce(AzureEventsSource):
    async def _poll(self, session: HttpSession, monitor: Monitor) -> None:
        def report(notice: InterruptionNotice) -> None:
            monitor.report(notice)
            if notice.urgent and notice.acknowledge is not None:  # the bug: before the save
                approval = asyncio.ensure_future(notice.acknowledge())
                _PENDING.add(approval)
                approval.add_done_callback(_PENDING.discard)

        await super()._poll(session, _view(monitor, report=report))


#: Approvals in flight (kept referenced until they finish, as asyncio requires).
_PENDING: set[asyncio.Future[None]] = set()


class AzureApprovesBeforeSaving(_SourceSwap):
    """Approves the Azure event (``StartRequests``) as soon as it sees it: the platform may
    evict at once, before the state is saved."""

    replaced = AzureEventsSource
    variant = _ApproveAtOnce


class _PreemptIgnored(AzureEventsSource):
    async def _poll(self, session: HttpSession, monitor: Monitor) -> None:
        def report(notice: InterruptionNotice) -> None:
            if notice.action != "preempt":  # the bug: only Terminate and Redeploy handled
                monitor.report(notice)

        await super()._poll(session, _view(monitor, report=report))


class AzureIgnoresPreempt(_SourceSwap):
    """Handles Azure's ``Terminate`` and ``Redeploy`` events but not ``Preempt``, the one a
    spot eviction sends."""

    replaced = AzureEventsSource
    variant = _PreemptIgnored


# -- GCP --------------------------------------------------------------------------------------


class _NoTimeout(GcpPreemptionSource):
    async def _watch_once(self, session: HttpSession, monitor: Monitor) -> bool:
        config = replace(monitor.config, http_timeout=FOREVER)  # the bug: no client timeout
        return await super()._watch_once(session, _view(monitor, config=config))


class GcpHangingGetWithoutTimeout(_SourceSwap):
    """Sends the hanging GET on ``instance/preempted`` without a client timeout: a connection
    the metadata server drops silently hangs the watcher forever."""

    replaced = GcpPreemptionSource
    variant = _NoTimeout


class _MaintenanceIsPreemption(GcpPreemptionSource):
    async def run(self, monitor: Monitor) -> None:
        watcher = asyncio.ensure_future(self._watch_maintenance(monitor))
        try:
            await super().run(monitor)
        finally:
            watcher.cancel()

    async def _watch_maintenance(self, monitor: Monitor) -> None:
        url = self.base_url + "/computeMetadata/v1/instance/maintenance-event"
        timeout = monitor.config.http_timeout
        async with new_session() as session:
            while True:
                try:
                    reply = await request(session, "GET", url, headers=GCP_HEADERS, timeout=timeout)
                except Unreachable:
                    reply = None
                value = reply.text.strip() if reply is not None and reply.status == 200 else ""
                if value and value != "NONE":  # the bug: a live migration taken for the end
                    monitor.report(
                        InterruptionNotice(
                            source=self.name,
                            effect="terminate",
                            deadline=monitor.clock.monotonic() + monitor.config.gcp_grace,
                            ident=f"maintenance/{value}",
                        )
                    )
                await monitor.clock.sleep(monitor.config.poll_interval)


class GcpMaintenanceIsPreemption(_SourceSwap):
    """Watches ``instance/maintenance-event`` too and treats any value but ``NONE`` as a
    preemption: a live migration stops the job in a hurry."""

    replaced = GcpPreemptionSource
    variant = _MaintenanceIsPreemption


# -- Kubernetes -------------------------------------------------------------------------------


class _DefaultGrace(SignalSource):
    def __init__(self, queue: asyncio.Queue[str], *, grace: Any = None) -> None:
        super().__init__(queue, grace=None)  # the bug: the pod's grace period is never read


class SigtermGraceIgnored(Runtime):
    """Assumes Kubernetes' default 30 s grace after SIGTERM whatever the pod's
    ``terminationGracePeriodSeconds``: with a shorter one it starts saves that cannot end."""

    def notice_sources(self) -> list[NoticeSource]:
        return _swap(
            super().notice_sources(), SignalSource, lambda s: _DefaultGrace(s.queue, grace=None)
        )


class ExitBeforeFlush(Runtime):
    """On SIGTERM it writes the checkpoint and exits without waiting for the upload to reach
    S3: the process exit kills the upload in flight."""

    async def _drain(self, deadline: float) -> None:
        urgent = self.monitor.urgent
        if urgent is not None and urgent.source == "signals":
            self.replicator.kill()  # the bug: exit now, the upload dies with the process
            return
        await super()._drain(deadline)
