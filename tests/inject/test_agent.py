"""The on-host agent: its metadata overlay over a "real" IMDS (another fake on loopback), and
``inject --via agent`` scheduling notices through its control API, all in virtual time."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fake_imds.aws import AwsOptions
from fake_imds.server import FakeImds, ImdsV2Mode, UnsafeBindError
from harness.cli import main
from harness.clock import RealClock, run_virtual
from harness.errors import HarnessError
from harness.inject.agent import AgentClient, apply_agent
from harness.inject.overlay import Upstream, faked, overlay_server, upstream_identity
from harness.inject.plan import AgentPlan
from harness.inject.status import StatusLine

REAL_ID = "i-0feedfacefeed0001"
TOKEN = "agent-secret-token-42"
TTL = {"X-aws-ec2-metadata-token-ttl-seconds": "300"}


@dataclass
class Host:
    real: FakeImds
    agent: FakeImds
    http: aiohttp.ClientSession

    async def token(self) -> str:
        async with self.http.put(f"{self.agent.url}/latest/api/token", headers=TTL) as r:
            assert r.status == 200
            return await r.text()

    async def get(self, path: str, token: str | None) -> tuple[int, str]:
        headers = {"X-aws-ec2-metadata-token": token} if token else {}
        async with self.http.get(f"{self.agent.url}{path}", headers=headers) as r:
            return r.status, await r.text()


@asynccontextmanager
async def host(
    *, real_imdsv2: ImdsV2Mode = "required", agent_imdsv2: ImdsV2Mode = "optional"
) -> AsyncIterator[Host]:
    options = {"aws": AwsOptions(instance_id=REAL_ID, instance_type="p4d.24xlarge")}
    async with FakeImds(imdsv2=real_imdsv2, options=options) as real:
        upstream = Upstream(real.url, real.plane.clock)
        identity = await upstream_identity(upstream)
        agent = overlay_server(upstream, identity, control_token=TOKEN, imdsv2=agent_imdsv2)
        try:
            async with agent, aiohttp.ClientSession() as http:
                yield Host(real, agent, http)
        finally:
            await upstream.close()


def virtual(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    run_virtual(test)


def test_which_paths_the_overlay_fakes() -> None:
    assert faked("/latest/meta-data/spot/instance-action")
    assert faked("/latest/meta-data/events/recommendations/rebalance")
    assert faked("/latest/api/token")
    assert faked("/2021-03-23/meta-data/autoscaling/target-lifecycle-state")
    assert not faked("/latest/meta-data/iam/security-credentials/role")
    assert not faked("/latest/dynamic/instance-identity/document")
    assert not faked("/latest/meta-data/instance-id")


def test_identity_and_credentials_come_from_the_real_service() -> None:
    async def scenario() -> None:
        async with host() as h:
            token = await h.token()
            assert await h.get("/latest/meta-data/instance-id", token) == (200, REAL_ID)
            status, role = await h.get("/latest/meta-data/iam/security-credentials/", token)
            assert status == 200
            real_token = await _real_token(h)
            direct = await _direct(
                h, f"/latest/meta-data/iam/security-credentials/{role}", real_token
            )
            status, creds = await h.get(f"/latest/meta-data/iam/security-credentials/{role}", token)
            assert status == 200 and json.loads(creds) == json.loads(direct)
            # the real service (IMDSv2 required) accepted the overlay's own token, not the client's
            assert token != real_token

    virtual(scenario)


def test_notices_are_faked_and_a_real_one_still_shows_through() -> None:
    async def scenario() -> None:
        async with host() as h:
            token = await h.token()
            path = "/latest/meta-data/spot/instance-action"
            assert (await h.get(path, token))[0] == 404  # neither fake nor real notice
            client = AgentClient(h.agent.url, TOKEN, h.http)
            notice = await client.schedule({"kind": "spot-interruption", "lead": "2m"})
            status, body = await h.get(path, token)
            assert status == 200
            assert json.loads(body)["action"] == "terminate"
            assert (notice.deadline - notice.issued_at).total_seconds() == 120
            await client.cancel(notice.id)
            assert (await h.get(path, token))[0] == 404
            h.real.plane.add_notice("aws", "spot-interruption", "stop", lead=120)
            status, body = await h.get(path, token)
            assert status == 200 and json.loads(body)["action"] == "stop"  # the real notice

    virtual(scenario)


def test_imdsv2_rules_apply_to_passed_through_paths_too() -> None:
    async def scenario() -> None:
        async with host(agent_imdsv2="required") as h:
            assert (await h.get("/latest/meta-data/instance-id", None))[0] == 401
            assert (await h.get("/latest/meta-data/instance-id", "forged"))[0] == 401
            assert (await h.get("/latest/meta-data/instance-id", await h.token()))[0] == 200

    virtual(scenario)


def test_unreachable_real_service_is_a_502_not_a_hang() -> None:
    async def scenario() -> None:
        async with FakeImds() as real:
            dead_url = real.url
        upstream = Upstream(dead_url, real.plane.clock)
        async with overlay_server(upstream, {}) as agent, aiohttp.ClientSession() as http:
            async with http.get(f"{agent.url}/latest/meta-data/instance-id") as r:
                assert r.status == 502
            async with http.get(f"{agent.url}/latest/meta-data/spot/instance-action") as r:
                assert r.status == 502  # no fake notice: the real service must answer, and cannot
        await upstream.close()

    virtual(scenario)


def test_agent_refuses_to_bind_beyond_loopback_without_a_token() -> None:
    async def scenario() -> None:
        upstream = Upstream("http://127.0.0.1:9", RealClock())
        with pytest.raises(UnsafeBindError):
            overlay_server(upstream, {}, host="0.0.0.0")

    virtual(scenario)


def test_control_calls_without_the_token_are_refused() -> None:
    async def scenario() -> None:
        async with host() as h:
            client = AgentClient(h.agent.url, None, h.http)
            with pytest.raises(HarnessError, match="refused the token") as caught:
                await client.schedule({"kind": "spot-interruption"})
            assert TOKEN not in str(caught.value)

    virtual(scenario)


def plan(**changes: Any) -> AgentPlan:
    values: dict[str, Any] = {
        "url": "", "kind": "spot-interruption", "action": "terminate", "lead_seconds": 120.0,
        "wait": True, "expect_checkpoint": None, "has_token": True,
    }  # fmt: skip
    values.update(changes)
    return AgentPlan(**values)


def test_inject_via_agent_follows_the_notice_to_its_deadline() -> None:
    out = io.StringIO()

    async def scenario() -> None:
        async with host() as h:
            client = AgentClient(h.agent.url, TOKEN, h.http)
            loop = asyncio.get_running_loop()
            began = loop.time()
            outcome = await apply_agent(
                plan(url=h.agent.url, action="stop"), client, StatusLine(out, live=False),
                poll_every=10.0,
            )  # fmt: skip
            assert outcome.final_state == "completed"
            assert 120 <= loop.time() - began <= 130  # virtual seconds
            [notice] = h.agent.plane.notices()
            assert (notice.kind, notice.action) == ("spot-interruption", "stop")

    virtual(scenario)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("scheduled notice-0001: spot-interruption (stop) issued ")
    assert lines[1] == "[00:00] notice-0001 spot-interruption (stop): visible, deadline in about 2m"
    assert lines[-1].endswith("notice-0001 spot-interruption: deadline reached (stop)")
    assert len(lines) == 3  # off a terminal: one line per change of state, not one per poll


def test_a_status_line_off_a_terminal_prints_once_per_change() -> None:
    out = io.StringIO()
    status = StatusLine(out, live=False)
    for left in ("2m", "1m50s", "1m40s"):
        status.show("notice-0001: visible", 0.0, f"deadline in about {left}")
    status.show("notice-0001: deadline reached", 120.0)
    assert out.getvalue().splitlines() == [
        "[00:00] notice-0001: visible, deadline in about 2m",
        "[02:00] notice-0001: deadline reached",
    ]


def test_ctrl_c_while_following_cancels_the_notice() -> None:
    out = io.StringIO()

    async def scenario() -> None:
        async with host() as h:
            client = AgentClient(h.agent.url, TOKEN, h.http)
            task = asyncio.create_task(
                apply_agent(plan(url=h.agent.url), client, StatusLine(out, live=False))
            )
            await asyncio.sleep(30)
            task.cancel()  # what asyncio.run does with the main task on Ctrl-C
            with pytest.raises(asyncio.CancelledError):
                await task
            [notice] = h.agent.plane.notices()
            assert notice.state == "canceled"

    virtual(scenario)
    assert "interrupted: canceling notice-0001" in out.getvalue()


def test_fis_like_sequence_through_the_agent() -> None:
    async def scenario() -> None:
        async with host() as h:
            token = await h.token()
            client = AgentClient(h.agent.url, TOKEN, h.http)
            notice = await client.schedule(
                {"kind": "fis-spot-interruption", "action": "terminate", "lead": "5m"}
            )
            rebalance = "/latest/meta-data/events/recommendations/rebalance"
            assert (await h.get(rebalance, token))[0] == 200  # the rebalance comes at once
            assert (await h.get("/latest/meta-data/spot/instance-action", token))[0] == 404
            await asyncio.sleep(180)
            assert (await h.get("/latest/meta-data/spot/instance-action", token))[0] == 200
            assert (notice.deadline - notice.issued_at).total_seconds() == 120

    virtual(scenario)


def test_a_rebalance_plan_is_a_body_the_agent_accepts() -> None:
    async def scenario() -> None:
        async with host() as h:
            token = await h.token()
            client = AgentClient(h.agent.url, TOKEN, h.http)
            notice = await client.schedule(plan(kind="rebalance").body())
            assert (notice.kind, notice.deadline) == ("rebalance", notice.issued_at)
            rebalance = "/latest/meta-data/events/recommendations/rebalance"
            assert (await h.get(rebalance, token))[0] == 200

    virtual(scenario)


def test_agent_cli_refuses_a_public_bind_without_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["agent", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "refusing to listen on 0.0.0.0" in capsys.readouterr().err


def test_agent_cli_reads_the_token_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "token"
    empty.write_text("\n")
    assert main(["agent", "--token-file", str(empty)]) == 2
    assert "is empty" in capsys.readouterr().err


async def _real_token(h: Host) -> str:
    async with h.http.put(f"{h.real.url}/latest/api/token", headers=TTL) as r:
        return await r.text()


async def _direct(h: Host, path: str, token: str) -> str:
    async with h.http.get(f"{h.real.url}{path}", headers={"X-aws-ec2-metadata-token": token}) as r:
        assert r.status == 200
        return await r.text()
