"""The interruption monitor's adapters against the project's fake metadata servers, in virtual
time: AWS IMDSv2 (tokens, 401, blind), GCP hanging GET, Azure Scheduled Events with approval, the
webhook receiver, and signals. Assertions are on the events the monitor reports, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from fake_imds.server import FakeImds
from harness.clock import LoopClock, run_virtual
from harness.history import Kind
from harness.runtime.config import RuntimeConfig
from harness.runtime.monitor import Monitor, NoticeSource
from harness.runtime.monitor.aws import AwsImdsSource
from harness.runtime.monitor.azure import AzureEventsSource
from harness.runtime.monitor.gcp import WAIT_SECONDS, GcpPreemptionSource
from harness.runtime.monitor.signals import SignalSource
from harness.runtime.monitor.webhook import WebhookSource

Events = list[tuple[float, str, dict[str, Any]]]


async def watch(
    source: NoticeSource,
    script: Callable[[Monitor], Awaitable[None]],
    config: RuntimeConfig | None = None,
) -> tuple[Events, Monitor]:
    loop = asyncio.get_running_loop()
    events: Events = []
    monitor = Monitor(
        LoopClock(loop),
        lambda kind, **data: events.append((loop.time(), kind, data)),
        config or RuntimeConfig(),
    )
    monitor.start([source])
    try:
        await script(monitor)
    finally:
        await monitor.close()
    return events, monitor


def test_aws_terminate_notice_is_seen_within_one_poll_with_the_notice_deadline() -> None:
    async def main() -> tuple[Events, float, float]:
        async with FakeImds(imdsv2="required") as imds:

            async def script(monitor: Monitor) -> None:
                await asyncio.sleep(12)
                notice = imds.plane.add_notice("aws", "spot-interruption", "terminate", lead=120)
                issued.append(notice.issued_at)
                deadline.append(notice.deadline)
                await asyncio.sleep(10)

            issued: list[float] = []
            deadline: list[float] = []
            events, monitor = await watch(AwsImdsSource(imds.url), script)
            assert monitor.urgent is not None and monitor.urgent.effect == "terminate"
            return events, issued[0], deadline[0]

    events, issued, deadline = run_virtual(main())
    seen = [(t, d) for t, k, d in events if k == Kind.NOTICE_SEEN]
    assert len(seen) == 1
    t, data = seen[0]
    assert issued <= t <= issued + 5  # polled every 5 s
    assert (data["source"], data["action"], data["effect"]) == ("aws", "terminate", "terminate")
    assert data["deadline"] == deadline  # from the notice's own time, not from when it was seen


def test_aws_stop_and_rebalance_are_told_apart() -> None:
    async def main() -> tuple[Events, Monitor]:
        async with FakeImds(imdsv2="required") as imds:

            async def script(monitor: Monitor) -> None:
                imds.plane.add_notice("aws", "rebalance", "rebalance", lead=0)
                await asyncio.sleep(31)
                assert monitor.urgent is None and monitor.take_rebalance() is not None
                imds.plane.add_notice("aws", "spot-interruption", "stop", lead=120)
                await asyncio.sleep(6)

            return await watch(AwsImdsSource(imds.url), script)

    events, monitor = run_virtual(main())
    effects = [d["effect"] for _, k, d in events if k == Kind.NOTICE_SEEN]
    assert effects == ["rebalance", "stop"]
    assert monitor.urgent is not None and monitor.urgent.action == "stop"


def test_aws_token_is_refreshed_before_expiry_and_refetched_once_on_401() -> None:
    async def main() -> tuple[Events, list[Any]]:
        async with FakeImds(imdsv2="required") as imds:

            async def script(monitor: Monitor) -> None:
                await asyncio.sleep(130)  # TTL 60 s: refreshed at 54 s and 108 s

            config = RuntimeConfig(token_ttl=60)
            events, _ = await watch(AwsImdsSource(imds.url), script, config)
            return events, list(imds.plane.requests)

    events, requests = run_virtual(main())
    puts = [r for r in requests if r.method == "PUT"]
    statuses = {r.status for r in requests if r.method == "GET"}
    assert len(puts) == 3
    # No 401 ever reached the monitor: tokens never expired in use. (200: the empty list of
    # scheduled events; 404: no notice.)
    assert statuses == {200, 404}
    assert not [k for _, k, _ in events if k == Kind.MONITOR_BLIND]


def test_aws_repeated_401_makes_the_monitor_blind_then_sighted_again() -> None:
    async def main() -> Events:
        async with FakeImds(imdsv2="required") as imds:

            async def script(monitor: Monitor) -> None:
                await asyncio.sleep(6)
                fault = imds.plane.add_fault("status", pattern="/latest/meta-data/*", status=401)
                await asyncio.sleep(30)
                assert "aws" in monitor.blind_sources
                imds.plane.remove_fault(fault.id)
                await asyncio.sleep(10)

            events, _ = await watch(AwsImdsSource(imds.url), script)
            return events

    events = run_virtual(main())
    kinds = [k for _, k, _ in events]
    assert kinds == [Kind.MONITOR_BLIND, Kind.MONITOR_SIGHTED]
    blind = next(d for _, k, d in events if k == Kind.MONITOR_BLIND)
    assert blind["source"] == "aws" and "401" in blind["reason"]


def test_aws_unreachable_imds_is_blind_not_no_notice() -> None:
    async def main() -> Events:
        async def script(monitor: Monitor) -> None:
            await asyncio.sleep(30)

        events, _ = await watch(AwsImdsSource("http://127.0.0.1:9"), script)
        return events

    events = run_virtual(main())
    assert [k for _, k, _ in events] == [Kind.MONITOR_BLIND]


def test_gcp_preemption_is_seen_at_once_through_the_hanging_get() -> None:
    async def main() -> tuple[Events, float, int]:
        async with FakeImds() as imds:

            async def script(monitor: Monitor) -> None:
                await asyncio.sleep(100)
                issued.append(
                    imds.plane.add_notice("gcp", "preemption", "terminate", lead=30).issued_at
                )
                await asyncio.sleep(5)

            issued: list[float] = []
            events, _ = await watch(GcpPreemptionSource(imds.url), script)
            gets = [r for r in imds.plane.requests if "preempted" in r.path]
            return events, issued[0], len(gets)

    events, issued, requests = run_virtual(main())
    seen = [(t, d) for t, k, d in events if k == Kind.NOTICE_SEEN]
    assert len(seen) == 1
    t, data = seen[0]
    assert t == issued  # released the moment it changed, no polling delay
    assert (data["source"], data["effect"], data["deadline"]) == ("gcp", "terminate", t + 30)
    # one plain GET, then hanging GETs held WAIT_SECONDS each over the 105 s
    assert requests <= 2 + 105 // WAIT_SECONDS


def test_azure_preempt_deadline_comes_from_not_before_and_is_approved_when_saved() -> None:
    async def main() -> tuple[Events, float, str]:
        async with FakeImds() as imds:

            async def script(monitor: Monitor) -> None:
                notice = imds.plane.add_notice("azure", "preempt", "preempt", lead=30)
                deadline.append(notice.deadline)
                await asyncio.sleep(6)
                await monitor.acknowledge()
                await asyncio.sleep(1)
                states.append(imds.plane.get_notice(notice.id).state)

            deadline: list[float] = []
            states: list[str] = []
            events, _ = await watch(AzureEventsSource(imds.url), script)
            return events, deadline[0], states[0]

    events, deadline, state = run_virtual(main())
    seen = [d for _, k, d in events if k == Kind.NOTICE_SEEN]
    assert len(seen) == 1
    assert (seen[0]["source"], seen[0]["action"], seen[0]["effect"]) == (
        "azure",
        "preempt",
        "terminate",
    )
    assert seen[0]["deadline"] == deadline  # NotBefore has whole seconds; the lead is 30 s
    assert state == "started"  # the approval POST moved the event to Started


def test_webhook_receiver_registers_its_url_and_takes_the_fake_s_delivery() -> None:
    async def main() -> tuple[Events, str, float]:
        async with FakeImds() as imds:
            registered: list[str] = []
            source = WebhookSource(register=registered.append)

            async def script(monitor: Monitor) -> None:
                await asyncio.sleep(1)
                assert registered and registered[0].startswith("http://127.0.0.1:")
                notice = imds.plane.add_notice(
                    "webhook", "interruption", "stop", lead=120, params={"url": registered[0]}
                )
                deadline.append(notice.deadline)
                await asyncio.sleep(2)

            deadline: list[float] = []
            events, _ = await watch(source, script)
            return events, registered[0], deadline[0]

    events, _, deadline = run_virtual(main())
    seen = [d for _, k, d in events if k == Kind.NOTICE_SEEN]
    assert len(seen) == 1
    assert (seen[0]["source"], seen[0]["action"]) == ("webhook", "stop")
    assert seen[0]["deadline"] == deadline


def test_sigterm_starts_the_grace_period() -> None:
    async def main() -> Events:
        queue: asyncio.Queue[str] = asyncio.Queue()

        async def script(monitor: Monitor) -> None:
            await asyncio.sleep(3)
            queue.put_nowait("SIGHUP")  # not an interruption
            queue.put_nowait("SIGTERM")
            await asyncio.sleep(1)

        events, _ = await watch(SignalSource(queue, grace="45s"), script)
        return events

    events = run_virtual(main())
    assert [(t, k, d["deadline"]) for t, k, d in events] == [(3.0, Kind.NOTICE_SEEN, 48.0)]


def test_aws_a_401_on_a_live_token_fetches_a_new_token_once_and_carries_on() -> None:
    """An IMDS that forgot its tokens (e.g. restarted) answers 401 once; the source gets a new
    token and retries, without ever reporting blindness."""
    issued: list[str] = []
    log: list[tuple[str, str]] = []

    async def token(_request: web.Request) -> web.Response:
        issued.append(f"token-{len(issued) + 1}")
        return web.Response(text=issued[-1])

    async def instance_action(request: web.Request) -> web.Response:
        sent = request.headers.get("X-aws-ec2-metadata-token", "")
        log.append(("GET", sent))
        if sent != issued[-1] or len(issued) == 1:  # the first token is forgotten at once
            return web.Response(status=401)
        return web.Response(status=404)

    async def main() -> Events:
        app = web.Application()
        app.router.add_put("/latest/api/token", token)
        app.router.add_get("/latest/meta-data/spot/instance-action", instance_action)
        app.router.add_get("/latest/meta-data/events/recommendations/rebalance", instance_action)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"

        async def script(monitor: Monitor) -> None:
            await asyncio.sleep(12)

        try:
            events, _ = await watch(AwsImdsSource(url), script)
        finally:
            await runner.cleanup()
        return events

    events = run_virtual(main())
    assert issued == ["token-1", "token-2"]
    assert log[:2] == [("GET", "token-1"), ("GET", "token-2")]
    assert all(sent == "token-2" for _, sent in log[1:])
    assert events == []  # no blindness, no notice
