"""The job's pure functions, the config grammar, and the adapters' payload parsing."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

import pytest

from fake_imds.server import FakeImds
from harness.clock import DEFAULT_EPOCH, LoopClock, run_virtual
from harness.history import Kind
from harness.runtime import (
    JobSpec,
    JobSpecError,
    Manifest,
    decode_state,
    expected_outputs,
    output_content,
    state_after,
    state_checksum,
    state_digest,
)
from harness.runtime.config import ConfigError, RuntimeConfig
from harness.runtime.job import advance_digest, output_range
from harness.runtime.metrics import RuntimeMetrics
from harness.runtime.monitor import Monitor
from harness.runtime.monitor.aws import REBALANCE, AwsImdsSource, parse_notice
from harness.runtime.monitor.azure import parse_events
from harness.runtime.monitor.webhook import parse_payload


def test_job_spec_parses_the_unit_grammar_and_defaults_output_count() -> None:
    spec = JobSpec.from_mapping(
        {
            "items": 2000,
            "seconds_per_item": "500ms",
            "checkpoint_every": "PT5M",
            "state_size": "64MiB",
        }
    )
    assert (spec.seconds_per_item, spec.checkpoint_every, spec.state_size) == (
        0.5,
        300.0,
        64 * 2**20,
    )
    assert spec.output_count == 20  # tens of objects, not thousands
    assert output_range(spec, 19) == (1901, 2000)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"items": 0}, "job.items must be a positive integer"),
        ({"items": "ten"}, "job.items must be an integer"),
        ({"seconds_per_item": "fast"}, "job.seconds_per_item"),
        ({"state_size": "lots"}, "job.state_size"),
        ({"checkpoint_every": 0}, "job.checkpoint_every must be positive"),
        ({"itmes": 5}, "unknown job parameter(s) 'itmes'"),
        ({"name": "a b"}, "job.name must be letters"),
    ],
)
def test_bad_job_parameters_name_the_key_and_the_form(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(JobSpecError) as error:
        JobSpec.from_mapping(raw)
    assert message in str(error.value)


def test_state_is_a_chained_digest_and_a_pure_function_of_the_spec() -> None:
    spec = JobSpec.from_mapping({"items": 600, "seed": 9})
    assert state_digest(spec, 600) == advance_digest(state_digest(spec, 0), 1, 600)
    assert state_digest(spec, 300) == advance_digest(state_digest(spec, 256), 257, 44)
    assert state_after(spec, 5) == state_after(JobSpec.from_mapping({"items": 600, "seed": 9}), 5)
    assert state_after(spec, 5) != state_after(JobSpec.from_mapping({"items": 600, "seed": 10}), 5)
    header = decode_state(state_after(spec, 5))
    assert (header["position"], header["state"]) == (5, state_digest(spec, 5).hex())
    with pytest.raises(ValueError):
        state_digest(spec, 601)


def test_compact_state_is_small_and_materialized_state_has_its_nominal_size() -> None:
    compact = JobSpec.from_mapping({"items": 10, "state_size": "1GiB"})
    real = JobSpec.from_mapping({"items": 10, "state_size": "1MiB", "materialize": True})
    assert len(state_after(compact, 3)) < 300
    assert len(state_after(real, 3)) == 2**20
    assert state_checksum(real, 3) != state_checksum(real, 4)


def test_expected_outputs_hold_every_item_once() -> None:
    spec = JobSpec.from_mapping({"items": 25, "output_every": 10})
    outputs = expected_outputs(spec)
    assert list(outputs) == [f"outputs/job/part-0000{i}" for i in range(3)]
    items = [
        line.split()[0]
        for i in range(3)
        for line in output_content(spec, i).decode().splitlines()[1:]
    ]
    assert items == [str(i) for i in range(1, 26)]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"poll_interval": "often"}, "runtime.poll_interval"),
        ({"part_size": "1MiB"}, "at least 5MiB"),
        ({"sources": ["aws", "carrier-pigeon"]}, "unknown source"),
        ({"keep_s3": 0}, "runtime.keep_s3 must be a positive integer"),
        ({"pol_interval": "5s"}, "unknown runtime setting"),
    ],
)
def test_bad_runtime_settings_are_refused(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RuntimeConfig.from_mapping(raw)


def test_manifest_round_trips_and_rejects_garbage() -> None:
    manifest = Manifest(job="job", epoch=2, checkpoints=())
    assert Manifest.decode(manifest.encode()) == manifest
    for garbage in (b"{", b"[]", b'{"format": "other"}', b'{"format": "spot-harness-manifest/1"}'):
        with pytest.raises(ValueError):
            Manifest.decode(garbage)


class _StoppedClock:
    """Virtual time 0, calendar 2026-01-01T00:00:00Z: parsing needs nothing else."""

    def monotonic(self) -> float:
        return 0.0

    def now(self) -> datetime:
        return DEFAULT_EPOCH

    async def sleep(self, seconds: float) -> None:
        raise AssertionError("parsing must not sleep")


def _monitor() -> Monitor:
    return Monitor(_StoppedClock(), lambda kind, **data: None, RuntimeConfig())


def test_aws_instance_action_deadline_is_its_own_time_through_the_clock() -> None:
    monitor = _monitor()  # clock at 0 = 2026-01-01T00:00:00Z
    notice = parse_notice(
        "/latest/meta-data/spot/instance-action",
        json.dumps({"action": "stop", "time": "2026-01-01T00:02:00Z"}),
        monitor,
    )
    assert notice is not None and (notice.effect, notice.deadline) == ("stop", 120.0)
    assert parse_notice("/latest/meta-data/spot/instance-action", "not json", monitor) is None
    rebalance = parse_notice(REBALANCE, json.dumps({"noticeTime": "2026-01-01T00:00:10Z"}), monitor)
    assert rebalance is not None and not rebalance.urgent


def test_azure_events_map_preempt_and_ignore_freeze() -> None:
    body = {
        "DocumentIncarnation": 3,
        "Events": [
            {"EventId": "A", "EventType": "Freeze", "NotBefore": "Thu, 01 Jan 2026 00:01:00 GMT"},
            {"EventId": "B", "EventType": "Preempt", "NotBefore": "Thu, 01 Jan 2026 00:00:30 GMT"},
            {"EventId": "C", "EventType": "Reboot", "NotBefore": ""},
        ],
    }
    notices = parse_events(json.dumps(body), _monitor())
    assert [(n.ident, n.action, n.effect, n.deadline) for n in notices] == [
        ("B", "preempt", "terminate", 30.0),
        ("C", "reboot", "stop", 0.0),  # Started: no NotBefore any more
    ]


def test_webhook_accepts_cloudevents_eventbridge_and_leads_and_refuses_nonsense() -> None:
    monitor = _monitor()
    cloud_event = {"id": "n-1", "action": "terminate", "deadline": "2026-01-01T00:02:00Z"}
    notice = parse_payload(cloud_event, monitor, fallback_ident="1")
    assert notice is not None and notice.deadline == 120.0
    bridge = {
        "detail-type": "EC2 Spot Instance Interruption Warning",
        "time": "2026-01-01T00:00:30Z",
        "id": "e-1",
        "detail": {"instance-id": "i-1", "instance-action": "hibernate"},
    }
    notice = parse_payload(bridge, monitor, fallback_ident="2")
    assert notice is not None and (notice.effect, notice.deadline) == ("hibernate", 150.0)
    lead = parse_payload({"action": "stop", "lead": "45s"}, monitor, fallback_ident="3")
    assert lead is not None and lead.deadline == 45.0
    with pytest.raises(ValueError, match="unknown action"):
        parse_payload({"action": "explode"}, monitor, fallback_ident="4")
    with pytest.raises(ValueError, match="no timezone"):
        parse_payload({"deadline": "2026-01-01T00:02:00"}, monitor, fallback_ident="5")


@pytest.mark.parametrize(
    ("fallback", "expected"), [(True, [Kind.NOTICE_SEEN]), (False, [Kind.MONITOR_BLIND])]
)
def test_imds_v1_is_used_only_when_configured(fallback: bool, expected: list[str]) -> None:
    async def main() -> list[str]:
        async with FakeImds(imdsv2="optional") as imds:
            imds.plane.add_fault("status", pattern="/latest/api/token", status=404)
            imds.plane.add_notice("aws", "spot-interruption", "terminate", lead=120)
            loop = asyncio.get_running_loop()
            kinds: list[str] = []
            monitor = Monitor(
                LoopClock(loop),
                lambda kind, **data: kinds.append(kind),
                RuntimeConfig(imds_v1_fallback=fallback),
            )
            monitor.start([AwsImdsSource(imds.url)])
            await asyncio.sleep(20)
            await monitor.close()
            return kinds

    assert run_virtual(main()) == expected


def test_metrics_render_latency_notices_and_lost_work() -> None:
    now = [0.0]
    metrics = RuntimeMetrics(lambda: now[0], seconds_per_item=0.5)
    metrics.observe(Kind.CHECKPOINT_STARTED, {"checkpoint_id": "c1"})
    now[0] = 2.5
    metrics.observe(Kind.CHECKPOINT_DURABLE, {"checkpoint_id": "c1", "tier": "s3"})
    metrics.observe(Kind.NOTICE_SEEN, {"source": "aws"})
    metrics.observe(Kind.JOB_STOPPED, {"position": 110, "saved_position": 100})
    text = metrics.render()
    assert 'spot_harness_checkpoint_latency_seconds_sum{tier="s3"} 2.500000' in text
    assert 'spot_harness_notices_seen_total{source="aws"} 1' in text
    assert "spot_harness_lost_work_seconds 5.000" in text
