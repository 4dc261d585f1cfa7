"""The AWS source's slower paths against the fake metadata server, in virtual time: the Auto
Scaling lifecycle state and EC2 scheduled maintenance events, their cadence, and what each
scheduled-event code means to the job."""

from __future__ import annotations

import asyncio
from typing import Any

from fake_imds.aws import AwsOptions
from fake_imds.server import FakeImds
from harness.clock import run_virtual
from harness.history import Kind
from harness.runtime.config import RuntimeConfig
from harness.runtime.monitor import Monitor
from harness.runtime.monitor.aws import LIFECYCLE, SCHEDULED, AwsImdsSource, parse_scheduled_time
from tests.runtime.test_monitor import Events, watch

Seen = list[tuple[float, dict[str, Any]]]


def _seen(events: Events) -> Seen:
    return [(t, data) for t, kind, data in events if kind == Kind.NOTICE_SEEN]


def _polls(imds: FakeImds, path: str) -> list[float]:
    return [r.t for r in imds.plane.requests if r.path == path]


def test_asg_terminated_is_an_urgent_terminate_seen_at_the_lifecycle_cadence() -> None:
    async def main() -> tuple[Seen, list[float], Monitor]:
        options = {"aws": AwsOptions(asg_state="InService")}
        async with FakeImds(imdsv2="required", options=options) as imds:

            async def script(monitor: Monitor) -> None:
                await asyncio.sleep(70)
                imds.plane.add_notice(
                    "aws", "asg-termination", "terminate", lead=120, params={"state": "Terminated"}
                )
                await asyncio.sleep(40)

            events, monitor = await watch(AwsImdsSource(imds.url), script)
            return _seen(events), _polls(imds, LIFECYCLE), monitor

    seen, polls, monitor = run_virtual(main())
    assert polls == [0.0, 30.0, 60.0, 90.0]  # every rebalance_interval, not every 5 s
    assert [(t, d["effect"], d["action"], d["deadline"]) for t, d in seen] == [
        (90.0, "terminate", "terminate", None)  # the state carries no time
    ]
    assert monitor.urgent is not None and monitor.urgent.effect == "terminate"


def test_lifecycle_state_outside_any_group_is_polled_at_the_maintenance_cadence() -> None:
    async def main() -> list[float]:
        async with FakeImds(imdsv2="required") as imds:  # in no Auto Scaling group: 404

            async def script(_monitor: Monitor) -> None:
                await asyncio.sleep(250)

            events, _ = await watch(AwsImdsSource(imds.url), script)
            assert _seen(events) == []
            return _polls(imds, LIFECYCLE)

    assert run_virtual(main()) == [0.0, 120.0, 240.0]


def test_scheduled_stop_asks_for_a_checkpoint_then_turns_urgent_before_not_before() -> None:
    config = RuntimeConfig(maintenance_interval=120.0, maintenance_lead=300.0)

    async def main() -> tuple[Seen, list[float], float]:
        async with FakeImds(imdsv2="required") as imds:

            async def script(monitor: Monitor) -> None:
                await asyncio.sleep(130)
                notice = imds.plane.add_notice("aws", "scheduled-event", "instance-stop", lead=900)
                deadline.append(notice.deadline)
                await asyncio.sleep(800)

            deadline: list[float] = []
            events, monitor = await watch(AwsImdsSource(imds.url), script, config)
            assert monitor.urgent is not None and monitor.urgent.effect == "stop"
            return _seen(events), _polls(imds, SCHEDULED), deadline[0]

    seen, polls, deadline = run_virtual(main())
    assert polls[:4] == [0.0, 120.0, 240.0, 360.0]
    assert [(t, d["effect"], d["action"], d["deadline"]) for t, d in seen] == [
        (240.0, "rebalance", "stop", deadline),  # first seen: checkpoint soon
        (deadline - 300.0, "stop", "stop", deadline),  # maintenance_lead before NotBefore
    ]


def test_each_scheduled_code_has_its_effect_and_not_before_is_the_deadline() -> None:
    codes = ("instance-retirement", "system-reboot", "instance-reboot", "system-maintenance")

    async def main() -> Seen:
        async with FakeImds(imdsv2="required") as imds:
            for code in codes:  # each already within maintenance_lead: urgent at once
                imds.plane.add_notice("aws", "scheduled-event", code, lead=200)

            async def script(_monitor: Monitor) -> None:
                await asyncio.sleep(1)

            events, _ = await watch(AwsImdsSource(imds.url), script)
            return _seen(events)

    seen = run_virtual(main())
    assert sorted((d["effect"], d["action"], d["deadline"]) for _, d in seen) == [
        ("rebalance", "maintenance", 200.0),
        ("stop", "reboot", 200.0),
        ("stop", "reboot", 200.0),
        ("terminate", "terminate", 200.0),
    ]


def test_a_scheduled_event_canceled_before_its_lead_never_stops_the_job() -> None:
    async def main() -> tuple[Seen, Monitor]:
        async with FakeImds(imdsv2="required") as imds:
            notice = imds.plane.add_notice("aws", "scheduled-event", "instance-stop", lead=900)

            async def script(_monitor: Monitor) -> None:
                await asyncio.sleep(60)
                imds.plane.cancel_notice(notice.id)
                await asyncio.sleep(900)

            events, monitor = await watch(AwsImdsSource(imds.url), script)
            return _seen(events), monitor

    seen, monitor = run_virtual(main())
    assert [d["effect"] for _, d in seen] == ["rebalance"]
    assert monitor.urgent is None


def test_scheduled_time_parsing_is_strict() -> None:
    parsed = parse_scheduled_time("21 Jan 2019 09:00:43 GMT")
    assert parsed is not None and parsed.isoformat() == "2019-01-21T09:00:43+00:00"
    for bad in ("2019-01-21T09:00:43Z", "21 Foo 2019 09:00:43 GMT", "21 Jan 2019 09:00 GMT", ""):
        assert parse_scheduled_time(bad) is None


def test_a_failing_spot_path_blinds_the_source_while_other_paths_answer() -> None:
    async def main() -> Events:
        async with FakeImds(imdsv2="required") as imds:

            async def script(monitor: Monitor) -> None:
                await asyncio.sleep(1)
                imds.plane.add_fault("status", pattern="/latest/meta-data/spot/*", status=500)
                await asyncio.sleep(60)  # rebalance and lifecycle answer meanwhile

            events, _ = await watch(AwsImdsSource(imds.url), script)
            return events

    events = run_virtual(main())
    blind = [(t, d) for t, k, d in events if k == Kind.MONITOR_BLIND]
    assert [(t, d["reason"]) for t, d in blind] == [(15.0, "HTTP 500")]  # third failure in a row
    assert Kind.MONITOR_SIGHTED not in [k for _, k, _ in events]


def test_after_an_outage_the_source_is_sighted_at_the_first_answer() -> None:
    async def main() -> tuple[Events, list[float]]:
        async with FakeImds(imdsv2="required") as imds:

            async def script(monitor: Monitor) -> None:
                await asyncio.sleep(1)
                fault = imds.plane.add_fault("status", pattern="/latest/*", status=503)
                await asyncio.sleep(400)  # every path fails 3+ times, scheduled events too
                imds.plane.remove_fault(fault.id)
                await asyncio.sleep(10)

            events, _ = await watch(AwsImdsSource(imds.url), script)
            return events, _polls(imds, SCHEDULED)

    events, scheduled = run_virtual(main())
    assert [k for _, k, _ in events] == [Kind.MONITOR_BLIND, Kind.MONITOR_SIGHTED]
    sighted_at = events[1][0]
    assert sighted_at == 405.0  # the first spot poll after the outage
    assert scheduled[-1] == 405.0  # failed slow paths are asked again at once
