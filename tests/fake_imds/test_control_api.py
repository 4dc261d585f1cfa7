"""The control API ``/_harness/v1/``: notices, faults, the request log, reset, bearer tokens; and
every fault as a client sees it. Virtual time, both transports."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from fake_imds.server import FakeImds
from harness.clock import run_virtual
from tests.fake_imds.imds_client import META, TRANSPORTS, Imds, runner_for

V1 = "/_harness/v1"
SPOT = META + "spot/instance-action"


@pytest.fixture(params=sorted(TRANSPORTS))
def run(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return runner_for(request.param)


async def post(imds: Imds, path: str, body: Any) -> tuple[int, Any]:
    reply = await imds.request("POST", V1 + path, json=body)
    return reply.status, reply.json()


# -- notices ------------------------------------------------------------------------------------
def test_post_notice_returns_201_with_id_issued_at_and_deadline(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        await asyncio.sleep(30)
        status, body = await post(imds, "/notices", {"action": "stop", "lead": "2m"})
        assert status == 201
        assert body["id"] == "notice-0001"
        assert (body["cloud"], body["kind"], body["action"]) == ("aws", "spot-interruption", "stop")
        assert (body["issued_at"], body["deadline"]) == (
            "2026-01-01T00:00:30Z",
            "2026-01-01T00:02:30Z",
        )
        assert body["state"] == "issued"
        assert (await imds.get(SPOT, {})).json()["time"] == "2026-01-01T00:02:30Z"

    run(test)


def test_absolute_at_and_iso_lead(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        body = {"at": "2026-01-01T00:10:00Z", "lead": "PT2M"}
        status, notice = await post(imds, "/notices", body)
        assert status == 201
        assert (notice["issued_at"], notice["deadline"], notice["state"]) == (
            "2026-01-01T00:10:00Z", "2026-01-01T00:12:00Z", "scheduled"
        )  # fmt: skip

    run(test)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lead": "2 minutes"}, "lead"),
        ({"lead": -1}, "lead"),
        ({"action": "explode"}, "action"),
        ({"kind": "meteor"}, "kind"),
        ({"cloud": "ibm"}, "cloud"),
        ({"at": "tomorrow"}, "at"),
        ({"at": 5}, "at"),
        ({"leed": "2m"}, "leed"),
        ({"kind": "fis-spot-interruption", "lead": "1m"}, "lead"),
        ({"kind": "scheduled-event", "action": "system-explode"}, "action"),
        ({"kind": "asg-termination", "state": ""}, "state"),
        ([1, 2], "body"),
    ],
)
def test_malformed_notice_bodies_are_400_naming_the_field(
    run: Callable[..., Any], body: Any, field: str
) -> None:
    async def test(imds: Imds) -> None:
        status, answer = await post(imds, "/notices", body)
        assert status == 400
        assert answer["field"] == field
        assert field in answer["error"] or field == "body"
        assert imds.plane.notices() == []

    run(test)


def test_a_body_that_is_not_json_is_400(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        reply = await imds.request("POST", V1 + "/notices", data=b"{nope")
        assert (reply.status, reply.json()["field"]) == (400, "body")

    run(test)


def test_list_get_and_cancel_notices(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        _, first = await post(imds, "/notices", {"lead": "2m"})
        await post(imds, "/notices", {"kind": "rebalance"})
        listing = (await imds.get(V1 + "/notices", {})).json()["notices"]
        assert [n["kind"] for n in listing] == ["spot-interruption", "rebalance"]
        only_gcp = (await imds.get(V1 + "/notices?cloud=gcp", {})).json()["notices"]
        assert only_gcp == []
        one = (await imds.get(V1 + f"/notices/{first['id']}", {})).json()
        assert one["id"] == first["id"]
        assert (await imds.get(SPOT, {})).status == 200
        canceled = await imds.request("DELETE", V1 + f"/notices/{first['id']}")
        assert (canceled.status, canceled.json()["state"]) == (200, "canceled")
        assert (await imds.get(SPOT, {})).status == 404
        for method in ("GET", "DELETE"):
            missing = await imds.request(method, V1 + "/notices/notice-9999")
            assert (missing.status, missing.json()["field"]) == (404, "id")

    run(test)


def test_fis_sequence_answer_lists_the_whole_sequence(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        status, body = await post(imds, "/notices", {"kind": "fis-spot-interruption", "lead": "4m"})
        assert status == 201
        assert body["kind"] == "spot-interruption"
        assert [(n["kind"], n["issued_at"]) for n in body["sequence"]] == [
            ("rebalance", "2026-01-01T00:00:00Z"),
            ("spot-interruption", "2026-01-01T00:02:00Z"),
        ]
        assert body["deadline"] == "2026-01-01T00:04:00Z"

    run(test)


def test_request_log_and_reset(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        await imds.get(SPOT, {})
        await asyncio.sleep(5)
        await imds.get(META + "instance-id", {})
        log = (await imds.get(V1 + "/requests", {})).json()
        assert log["total"] == 2
        rows = [
            (r["t"], r["method"], r["path"], r["status"], r["dialect"]) for r in log["requests"]
        ]
        assert rows == [
            (0.0, "GET", SPOT, 404, "aws"),
            (5.0, "GET", META + "instance-id", 200, "aws"),
        ]  # fmt: skip
        assert log["requests"][0]["remote"] == "127.0.0.1"
        later = (await imds.get(V1 + "/requests?since=1", {})).json()["requests"]
        assert [r["path"] for r in later] == [META + "instance-id"]
        await post(imds, "/notices", {})
        await post(imds, "/faults", {"kind": "status", "status": 500})
        assert (await imds.request("POST", V1 + "/reset")).status == 200
        assert imds.plane.notices() == [] and imds.plane.faults() == []
        assert (await imds.get(V1 + "/requests", {})).json()["total"] == 0
        assert (await imds.get(SPOT, {})).status == 404

    run(test)


def test_unknown_control_paths_are_json_404(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        reply = await imds.get(V1 + "/nope", {})
        assert reply.status == 404 and "no control endpoint" in reply.json()["error"]
        info = (await imds.get(V1 + "/", {})).json()
        assert "aws" in info["clouds"] and info["time"] == "2026-01-01T00:00:00Z"

    run(test)


# -- faults, as a client sees them --------------------------------------------------------------
@pytest.mark.parametrize("status", [500, 503, 429])
def test_status_fault_on_a_pattern_for_a_duration(run: Callable[..., Any], status: int) -> None:
    async def test(imds: Imds) -> list[int]:
        code, fault = await post(
            imds, "/faults", {"kind": "status", "status": status, "path": META + "spot/*",
                              "for": "30s"}
        )  # fmt: skip
        assert code == 201 and fault["end"] == "2026-01-01T00:00:30Z"
        seen = [(await imds.get(SPOT, {})).status, (await imds.get(META + "mac", {})).status]
        await asyncio.sleep(30)
        seen.append((await imds.get(SPOT, {})).status)
        log = imds.plane.requests
        assert [r.fault for r in log] == [fault["id"], None, None]
        return seen

    assert run(test) == [status, 200, 404]


def test_status_fault_body_reads_like_ec2(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        await post(imds, "/faults", {"kind": "status", "status": 503})
        reply = await imds.get(SPOT, {})
        assert "<title>503 - Service Unavailable</title>" in reply.text

    run(test)


def test_latency_fault_delays_the_answer_on_the_clock(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> tuple[float, int]:
        loop = asyncio.get_running_loop()
        await post(imds, "/faults", {"kind": "latency", "latency": "2.5s"})
        start = loop.time()
        status = (await imds.get(META + "instance-id", {})).status
        return loop.time() - start, status

    assert run(test) == (2.5, 200)


def test_timeout_fault_accepts_and_never_answers(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> float:
        loop = asyncio.get_running_loop()
        await post(imds, "/faults", {"kind": "timeout", "path": SPOT})
        start = loop.time()
        with pytest.raises(TimeoutError):
            await imds.request("GET", SPOT, timeout=aiohttp.ClientTimeout(total=5))
        assert imds.plane.requests[-1].status == 0  # logged as not answered
        assert (await imds.get(META + "mac", {})).status == 200  # other paths still work
        return loop.time() - start

    assert run(test) == 5.0


def test_reset_fault_drops_the_connection(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        await post(imds, "/faults", {"kind": "reset", "path": SPOT})
        with pytest.raises(aiohttp.ClientConnectionError):
            await imds.get(SPOT, {})
        assert (await imds.get(META + "mac", {})).status == 200

    run(test)


def test_throttle_answers_429_past_the_limit_per_second(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> list[int]:
        await post(imds, "/faults", {"kind": "throttle", "limit": 3})
        statuses = [(await imds.get(SPOT, {})).status for _ in range(5)]
        await asyncio.sleep(1)
        statuses.append((await imds.get(SPOT, {})).status)
        return statuses

    assert run(test) == [404, 404, 404, 429, 429, 404]


def test_faults_can_be_listed_and_removed(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        _, fault = await post(imds, "/faults", {"kind": "status", "status": 500})
        listed = (await imds.get(V1 + "/faults", {})).json()["faults"]
        assert [f["id"] for f in listed] == [fault["id"]]
        assert (await imds.get(SPOT, {})).status == 500
        assert (await imds.request("DELETE", V1 + f"/faults/{fault['id']}")).status == 200
        assert (await imds.get(SPOT, {})).status == 404
        assert (await imds.request("DELETE", V1 + f"/faults/{fault['id']}")).status == 404

    run(test)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "kind"),
        ({"kind": "flood"}, "kind"),
        ({"kind": "status", "status": 200}, "status"),
        ({"kind": "status", "status": "500"}, "status"),
        ({"kind": "latency"}, "latency"),
        ({"kind": "throttle", "limit": 0}, "limit"),
        ({"kind": "timeout", "for": "forever"}, "for"),
        ({"kind": "reset", "path": "latest/*"}, "path"),
        ({"kind": "reset", "pattern": "*"}, "pattern"),
    ],
)
def test_malformed_fault_bodies_are_400_naming_the_field(
    run: Callable[..., Any], body: Any, field: str
) -> None:
    async def test(imds: Imds) -> None:
        status, answer = await post(imds, "/faults", body)
        assert (status, answer["field"]) == (400, field)
        assert imds.plane.faults() == []

    run(test)


def test_faults_do_not_touch_the_control_api(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        await post(imds, "/faults", {"kind": "status", "status": 503})
        status, _ = await post(imds, "/notices", {})
        assert status == 201

    run(test)


# -- the bearer token ---------------------------------------------------------------------------
def test_with_a_control_token_every_control_call_needs_it() -> None:
    async def main() -> None:
        async with (
            FakeImds(control_token="s3cret") as server,
            aiohttp.ClientSession(server.url) as http,
        ):
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
                async with http.post(V1 + "/notices", json={}, headers=headers) as refused:
                    assert refused.status == 401
                    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
                    assert "s3cret" not in await refused.text()
            async with http.get(V1 + "/requests") as refused:
                assert refused.status == 401
            good = {"Authorization": "Bearer s3cret"}
            async with http.post(V1 + "/notices", json={}, headers=good) as accepted:
                assert accepted.status == 201
            async with http.get(SPOT) as metadata:  # the instance's own clients need no token
                assert metadata.status == 200

    run_virtual(main)
