"""Faults of one incarnation (a partition of one host) and the rollback corruption: what each
does in the simulated world, and that the checks judge the stories they make correctly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from harness.history import Kind
from harness.process.plan import process_problems
from harness.scenario import load_text
from harness.scenario.loader import load_file
from harness.scenario.model import RedisFault, S3Fault, Scenario, TargetSpec
from harness.sim.runner import RunResult, run_scenario
from harness.sim.s3 import corrupt_objects, simulated_bucket

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def story(name: str) -> Scenario:
    (loaded,) = load_file(SCENARIOS / name)
    return loaded.scenario


def broken(result: RunResult) -> list[str]:
    return [c.spec.name for c in result.broken_checks]


# -- a partition of one host ------------------------------------------------------------------


def test_a_redis_partition_of_one_incarnation_fails_only_that_instances_commands() -> None:
    result = run_scenario(story("crash/split_brain_zombie.yaml"))
    first, second = [e.instance for e in result.history if e.kind == Kind.INSTANCE_STARTED][:2]
    cut = next(e for e in result.history if e.kind == Kind.FAULT_STARTED)
    redis_ops = [
        e
        for e in result.history
        if e.kind == Kind.STORAGE_OP and str(e.data["op"]).startswith("redis.") and e.seq > cut.seq
    ]
    refused = {e.instance for e in redis_ops if not e.data["ok"]}
    assert refused == {first}
    assert any(e.instance == second and e.data["ok"] for e in redis_ops)
    assert cut.data["params"]["incarnation"] == 1
    assert result.status == "passed"  # the reference is fenced by its conditional writes


def test_without_the_takeovers_stamp_the_partitioned_zombie_overwrites_the_manifest() -> None:
    scenario = story("crash/split_brain_zombie.yaml").with_target(
        TargetSpec(python="harness.examples.yardstick:manifest_not_claimed_on_recovery")
    )
    result = run_scenario(scenario)
    (fenced,) = [c for c in result.broken_checks if c.spec.name == "fenced"]
    assert "overwrote checkpoints/job/manifest.json" in fenced.result.violations[0].message


def test_a_fault_of_one_incarnation_is_refused_where_it_means_nothing() -> None:
    with pytest.raises(ValidationError, match="restart empties the server"):
        RedisFault(restart=True, incarnation=1)
    with pytest.raises(ValidationError, match="drop `incarnation`"):
        S3Fault(corrupt="checkpoints/*", incarnation=2)
    with pytest.raises(ValidationError, match="`damage` says how `corrupt` damages"):
        S3Fault(outage=True, damage="rollback")


def test_the_process_tier_refuses_a_partition_of_one_incarnation() -> None:
    document: dict[str, Any] = {
        "description": "a partition in real processes",
        "target": {"command": ["python", "-c", "pass"]},
        "timeline": [{"at": "5s", "redis": {"down": True, "for": "10s", "incarnation": 1}}],
    }
    (loaded,) = load_text(yaml.safe_dump(document), "partition.yaml")
    (problem,) = process_problems(loaded.scenario, max_real_time=3600)
    assert problem.startswith("timeline[0] (redis): a fault of one incarnation")
    assert "test it in simulation" in problem


# -- rollback ---------------------------------------------------------------------------------


def test_a_rollback_puts_the_oldest_whole_object_in_place_of_the_chosen_ones() -> None:
    clock = [EPOCH]
    with simulated_bucket("sim-rollback", now=lambda: clock[0], seed=1) as client:
        puts = {}
        for minute, key in enumerate(["ckpt/a", "ckpt/b", "ckpt/c"]):
            clock[0] = EPOCH + timedelta(minutes=minute)
            body = f"state {minute}".encode()
            puts[key] = client.put_object(
                Bucket="sim-rollback", Key=key, Body=body, Metadata={"n": str(minute)}
            )
        assert corrupt_objects("sim-rollback", "ckpt/*", "newest", "rollback") == ["ckpt/c"]
        got = client.get_object(Bucket="sim-rollback", Key="ckpt/c")
        assert got["Body"].read() == b"state 0"
        assert got["ETag"] == puts["ckpt/a"]["ETag"] and got["Metadata"] == {"n": "0"}
        # The oldest has nothing older to be rolled back to: `all` leaves it as it is.
        assert corrupt_objects("sim-rollback", "ckpt/*", "all", "rollback") == [
            "ckpt/c",
            "ckpt/b",
        ]
        assert client.get_object(Bucket="sim-rollback", Key="ckpt/a")["Body"].read() == b"state 0"


ROLLBACK_ON_RESTORE = {
    "description": "the replacement is served a stale copy of the newest checkpoint",
    "seed": 7,
    "target": {"python": "harness.examples.handlers.careful:target"},
    "job": {"items": 600, "seconds_per_item": "1s", "checkpoint_every": "1m"},
    "env": {"replacement": {"delay": "5s"}},
    "timeline": [
        {"at": "3m10s", "notice": {}},
        {
            "on": {"event": "instance.started", "incarnation": 2},
            "s3": {"corrupt": "checkpoints/*.ckpt", "damage": "rollback"},
        },
    ],
    "expect": ["exactly_once", "resume_correct", "durable"],
}


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("harness.examples.handlers.careful:target", []),
        ("harness.examples.yardstick:careful_pointer_checksum_ignored", ["resume_correct"]),
    ],
)
def test_a_rollback_as_the_replacement_boots_is_judged_on_what_it_could_still_read(
    target: str, expected: list[str]
) -> None:
    """The rollback lands after the replacement started, before it read anything: the
    emergency checkpoint it damaged is not owed, the newest intact one is."""
    document = {**ROLLBACK_ON_RESTORE, "target": {"python": target}}
    (loaded,) = load_text(yaml.safe_dump(document), "rollback.yaml")
    assert broken(run_scenario(loaded.scenario)) == expected
