"""Storage faults per tier: S3 errors and slow uploads, Redis down or restarted empty, disk full,
corrupt objects. Each test asserts on the order and content of the events and on storage."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, cast

import fakeredis
from redis.exceptions import ConnectionError as RedisConnectionError

from harness.clock import run_virtual
from harness.history import Kind
from harness.runtime import JobSpec, expected_outputs, manifest_key, redis_prefix, state_checksum
from tests.runtime.world import Hook, World, disk_full, fail_first, slow_down


def spec_of(world: World) -> JobSpec:
    return JobSpec.from_mapping(world.job)


def assert_outputs_exactly_once(world: World) -> None:
    expected = expected_outputs(spec_of(world))
    assert world.object_versions("outputs/") == dict.fromkeys(expected, 1)


def data_of(world: World, kind: str, instance: str | None = None) -> list[dict[str, Any]]:
    assert world.history is not None
    return [
        dict(e.data)
        for e in world.history
        if e.kind == kind and (instance is None or e.instance == instance)
    ]


def test_s3_slowdown_is_retried_until_the_checkpoint_is_durable(world: World) -> None:
    hook = Hook(
        fail={"s3.put_object": fail_first(3, lambda: slow_down("PutObject"), key_part=".ckpt")}
    )
    assert run_virtual(world.run_instance(hook)) == "completed"
    failed = data_of(world, Kind.CHECKPOINT_FAILED)
    assert [f["tier"] for f in failed] == ["s3"] * 3
    assert all("SlowDown" in f["error"] for f in failed)
    first_id = failed[0]["checkpoint_id"]
    s3_durable = [
        d["checkpoint_id"] for d in data_of(world, Kind.CHECKPOINT_DURABLE) if d["tier"] == "s3"
    ]
    assert s3_durable[0] == first_id  # retried, not skipped
    assert_outputs_exactly_once(world)


def test_a_slow_upload_is_superseded_by_the_newer_checkpoint_not_queued(world: World) -> None:
    hook = Hook(bandwidth=200e3)  # 8 MiB takes 42 s, checkpoints come every 30 s
    assert run_virtual(world.run_instance(hook)) == "completed"
    started = [d["position"] for d in data_of(world, Kind.CHECKPOINT_STARTED)]
    s3 = [d["position"] for d in data_of(world, Kind.CHECKPOINT_DURABLE) if d["tier"] == "s3"]
    assert s3 == sorted(s3) and s3[-1] == spec_of(world).items
    assert len(s3) < len(started)  # some were skipped in favour of newer ones
    assert_outputs_exactly_once(world)


def test_output_put_errors_are_retried_and_the_output_is_written_once(world: World) -> None:
    hook = Hook(
        fail={"s3.put_object": fail_first(2, lambda: slow_down("PutObject"), key_part="outputs/")}
    )
    assert run_virtual(world.run_instance(hook)) == "completed"
    assert len(data_of(world, Kind.OUTPUT_FAILED)) == 2
    assert_outputs_exactly_once(world)


def test_disk_full_leaves_s3_as_the_durable_tier(world: World) -> None:
    hook = Hook(fail={"local.write": lambda key=None: disk_full()})
    assert run_virtual(world.run_instance(hook)) == "completed"
    durable = data_of(world, Kind.CHECKPOINT_DURABLE)
    assert durable and {d["tier"] for d in durable} == {"s3"}
    failed = data_of(world, Kind.CHECKPOINT_FAILED)
    assert failed and {f["tier"] for f in failed} == {"local"}
    assert not list(world.local_dir.rglob("*.tmp"))  # no torn temp file left behind


def test_redis_down_keeps_s3_durable_and_recovery_uses_the_manifest(world: World) -> None:
    async def scenario() -> None:
        world.redis_server.connected = False
        assert await world.run_instance(until=95) == "killed"
        world.redis_server.connected = True
        world.wipe_local()
        assert await world.run_instance() == "completed"

    run_virtual(scenario())
    first = data_of(world, Kind.CHECKPOINT_DURABLE, "i-0001")
    newest = max(d["position"] for d in first if d["tier"] == "s3")
    assert data_of(world, Kind.METADATA_COMMITTED, "i-0001") == []
    assert {f["tier"] for f in data_of(world, Kind.CHECKPOINT_FAILED, "i-0001")} == {"redis"}
    resumed = data_of(world, Kind.RESUMED, "i-0002")[0]
    assert (resumed["position"], resumed["tier"]) == (newest, "s3")
    epochs = [d["epoch"] for d in data_of(world, Kind.EPOCH)]
    assert epochs[1] > epochs[0]
    assert_outputs_exactly_once(world)


def test_redis_restarted_empty_recovers_from_s3_with_a_higher_epoch(world: World) -> None:
    async def scenario() -> None:
        assert await world.run_instance(until=95) == "killed"
        world.redis_server = fakeredis.FakeServer()  # a restart that lost everything
        world.wipe_local()
        assert await world.run_instance() == "completed"

    run_virtual(scenario())
    first_epoch, second_epoch = (d["epoch"] for d in data_of(world, Kind.EPOCH))
    assert second_epoch > first_epoch  # taken from the S3 manifest, not from empty Redis
    resumed = data_of(world, Kind.RESUMED, "i-0002")[0]
    newest = max(
        d["position"]
        for d in data_of(world, Kind.CHECKPOINT_DURABLE, "i-0001")
        if d["tier"] == "s3"
    )
    assert resumed["position"] == newest
    assert_outputs_exactly_once(world)


def test_a_corrupt_newest_object_falls_back_to_the_older_checkpoint(world: World) -> None:
    spec = spec_of(world)

    async def scenario() -> None:
        assert await world.run_instance(until=95) == "killed"
        s3_durable = [
            d for d in data_of(world, Kind.CHECKPOINT_DURABLE, "i-0001") if d["tier"] == "s3"
        ]
        world.s3.put_object(Bucket=world.bucket, Key=s3_durable[-1]["key"], Body=b"garbage")
        world.wipe_local()
        assert await world.run_instance() == "completed"

    run_virtual(scenario())
    s3_durable = [d for d in data_of(world, Kind.CHECKPOINT_DURABLE, "i-0001") if d["tier"] == "s3"]
    rejected = data_of(world, Kind.CHECKPOINT_REJECTED, "i-0002")
    assert rejected[0]["checkpoint_id"] == s3_durable[-1]["checkpoint_id"]
    resumed = data_of(world, Kind.RESUMED, "i-0002")[0]
    assert resumed["checkpoint_id"] == s3_durable[-2]["checkpoint_id"]
    assert resumed["checksum"] == state_checksum(spec, resumed["position"])
    assert_outputs_exactly_once(world)


def test_a_corrupt_manifest_is_replaced_after_recovering_from_a_listing(world: World) -> None:
    async def scenario() -> None:
        assert await world.run_instance(until=95) == "killed"
        world.s3.put_object(Bucket=world.bucket, Key=manifest_key("job"), Body=b"{not json")
        await flush_redis()
        world.wipe_local()
        assert await world.run_instance() == "completed"

    flush_redis = _flush(world)
    run_virtual(scenario())
    newest = max(
        d["position"]
        for d in data_of(world, Kind.CHECKPOINT_DURABLE, "i-0001")
        if d["tier"] == "s3"
    )
    assert data_of(world, Kind.RESUMED, "i-0002")[0]["position"] == newest
    manifest = json.loads(world.read(manifest_key("job")))
    assert manifest["checkpoints"][0]["position"] == spec_of(world).items


def _flush(world: World) -> Callable[[], Awaitable[None]]:
    async def flush() -> None:
        client = fakeredis.FakeAsyncRedis(server=world.redis_server)
        await client.flushall()
        await client.aclose()

    return flush


def test_local_only_checkpoint_is_resumed_and_copied_to_s3(world: World) -> None:
    outage = Hook(
        fail={
            "s3.put_object": lambda key=None: (
                slow_down("PutObject") if key and key.endswith(".ckpt") else None
            )
        }
    )

    async def scenario() -> None:
        assert await world.run_instance(outage, until=95) == "killed"
        assert await world.run_instance() == "completed"  # local dir kept (a stop)

    run_virtual(scenario())
    local = [d for d in data_of(world, Kind.CHECKPOINT_DURABLE, "i-0001") if d["tier"] == "local"]
    assert [d for d in data_of(world, Kind.CHECKPOINT_DURABLE, "i-0001") if d["tier"] == "s3"] == []
    resumed = data_of(world, Kind.RESUMED, "i-0002")[0]
    assert (resumed["checkpoint_id"], resumed["tier"]) == (local[-1]["checkpoint_id"], "local")
    copied = data_of(world, Kind.CHECKPOINT_DURABLE, "i-0002")[0]
    assert (copied["checkpoint_id"], copied["tier"]) == (local[-1]["checkpoint_id"], "s3")
    assert_outputs_exactly_once(world)


def test_a_superseded_instance_is_fenced_and_never_moves_the_metadata(world: World) -> None:
    async def scenario() -> None:
        old = asyncio.ensure_future(world.run_instance(local_dir=world.root / "old"))
        await asyncio.sleep(50)
        new = asyncio.ensure_future(world.run_instance(local_dir=world.root / "new"))
        assert await old == "exited"
        assert await new == "completed"

    run_virtual(scenario())
    stopped = data_of(world, Kind.JOB_STOPPED, "i-0001")
    assert stopped and stopped[0]["reason"] == "fenced"
    new_epoch = data_of(world, Kind.EPOCH, "i-0002")[0]["epoch"]
    assert world.history is not None
    claimed = next(e.seq for e in world.history if e.kind == Kind.EPOCH and e.instance == "i-0002")
    late_commits = [
        e
        for e in world.history
        if e.kind == Kind.METADATA_COMMITTED and e.instance == "i-0001" and e.seq > claimed
    ]
    assert late_commits == []

    async def read_meta() -> dict[bytes, bytes]:
        client = fakeredis.FakeAsyncRedis(server=world.redis_server)
        # redis-py types a reply bytes | str, whichever decode_responses is; here it is bytes.
        meta = cast(dict[bytes, bytes], await client.hgetall(redis_prefix("job") + "meta"))
        await client.aclose()
        return meta

    meta = run_virtual(read_meta())
    assert int(meta[b"epoch"]) == new_epoch
    assert_outputs_exactly_once(world)


def test_redis_connection_errors_never_escape_as_crashes(world: World) -> None:
    hook = Hook(fail={"redis.write": fail_first(2, lambda: RedisConnectionError("down"))})
    assert run_virtual(world.run_instance(hook)) == "completed"
    assert_outputs_exactly_once(world)
