"""The Azure dialect in virtual time: Scheduled Events, approvals, instance metadata, failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from fake_imds.azure import AzureOptions
from fake_imds.control import schedule_notice
from fake_imds.model import MetadataPlane, Notice
from fake_imds.server import FakeImds
from harness.clock import run_virtual
from tests.fake_imds.loopback import post_notice

HEADERS = {"Metadata": "true"}
VERSION = {"api-version": "2020-07-01"}


class Azure:
    def __init__(self, plane: MetadataPlane, base: str, session: aiohttp.ClientSession) -> None:
        self.plane = plane
        self.base = base
        self.session = session

    def notice(self, **body: Any) -> Notice:
        return schedule_notice(self.plane, {"cloud": "azure", **body})[0]

    async def events(
        self, headers: dict[str, str] | None = None, params: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        async with self.session.get(
            f"{self.base}/metadata/scheduledevents",
            headers=HEADERS if headers is None else headers,
            params=VERSION if params is None else params,
        ) as response:
            return response.status, await response.json(content_type=None)

    async def approve(self, body: str) -> int:
        async with self.session.post(
            f"{self.base}/metadata/scheduledevents", headers=HEADERS, params=VERSION, data=body
        ) as response:
            return response.status


@asynccontextmanager
async def serve(options: AzureOptions | None = None) -> AsyncIterator[Azure]:
    opts = {} if options is None else {"azure": options}
    async with FakeImds(options=opts) as server, aiohttp.ClientSession() as session:
        yield Azure(server.plane, server.url, session)


def run(test: Callable[[Azure], Awaitable[Any]], options: AzureOptions | None = None) -> Any:
    async def main() -> Any:
        async with serve(options) as azure:
            return await test(azure)

    return run_virtual(main)


def test_without_the_metadata_header_azure_answers_400_with_its_json_error() -> None:
    async def test(azure: Azure) -> list[tuple[int, Any]]:
        return [
            await azure.events(headers={}),
            await azure.events(headers={"Metadata": "false"}),
        ]

    for status, body in run(test):
        assert status == 400
        assert body == {"error": "Bad request. Required metadata header not specified"}


def test_a_missing_or_unknown_api_version_is_400_with_the_newest_versions() -> None:
    async def test(azure: Azure) -> list[tuple[int, Any]]:
        return [await azure.events(params={}), await azure.events(params={"api-version": "1999"})]

    (s1, missing), (s2, unknown) = run(test)
    assert (s1, s2) == (400, 400)
    assert "api-version was not specified" in missing["error"]
    assert "api-version is invalid" in unknown["error"]
    assert unknown["newest-versions"][0] == "2020-07-01"


def test_proxied_requests_are_refused() -> None:
    async def test(azure: Azure) -> tuple[int, Any]:
        return await azure.events(headers={**HEADERS, "X-Forwarded-For": "10.1.2.3"})

    status, body = run(test)
    assert status == 400
    assert "X-Forwarded-For" in body["error"]


def test_throttling_answers_429_past_five_requests_a_second() -> None:
    async def test(azure: Azure) -> list[int]:
        statuses = [(await azure.events())[0] for _ in range(7)]
        await asyncio.sleep(1)
        statuses.append((await azure.events())[0])
        return statuses

    statuses = run(test, AzureOptions(throttle=True))
    assert statuses == [200, 200, 200, 200, 200, 429, 429, 200]


def test_no_throttling_unless_it_is_on() -> None:
    async def test(azure: Azure) -> set[int]:
        return {(await azure.events())[0] for _ in range(12)}

    assert run(test) == {200}


def test_a_preempt_event_goes_scheduled_then_started_with_a_stable_id() -> None:
    async def test(azure: Azure) -> list[Any]:
        documents = [(await azure.events())[1]]
        azure.notice(kind="preempt", lead="30s")
        documents.append((await azure.events())[1])
        await asyncio.sleep(30)
        documents.append((await azure.events())[1])
        return documents

    empty, scheduled, started = run(test)
    assert empty == {"DocumentIncarnation": 0, "Events": []}
    assert scheduled["DocumentIncarnation"] > empty["DocumentIncarnation"]
    assert started["DocumentIncarnation"] > scheduled["DocumentIncarnation"]
    (event,) = scheduled["Events"]
    assert event == {
        "EventId": event["EventId"],
        "EventStatus": "Scheduled",
        "EventType": "Preempt",
        "ResourceType": "VirtualMachine",
        "Resources": ["spot-worker-1"],
        "NotBefore": "Thu, 01 Jan 2026 00:00:30 GMT",
        "Description": "Virtual machine is being evicted from Azure Spot capacity.",
        "EventSource": "Platform",
        "DurationInSeconds": -1,
    }
    (after,) = started["Events"]
    assert after["EventId"] == event["EventId"]
    assert after["EventStatus"] == "Started"
    assert after["NotBefore"] == ""


def test_every_event_type_renders_with_its_defaults() -> None:
    async def test(azure: Azure) -> dict[str, dict[str, Any]]:
        for kind in ("freeze", "reboot", "redeploy", "terminate"):
            azure.notice(kind=kind)
        _, document = await azure.events()
        return {e["EventType"]: e for e in document["Events"]}

    events = run(test)
    assert set(events) == {"Freeze", "Reboot", "Redeploy", "Terminate"}
    assert events["Freeze"]["DurationInSeconds"] == 5
    assert events["Freeze"]["NotBefore"] == "Thu, 01 Jan 2026 00:15:00 GMT"
    assert events["Redeploy"]["NotBefore"] == "Thu, 01 Jan 2026 00:10:00 GMT"
    assert events["Terminate"]["NotBefore"] == "Thu, 01 Jan 2026 00:05:00 GMT"
    assert events["Terminate"]["EventSource"] == "User"
    assert len({e["EventId"] for e in events.values()}) == 4


def test_approval_starts_the_event_at_once_and_is_idempotent() -> None:
    async def test(azure: Azure) -> tuple[list[int], list[Any], Notice]:
        notice = azure.notice(kind="reboot", lead="15m")
        _, before = await azure.events()
        event_id = before["Events"][0]["EventId"]
        await asyncio.sleep(20)
        body = json.dumps({"StartRequests": [{"EventId": event_id}]})
        statuses = [await azure.approve(body), await azure.approve(body)]
        _, after = await azure.events()
        return statuses, [before, after], azure.plane.get_notice(notice.id)

    statuses, (before, after), notice = run(test)
    assert statuses == [200, 200]
    assert before["Events"][0]["EventStatus"] == "Scheduled"
    assert after["Events"][0]["EventStatus"] == "Started"
    assert after["Events"][0]["NotBefore"] == ""
    assert after["Events"][0]["EventId"] == before["Events"][0]["EventId"]
    assert after["DocumentIncarnation"] == before["DocumentIncarnation"] + 1
    assert (notice.state, notice.deadline) == ("started", 20.0)


def test_an_unknown_well_formed_id_is_accepted_and_changes_nothing() -> None:
    async def test(azure: Azure) -> tuple[int, Any, Any]:
        azure.notice(kind="freeze")
        _, before = await azure.events()
        status = await azure.approve(
            '{"StartRequests": [{"EventId": "00000000-0000-0000-0000-000000000000"}]}'
        )
        return status, before, (await azure.events())[1]

    status, before, after = run(test)
    assert status == 200
    assert before == after


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        "{}",
        '{"StartRequests": []}',
        '{"StartRequests": [{"Id": "x"}]}',
        '{"StartRequests": [{"EventId": "not-a-guid"}]}',
    ],
)
def test_a_malformed_approval_is_400(body: str) -> None:
    async def test(azure: Azure) -> int:
        return await azure.approve(body)

    assert run(test) == 400


def test_a_freeze_vanishes_after_its_duration_and_the_incarnation_rises_each_time() -> None:
    async def test(azure: Azure) -> list[tuple[int, list[str]]]:
        azure.notice(kind="freeze", lead="60s", duration=9)
        seen = []
        for wait in (0, 60, 5, 5):
            await asyncio.sleep(wait)
            _, document = await azure.events()
            statuses = [e["EventStatus"] for e in document["Events"]]
            seen.append((document["DocumentIncarnation"], statuses))
        return seen

    assert run(test) == [(1, ["Scheduled"]), (2, ["Started"]), (2, ["Started"]), (3, [])]


def test_the_document_is_sent_as_json_and_never_stale_when_only_the_time_changed() -> None:
    async def test(azure: Azure) -> list[tuple[str, str]]:
        azure.notice(kind="freeze", lead="60s", duration=9)
        url = f"{azure.base}/metadata/scheduledevents"
        seen = []
        for wait in (0, 0, 60, 10):  # Scheduled twice, Started at NotBefore, then gone
            await asyncio.sleep(wait)
            async with azure.session.get(url, headers=HEADERS, params=VERSION) as response:
                seen.append((response.headers["Content-Type"], await response.text()))
        return seen

    seen = run(test)
    assert {content_type for content_type, _ in seen} == {"application/json; charset=utf-8"}
    documents = [json.loads(text) for _, text in seen]
    assert [text for _, text in seen] == [json.dumps(document) for document in documents]
    assert [d["DocumentIncarnation"] for d in documents] == [1, 1, 2, 3]
    assert [[e["EventStatus"] for e in d["Events"]] for d in documents] == [
        ["Scheduled"],
        ["Scheduled"],
        ["Started"],
        [],
    ]


def test_a_canceled_event_vanishes() -> None:
    async def test(azure: Azure) -> tuple[list[Any], list[Any]]:
        notice = azure.notice(kind="terminate")
        _, before = await azure.events()
        azure.plane.cancel_notice(notice.id)
        _, after = await azure.events()
        return before["Events"], after["Events"]

    before, after = run(test)
    assert len(before) == 1
    assert after == []


def test_instance_metadata_says_spot_with_its_eviction_policy() -> None:
    async def test(azure: Azure) -> tuple[Any, str, int, int]:
        url = f"{azure.base}/metadata/instance"
        params = {"api-version": "2021-02-01"}
        async with azure.session.get(url, headers=HEADERS, params=params) as response:
            document = await response.json()
        async with azure.session.get(
            f"{url}/compute/priority", headers=HEADERS, params={**params, "format": "text"}
        ) as response:
            priority = await response.text()
        async with azure.session.get(f"{url}/compute/nothing", headers=HEADERS, params=params) as r:
            missing = r.status
        async with azure.session.get(url, params=params) as response:
            no_header = response.status
        return document, priority, missing, no_header

    document, priority, missing, no_header = run(test, AzureOptions(eviction_policy="Delete"))
    assert document["compute"]["priority"] == "Spot"
    assert document["compute"]["evictionPolicy"] == "Delete"
    assert document["compute"]["name"] == "spot-worker-1"
    assert priority == "Spot"
    assert (missing, no_header) == (404, 400)


def test_other_metadata_paths_get_azures_json_404_after_its_checks() -> None:
    async def test(azure: Azure) -> list[tuple[int, Any]]:
        results = []
        for headers in (HEADERS, {}):
            async with azure.session.get(
                f"{azure.base}/metadata/nothing",
                headers=headers,
                params={"api-version": "2021-02-01"},
            ) as response:
                results.append((response.status, await response.json()))
        return results

    assert run(test) == [
        (404, {"error": "Not found"}),
        (400, {"error": "Bad request. Required metadata header not specified"}),
    ]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"kind": "preempt", "lead": "10s"}, "lead", "at least 30s"),
        ({"kind": "evict"}, "kind", "preempt"),
        ({"kind": "freeze", "duration": -1}, "duration", "between 0"),
        ({"kind": "reboot", "action": "terminate"}, "action", "omit it"),
        ({"kind": "terminate", "source": "Someone"}, "source", "Platform, User"),
        ({"kind": "preempt", "grace": "30s"}, "grace", "unknown field"),
    ],
)
def test_malformed_notices_get_400_naming_the_field(
    body: dict[str, Any], field: str, message: str
) -> None:
    async def test(azure: Azure) -> tuple[int, Any]:
        return await post_notice(azure.session, azure.base, {"cloud": "azure", **body})

    status, error = run(test)
    assert status == 400
    assert error["field"] == field
    assert message in error["error"]


def test_the_control_api_schedules_each_documented_kind() -> None:
    async def test(azure: Azure) -> list[tuple[int, str, str]]:
        results = []
        for kind in ("preempt", "terminate", "freeze", "reboot", "redeploy"):
            body = {"cloud": "azure", "kind": kind, "lead": "30s"}
            status, created = await post_notice(azure.session, azure.base, body)
            results.append((status, created["kind"], created["deadline"]))
        return results

    assert run(test) == [
        (201, kind, "2026-01-01T00:00:30Z")
        for kind in ("preempt", "terminate", "freeze", "reboot", "redeploy")
    ]


def test_the_same_story_gives_byte_identical_documents() -> None:
    async def test(azure: Azure) -> str:
        documents = []
        azure.notice(kind="freeze", lead="60s", duration=9)
        azure.notice(kind="preempt", lead="90s")
        for _ in range(4):
            documents.append((await azure.events())[1])
            await asyncio.sleep(40)
        return json.dumps(documents, sort_keys=True)

    assert run(test) == run(test)


def test_a_throttle_fault_from_the_control_api_reaches_the_polling_client() -> None:
    async def test(azure: Azure) -> list[int]:
        async with azure.session.post(
            f"{azure.base}/_harness/v1/faults",
            json={"kind": "throttle", "path": "/metadata/*", "limit": 2},
        ) as response:
            assert response.status == 201
        statuses = []
        for _ in range(3):
            async with azure.session.get(
                f"{azure.base}/metadata/scheduledevents", headers=HEADERS, params=VERSION
            ) as response:
                statuses.append(response.status)
        return statuses

    assert run(test) == [200, 200, 429]


def test_with_a_fallback_other_metadata_paths_go_to_it() -> None:
    async def fallback(request: web.Request) -> web.Response:
        return web.json_response({"real": request.path})

    async def main() -> tuple[Any, int]:
        async with FakeImds(fallback=fallback) as server, aiohttp.ClientSession() as session:
            azure = Azure(server.plane, server.url, session)
            async with session.get(
                f"{server.url}/metadata/attested/document", headers=HEADERS, params=VERSION
            ) as response:
                passed = await response.json()
            status, _ = await azure.events()
        return passed, status

    assert run_virtual(main) == ({"real": "/metadata/attested/document"}, 200)
