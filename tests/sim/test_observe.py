"""The harness's own seam: storage a target uses directly (boto3, redis, blocking calls) is
timed, faulted and recorded by the harness, with no cooperation from the target."""

from __future__ import annotations

from typing import Any

# pytest types approx(x) as Approx[float], which mypy's strict equality does not take to overlap
# a float inside a tuple or list: such comparisons carry ignore[comparison-overlap].
from pytest import approx

from harness.history import Kind
from harness.sim.runner import RunResult
from tests.sim.conftest import kinds, run

TARGETS = "tests.sim.observed_targets"


def run_target(name: str, timeline: list[dict[str, Any]] | None = None, **fields: Any) -> RunResult:
    job = {"body": 10_000_000, "work": 1, **fields.pop("job", {})}
    env = {"s3": {"upload": "1MB/s", "latency": 0}, **fields.pop("env", {})}
    return run(
        timeline,
        target={"python": f"{TARGETS}:{name}"},
        job=job,
        env=env,
        **({"expect": fields.pop("expect", ["completes"])} | fields),
    )


def s3_ops(result: RunResult) -> list[dict[str, Any]]:
    return [dict(e.data) for e in kinds(result, Kind.STORAGE_OP) if e.data["op"].startswith("s3.")]


def test_a_direct_put_object_is_recorded_with_its_status_and_modelled_time() -> None:
    result = run_target("direct_put")
    (op,) = s3_ops(result)
    assert op == {
        "op": "s3.put_object",
        "key": "state/latest.json",
        "bytes": 10_000_000,
        "ok": True,
        "status": 200,
        "observed": "client",
    }
    put = kinds(result, Kind.STORAGE_OP)[0]
    returned = kinds(result, "put.returned")[0]
    # 10 MB at 1 MB/s after 1 s
    assert (put.t, returned.t) == (approx(11.0), approx(11.0))  # type: ignore[comparison-overlap]


def test_an_injected_s3_error_reaches_a_direct_boto3_caller() -> None:
    timeline = [{"at": 0, "s3": {"error": "SlowDown", "for": "1h"}}]
    result = run_target("direct_put", timeline, env={"budget": "2m"})
    op = s3_ops(result)[0]
    assert (op["ok"], op["error"]) == (False, "SlowDown")
    exited = kinds(result, Kind.INSTANCE_EXITED)[0]
    assert exited.data["code"] == 1 and "SlowDown" in exited.data["error"]


def test_a_crash_point_on_a_direct_put_kills_the_instance_before_the_write() -> None:
    result = run_target(
        "direct_put", [{"at": 0, "crash": {"at": "s3.put_object"}}], env={"budget": "5m"}
    )
    first = next(e for e in kinds(result, Kind.STORAGE_OP) if e.data["op"] == "s3.put_object")
    assert (first.data["ok"], first.data["error"]) == (False, "crash")
    killed = kinds(result, Kind.INSTANCE_KILLED)[0]
    assert killed.data["reason"] == "crash" and killed.instance == first.instance
    assert not [e for e in kinds(result, "put.returned") if e.instance == first.instance]


def test_to_thread_runs_in_virtual_time_while_other_coroutines_go_on() -> None:
    result = run_target("threaded_put")
    (op,) = s3_ops(result)
    returned = kinds(result, "put.returned")[0]
    assert op["ok"] and returned.t == approx(11.0)
    assert returned.data["beats"] == 11  # the heartbeat kept ticking during the upload


def test_to_thread_gives_the_same_history_twice() -> None:
    assert run_target("threaded_put").history.to_jsonl() == (
        run_target("threaded_put").history.to_jsonl()
    )


def test_a_blocking_call_on_the_loop_holds_the_whole_process() -> None:
    result = run_target("hold_the_loop")
    beats = kinds(result, "put.returned")[0].data["beats"]
    assert beats == [0.0, 1.0, 2.0]  # nothing ran during the 10 s the upload held the loop


def test_a_deadline_during_a_blocking_upload_kills_it_and_the_write_never_lands() -> None:
    timeline = [{"at": "2s", "notice": {"action": "terminate", "lead": "3s"}}]
    result = run_target("direct_put", timeline, env={"budget": "30s"})
    first = kinds(result, Kind.INSTANCE_KILLED)[0]
    assert (first.t, first.data["reason"]) == (approx(5.0), "deadline")  # type: ignore[comparison-overlap]
    assert not [e for e in kinds(result, Kind.STORAGE_OP) if e.instance == first.instance]
    assert not [e for e in kinds(result, "put.returned") if e.instance == first.instance]


def test_redis_commands_and_pipelines_are_recorded_with_the_values_written() -> None:
    result = run_target("redis_user")
    ops = [dict(e.data) for e in kinds(result, Kind.STORAGE_OP)]
    assert [(o["op"], o["command"], o["key"]) for o in ops] == [
        ("redis.write", "HSET", "trainer:meta"),
        ("redis.read", "HGETALL,GET", "trainer:meta"),
    ]
    assert ops[0]["values"] == ["trainer:meta", "latest", "state/latest.json", "step", "7"]


def test_a_redis_outage_reaches_a_direct_redis_caller() -> None:
    result = run_target("redis_user", [{"at": 0, "redis": {"down": True, "for": "1h"}}])
    (op,) = [dict(e.data) for e in kinds(result, Kind.STORAGE_OP)]
    assert op["op"] == "redis.write" and op["ok"] is False
    assert kinds(result, "redis.failed")[0].data["error"] == "ConnectionError"


def test_the_transfer_manager_without_threads_is_observed_and_with_threads_refused() -> None:
    calm = run_target("transfer_upload", job={"threads": False, "body": 1000})
    assert [op["op"] for op in s3_ops(calm)] == ["s3.put_object"]
    assert calm.status == "passed"
    threaded = run_target("transfer_upload", job={"body": 1000}, env={"max_instances": 1})
    exited = kinds(threaded, Kind.INSTANCE_EXITED)[0]
    assert exited.data["code"] == 1 and "ThreadUseError" in exited.data["error"]
    assert "use_threads=False" in exited.data["error"]
    assert s3_ops(threaded) == []


def test_a_target_cannot_report_the_harness_s_own_evidence() -> None:
    result = run_target("forges_evidence")
    by_target = [e.kind for e in result.history if e.source == "target"]
    assert by_target == ["job.completed"]
    assert not [
        e for e in kinds(result, Kind.STORAGE_OP) if e.data.get("key") == "state/latest.json"
    ]
