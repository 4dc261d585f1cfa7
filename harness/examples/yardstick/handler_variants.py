"""Seeded bugs in the careful user-style handler (:mod:`harness.examples.handlers.careful`),
which shares no code with the reference runtime: each subclass gets one step wrong, in one to
three lines. The registry in :mod:`harness.examples.yardstick` says what real failure each one
models and which check catches it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast

import aiohttp
from botocore.exceptions import ClientError

from harness.examples.handlers.careful import Careful
from harness.examples.handlers.notices import (
    LIFECYCLE,
    PREEMPTED,
    SPOT,
    Imdsv2,
    Notice,
    NoticeWatcher,
)
from harness.examples.handlers.workload import State, sha256


class _WatcherSwap(Careful):
    """The careful handler with another notice watcher."""

    watcher_class: type[NoticeWatcher] = NoticeWatcher

    def make_watcher(self) -> NoticeWatcher:
        return self.watcher_class(self.ctx)


# -- the metadata monitor (AWS) ---------------------------------------------------------------


class _OneTry:
    """IMDSv2 GETs through ``imds``'s cached token, without its retry after a 401."""

    def __init__(self, imds: Imdsv2) -> None:
        self.imds = imds

    async def get(self, path: str) -> tuple[int, str]:
        headers = await self.imds._headers(False)
        return await self.imds._send("GET", path, headers)  # the bug: a 401 is never retried


class _NoTokenRetryWatcher(NoticeWatcher):
    async def _aws_get(self, imds: Imdsv2, path: str) -> tuple[int, str]:
        return await super()._aws_get(cast(Imdsv2, _OneTry(imds)), path)


class NoTokenRetry(_WatcherSwap):
    """Keeps its first IMDSv2 token and never fetches a new one after a 401 (the ec2-metadata
    package's behaviour): once the token is refused, every poll fails until the deadline."""

    watcher_class = _NoTokenRetryWatcher


class _NaiveTimeWatcher(NoticeWatcher):
    async def _poll_spot(self, imds: Imdsv2) -> None:
        status, body = await self._aws_get(imds, SPOT)
        if status != 200:
            return
        document = json.loads(body)
        when = datetime.strptime(document["time"], "%Y-%m-%dT%H:%M:%SZ")  # the bug: naive
        self.report(Notice("aws", document["action"], self.deadline_of(when), document["time"]))


class NaiveSpotTime(_WatcherSwap):
    """Parses the notice's ``time`` without its ``Z``: subtracting the naive time from an aware
    one raises, the AWS watcher task dies silently, and the notice is never acted on."""

    watcher_class = _NaiveTimeWatcher


class _NoLifecycleWatcher(NoticeWatcher):
    async def _poll_slow(self, imds: Imdsv2, path: str) -> float:
        if path == LIFECYCLE:
            return 300.0  # the bug: the Auto Scaling state is never asked
        return await super()._poll_slow(imds, path)


class LifecycleIgnoredHandler(_WatcherSwap):
    """Watches the spot notice only: an Auto Scaling scale-in terminates it without a save."""

    watcher_class = _NoLifecycleWatcher


class _ActLateWatcher(NoticeWatcher):
    def due(self) -> Notice | None:
        notice = self.notice
        if notice is None or notice.deadline is None:
            return notice
        left = notice.deadline - self.ctx.clock.monotonic()
        return notice if left <= 30.0 else None  # the bug: waits to act until 30 s remain


class ActsThirtySecondsBefore(_WatcherSwap):
    """Works on after a notice and starts the save only 30 s before the deadline, a margin
    tuned for a small state: a larger one, or a slow link, does not fit."""

    watcher_class = _ActLateWatcher


# -- fencing and restore ----------------------------------------------------------------------


class PointerWithoutFence(Careful):
    """Moves the ``latest`` pointer with a plain ``HSET`` instead of the compare-and-set on its
    epoch: an instance that was replaced keeps moving it."""

    async def move_pointer(self, key: str, position: int, checksum: str) -> None:
        fields = {"key": key, "position": str(position), "checksum": checksum}
        await self.ctx.redis.hset(self.pointer_key, mapping=fields)  # the bug: no epoch check
        self.ctx.emit("metadata.committed", checkpoint_id=key, position=position, epoch=self.epoch)


class UnpaddedCheckpointKeys(Careful):
    """Names checkpoints ``<position>-<instance>.ckpt`` without zero-padding and takes the
    listing's last key for the newest: ``90-...`` sorts after ``540-...``, so it resumes from
    an old checkpoint."""

    def checkpoint_key(self) -> str:
        return f"{self.prefix()}{self.state.position}-{self.ctx.instance_id}.ckpt"  # the bug


class PointerTrustedWithoutChecksum(Careful):
    """Loads the checkpoint the pointer names without comparing it with the pointer's
    checksum: a damaged body whose own self-check still passes is resumed from."""

    async def load(self, key: str, expected: str | None) -> dict[str, Any] | None:
        return await super().load(key, None)  # the bug: the recorded checksum is dropped


class ObjectVouchesForItself(Careful):
    """Stores each checkpoint's SHA-256 in the object's own metadata and checks a download
    against that instead of the pointer's: an object replaced as a whole (a stale replica, a
    restore from an old backup) brings a digest that matches it, and is resumed from."""

    async def put(self, key: str, body: bytes) -> None:
        await self.s3("put_object", Key=key, Body=body, Metadata={"sha256": sha256(body)})

    async def load(self, key: str, expected: str | None) -> dict[str, Any] | None:
        try:
            head = await self.retrying(lambda: self.s3("head_object", Key=key))
        except ClientError:
            return None  # deleted or never written
        stored = head.get("Metadata", {}).get("sha256")
        return await super().load(key, stored)  # the bug: the object's word, not the pointer's


class RecoveryGivesUp(Careful):
    """Lists the checkpoints once; if S3 does not answer, it starts the job over from 0."""

    async def resume(self) -> dict[str, Any]:
        try:
            await self.list_checkpoints()
        except Exception:  # the bug: an outage taken for an empty bucket
            await self.claim_epoch()
            self.state = State.initial(self.job)
            return {"checkpoint_id": None, "tier": None}
        return await super().resume()


# -- outputs and retention --------------------------------------------------------------------


class CheckpointBeforeOutputs(Careful):
    """Checkpoints without waiting for the outputs it covers: an output whose upload failed is
    never written once a resume skips past it."""

    async def outputs_written(self) -> bool:
        self.outputs.flush()
        return True  # the bug: pending outputs are not waited for


class DeleteOlderBeforeSave(Careful):
    """Deletes its older checkpoints before writing the new one ("keep one, save space"):
    while the new one uploads, S3 holds no checkpoint at all."""

    async def save(self, key: str, body: bytes, position: int) -> bool:
        for old in await self.retrying(self.list_checkpoints):  # the bug: before the put
            await self.s3("delete_object", Key=old)
        return await super().save(key, body, position)


class EmergencySaveNotRetried(Careful):
    """Retries periodic saves but gives an emergency save a single attempt: one throttled
    request and the work since the last checkpoint is lost."""

    def patience(self) -> float:
        if self.watcher.due() is not None:
            return self.ctx.clock.monotonic()  # the bug: no retry when it matters most
        return super().patience()


# -- Azure, GCP, Kubernetes -------------------------------------------------------------------


class _NoPreemptWatcher(NoticeWatcher):
    def _azure_events(self, body: str) -> list[Notice]:
        found = super()._azure_events(body)
        events = json.loads(body).get("Events") or []
        preempts = {str(e.get("EventId")) for e in events if e.get("EventType") == "Preempt"}
        return [n for n in found if n.ident not in preempts]  # the bug: Preempt unhandled


class AzurePreemptIgnoredHandler(_WatcherSwap):
    """Handles Azure's ``Terminate`` events but not ``Preempt``, the one a spot eviction sends."""

    watcher_class = _NoPreemptWatcher


class _HangingWatcher(NoticeWatcher):
    async def watch_gcp(self) -> None:
        headers = {"Metadata-Flavor": "Google"}
        etag = "0"
        async with aiohttp.ClientSession(headers=headers) as http:
            while True:
                url = f"{self.ctx.imds_url}{PREEMPTED}?wait_for_change=true&last_etag={etag}"
                try:
                    async with http.get(url, timeout=aiohttp.ClientTimeout(total=None)) as reply:
                        body, etag = await reply.text(), reply.headers.get("ETag", etag)
                except aiohttp.ClientError:
                    await self.ctx.clock.sleep(1.0)
                    continue
                if body.strip().upper() == "TRUE":
                    deadline = self.ctx.clock.monotonic() + 30.0
                    self.report(Notice("gcp", "terminate", deadline, f"preempted/{etag}"))


class GcpNoTimeoutHandler(_WatcherSwap):
    """Sends the hanging GET on ``instance/preempted`` with no timeout at all: a connection the
    metadata server drops silently leaves the watcher waiting forever."""

    watcher_class = _HangingWatcher


class _DefaultGraceWatcher(NoticeWatcher):
    async def watch_signals(self) -> None:
        count = 0
        while True:
            name = await self.ctx.signals.get()
            if name in ("SIGTERM", "SIGINT"):
                count += 1
                deadline = self.ctx.clock.monotonic() + 30.0  # the bug: the default grace
                self.report(Notice("signals", "terminate", deadline, f"{name}/{count}"))


class SigtermGraceAssumedHandler(_WatcherSwap):
    """Assumes 30 s of grace after SIGTERM whatever the pod's grace period: with a shorter one
    it defers the save and is killed first."""

    watcher_class = _DefaultGraceWatcher


class ExitBeforeFlushHandler(Careful):
    """On SIGTERM it stops at once and leaves the state to a shutdown hook that never runs: the
    work since the last periodic checkpoint is lost."""

    async def on_notice(self, notice: Notice) -> bool:
        if notice.source == "signals":
            self.halt("notice")  # the bug: no save before exiting
            return True
        return await super().on_notice(notice)
