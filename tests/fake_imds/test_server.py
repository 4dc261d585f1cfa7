"""FakeImds as an object: binding rules, dialect registry, fallback, shutdown, EventBridge sinks,
the synchronous wrapper and the pytest fixtures."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
import requests
from aiohttp import web

from fake_imds import eventbridge
from fake_imds.aws import AwsOptions
from fake_imds.control import BodyError
from fake_imds.eventbridge import JsonLinesSink, MemorySink, sink_from_spec
from fake_imds.middleware import STATE_KEY
from fake_imds.server import DIALECTS, FakeImds, UnsafeBindError, check_bind, is_loopback
from fake_imds.sync import SyncFakeImds
from harness.clock import LoopClock, run_virtual
from tests.fake_imds.loopback import serving

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

SPOT = "/latest/meta-data/spot/instance-action"


pytestmark = pytest.mark.usefixtures("no_proxy")


# -- binding ------------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "imds.example"])
def test_beyond_loopback_without_a_token_refuses_to_start(host: str) -> None:
    with pytest.raises(UnsafeBindError, match="control token"):
        FakeImds(host)
    check_bind(host, "a-token")  # with a token it is allowed


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "169.254.169.254", "example.com"))


def test_ipv6_loopback_url() -> None:
    async def main() -> str:
        async with FakeImds("::1") as server, aiohttp.ClientSession(server.url) as http:
            assert server.url.startswith("http://[::1]:")
            async with http.get("/latest/meta-data/instance-id") as reply:
                return await reply.text()

    assert run_virtual(main) == "i-0123456789abcdef0"


def test_bad_imdsv2_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="imdsv2 must be one of"):
        FakeImds(imdsv2="sometimes")  # type: ignore[arg-type]


def test_a_taken_port_raises_and_leaves_nothing_running() -> None:
    async def main() -> None:
        async with FakeImds() as first:
            with pytest.raises(OSError):
                await FakeImds(port=first.port).start()

    run_virtual(main)


# -- virtual time -------------------------------------------------------------------------------
def test_inside_run_virtual_the_clock_is_the_loops() -> None:
    async def main() -> tuple[str, str]:
        async with FakeImds() as server:
            assert isinstance(server.plane.clock, LoopClock)
            await asyncio.sleep(3600)
            return server.url, server.plane.iso(server.plane.now())

    url, now = run_virtual(main)
    assert url.startswith("http://127.0.0.1:")
    assert now == "2026-01-01T01:00:00Z"


def test_every_answer_is_dated_by_the_plane_s_calendar_not_the_host_s() -> None:
    """A client measuring a notice's lead by the service's ``Date`` sees the simulated time."""

    async def main() -> list[str]:
        dates = []
        async with FakeImds() as server, aiohttp.ClientSession(server.url) as http:
            for path in ("/latest/meta-data/instance-id", "/latest/meta-data/nowhere"):
                await asyncio.sleep(61.5)
                async with http.get(path) as reply:
                    dates.append(reply.headers["Date"])
        return dates

    assert run_virtual(main) == ["Thu, 01 Jan 2026 00:01:01 GMT", "Thu, 01 Jan 2026 00:02:03 GMT"]


def test_closing_does_not_wait_for_requests_held_by_a_timeout_fault() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        server = await FakeImds().start()
        server.plane.add_fault("timeout")
        http = aiohttp.ClientSession()
        pending = asyncio.ensure_future(http.get(server.url + SPOT))
        await asyncio.sleep(10)
        assert not pending.done()
        start = loop.time()
        await server.close()
        with pytest.raises(aiohttp.ClientError):
            await pending
        await http.close()
        return loop.time() - start

    assert run_virtual(main) < 1.0


# -- dialects and fallback ----------------------------------------------------------------------
def test_unknown_dialect_is_refused_with_the_known_ones() -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match=r"known dialects: .*aws"):
            await FakeImds(dialects=["aws", "mainframe"]).start()

    run_virtual(main)
    assert "aws" in DIALECTS


def test_a_dialect_registered_elsewhere_is_installed_only_when_named() -> None:
    DIALECTS["test-extra"] = "fake_imds.aws:install"
    try:

        async def dialects_of(**kwargs: Any) -> set[str]:
            async with FakeImds(**kwargs) as server:
                return set(server.app[STATE_KEY].route_dialects.values())

        async def main() -> None:
            assert "test-extra" not in await dialects_of()
            assert await dialects_of(dialects=["test-extra"]) == {"test-extra"}

        run_virtual(main)
    finally:
        del DIALECTS["test-extra"]


def test_fallback_answers_what_no_dialect_fakes() -> None:
    async def passthrough(request: web.Request) -> web.Response:
        return web.Response(text=f"real:{request.path}")

    async def main() -> list[tuple[int, str]]:
        async with (
            FakeImds(dialects=["aws"], fallback=passthrough) as server,
            aiohttp.ClientSession(server.url) as http,
        ):
            seen = []
            for path in ("/latest/meta-data/instance-id", "/latest/meta-data/elastic-gpus", "/x"):
                async with http.get(path) as reply:
                    seen.append((reply.status, await reply.text()))
            return seen

    assert run_virtual(main) == [
        (200, "i-0123456789abcdef0"),
        (200, "real:/latest/meta-data/elastic-gpus"),
        (200, "real:/x"),
    ]


# -- EventBridge --------------------------------------------------------------------------------
def test_events_for_spot_and_rebalance_notices_when_they_fire() -> None:
    sink = MemorySink()

    async def main() -> None:
        options = {"aws": AwsOptions(instance_id="i-0feedfacecafe0001", region="eu-west-1")}
        async with FakeImds(events=sink, options=options) as server:
            server.plane.add_notice("aws", "rebalance", "rebalance", lead=0)
            server.plane.add_notice("aws", "spot-interruption", "stop", lead=120, at=60)
            server.plane.add_notice("aws", "scheduled-event", "system-reboot", lead=3600)
            await asyncio.sleep(1)
            assert len(sink.events) == 1  # the notice is not issued yet
            await asyncio.sleep(200)

    run_virtual(main)
    rebalance, warning = sink.events
    assert rebalance["detail-type"] == "EC2 Instance Rebalance Recommendation"
    assert rebalance["detail"] == {"instance-id": "i-0feedfacecafe0001"}
    assert rebalance["time"] == "2026-01-01T00:00:00Z"
    assert warning["detail-type"] == "EC2 Spot Instance Interruption Warning"
    assert warning["detail"] == {"instance-id": "i-0feedfacecafe0001", "instance-action": "stop"}
    assert warning["time"] == "2026-01-01T00:01:00Z"
    assert warning["source"] == "aws.ec2" and warning["region"] == "eu-west-1"
    assert warning["resources"] == [
        "arn:aws:ec2:eu-west-1:123456789012:instance/i-0feedfacecafe0001"
    ]
    assert warning["id"] != rebalance["id"] and warning["version"] == "0"


def test_canceled_notices_send_no_event_and_ids_are_stable() -> None:
    def events() -> list[dict[str, Any]]:
        sink = MemorySink()

        async def main() -> None:
            async with FakeImds(events=sink, seed=7) as server:
                doomed = server.plane.add_notice("aws", "spot-interruption", "terminate",
                                                 lead=120, at=30)  # fmt: skip
                server.plane.add_notice("aws", "spot-interruption", "terminate", lead=120, at=60)
                server.plane.cancel_notice(doomed.id)
                await asyncio.sleep(300)

        run_virtual(main)
        return sink.events

    first, second = events(), events()
    assert first == second and len(first) == 1
    assert first[0]["time"] == "2026-01-01T00:01:00Z"


def test_json_lines_sink_appends(tmp_path: Path) -> None:
    target = tmp_path / "events.jsonl"
    target.write_text('{"existing": true}\n')

    async def main() -> None:
        async with FakeImds(events=str(target)) as server:
            server.plane.add_notice("aws", "spot-interruption", "terminate", lead=120)
            await asyncio.sleep(0)

    run_virtual(main)
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert lines[0] == {"existing": True}
    assert lines[1]["detail-type"] == eventbridge.SPOT_WARNING


def test_http_post_sink_delivers_to_a_url() -> None:
    received: list[dict[str, Any]] = []

    async def receiver(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/events", receiver)
        async with serving(app) as url, FakeImds(events=f"{url}/events") as server:
            server.plane.add_notice("aws", "rebalance", "rebalance", lead=0)
            await asyncio.sleep(1)

    run_virtual(main)
    assert [e["detail-type"] for e in received] == [eventbridge.REBALANCE]


def test_sqs_sink_sends_the_event_as_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    with mock_aws():
        import boto3

        sqs = boto3.client("sqs", region_name="us-east-1")
        queue_url = sqs.create_queue(QueueName="interruptions")["QueueUrl"]
        sink = sink_from_spec(f"sqs:{queue_url}")
        with SyncFakeImds(events=sink) as imds:
            imds.notice(action="terminate", lead="2m")
            messages: list[MessageTypeDef] = []
            for _ in range(50):  # the send runs on the server's executor thread
                got = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)
                messages += got.get("Messages", [])
                if messages:
                    break
                time.sleep(0.05)
    assert len(messages) == 1
    body = json.loads(messages[0]["Body"])
    assert body["detail-type"] == eventbridge.SPOT_WARNING
    assert body["detail"]["instance-action"] == "terminate"


def test_sink_specs() -> None:
    assert isinstance(sink_from_spec("events.jsonl"), JsonLinesSink)
    assert isinstance(sink_from_spec("https://hooks.example/x"), eventbridge.HttpPostSink)
    with pytest.raises(ValueError, match="queue URL"):
        sink_from_spec("sqs:interruptions")
    with pytest.raises(ValueError, match="empty"):
        sink_from_spec("")


# -- the synchronous wrapper and the fixtures ---------------------------------------------------
def test_sync_wrapper_runs_in_real_time_for_blocking_clients() -> None:
    with SyncFakeImds(imdsv2="required") as imds:
        token = requests.put(
            imds.url + "/latest/api/token",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"},
            timeout=5,
        ).text
        headers = {"X-aws-ec2-metadata-token": token}
        assert requests.get(imds.url + SPOT, headers=headers, timeout=5).status_code == 404
        notice = imds.notice(action="hibernate")
        answer = requests.get(imds.url + SPOT, headers=headers, timeout=5).json()
        assert answer == {"action": "hibernate", "time": notice["deadline"]}
        with pytest.raises(BodyError, match="lead"):
            imds.notice(lead="soon")
        assert [(r.path, r.status) for r in imds.requests()] == [
            ("/latest/api/token", 200), (SPOT, 404), (SPOT, 200)
        ]  # fmt: skip
        imds.reset()
        assert imds.requests() == []
    with pytest.raises(RuntimeError, match="not started"):
        _ = imds.url


def test_fake_imds_fixture(fake_imds: SyncFakeImds) -> None:
    assert requests.get(fake_imds.url + SPOT, timeout=5).status_code == 404
    fault = fake_imds.fault(kind="status", status=503, path=SPOT)
    assert requests.get(fake_imds.url + SPOT, timeout=5).status_code == 503
    fake_imds.remove_fault(fault["id"])
    fake_imds.notice()
    assert requests.get(fake_imds.url + SPOT, timeout=5).json()["action"] == "terminate"


def test_fake_imds_factory_fixture(fake_imds_factory: Any) -> None:
    disabled = fake_imds_factory(imdsv2="disabled")
    other = fake_imds_factory(options={"aws": AwsOptions(instance_id="i-0000000000000beef")})
    assert requests.get(disabled.url + "/latest/meta-data/", timeout=5).status_code == 403
    reply = requests.get(other.url + "/latest/meta-data/instance-id", timeout=5)
    assert reply.text == "i-0000000000000beef"
    assert disabled.port != other.port


def test_environment_is_untouched_by_the_wrapper() -> None:
    before = dict(os.environ)
    with SyncFakeImds():
        pass
    assert dict(os.environ) == before
