"""What the request log notes about a request for the protocol checks: which IMDSv2 token it
carried (a serial number, never the token) and whether it had expired, a GCP hanging GET's
``timeout_sec`` (even when a fault answers it), the EventIds an Azure approval named."""

from __future__ import annotations

import asyncio
from typing import Any

from fake_imds.model import ServedRequest
from tests.fake_imds.imds_client import META, TOKEN, Imds, runner_for

run = runner_for("test-client")


def notes(imds: Imds) -> list[tuple[str, str, int, Any]]:
    return [(r.method, r.path, r.status, r.note) for r in imds.plane.requests]


def test_a_token_is_noted_by_serial_and_an_expired_one_with_how_long_ago() -> None:
    async def test(imds: Imds) -> tuple[list[tuple[str, str, int, Any]], list[ServedRequest]]:
        first = await imds.login(ttl="60")
        await imds.meta("instance-id")
        await asyncio.sleep(75)
        await imds.meta("instance-id")  # expired 15 s ago: 401
        await imds.login(ttl="60")
        await imds.meta("instance-id")
        assert all(first not in str(r.note) for r in imds.plane.requests)  # never the token
        return notes(imds), list(imds.plane.requests)

    logged, _ = run(test, imdsv2="required")
    assert logged == [
        ("PUT", "/latest/api/token", 200, {"token": 1, "token_ttl": 60}),
        ("GET", META + "instance-id", 200, {"token": 1, "token_ttl": 60}),
        (
            "GET",
            META + "instance-id",
            401,
            {"token": 1, "token_ttl": 60, "token_expired_for": 15.0},
        ),
        ("PUT", "/latest/api/token", 200, {"token": 2, "token_ttl": 60}),
        ("GET", META + "instance-id", 200, {"token": 2, "token_ttl": 60}),
    ]


def test_an_unknown_token_is_not_noted() -> None:
    async def test(imds: Imds) -> list[tuple[str, str, int, Any]]:
        await imds.get(META + "instance-id", {TOKEN: "forged"})
        return notes(imds)

    assert run(test, imdsv2="required") == [("GET", META + "instance-id", 401, None)]


def test_a_hanging_get_is_noted_with_its_timeout_even_when_a_fault_answers_it() -> None:
    path = "/computeMetadata/v1/instance/preempted"
    flavor = {"Metadata-Flavor": "Google"}

    async def test(imds: Imds) -> list[tuple[str, str, int, Any]]:
        await imds.get(path + "?wait_for_change=true&last_etag=0&timeout_sec=5", flavor)
        imds.plane.add_fault("status", status=503, pattern=path)
        await imds.get(path + "?wait_for_change=true&last_etag=0", flavor)
        await imds.get(path, flavor)
        return notes(imds)

    assert run(test) == [
        ("GET", path, 200, {"wait_for_change": True, "timeout_sec": 5.0}),
        ("GET", path, 503, {"wait_for_change": True, "timeout_sec": None}),
        ("GET", path, 503, None),
    ]


def test_a_request_held_by_the_server_counts_as_in_flight_until_answered() -> None:
    path = "/computeMetadata/v1/instance/preempted"
    flavor = {"Metadata-Flavor": "Google"}

    async def test(imds: Imds) -> list[float | None]:
        seen = [imds.plane.earliest_in_flight()]
        etag = (await imds.get(path, flavor)).headers["ETag"]
        held = asyncio.ensure_future(
            imds.get(path + f"?wait_for_change=true&last_etag={etag}&timeout_sec=30", flavor)
        )
        await asyncio.sleep(10)
        seen.append(imds.plane.earliest_in_flight())
        await held
        seen.append(imds.plane.earliest_in_flight())
        return seen

    assert run(test) == [None, 0.0, None]


def test_an_azure_approval_is_noted_with_the_notices_it_named() -> None:
    events = "/metadata/scheduledevents?api-version=2020-07-01"

    async def test(imds: Imds) -> list[Any]:
        notice = imds.notice(cloud="azure", kind="preempt", lead="30s")
        reply = await imds.request("GET", events, headers={"Metadata": "true"})
        event_id = reply.json()["Events"][0]["EventId"]
        body = {"StartRequests": [{"EventId": event_id}]}
        await imds.request("POST", events, headers={"Metadata": "true"}, json=body)
        posted = [r.note for r in imds.plane.requests if r.method == "POST"]
        return [notice.id, event_id, posted]

    notice_id, event_id, posted = run(test)
    assert posted == [{"approved": [event_id], "notices": [notice_id]}]
