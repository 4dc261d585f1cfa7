"""Every fault the timeline offers, seen by a client in the world (the probe target)."""

from __future__ import annotations

from typing import Any

# pytest types approx(x) as Approx[float], which mypy's strict equality does not take to overlap
# a float inside a tuple or list: such comparisons carry ignore[comparison-overlap].
from pytest import approx

from harness.history import Kind
from harness.sim.runner import RunResult
from tests.sim.conftest import kinds, run


def errors(result: RunResult, store: str) -> list[tuple[float, str]]:
    return [
        (e.t, e.data["error"]) for e in kinds(result, "probe.error") if e.data["store"] == store
    ]


def polling_job(path: str, headers: dict[str, str]) -> dict[str, object]:
    """A probe job that polls one metadata ``path`` every 10 s for two minutes."""
    return {"items": 12, "step": 10, "imds_path": path, "imds_headers": headers}


def test_s3_error_code_reaches_the_client_for_its_duration() -> None:
    result = run([{"at": "25s", "s3": {"error": "SlowDown", "for": "20s"}}])
    assert errors(result, "s3") == [(approx(30.0), "SlowDown"), (approx(40.0), "SlowDown")]  # type: ignore[comparison-overlap]
    started, ended = kinds(result, Kind.FAULT_STARTED)[0], kinds(result, Kind.FAULT_ENDED)[0]
    assert (started.data["fault"], started.t, ended.t) == ("s3.error", 25.0, 45.0)
    faulted = [e for e in kinds(result, Kind.STORAGE_OP) if e.data.get("fault")]
    assert {e.data["error"] for e in faulted} == {"SlowDown"}
    # What S3 itself answered is recorded too: the first read of a key not yet written.
    answered = [e for e in kinds(result, Kind.STORAGE_OP) if e.data.get("status") == 404]
    assert [e.data["error"] for e in answered] == ["NoSuchKey"]


def test_s3_status_500_and_count_limit_the_fault_to_n_calls() -> None:
    result = run([{"at": 0, "s3": {"error": 500, "count": 1}}])
    assert errors(result, "s3") == [(approx(10.0), "InternalError")]  # type: ignore[comparison-overlap]


def test_s3_fault_can_target_one_operation() -> None:
    timeline: list[dict[str, Any]] = [
        {"at": 0, "s3": {"error": 503, "ops": ["s3.get_object"], "for": "1h"}},
        {"at": "25s", "kill": {}},
    ]
    result = run(timeline)
    assert errors(result, "s3") == []  # puts are untouched
    gets = [e for e in kinds(result, Kind.STORAGE_OP) if e.data["op"] == "s3.get_object"]
    # The first read, before the fault, meets a key not yet written; the second the fault.
    assert [e.data.get("error") for e in gets] == ["NoSuchKey", "ServiceUnavailable"]
    # The replacement could not read the position back, so it started over.
    assert [e.data["position"] for e in kinds(result, Kind.RESUMED)] == [0, 0]


def test_s3_outage_is_a_connection_error() -> None:
    result = run([{"at": "25s", "s3": {"outage": True, "for": "10s"}}])
    assert errors(result, "s3") == [(approx(30.0), "EndpointConnectionError")]  # type: ignore[comparison-overlap]


def test_reduced_s3_bandwidth_slows_uploads() -> None:
    job = {"items": 3, "step": 10, "nbytes": 10_000_000}
    fast = run(job=job)
    slow = run([{"at": 0, "s3": {"bandwidth": "1MB/s"}}], job=job)
    put = next(e for e in kinds(fast, Kind.STORAGE_OP) if e.data["op"] == "s3.put_object")
    slow_put = next(e for e in kinds(slow, Kind.STORAGE_OP) if e.data["op"] == "s3.put_object")
    assert put.t == approx(10.1)  # 10 MB at the default 100 MB/s
    assert slow_put.t == approx(20.0)  # 10 MB at 1 MB/s


def test_corrupted_object_changes_the_stored_bytes_silently() -> None:
    result = run([{"at": "25s", "s3": {"corrupt": "probe/*"}}], job={"items": 3, "step": 10})
    fault = kinds(result, Kind.FAULT_STARTED)[0]
    assert fault.data["fault"] == "s3.corrupt" and fault.data["params"]["key"] == "probe/position"
    assert result.snapshot is not None
    versions = result.snapshot.versions_of("probe/position")
    assert [v.blob.data for v in versions if v.blob] == [b"1", b"\xcd", b"3"]
    assert versions[1].etag == "c81e728d9d4c2f636f067f89cc14862c"  # still the MD5 of b"2"


def test_redis_down_then_back() -> None:
    result = run([{"at": "15s", "redis": {"down": True, "for": "10s"}}])
    assert errors(result, "redis") == [(approx(20.0), "ConnectionError")]  # type: ignore[comparison-overlap]
    assert len(kinds(result, "probe.ok")) > 20


def test_redis_restart_loses_everything() -> None:
    result = run([{"at": "95s", "redis": {"restart": True}}], job={"items": 12, "step": 10})
    assert result.snapshot is not None
    assert sorted(result.snapshot.redis) == ["probe:item:10", "probe:item:11", "probe:item:12"]


def test_slow_redis_and_slow_disk_add_latency() -> None:
    result = run(
        [{"at": 0, "redis": {"latency": "2s"}}, {"at": 0, "disk": {"latency": "1s"}}],
        job={"items": 1, "step": 10},
    )
    ops = {e.data["op"]: e.t for e in kinds(result, Kind.STORAGE_OP)}
    assert ops["local.write"] == approx(11.0)
    assert ops["local.rename"] == approx(13.0)  # write, fsync, rename: 1 s each
    assert ops["redis.write"] == approx(15.0)


def test_full_disk_fails_writes_with_enospc() -> None:
    result = run([{"at": "15s", "disk": {"full": True, "for": "10s"}}])
    failures = [e for e in kinds(result, "probe.error") if e.data["store"] == "local"]
    assert [(e.t, e.data["error"]) for e in failures] == [(approx(20.0), "OSError")]  # type: ignore[comparison-overlap]
    assert "No space left on device" in failures[0].data["detail"]


def test_clock_skew_moves_the_instance_calendar_not_the_cloud() -> None:
    result = run(
        [{"at": 0, "clock": {"skew": "-90s"}}], job={"items": 1, "step": 10, "report_clock": True}
    )
    assert kinds(result, "probe.clock")[0].data["now"] == "2025-12-31T23:58:40+00:00"


def test_imds_status_fault_is_seen_by_the_poller() -> None:
    result = run([{"at": "12s", "imds": {"status": 503, "for": "10s"}}])
    statuses = [(e.t, e.data["status"]) for e in kinds(result, "probe.imds")]
    assert statuses == [(0.0, 404), (approx(15.0), 503), (approx(25.0), 404)]


def test_imds_timeout_fault_is_a_client_timeout() -> None:
    result = run(
        [{"at": "12s", "imds": {"timeout": True, "path": "/latest/meta-data/*", "for": "4s"}}]
    )
    seen = [(e.t, e.data["status"], e.data["body"]) for e in kinds(result, "probe.imds")]
    # The request at 15 s hangs until the client gives up after 2 s.
    assert seen[1] == (approx(17.0), None, "TimeoutError")  # type: ignore[comparison-overlap]


def test_imds_fault_applies_to_a_replacement_booted_while_it_lasts() -> None:
    result = run(
        [{"at": "5s", "kill": {}}, {"at": "6s", "imds": {"status": 500}}],
        job={"items": 2, "step": 10},
    )
    second = kinds(result, Kind.INSTANCE_STARTED)[1]
    assert [
        (e.data["status"]) for e in kinds(result, "probe.imds") if e.instance == second.instance
    ] == [500]


def test_kubernetes_eviction_sends_sigterm_and_kills_after_the_grace_period() -> None:
    result = run(
        [{"at": "25s", "notice": {"cloud": "kubernetes", "grace": "20s"}}],
        env={"cloud": "kubernetes"},
    )
    signal = kinds(result, "probe.signal")[0]
    killed = kinds(result, Kind.INSTANCE_KILLED)[0]
    assert (signal.t, signal.data["signal"]) == (25.0, "SIGTERM")
    assert killed.t == 45.0


def test_gcp_preemption_turns_preempted_true_then_soft_off_then_hard_off() -> None:
    job = polling_job("/computeMetadata/v1/instance/preempted", {"Metadata-Flavor": "Google"})
    result = run([{"at": "25s", "notice": {"lead": "30s"}}], env={"cloud": "gcp"}, job=job)
    bodies = [(e.t, e.data["body"]) for e in kinds(result, "probe.imds")][:2]
    assert bodies == [(0.0, "FALSE"), (approx(25.0), "TRUE")]
    assert kinds(result, "probe.signal")[0].t == 25.0
    assert kinds(result, Kind.INSTANCE_KILLED)[0].t == 55.0


def test_azure_preempt_appears_in_scheduled_events() -> None:
    job = polling_job("/metadata/scheduledevents?api-version=2020-07-01", {"Metadata": "true"})
    result = run(
        [{"at": "25s", "notice": {"kind": "preempt", "lead": "30s"}}],
        env={"cloud": "azure"},
        job=job,
    )
    later = [e for e in kinds(result, "probe.imds") if '"Preempt"' in e.data["body"]]
    assert later and later[0].t == approx(25.0)
    assert kinds(result, Kind.INSTANCE_KILLED)[0].t == 55.0


def test_webhook_notice_is_posted_to_the_registered_receiver() -> None:
    result = run(
        [{"at": "25s", "notice": {"lead": "2m"}}],
        env={"cloud": "webhook"},
        job={"items": 20, "step": 10, "webhook": True},
    )
    (posted,) = kinds(result, "probe.webhook")  # exactly one delivery
    assert posted.t == approx(25.0) and posted.instance == posted.data["instance"]


def test_aws_rebalance_recommendation_comes_before_the_notice() -> None:
    result = run([{"at": "20s", "notice": {"lead": "30s", "rebalance_before": "20s"}}])
    issued = [(e.t, e.data["notice_kind"]) for e in kinds(result, Kind.NOTICE_ISSUED)]
    assert issued == [(20.0, "rebalance"), (40.0, "spot-interruption")]
    assert kinds(result, Kind.INSTANCE_KILLED)[0].t == 70.0


def test_a_notice_with_no_instance_running_is_skipped_and_recorded() -> None:
    result = run([{"at": "5s", "kill": {}}, {"at": "10s", "notice": {}}])
    skipped = kinds(result, "timeline.skipped")[0]
    assert skipped.t == 10.0 and skipped.data["entry"] == 1


def test_kubernetes_never_kills_sooner_than_two_seconds_after_sigterm() -> None:
    result = run(
        [{"at": "25s", "notice": {"cloud": "kubernetes", "grace": "1s"}}],
        env={"cloud": "kubernetes"},
    )
    assert kinds(result, Kind.INSTANCE_KILLED)[0].t == approx(27.0)


def test_aws_scheduled_event_is_rendered_with_its_code() -> None:
    job = {"items": 12, "step": 10, "imds_path": "/latest/meta-data/events/maintenance/scheduled"}
    result = run([{"at": "25s", "notice": {"kind": "scheduled-event", "lead": "1m"}}], job=job)
    shown = [e for e in kinds(result, "probe.imds") if "instance-retirement" in e.data["body"]]
    assert shown and shown[0].t == approx(25.0)
    assert kinds(result, Kind.INSTANCE_KILLED)[0].t == approx(85.0)


def test_advisory_notices_do_not_end_the_instance() -> None:
    result = run(
        [
            {"at": "15s", "notice": {"kind": "rebalance"}},
            {"at": "25s", "notice": {"cloud": "gcp", "kind": "maintenance"}},
        ]
    )
    assert [e.data["notice_kind"] for e in kinds(result, Kind.NOTICE_ISSUED)] == [
        "rebalance",
        "maintenance",
    ]
    assert kinds(result, Kind.INSTANCE_KILLED) == []
    assert len(kinds(result, Kind.INSTANCE_STARTED)) == 1


def test_history_records_what_the_metadata_server_answered_when_it_changed() -> None:
    result = run([{"at": "12s", "imds": {"status": 503, "for": "10s"}}], job={"items": 4})
    seen = [
        (e.t, e.data["status"], e.data["fault"] is not None)
        for e in kinds(result, "imds.request")
        if e.data["path"] == "/latest/meta-data/spot/instance-action"
    ]
    assert seen == [(0.0, 404, False), (approx(15.0), 503, True), (approx(25.0), 404, False)]
    assert all(e.source == "imds" for e in kinds(result, "imds.request"))


def test_redis_restarted_while_down_comes_back_empty() -> None:
    result = run(
        [
            {"at": "95s", "redis": {"down": True, "for": "20s"}},
            {"at": "100s", "redis": {"restart": True}},
        ],
        job={"items": 12, "step": 10},
    )
    assert result.snapshot is not None
    assert sorted(result.snapshot.redis) == ["probe:item:12"]
    assert [t for t, _ in errors(result, "redis")] == [approx(100.0), approx(110.0)]
