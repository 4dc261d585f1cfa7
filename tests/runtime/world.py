"""A minimal simulated world for the runtime's own tests: virtual clock, moto S3 (versioned),
fakeredis, a local dir per instance, an io_hook that can fail or crash any step."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import fakeredis
from botocore.exceptions import ClientError
from moto import mock_aws

from harness.clock import LoopClock
from harness.history import History
from harness.runtime import reference_target
from harness.target import InstanceContext, InstanceCrash

_BUCKETS = itertools.count(1)


def new_s3_client() -> Any:
    return boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def slow_down(op: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}},
        op,
    )


def disk_full() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


@dataclass
class Hook:
    """The io_hook: models time per byte and applies scripted faults.

    ``crash_at``: the 1-based index of the step (counted across the whole instance) at which
    the instance dies; ``fail``: op name -> a function returning the error to raise (or None).
    """

    bandwidth: float = 100e6  # S3
    disk_bandwidth: float = 1e9
    latency: float = 0.01
    crash_at: int | None = None
    fail: dict[str, Callable[..., BaseException | None]] = field(default_factory=dict)
    steps: list[tuple[str, str | None]] = field(default_factory=list)

    async def __call__(
        self, op: str, *, nbytes: int = 0, key: str | None = None, physical: bool = True
    ) -> None:
        self.steps.append((op, key))
        if self.crash_at is not None and len(self.steps) == self.crash_at:
            raise InstanceCrash(f"crash at step {self.crash_at} ({op})")
        failure = self.fail.get(op)
        error = failure(key) if failure else None
        if error is not None:
            raise error
        rate = self.disk_bandwidth if op.startswith("local.") else self.bandwidth
        await asyncio.sleep(self.latency + nbytes / rate)


class World:
    """One bucket, one Redis server, local dirs under ``root``; instances run one at a time."""

    def __init__(self, root: Path, job: dict[str, Any], s3: Any | None = None) -> None:
        """``s3``: a client inside an active moto mock, shared across worlds (each gets its
        own bucket); without one the world starts its own mock."""
        self.root = root
        self.job = job
        self._mock = None
        if s3 is None:
            self._mock = mock_aws()
            self._mock.start()
            s3 = new_s3_client()
        self.s3 = s3
        self.bucket = f"runtime-{next(_BUCKETS):06d}"
        self.s3.create_bucket(Bucket=self.bucket)
        self.s3.put_bucket_versioning(
            Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"}
        )
        self.redis_server = fakeredis.FakeServer()
        self.history: History | None = None
        self.incarnation = 0
        self.local_dir = root / "local"

    def close(self) -> None:
        if self._mock is not None:
            self._mock.stop()

    def wipe_local(self) -> None:
        shutil.rmtree(self.local_dir, ignore_errors=True)

    def events(self, *kinds: str) -> list[tuple[str, dict[str, Any]]]:
        assert self.history is not None
        return [(e.kind, dict(e.data)) for e in self.history if not kinds or e.kind in kinds]

    def kinds(self) -> list[str]:
        assert self.history is not None
        return [e.kind for e in self.history]

    async def run_instance(
        self,
        hook: Hook | None = None,
        *,
        signal_at: float | None = None,
        until: float | None = None,
        cloud: str = "kubernetes",
        extra: dict[str, Any] | None = None,
        imds_url: str = "http://127.0.0.1:9",
        local_dir: Path | None = None,
        job: dict[str, Any] | None = None,
    ) -> str:
        """Run one incarnation; returns ``completed``, ``exited`` (clean stop), ``crashed`` or
        ``killed`` (cut off at ``until`` seconds)."""
        loop = asyncio.get_running_loop()
        if self.history is None:
            self.history = History(time=loop.time)
        history = self.history
        self.incarnation += 1
        instance = f"i-{self.incarnation:04d}"
        local = local_dir or self.local_dir
        local.mkdir(parents=True, exist_ok=True)

        def emit(kind: str, **data: Any) -> None:
            history.record("target", kind, instance, **data)

        ctx = InstanceContext(
            instance_id=instance,
            incarnation=self.incarnation,
            cloud=cloud,
            clock=LoopClock(loop),
            imds_url=imds_url,
            bucket=self.bucket,
            local_dir=local,
            job=job or self.job,
            emit=emit,
            s3_client=self.s3,
            redis=fakeredis.FakeAsyncRedis(server=self.redis_server),
            io_hook=hook or Hook(),
            extra=extra or {},
        )
        if signal_at is not None:
            loop.call_later(signal_at, ctx.signals.put_nowait, "SIGTERM")
        task = asyncio.ensure_future(reference_target(ctx))
        try:
            if until is None:
                await task
            else:
                done, _ = await asyncio.wait({task}, timeout=until)
                if not done:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    return "killed"
                task.result()
        except InstanceCrash:
            return "crashed"
        finally:
            await ctx.redis.aclose()
        completed = history.of_kind("job.completed")
        return "completed" if completed and completed[-1].instance == instance else "exited"

    # -- storage as the checks see it ----------------------------------------------------------
    def object_versions(self, prefix: str) -> dict[str, int]:
        versions = self.s3.list_object_versions(Bucket=self.bucket, Prefix=prefix).get(
            "Versions", []
        )
        counts: dict[str, int] = {}
        for version in versions:
            counts[version["Key"]] = counts.get(version["Key"], 0) + 1
        return counts

    def read(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def incomplete_uploads(self) -> list[str]:
        uploads = self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
        return [u["Key"] for u in uploads]


def fail_first(count: int, make: Callable[[], BaseException], *, key_part: str = "") -> Any:
    """A ``Hook.fail`` entry raising ``make()`` for the first ``count`` calls (whose key contains
    ``key_part``)."""
    remaining = [count]

    def failure(key: str | None = None) -> BaseException | None:
        if key_part and key_part not in (key or ""):
            return None
        if remaining[0] <= 0:
            return None
        remaining[0] -= 1
        return make()

    return failure
