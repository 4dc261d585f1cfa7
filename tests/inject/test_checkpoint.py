"""``--expect-checkpoint``: the verdict (pure) and the S3 listing after the deadline (moto)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from harness.inject.checkpoint import StoredObject, judge, verify_checkpoint
from harness.inject.plan import S3Location
from harness.inject.preflight import AwsClients
from tests.inject.conftest import FakeTime

LOC = S3Location("bucket", "ckpt/")
NOTICE = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
DEADLINE = NOTICE + timedelta(minutes=2)


def at(seconds: float) -> datetime:
    return NOTICE + timedelta(seconds=seconds)


def test_a_checkpoint_between_notice_and_deadline_is_in_time() -> None:
    objects = [StoredObject("ckpt/old", at(-600)), StoredObject("ckpt/new", at(72))]
    verdict = judge(objects, LOC, NOTICE, DEADLINE)
    assert verdict.ok and verdict.outcome == "in-time"
    assert verdict.checkpoint == objects[1]
    assert verdict.message() == (
        "checkpoint landed in time: s3://bucket/ckpt/new written 1m12s after the notice, "
        "48s before the deadline"
    )


def test_a_checkpoint_after_the_deadline_is_late() -> None:
    verdict = judge([StoredObject("ckpt/late", at(125))], LOC, NOTICE, DEADLINE)
    assert verdict.outcome == "late" and not verdict.ok
    assert verdict.message().endswith("2m5s after the notice, 5s AFTER the deadline")


def test_only_older_objects_mean_no_checkpoint_after_the_notice() -> None:
    verdict = judge([StoredObject("ckpt/a", at(-30))], LOC, NOTICE, DEADLINE)
    assert verdict.outcome == "missing"
    assert verdict.message() == (
        "no checkpoint under s3://bucket/ckpt/ was written after the notice; the newest object "
        "there (ckpt/a) predates the notice"
    )
    empty = judge([], LOC, NOTICE, DEADLINE)
    assert empty.message().endswith("the prefix holds no object at all")


def test_s3_second_precision_counts_the_notice_second_as_after() -> None:
    notice = NOTICE + timedelta(milliseconds=400)
    verdict = judge([StoredObject("ckpt/x", NOTICE)], LOC, notice, DEADLINE)
    assert verdict.ok


def test_verify_waits_past_the_deadline_then_reads_s3(
    clients: AwsClients, fake_time: FakeTime
) -> None:
    clients.s3.create_bucket(Bucket="ckpts")
    clients.s3.put_object(Bucket="ckpts", Key="job/before", Body=b"x")
    notice = fake_time.now() + timedelta(seconds=2)
    deadline = notice + timedelta(minutes=2)
    location = S3Location.parse("s3://ckpts/job/")
    verdict = verify_checkpoint(clients.s3, location, notice, deadline, fake_time.timekeeper())
    assert fake_time.now() >= deadline  # it waited (in fake time) until the deadline had passed
    assert verdict.outcome == "missing"
    assert verdict.newest_before_notice is not None
    assert verdict.newest_before_notice.key == "job/before"

    earlier_notice = fake_time.now() - timedelta(minutes=10)  # objects now count as after it
    clients.s3.put_object(Bucket="ckpts", Key="job/step-2", Body=b"y")
    verdict = verify_checkpoint(
        clients.s3,
        location,
        earlier_notice,
        fake_time.now() + timedelta(hours=1),
        fake_time.timekeeper(),
    )
    assert verdict.ok
    assert verdict.checkpoint is not None and verdict.checkpoint.key == "job/before"


def test_s3_location_parsing() -> None:
    assert S3Location.parse("s3://b-1/a/b/") == S3Location("b-1", "a/b/")
    assert S3Location.parse("s3://bucket") == S3Location("bucket", "")
