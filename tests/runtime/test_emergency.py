"""Deadline-aware emergency save on SIGTERM (Kubernetes-style grace period): stop taking items,
save what fits on a tier that survives, abort what cannot finish, exit before the deadline."""

from __future__ import annotations

import asyncio
from typing import Any

from fake_imds.server import FakeImds
from harness.clock import run_virtual
from harness.history import Kind
from harness.runtime import state_checksum
from harness.runtime.job import JobSpec
from tests.runtime.world import Hook, World


def events(world: World, instance: str) -> list[tuple[str, float, dict[str, Any]]]:
    assert world.history is not None
    return [(e.kind, e.t, dict(e.data)) for e in world.history if e.instance == instance]


def first(evs: list[tuple[str, float, dict[str, Any]]], kind: str) -> tuple[float, dict[str, Any]]:
    return next((t, d) for k, t, d in evs if k == kind)


def test_sigterm_saves_to_s3_before_the_grace_period_ends_and_the_next_instance_resumes(
    world: World,
) -> None:
    async def scenario() -> None:
        assert await world.run_instance(signal_at=75.5, extra={"grace_period": "30s"}) == "exited"
        world.wipe_local()  # a terminated pod's disk does not come back
        assert await world.run_instance() == "completed"

    run_virtual(scenario())
    evs = events(world, "i-0001")
    seen_t, seen = first(evs, Kind.NOTICE_SEEN)
    assert (seen["source"], seen["effect"]) == ("signals", "terminate")
    assert seen["deadline"] == seen_t + 30
    _, started = first([e for e in evs if e[1] >= seen_t], Kind.CHECKPOINT_STARTED)
    assert started["reason"] == "notice:terminate"
    assert started["position"] == 75  # every item finished before the signal is kept
    durable_t, durable = next(
        (t, d)
        for k, t, d in evs
        if k == Kind.CHECKPOINT_DURABLE and d["tier"] == "s3" and t >= seen_t
    )
    assert durable["position"] == 75 and durable_t < seen["deadline"]
    done_after = [d["position"] for k, t, d in evs if k == Kind.ITEM_DONE and t >= seen_t]
    assert done_after == [75]  # only the report of the items finished before the signal
    stopped_t, stopped = first(evs, Kind.JOB_STOPPED)
    assert stopped["reason"] == "notice" and stopped_t < seen["deadline"]
    resumed = first(events(world, "i-0002"), Kind.RESUMED)[1]
    assert (resumed["position"], resumed["tier"]) == (75, "s3")
    assert resumed["checksum"] == state_checksum(JobSpec.from_mapping(world.job), 75)


MULTIPART = {
    "items": 200,
    "seconds_per_item": "1s",
    "checkpoint_every": "30s",
    "state_size": "16MiB",
    "output_size": "64KiB",
    "output_every": 40,
    "seed": 7,
    "runtime": {"multipart_threshold": "8MiB", "part_size": "5MiB"},
}


def sigterm_during_upload(world: World, grace: str) -> list[tuple[str, float, dict[str, Any]]]:
    """SIGTERM at 62 s while the 60 s checkpoint (16 MiB at 1 MB/s: 17 s) is uploading."""

    async def scenario() -> None:
        outcome = await world.run_instance(
            Hook(bandwidth=1e6), signal_at=62, job=MULTIPART, extra={"grace_period": grace}
        )
        assert outcome == "exited"

    run_virtual(scenario())
    return events(world, "i-0001")


def test_an_upload_in_flight_is_aborted_for_a_newer_one_that_fits(world: World) -> None:
    evs = sigterm_during_upload(world, "60s")
    seen_t, _ = first(evs, Kind.NOTICE_SEEN)
    aborted = [d for k, t, d in evs if k == Kind.UPLOAD_ABORTED]
    assert len(aborted) == 1 and "0000000060" in aborted[0]["key"]
    durable = [
        d for k, t, d in evs if k == Kind.CHECKPOINT_DURABLE and d["tier"] == "s3" and t > seen_t
    ]
    done = [d["position"] for k, t, d in evs if k == Kind.ITEM_DONE]
    assert [d["position"] for d in durable] == [done[-1]] and 60 < done[-1] <= 62
    assert world.incomplete_uploads() == []


def test_when_nothing_fits_the_runtime_aborts_the_upload_and_exits_in_time(world: World) -> None:
    evs = sigterm_during_upload(world, "5s")
    seen_t, seen = first(evs, Kind.NOTICE_SEEN)
    assert not [d for k, t, d in evs if k == Kind.CHECKPOINT_STARTED and t >= seen_t]
    assert next(d["reason"] for k, t, d in evs if k == Kind.UPLOAD_ABORTED).startswith("deadline")
    stopped_t, stopped = first(evs, Kind.JOB_STOPPED)
    assert stopped_t < seen["deadline"]
    assert stopped["saved_position"] == 30  # the newest checkpoint durable in S3
    assert world.incomplete_uploads() == []


def test_aws_stop_notice_saves_locally_and_the_restarted_instance_resumes_from_disk(
    world: World,
) -> None:
    async def scenario() -> float:
        async with FakeImds(imdsv2="required") as imds:
            loop = asyncio.get_running_loop()
            loop.call_later(
                100.5, lambda: imds.plane.add_notice("aws", "spot-interruption", "stop", lead=120)
            )
            outcome = await world.run_instance(cloud="aws", imds_url=imds.url)
            assert outcome == "exited"
            notice = imds.plane.notices()[0]
            # the stopped instance comes back with its disk
            assert await world.run_instance() == "completed"
            return notice.deadline

    deadline = run_virtual(scenario())
    evs = events(world, "i-0001")
    seen_t, seen = first(evs, Kind.NOTICE_SEEN)
    assert seen["action"] == "stop"
    assert deadline - 1 < seen["deadline"] <= deadline  # the notice's time has whole seconds
    _, started = first([e for e in evs if e[1] >= seen_t], Kind.CHECKPOINT_STARTED)
    assert started["reason"] == "notice:stop"
    local = [d for k, t, d in evs if k == Kind.CHECKPOINT_DURABLE and t >= seen_t]
    assert local[0]["tier"] == "local" and local[0]["position"] == started["position"]
    stopped_t, stopped = first(evs, Kind.JOB_STOPPED)
    assert stopped["action"] == "stop" and stopped_t < deadline
    resumed = first(events(world, "i-0002"), Kind.RESUMED)[1]
    assert resumed["position"] == started["position"]


def test_aws_rebalance_triggers_a_checkpoint_at_the_next_item_boundary(world: World) -> None:
    async def scenario() -> None:
        async with FakeImds(imdsv2="required") as imds:
            loop = asyncio.get_running_loop()
            loop.call_later(
                40.2, lambda: imds.plane.add_notice("aws", "rebalance", "rebalance", lead=0)
            )
            job = {**world.job, "runtime": {"rebalance_interval": "10s"}}
            outcome = await world.run_instance(cloud="aws", imds_url=imds.url, job=job)
            assert outcome == "completed"

    run_virtual(scenario())
    evs = events(world, "i-0001")
    seen_t, seen = first(evs, Kind.NOTICE_SEEN)
    assert seen["effect"] == "rebalance" and 40.2 <= seen_t <= 50.2
    started_t, started = first([e for e in evs if e[1] >= seen_t], Kind.CHECKPOINT_STARTED)
    assert started["reason"] == "rebalance"
    assert started_t - seen_t < 1.0  # at the end of the item in progress (1 s per item)
    assert not [k for k, _, _ in evs if k == Kind.JOB_STOPPED]
