"""The GCP metadata dialect in virtual time: headers, statuses, keys, notices, hanging GETs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from fake_imds.control import schedule_notice
from fake_imds.gcp import GCP_KEY, soft_off_at
from fake_imds.middleware import NO_ANSWER
from fake_imds.model import Notice
from fake_imds.server import FakeImds
from fake_imds.signals import DISPATCHER_KEY, InProcessTarget
from harness.clock import run_virtual
from tests.fake_imds.loopback import post_notice

FLAVOR = {"Metadata-Flavor": "Google"}


class Gcp:
    """A fake metadata server on loopback inside the running (virtual) loop, plus a client."""

    def __init__(self, server: FakeImds, session: aiohttp.ClientSession) -> None:
        self.plane = server.plane
        self.base = server.url
        self.server_app = server.app
        self.session = session

    def notice(self, **body: Any) -> Notice:
        return schedule_notice(self.plane, {"cloud": "gcp", **body})[0]

    async def get(
        self, path: str, headers: dict[str, str] | None = None, **params: str
    ) -> tuple[int, str, Mapping[str, str]]:
        url = f"{self.base}/computeMetadata/v1/{path}"
        async with self.session.get(
            url, headers=FLAVOR if headers is None else headers, params=params,
            allow_redirects=False,
        ) as response:  # fmt: skip
            return response.status, await response.text(), response.headers


@asynccontextmanager
async def serve() -> AsyncIterator[Gcp]:
    async with FakeImds() as server, aiohttp.ClientSession() as session:
        yield Gcp(server, session)


def run(test: Callable[[Gcp], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with serve() as gcp:
            return await test(gcp)

    return run_virtual(main)


def test_requests_without_the_flavor_header_get_googles_403_with_the_flavor_echoed() -> None:
    async def test(gcp: Gcp) -> None:
        for headers in ({}, {"Metadata-Flavor": "google-ish"}):
            status, body, response_headers = await gcp.get("instance/id", headers=headers)
            assert status == 403
            assert "Missing Metadata-Flavor:Google header" in body
            assert response_headers["Metadata-Flavor"] == "Google"
            assert len(response_headers["ETag"]) == 16

    run(test)


def test_proxied_requests_are_refused() -> None:
    async def test(gcp: Gcp) -> None:
        status, body, _ = await gcp.get(
            "instance/preempted", headers={**FLAVOR, "X-Forwarded-For": "10.0.0.9"}
        )
        assert status == 403
        assert "X-Forwarded-For" in body

    run(test)


def test_failure_statuses_not_found_bad_timeout_bad_alt_wrong_method_and_redirect() -> None:
    async def test(gcp: Gcp) -> None:
        status, body, headers = await gcp.get("instance/no-such-key")
        assert (status, headers["Metadata-Flavor"]) == (404, "Google")
        assert "ETag" in headers
        assert "/computeMetadata/v1/instance/no-such-key" in body
        status, body, _ = await gcp.get(
            "instance/preempted", wait_for_change="true", timeout_sec="soon"
        )
        assert (status, "timeout_sec must be a number" in body) == (400, True)
        status, body, _ = await gcp.get("instance/", recursive="true", alt="yaml")
        assert status == 400
        async with gcp.session.post(
            f"{gcp.base}/computeMetadata/v1/instance/id", headers=FLAVOR
        ) as response:
            assert response.status == 405
        status, _, headers = await gcp.get("instance/scheduling", recursive="true")
        assert status == 301
        assert headers["Location"] == "/computeMetadata/v1/instance/scheduling/?recursive=true"

    run(test)


def test_identity_and_scheduling_keys_of_a_spot_vm_each_with_an_etag() -> None:
    async def test(gcp: Gcp) -> dict[str, str]:
        values = {}
        for key in (
            "instance/id",
            "instance/name",
            "instance/zone",
            "instance/machine-type",
            "instance/scheduling/preemptible",
            "instance/scheduling/provisioning-model",
            "instance/preempted",
            "instance/maintenance-event",
            "project/project-id",
        ):
            status, body, headers = await gcp.get(key)
            assert status == 200
            assert headers["Content-Type"] == "application/text"
            assert len(headers["ETag"]) == 16
            assert headers["Metadata-Flavor"] == "Google"
            values[key] = body
        return values

    values = run(test)
    assert values["instance/id"].isdigit()
    assert values["instance/zone"] == "projects/123456789012/zones/us-central1-a"
    assert values["instance/machine-type"].endswith("/machineTypes/g2-standard-8")
    assert values["instance/scheduling/preemptible"] == "TRUE"
    assert values["instance/scheduling/provisioning-model"] == "SPOT"
    assert values["instance/preempted"] == "FALSE"
    assert values["instance/maintenance-event"] == "NONE"


def test_directories_list_children_and_recursive_json_uses_camel_case() -> None:
    async def test(gcp: Gcp) -> tuple[str, Any, str]:
        _, listing, _ = await gcp.get("instance/scheduling/")
        status, body, headers = await gcp.get("instance/", recursive="true")
        assert status == 200
        assert headers["Content-Type"] == "application/json"
        assert "ETag" in headers
        _, text, _ = await gcp.get("instance/scheduling/", recursive="true", alt="text")
        return listing, json.loads(body), text

    listing, instance, text = run(test)
    assert "preemptible\n" in listing
    assert "provisioning-model\n" in listing
    assert instance["preempted"] == "FALSE"
    assert instance["maintenanceEvent"] == "NONE"
    assert instance["scheduling"]["provisioningModel"] == "SPOT"
    assert instance["scheduling"]["preemptible"] == "TRUE"
    assert isinstance(instance["id"], int)
    assert instance["networkInterfaces"][0]["ip"] == "10.128.0.7"
    assert instance["tags"] == []
    assert "preemptible TRUE\n" in text


def test_a_preemption_notice_turns_preempted_true_and_changes_the_etag() -> None:
    async def test(gcp: Gcp) -> list[tuple[float, str, str]]:
        seen = []
        loop = asyncio.get_running_loop()
        gcp.notice(kind="preemption", lead="150s", at="+10s")
        for _ in range(3):
            _, body, headers = await gcp.get("instance/preempted")
            seen.append((loop.time(), body, headers["ETag"]))
            await asyncio.sleep(8)
        return seen

    (t0, v0, e0), (t1, v1, e1), (t2, v2, e2) = run(test)
    assert (t0, v0) == (0.0, "FALSE")
    assert (t1, v1) == (8.0, "FALSE")
    assert (t2, v2) == (16.0, "TRUE")
    assert e0 == e1 != e2


def test_preemption_timing_lead_is_notice_to_hard_off_with_soft_off_at_most_30s_before() -> None:
    async def test(gcp: Gcp) -> list[tuple[float, float, float]]:
        long = gcp.notice(kind="preemption", lead="150s")
        short = gcp.notice(kind="preemption", lead="20s")
        default = gcp.notice(kind="preemption")
        return [(n.issued_at, soft_off_at(n), n.deadline) for n in (long, short, default)]

    assert run(test) == [(0.0, 120.0, 150.0), (0.0, 0.0, 20.0), (0.0, 0.0, 30.0)]


def test_maintenance_event_shows_the_action_until_the_deadline() -> None:
    async def test(gcp: Gcp) -> list[str]:
        values = []
        gcp.notice(kind="maintenance", action="terminate", lead="60s")
        values.append((await gcp.get("instance/maintenance-event"))[1])
        await asyncio.sleep(61)
        values.append((await gcp.get("instance/maintenance-event"))[1])
        gcp.notice(kind="maintenance", action="migrate")
        values.append((await gcp.get("instance/maintenance-event"))[1])
        return values

    assert run(test) == ["TERMINATE_ON_HOST_MAINTENANCE", "NONE", "MIGRATE_ON_HOST_MAINTENANCE"]


def test_many_hanging_gets_are_released_together_the_moment_the_notice_lands() -> None:
    async def test(gcp: Gcp) -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        order: list[tuple[str, float]] = []

        async def waiter(n: int) -> None:
            status, body, _ = await gcp.get("instance/preempted", wait_for_change="true")
            assert status == 200
            order.append((f"waiter {n} saw {body}", loop.time()))

        waiters = [asyncio.create_task(waiter(n)) for n in range(25)]
        await asyncio.sleep(40)
        order.append(("unrelated aws notice", loop.time()))
        gcp.plane.add_notice("aws", "spot-interruption", "terminate", lead=120)
        await asyncio.sleep(5)
        order.append(("gcp preemption", loop.time()))
        gcp.notice(kind="preemption", lead="30s")
        await asyncio.gather(*waiters)
        return order

    order = run(test)
    assert order[:2] == [("unrelated aws notice", 40.0), ("gcp preemption", 45.0)]
    assert sorted(order[2:]) == sorted((f"waiter {n} saw TRUE", 45.0) for n in range(25))


def test_a_scheduled_notice_releases_waiters_at_its_issue_time_on_the_clock() -> None:
    async def test(gcp: Gcp) -> tuple[float, str]:
        gcp.notice(kind="preemption", at="+90s")
        _, body, _ = await gcp.get("instance/preempted", wait_for_change="true")
        return asyncio.get_running_loop().time(), body

    assert run(test) == (90.0, "TRUE")


def test_a_stale_last_etag_returns_at_once_and_a_current_one_waits() -> None:
    async def test(gcp: Gcp) -> list[tuple[float, str]]:
        loop = asyncio.get_running_loop()
        _, _, headers = await gcp.get("instance/maintenance-event")
        etag = headers["ETag"]
        _, body, _ = await gcp.get(
            "instance/maintenance-event", wait_for_change="true", last_etag="0"
        )
        seen = [(loop.time(), body)]
        loop.call_later(12, lambda: gcp.notice(kind="maintenance", action="migrate"))
        _, body, _ = await gcp.get(
            "instance/maintenance-event", wait_for_change="true", last_etag=etag
        )
        seen.append((loop.time(), body))
        return seen

    assert run(test) == [(0.0, "NONE"), (12.0, "MIGRATE_ON_HOST_MAINTENANCE")]


def test_timeout_sec_returns_the_unchanged_value_on_the_clock() -> None:
    async def test(gcp: Gcp) -> tuple[float, int, str, str, str]:
        _, _, before = await gcp.get("instance/preempted")
        status, body, after = await gcp.get(
            "instance/preempted", wait_for_change="true", timeout_sec="30"
        )
        return asyncio.get_running_loop().time(), status, body, before["ETag"], after["ETag"]

    t, status, body, etag_before, etag_after = run(test)
    assert (t, status, body) == (30.0, 200, "FALSE")
    assert etag_before == etag_after


def test_a_recursive_directory_wait_is_released_by_a_change_below_it() -> None:
    async def test(gcp: Gcp) -> tuple[float, dict[str, Any]]:
        loop = asyncio.get_running_loop()
        loop.call_later(7, lambda: gcp.notice(kind="preemption"))
        _, body, _ = await gcp.get(
            "instance/", recursive="true", wait_for_change="true", timeout_sec="60"
        )
        return loop.time(), json.loads(body)

    t, instance = run(test)
    assert t == 7.0
    assert instance["preempted"] == "TRUE"


def test_a_canceled_preemption_turns_preempted_back_and_releases_waiters() -> None:
    async def test(gcp: Gcp) -> list[str]:
        notice = gcp.notice(kind="preemption", lead="60s")
        _, first, headers = await gcp.get("instance/preempted")
        loop = asyncio.get_running_loop()
        loop.call_later(3, gcp.plane.cancel_notice, notice.id)
        _, second, _ = await gcp.get(
            "instance/preempted", wait_for_change="true", last_etag=headers["ETag"]
        )
        return [first, second]

    assert run(test) == ["TRUE", "FALSE"]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"kind": "eviction"}, "kind", "preemption, maintenance"),
        ({"kind": "preemption", "lead": "soon"}, "lead", "duration"),
        (
            {"kind": "preemption", "lead": "60s", "shutdown": "45s"},
            "shutdown",
            "expected 0s to 30s",
        ),
        ({"kind": "preemption", "lead": "10s", "shutdown": "20s"}, "shutdown", "longer than"),
        ({"kind": "preemption", "action": "hibernate"}, "action", "terminate, stop"),
        ({"kind": "maintenance", "action": "reboot"}, "action", "migrate, terminate"),
        ({"kind": "maintenance", "grace": "5s"}, "grace", "unknown field"),
    ],
)
def test_malformed_notices_get_400_naming_the_field(
    body: dict[str, Any], field: str, message: str
) -> None:
    async def test(gcp: Gcp) -> tuple[int, dict[str, Any]]:
        return await post_notice(gcp.session, gcp.base, {"cloud": "gcp", **body})

    status, error = run(test)
    assert status == 400
    assert error["field"] == field
    assert message in error["error"]


def test_the_control_api_schedules_a_gcp_preemption_with_its_deadline() -> None:
    async def test(gcp: Gcp) -> tuple[int, dict[str, Any], str]:
        body = {"cloud": "gcp", "kind": "preemption", "lead": "30s"}
        status, created = await post_notice(gcp.session, gcp.base, body)
        return status, created, (await gcp.get("instance/preempted"))[1]

    status, created, preempted = run(test)
    assert status == 201
    assert (created["cloud"], created["kind"], created["action"]) == (
        "gcp",
        "preemption",
        "terminate",
    )
    assert created["deadline"] == "2026-01-01T00:00:30Z"
    assert preempted == "TRUE"


def test_the_shared_root_is_gcps_with_the_flavor_header_and_aws_without() -> None:
    async def test(gcp: Gcp) -> list[tuple[int, str, str | None]]:
        results = []
        for headers in (FLAVOR, {}):
            async with gcp.session.get(f"{gcp.base}/", headers=headers) as response:
                flavor = response.headers.get("Metadata-Flavor")
                results.append((response.status, await response.text(), flavor))
        return results

    (gcp_status, gcp_body, gcp_flavor), (aws_status, aws_body, aws_flavor) = run(test)
    assert (gcp_status, gcp_body, gcp_flavor) == (200, "computeMetadata/\n", "Google")
    assert aws_status == 200
    assert "latest" in aws_body.split()
    assert aws_flavor is None


def test_a_gcp_only_server_answers_the_flavored_root_and_logs_it() -> None:
    async def main() -> tuple[list[tuple[int, str]], list[tuple[str, int, str]]]:
        async with FakeImds(dialects=["gcp"]) as server, aiohttp.ClientSession() as session:
            answers = []
            for headers in (FLAVOR, {}, {**FLAVOR, "X-Forwarded-For": "10.0.0.1"}):
                async with session.get(f"{server.url}/", headers=headers) as response:
                    answers.append((response.status, await response.text()))
            log = [(r.path, r.status, r.dialect) for r in server.plane.requests]
            return answers, log

    answers, log = run_virtual(main())
    assert [status for status, _ in answers] == [200, 404, 403]
    assert answers[0][1] == "computeMetadata/\n"
    assert log == [("/", 200, "-"), ("/", 404, "-"), ("/", 403, "-")]


def test_closing_the_server_releases_held_gets() -> None:
    async def main() -> tuple[int, int, bool]:
        async with aiohttp.ClientSession() as session:
            server = await FakeImds().start()
            gcp = Gcp(server, session)
            hanging = asyncio.create_task(gcp.get("instance/preempted", wait_for_change="true"))
            await asyncio.sleep(1)  # virtual: the GET arrives and is held
            held = server.app[GCP_KEY].waiters
            await server.close()
            try:
                await hanging
                failed = False
            except aiohttp.ClientError:
                failed = True
            return held, server.app[GCP_KEY].waiters, failed

    assert run_virtual(main) == (1, 0, True)


def test_a_leaf_is_text_even_when_recursive_and_json_only_when_asked() -> None:
    async def test(gcp: Gcp) -> list[tuple[str, str]]:
        results = []
        for params in ({"recursive": "true"}, {"alt": "json"}):
            _, body, headers = await gcp.get("instance/preempted", headers=None, **params)
            results.append((body, headers["Content-Type"]))
        return results

    assert run(test) == [("FALSE", "application/text"), ('"FALSE"', "application/json")]


def test_an_in_process_spot_vm_sees_the_notice_then_the_soft_off_then_the_hard_off() -> None:
    """The whole GCP story in one virtual loop: a hanging GET, SIGTERM, cancellation."""

    async def test(gcp: Gcp) -> list[tuple[float, str]]:
        loop = asyncio.get_running_loop()
        story: list[tuple[float, str]] = []
        signals: asyncio.Queue[str] = asyncio.Queue()

        async def instance() -> None:
            try:
                _, value, _ = await gcp.get("instance/preempted", wait_for_change="true")
                story.append((loop.time(), f"preempted={value}"))
                name = await signals.get()
                story.append((loop.time(), f"got {name}"))
                await asyncio.sleep(3600)  # checkpointing far too slowly
            except asyncio.CancelledError:
                story.append((loop.time(), "hard off"))
                raise

        task = asyncio.create_task(instance())
        dispatcher = gcp.server_app[DISPATCHER_KEY]
        dispatcher.register(InProcessTarget.for_queue(signals, task))
        await asyncio.sleep(10)
        gcp.notice(kind="preemption", lead="100s", shutdown="25s")
        await dispatcher.drain()
        return story

    assert run(test) == [
        (10.0, "preempted=TRUE"),
        (85.0, "got SIGTERM"),
        (110.0, "hard off"),
    ]


def test_with_a_fallback_unknown_gcp_keys_go_to_it_and_known_ones_stay_fake() -> None:
    async def fallback(request: web.Request) -> web.Response:
        return web.Response(text=f"real {request.path}", headers={"Metadata-Flavor": "Google"})

    async def main() -> list[tuple[int, str]]:
        async with FakeImds(fallback=fallback) as server, aiohttp.ClientSession() as session:
            gcp = Gcp(server, session)
            return [
                (status, body)
                for status, body, _ in (
                    await gcp.get("instance/attributes/startup-script"),
                    await gcp.get("instance/preempted"),
                )
            ]

    assert run_virtual(main) == [
        (200, "real /computeMetadata/v1/instance/attributes/startup-script"),
        (200, "FALSE"),
    ]


class _FixedClock:
    """A clock stopped at one calendar instant."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def monotonic(self) -> float:
        return 0.0

    def now(self) -> datetime:
        return self.at

    async def sleep(self, seconds: float) -> None:
        return None


@pytest.mark.parametrize("minute", [0, 30, 54, 55, 59])
def test_an_access_token_is_never_handed_out_within_five_minutes_of_expiry(minute: int) -> None:
    """google-auth takes a token with less than about four minutes left for expired: the
    server renews it first, whatever the time of day (a test at 14:59 once failed on it)."""
    from fake_imds.gcp import GcpIdentity, access_token
    from fake_imds.model import MetadataPlane

    at = datetime(2026, 12, 7, 14, minute, 30, tzinfo=UTC)
    token = json.loads(access_token(MetadataPlane(_FixedClock(at)), GcpIdentity()))
    assert 300 <= token["expires_in"] <= 3600
    assert token["access_token"].startswith("ya29.fake-")


def test_a_timeout_fault_cuts_a_hanging_get_already_held() -> None:
    """A connection that goes silent while a hanging GET waits: the change it waited for never
    reaches the client, which must give up on its own (its timeout) and ask again."""

    async def test(gcp: Gcp) -> tuple[str, float, int, str, list[int]]:
        loop = asyncio.get_running_loop()
        loop.call_later(10, lambda: gcp.plane.add_fault("timeout", duration=20, pattern="*"))
        loop.call_later(40, lambda: gcp.notice(kind="preemption"))
        held = asyncio.ensure_future(gcp.get("instance/preempted", wait_for_change="true"))
        done, _ = await asyncio.wait({held}, timeout=60)
        outcome = "answered" if done else "never answered"
        held.cancel()
        status, body, _ = await gcp.get("instance/preempted")  # asked again, after the fault
        statuses = [r.status for r in gcp.plane.requests]
        return outcome, loop.time(), status, body, statuses

    outcome, t, status, body, statuses = run(test)
    assert outcome == "never answered"
    assert (t, status, body) == (60.0, 200, "TRUE")
    assert statuses == [NO_ANSWER, 200]  # the held one is logged as unanswered
