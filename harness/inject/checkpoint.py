"""``--expect-checkpoint s3://bucket/prefix``: after the deadline, did a checkpoint land in time?

The verdict is a pure function of the objects under the prefix and the notice's times, so every
branch is tested without S3; :func:`verify_checkpoint` lists the objects and waits for the
deadline through an injected :class:`~harness.inject.status.Timekeeper`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from harness.inject.plan import S3Location
from harness.inject.preflight import call
from harness.inject.status import Timekeeper, relative

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Outcome = Literal["in-time", "late", "missing"]
#: S3 ``LastModified`` has whole-second precision: an object written in the notice's second
#: counts as written after it.
_PRECISION = timedelta(seconds=1)
#: Wait this long past the deadline before listing, for writes racing the interruption.
DEFAULT_GRACE = 5.0


@dataclass(frozen=True)
class StoredObject:
    key: str
    last_modified: datetime


@dataclass(frozen=True)
class CheckpointVerdict:
    outcome: Outcome
    location: S3Location
    notice_at: datetime
    deadline: datetime
    checkpoint: StoredObject | None = None
    newest_before_notice: StoredObject | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "in-time"

    def message(self) -> str:
        where = f"s3://{self.location.bucket}/"
        if self.checkpoint is not None:
            after = (self.checkpoint.last_modified - self.notice_at).total_seconds()
            margin = (self.deadline - self.checkpoint.last_modified).total_seconds()
            timing = (
                f"{relative(margin)} before the deadline"
                if margin >= 0
                else f"{relative(margin)} AFTER the deadline"
            )
            verdict = "landed in time" if self.ok else "landed too late"
            return (
                f"checkpoint {verdict}: {where}{self.checkpoint.key} written "
                f"{relative(after)} after the notice, {timing}"
            )
        older = (
            f"; the newest object there ({self.newest_before_notice.key}) predates the notice"
            if self.newest_before_notice
            else "; the prefix holds no object at all"
        )
        return f"no checkpoint under {self.location} was written after the notice{older}"


def judge(
    objects: Iterable[StoredObject], location: S3Location, notice_at: datetime, deadline: datetime
) -> CheckpointVerdict:
    """The first checkpoint written after the notice, and whether it beat the deadline."""
    ordered = sorted(objects, key=lambda o: (o.last_modified, o.key))
    floor = notice_at.replace(microsecond=0)
    after = [o for o in ordered if o.last_modified >= floor]
    before = [o for o in ordered if o.last_modified < floor]
    in_time = [o for o in after if o.last_modified <= deadline + _PRECISION]
    if in_time:
        return CheckpointVerdict("in-time", location, notice_at, deadline, in_time[0])
    if after:
        return CheckpointVerdict("late", location, notice_at, deadline, after[0])
    return CheckpointVerdict(
        "missing", location, notice_at, deadline, None, before[-1] if before else None
    )


def list_objects(s3: S3Client, location: S3Location) -> list[StoredObject]:
    paginator = s3.get_paginator("list_objects_v2")
    pages = call(
        f"listing {location} (s3:ListBucket)",
        lambda: list(paginator.paginate(Bucket=location.bucket, Prefix=location.prefix)),
    )
    return [
        StoredObject(item["Key"], item["LastModified"])
        for page in pages
        for item in page.get("Contents", [])
    ]


def verify_checkpoint(
    s3: S3Client,
    location: S3Location,
    notice_at: datetime,
    deadline: datetime,
    timekeeper: Timekeeper,
    *,
    grace: float = DEFAULT_GRACE,
) -> CheckpointVerdict:
    """Wait until the deadline (plus ``grace``) has passed, then judge the prefix."""
    remaining = (deadline - timekeeper.now()).total_seconds() + grace
    if remaining > 0:
        timekeeper.sleep(remaining)
    return judge(list_objects(s3, location), location, notice_at, deadline)
