"""Storage invariants of the reference layout: manifests and Redis never point at nothing, and
no older epoch overwrites a newer one's manifest."""

from __future__ import annotations

from typing import Any

from harness.checks import Blob, ObjectVersion, RedisEntry, StorageSnapshot, same_digest
from harness.checks.layout import fencing_problems, metadata_problems
from harness.runtime.job import JobSpec, checksum, expected_outputs, state_after
from harness.runtime.layout import CheckpointRecord, Manifest
from harness.sim.golden import reference_golden

JOB = {"items": 40, "seconds_per_item": 1, "checkpoint_every": "10s", "name": "j"}
SPEC = JobSpec.from_mapping(JOB)
KEY = "checkpoints/j/manifest.json"


def record(position: int, epoch: int = 1) -> CheckpointRecord:
    data = state_after(SPEC, position)
    return CheckpointRecord(
        id=f"{position:010d}-e{epoch:06d}-0001",
        position=position,
        epoch=epoch,
        checksum=checksum(data),
        size=len(data),
        nominal_size=SPEC.state_size,
        key=f"checkpoints/j/{position:010d}-e{epoch:06d}-0001.ckpt",
    )


def snapshot(
    *manifests: Manifest, objects: tuple[int, ...] = (10, 20), **kw: Any
) -> StorageSnapshot:
    versions = [
        ObjectVersion(
            key=KEY, version_id=f"m{i}", index=i, is_latest=False, blob=Blob.of(m.encode())
        )
        for i, m in enumerate(manifests)
    ]
    for position in objects:
        r = record(position)
        versions.append(
            ObjectVersion(r.key, "v", 0, True, blob=Blob.of(state_after(SPEC, position)))
        )
    return StorageSnapshot(bucket="b", versions=tuple(versions), **kw)


def test_reference_golden_matches_the_job_functions() -> None:
    golden = reference_golden(JOB)
    assert golden.items == 40
    assert {k: v.removeprefix("sha256:") for k, v in golden.outputs.items()} == expected_outputs(
        SPEC
    )
    assert same_digest(golden.state_at(17) or "", checksum(state_after(SPEC, 17)))
    assert golden.state_at(41) is None


def test_manifests_naming_stored_checkpoints_pass() -> None:
    one = Manifest("j", 1, (record(10),))
    two = Manifest("j", 1, (record(20), record(10)))
    assert metadata_problems(snapshot(one, two)) == []
    assert fencing_problems(snapshot(one, two)) == []


def test_a_manifest_naming_a_missing_checkpoint_is_a_problem() -> None:
    ahead = Manifest("j", 1, (record(30), record(20)))
    (problem,) = metadata_problems(snapshot(ahead))
    assert "names checkpoints/j/0000000030" in problem.message and problem.key == KEY


def test_a_torn_manifest_and_a_redis_pointer_to_nothing_are_problems() -> None:
    torn = ObjectVersion(KEY, "t", 0, True, blob=Blob.of(b'{"format": "spot-harn'))
    redis = {"spot-harness:j:meta": RedisEntry("hash", {"key": record(30).key, "checksum": "ab"})}
    snap = StorageSnapshot(bucket="b", versions=(torn,), redis=redis)
    messages = [p.message for p in metadata_problems(snap)]
    assert messages[0].startswith(f"s3 manifest {KEY} (version 1) is unreadable")
    assert messages[1] == (
        f"redis spot-harness:j:meta points to {record(30).key}, which S3 never held intact"
    )


def test_an_older_epoch_overwriting_a_newer_manifest_is_unfenced() -> None:
    newer = Manifest("j", 2, (record(20, 1),))
    stale = Manifest("j", 1, (record(10, 1),))
    (problem,) = fencing_problems(snapshot(newer, stale))
    assert "version 2 was written by epoch 1 after version 1 of epoch 2" in problem.message
