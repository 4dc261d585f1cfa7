"""Kill the instance before every persistence step in turn, then recover: whatever step the
crash hits, the next instance resumes from a verified checkpoint at least as new as any the first
one reported durable, and the job completes with every output exactly once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.clock import run_virtual
from harness.history import Kind
from harness.runtime import JobSpec, expected_outputs, state_checksum
from harness.runtime.job import checksum
from tests.runtime.world import Hook, World

TINY_JOB = {
    "items": 16,
    "seconds_per_item": "1s",
    "checkpoint_every": "6s",
    "state_size": "1MiB",
    "output_size": "4KiB",
    "output_every": 8,
    "seed": 3,
}
MULTIPART_JOB = {**TINY_JOB, "state_size": "40MiB", "runtime": {"multipart_threshold": "32MiB"}}


def count_steps(tmp_path: Path, job: dict[str, Any], s3: Any) -> int:
    world = World(tmp_path / "count", job, s3)
    hook = Hook()
    try:
        assert run_virtual(world.run_instance(hook)) == "completed"
    finally:
        world.close()
    return len(hook.steps)


def crash_then_recover(root: Path, job: dict[str, Any], step: int, s3: Any) -> World:
    world = World(root, job, s3)

    async def scenario() -> None:
        assert await world.run_instance(Hook(crash_at=step)) == "crashed"
        assert await world.run_instance(Hook()) == "completed"

    try:
        run_virtual(scenario())
    except BaseException:
        world.close()
        raise
    return world


def assert_recovered_correctly(world: World, job: dict[str, Any], step: int) -> None:
    spec = JobSpec.from_mapping(job)
    assert world.history is not None
    first = [e for e in world.history if e.instance == "i-0001"]
    second = [e for e in world.history if e.instance == "i-0002"]
    durable = [e.data["position"] for e in first if e.kind == Kind.CHECKPOINT_DURABLE]
    resumed = next(e for e in second if e.kind == Kind.RESUMED)
    position = resumed.data["position"]
    done_before = [e.data["position"] for e in first if e.kind == Kind.ITEM_DONE]
    assert position >= max(durable, default=0), f"step {step}: resumed behind a durable checkpoint"
    assert position <= max(done_before, default=0), f"step {step}: resumed beyond the work done"
    if position:
        assert resumed.data["checksum"] == state_checksum(spec, position)
    if position < spec.items:
        first_item = next(e for e in second if e.kind == Kind.ITEM_DONE)
        assert first_item.data["position"] == position + 1
    assert second[-1].kind == Kind.JOB_COMPLETED
    expected = expected_outputs(spec)
    assert world.object_versions("outputs/") == dict.fromkeys(expected, 1), f"step {step}"
    for key, digest in expected.items():
        assert checksum(world.read(key)) == digest
    assert world.incomplete_uploads() == [], f"step {step}: leaked multipart upload"


@pytest.mark.parametrize("job", [TINY_JOB, MULTIPART_JOB], ids=["single-put", "multipart"])
def test_crash_at_every_step_then_recover(
    tmp_path: Path, job: dict[str, Any], s3_client: Any
) -> None:
    total = count_steps(tmp_path, job, s3_client)
    assert total > 30  # the job really exercises every tier
    for step in range(1, total + 1):
        world = crash_then_recover(tmp_path / f"crash-{step}", job, step, s3_client)
        try:
            assert_recovered_correctly(world, job, step)
        finally:
            world.close()


def test_crash_at_every_step_of_a_recovery_then_recover_again(
    tmp_path: Path, s3_client: Any
) -> None:
    """A second instance dies at each step of its recovery and first checkpoint in turn; a
    third one still resumes from a verified checkpoint and finishes the job exactly once."""
    job = {**TINY_JOB, "items": 24}
    spec = JobSpec.from_mapping(job)
    for step in range(1, 26):
        world = World(tmp_path / f"again-{step}", job, s3_client)

        async def scenario(world: World = world, step: int = step) -> None:
            assert await world.run_instance(until=13.5) == "killed"
            second = await world.run_instance(Hook(crash_at=step))
            assert second in ("crashed", "completed")
            if second == "crashed":
                assert await world.run_instance() == "completed"

        try:
            run_virtual(scenario())
            assert world.history is not None
            durable = [
                e.data["position"]
                for e in world.history
                if e.kind == Kind.CHECKPOINT_DURABLE and e.instance != f"i-{world.incarnation:04d}"
            ]
            last = [e for e in world.history if e.instance == f"i-{world.incarnation:04d}"]
            resumed = next(e for e in last if e.kind == Kind.RESUMED)
            assert resumed.data["position"] >= max(durable, default=0), f"step {step}"
            if resumed.data["position"]:
                assert resumed.data["checksum"] == state_checksum(spec, resumed.data["position"])
            assert world.object_versions("outputs/") == dict.fromkeys(expected_outputs(spec), 1)
            assert world.incomplete_uploads() == []
        finally:
            world.close()
