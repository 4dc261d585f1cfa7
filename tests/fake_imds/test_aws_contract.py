"""The AWS metadata contract, in virtual time, both through aiohttp's test server/client around the
bare app and through a ``FakeImds`` on a loopback socket with a plain client session."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from fake_imds.aws import AwsOptions
from tests.fake_imds.imds_client import META, TOKEN, TRANSPORTS, TTL, Imds, runner_for


@pytest.fixture(params=sorted(TRANSPORTS))
def run(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return runner_for(request.param)


DEGRADED = "The instance is running on degraded hardware"


# -- IMDSv2 tokens ------------------------------------------------------------------------------
def test_token_put_returns_a_token_and_echoes_the_ttl(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        for ttl in ("1", "300", "21600"):
            reply = await imds.put_token(ttl)
            assert reply.status == 200
            assert reply.headers[TTL] == ttl
            assert len(reply.text) > 20
        token = await imds.login()
        assert (await imds.get(META + "instance-id", {TOKEN: token})).text == "i-0123456789abcdef0"

    run(test)


@pytest.mark.parametrize("ttl", [None, "0", "21601", "-5", "abc", "1.5", ""])
def test_missing_or_out_of_range_ttl_is_400(run: Callable[..., Any], ttl: str | None) -> None:
    async def test(imds: Imds) -> None:
        reply = await imds.put_token(ttl)
        assert reply.status == 400
        assert "<title>400 - Bad Request</title>" in reply.text

    run(test)


def test_token_put_to_a_versioned_path_is_403(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        reply = await imds.request("PUT", "/2021-03-23/api/token", headers={TTL: "60"})
        assert reply.status == 403

    run(test)


def test_token_put_through_a_proxy_is_rejected(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        reply = await imds.put_token("60", **{"X-Forwarded-For": "10.1.2.3"})
        assert reply.status == 403
        assert TTL not in reply.headers

    run(test)


def test_token_path_only_takes_put(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        reply = await imds.request("GET", "/latest/api/token")
        assert (reply.status, reply.headers["Allow"]) == (405, "PUT")

    run(test)


def test_an_invalid_token_is_401_even_when_tokens_are_optional(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        assert (await imds.get(META + "instance-id", {})).status == 200  # v1 allowed
        reply = await imds.get(META + "instance-id", {TOKEN: "not-a-token"})
        assert reply.status == 401
        assert "<title>401 - Unauthorized</title>" in reply.text

    run(test)


def test_tokens_expire_on_the_clock(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> list[int]:
        token = await imds.login("60")
        statuses = [(await imds.meta("instance-id")).status]
        await asyncio.sleep(59.5)
        statuses.append((await imds.meta("instance-id")).status)
        await asyncio.sleep(0.5)
        statuses.append((await imds.meta("instance-id")).status)
        fresh = await imds.login("60")
        statuses.append((await imds.meta("instance-id")).status)
        assert fresh != token
        return statuses

    assert run(test) == [200, 200, 401, 200]


def test_required_mode_refuses_v1_with_401(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        assert (await imds.get(META + "instance-id", {})).status == 401
        await imds.login()
        assert (await imds.meta("instance-id")).status == 200

    run(test, imdsv2="required")


def test_disabled_mode_is_403_everywhere(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        assert (await imds.put_token("60")).status == 403
        assert (await imds.get(META + "instance-id", {})).status == 403
        assert (await imds.get("/latest/user-data", {})).status == 403

    run(test, imdsv2="disabled")


# -- identity, listings, leaves -----------------------------------------------------------------
def test_identity_leaves(run: Callable[..., Any]) -> None:
    expected = {
        "instance-id": "i-0123456789abcdef0",
        "instance-type": "g5.xlarge",
        "instance-life-cycle": "spot",
        "placement/availability-zone": "us-east-1a",
        "placement/region": "us-east-1",
        "placement/availability-zone-id": "use1-az1",
        "ami-id": "ami-0abcdef1234567890",
        "local-ipv4": "10.0.0.12",
        "mac": "0e:11:22:33:44:55",
        "hostname": "ip-10-0-0-12.ec2.internal",
        "instance-action": "none",
        "services/partition": "aws",
    }

    async def test(imds: Imds) -> None:
        await imds.login()
        for leaf, value in expected.items():
            reply = await imds.meta(leaf)
            assert (leaf, reply.status, reply.text) == (leaf, 200, value)
            assert reply.headers["Content-Type"].startswith("text/plain")

    run(test)


def test_leaves_are_also_served_with_a_trailing_slash(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        assert (await imds.meta("placement/availability-zone/")).text == "us-east-1a"
        assert (await imds.meta("instance-id/")).text == "i-0123456789abcdef0"

    run(test)


def test_directory_listings(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        root = (await imds.get("/", {})).text.splitlines()
        assert root[-1] == "latest" and "2021-03-23" in root
        assert (await imds.get("/latest/", {})).text.splitlines() == ["dynamic/", "meta-data/"]
        listing = (await imds.get(META, {})).text.splitlines()
        for entry in ("instance-id", "placement/", "iam/", "events/", "instance-life-cycle"):
            assert entry in listing
        assert "spot/" not in listing  # no notice yet: the whole spot/ tree is 404
        assert "tags/" not in listing  # tags in metadata are off by default
        placement = (await imds.meta("placement/")).text.splitlines()
        assert placement == ["availability-zone", "availability-zone-id", "region"]
        assert (await imds.meta("iam/security-credentials/")).text == "spot-harness-instance"
        assert (await imds.meta("events/maintenance/")).text == "history\nscheduled"

    run(test)


def test_versioned_paths_serve_the_same_tree(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        reply = await imds.get("/2021-03-23/meta-data/instance-id", {})
        assert (reply.status, reply.text) == (200, "i-0123456789abcdef0")

    run(test)


def test_missing_paths_get_ec2s_404_page(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        for path in (META + "no-such-leaf", META + "placement/nope", "/latest/nope", "/x/y"):
            reply = await imds.get(path, {})
            assert reply.status == 404, path
            assert "<title>404 - Not Found</title>" in reply.text
            assert reply.headers["Content-Type"].startswith("text/html")

    run(test)


def test_iam_credentials_and_identity_document(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        info = (await imds.meta("iam/info")).json()
        assert info["InstanceProfileArn"].endswith(":instance-profile/spot-harness-instance")
        creds = (await imds.meta("iam/security-credentials/spot-harness-instance")).json()
        assert creds["Code"] == "Success" and creds["Type"] == "AWS-HMAC"
        assert creds["AccessKeyId"].startswith("ASIA") and len(creds["SecretAccessKey"]) == 40
        assert creds["Expiration"] == "2026-01-01T06:00:00Z"  # virtual epoch + 6 h
        doc = (await imds.get("/latest/dynamic/instance-identity/document", {})).json()
        assert doc["instanceId"] == "i-0123456789abcdef0"
        assert (doc["region"], doc["availabilityZone"]) == ("us-east-1", "us-east-1a")

    run(test)


def test_user_data_tags_and_asg_state_follow_the_options(run: Callable[..., Any]) -> None:
    options = AwsOptions(user_data="#!/bin/sh\necho hi\n", tags={"Name": "trainer", "team": "ml"},
                         asg_state="InService")  # fmt: skip

    async def test(imds: Imds) -> None:
        assert (await imds.get("/latest/user-data", {})).text == "#!/bin/sh\necho hi\n"
        assert (await imds.get("/latest/user-data/", {})).status == 200
        assert (await imds.meta("tags/instance/")).text == "Name\nteam"
        assert (await imds.meta("tags/instance/Name")).text == "trainer"
        assert (await imds.meta("autoscaling/target-lifecycle-state")).text == "InService"

    run(test, aws=options)


def test_without_user_data_tags_or_asg_those_paths_are_404(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        assert (await imds.get("/latest/user-data", {})).status == 404
        assert (await imds.meta("tags/instance/")).status == 404
        assert (await imds.meta("autoscaling/target-lifecycle-state")).status == 404

    run(test)


# -- interruption signals -----------------------------------------------------------------------
def test_spot_notice_appears_with_its_time_fixed_at_issue(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> list[Any]:
        seen: list[Any] = [(await imds.meta("spot/instance-action")).status]
        imds.notice(action="terminate", lead="2m")
        first = (await imds.meta("spot/instance-action")).json()
        await asyncio.sleep(90)
        later = (await imds.meta("spot/instance-action")).json()
        seen += [first, later == first, (await imds.meta("spot/termination-time")).text]
        seen.append((await imds.meta("spot/")).text)
        return seen

    assert run(test) == [
        404,
        {"action": "terminate", "time": "2026-01-01T00:02:00Z"},
        True,
        "2026-01-01T00:02:00Z",
        "instance-action\ntermination-time",
    ]


@pytest.mark.parametrize("action", ["stop", "hibernate"])
def test_stop_and_hibernate_have_no_termination_time(run: Callable[..., Any], action: str) -> None:
    async def test(imds: Imds) -> None:
        notice = imds.notice(action=action)
        body = (await imds.meta("spot/instance-action")).json()
        assert body["action"] == action
        assert (await imds.meta("spot/termination-time")).status == 404
        # hibernation starts at once: no two-minute warning
        assert notice.deadline - notice.issued_at == (0.0 if action == "hibernate" else 120.0)

    run(test)


def test_a_notice_at_a_later_time_appears_then(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> list[int]:
        imds.notice(lead="2m", at="+30s")
        statuses = [(await imds.meta("spot/instance-action")).status]
        await asyncio.sleep(29.9)
        statuses.append((await imds.meta("spot/instance-action")).status)
        await asyncio.sleep(0.1)
        statuses.append((await imds.meta("spot/instance-action")).status)
        return statuses

    assert run(test) == [404, 404, 200]


def test_rebalance_recommendation(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        assert (await imds.meta("events/recommendations/rebalance")).status == 404
        await asyncio.sleep(10)
        imds.notice(kind="rebalance")
        reply = await imds.meta("events/recommendations/rebalance")
        assert reply.json() == {"noticeTime": "2026-01-01T00:00:10Z"}
        assert "recommendations/" in (await imds.meta("events/")).text

    run(test)


def test_scheduled_events_and_their_history(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        assert (await imds.meta("events/maintenance/scheduled")).json() == []
        reboot = imds.notice(kind="scheduled-event", action="system-reboot", lead="1h")
        stop = imds.notice(kind="scheduled-event", action="instance-stop", lead="2h")
        scheduled = (await imds.meta("events/maintenance/scheduled")).json()
        assert [e["Code"] for e in scheduled] == ["system-reboot", "instance-stop"]
        assert scheduled[0]["NotBefore"] == "1 Jan 2026 01:00:00 GMT"
        assert scheduled[0]["NotAfter"] == "1 Jan 2026 03:00:00 GMT"
        assert scheduled[0]["State"] == "active"
        assert scheduled[0]["EventId"].startswith("instance-event-")
        assert (await imds.request("DELETE", f"/_harness/v1/notices/{stop.id}")).status == 200
        await asyncio.sleep(3600)
        assert (await imds.meta("events/maintenance/scheduled")).json() == []
        history = (await imds.meta("events/maintenance/history")).json()
        assert [(e["Code"], e["State"], e["Description"]) for e in history] == [
            ("system-reboot", "completed", "[Completed] scheduled reboot"),
            (
                "instance-stop",
                "canceled",
                "[Canceled] The instance is running on degraded hardware",
            ),
        ]
        assert reboot.id != stop.id

    run(test)


def test_asg_termination_sets_the_target_lifecycle_state(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> list[str]:
        states = [(await imds.meta("autoscaling/target-lifecycle-state")).text]
        imds.notice(kind="asg-termination")
        states.append((await imds.meta("autoscaling/target-lifecycle-state")).text)
        imds.notice(kind="asg-termination", state="Warmed:Stopped")
        states.append((await imds.meta("autoscaling/target-lifecycle-state")).text)
        return states

    assert run(test, aws=AwsOptions(asg_state="InService")) == [
        "InService",
        "Terminated",
        "Warmed:Stopped",
    ]


def test_fis_like_sequence_is_rebalance_then_notice_then_deadline(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> list[tuple[float, int, int]]:
        loop = asyncio.get_running_loop()
        imds.notice(kind="fis-spot-interruption", lead="5m")
        seen = []
        for _ in range(4):
            rebalance = (await imds.meta("events/recommendations/rebalance")).status
            spot = (await imds.meta("spot/instance-action")).status
            seen.append((loop.time(), rebalance, spot))
            await asyncio.sleep(90)
        notice = imds.plane.visible_notices("aws", "spot-interruption")[0]
        assert (notice.issued_at, notice.deadline) == (180.0, 300.0)
        return seen

    assert run(test) == [(0.0, 200, 404), (90.0, 200, 404), (180.0, 200, 200), (270.0, 200, 200)]
