"""``harness demo``: the fake metadata server, a notice, and a client that sees it.

Runs in virtual time: real HTTP over loopback between a polling client and the fake IMDS, but
idle time is skipped, so minutes of simulated polling finish in well under a second.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import aiohttp
import click

from fake_imds.aws import TOKEN_HEADER, TOKEN_TTL_HEADER
from fake_imds.server import FakeImds
from harness.cli import EXIT_FAILED, EXIT_OK
from harness.clock import run_virtual
from harness.commands.options import Duration
from harness.errors import InputError
from harness.units import format_duration

SPOT_PATH = "/latest/meta-data/spot/instance-action"
REBALANCE_PATH = "/latest/meta-data/events/recommendations/rebalance"


@dataclass
class DemoResult:
    notice_issued: float
    notice_seen: float | None
    deadline: float
    requests: int


class Demo:
    def __init__(self, lead: float, poll: float, quiet_for: float) -> None:
        self.lead = lead
        self.poll = poll
        self.quiet_for = quiet_for
        self.loop = asyncio.get_running_loop()

    def say(self, who: str, text: str) -> None:
        minutes, seconds = divmod(int(self.loop.time()), 60)
        click.echo(f"  t=+{minutes}:{seconds:02d}  {who:<8} {text}")

    async def run(self) -> DemoResult:
        async with FakeImds(imdsv2="required") as imds, aiohttp.ClientSession() as http:
            self.say("imds", f"fake EC2 metadata service on {imds.url}/ (IMDSv2 required)")
            async with http.get(imds.url + SPOT_PATH) as bare:
                self.say("client", f"GET without a token -> {bare.status} (the IMDSv2 pitfall)")
            token = await self.token(http, imds.url)
            poller = asyncio.create_task(self.poll_until_notice(http, imds.url, token))
            await asyncio.sleep(self.quiet_for)
            notice = await self.schedule(http, imds)
            seen = await poller
            interruption = imds.plane.get_notice(str(notice["id"]))
            await asyncio.sleep(max(0.0, interruption.deadline - self.loop.time()))
            self.say("harness", "deadline: the instance is terminated")
            return DemoResult(
                interruption.issued_at, seen, interruption.deadline, len(imds.plane.requests)
            )

    async def token(self, http: aiohttp.ClientSession, url: str) -> str:
        headers = {TOKEN_TTL_HEADER: "21600"}
        async with http.put(url + "/latest/api/token", headers=headers) as response:
            token = await response.text()
            self.say("client", f"PUT /latest/api/token -> {response.status}, TTL 21600 s")
            return token

    async def schedule(self, http: aiohttp.ClientSession, imds: FakeImds) -> dict[str, object]:
        body = {"kind": "fis-spot-interruption", "lead": format_duration(self.lead)}
        async with http.post(imds.control_url + "/notices", json=body) as response:
            answer: dict[str, object] = await response.json()
        self.say("harness", f"POST /_harness/v1/notices {json.dumps(body)} -> {response.status}")
        self.say(
            "",
            f"rebalance now, notice at {answer['issued_at']}, interruption at {answer['deadline']}",
        )
        return answer

    async def poll_until_notice(self, http: aiohttp.ClientSession, url: str, token: str) -> float:
        headers = {TOKEN_HEADER: token}
        polls, rebalance_seen = 0, False
        while True:
            if not rebalance_seen:
                async with http.get(url + REBALANCE_PATH, headers=headers) as response:
                    if response.status == 200:
                        rebalance_seen = True
                        self.say("client", f"rebalance recommendation: {await response.text()}")
            async with http.get(url + SPOT_PATH, headers=headers) as response:
                polls += 1
                if response.status == 200:
                    body = await response.text()
                    self.say("client", f"GET spot/instance-action -> 200 {body}")
                    return self.loop.time()
                if polls == 1:
                    self.say(
                        "client",
                        f"polling spot/instance-action every "
                        f"{format_duration(self.poll)}: {response.status} (no notice yet)",
                    )
            await asyncio.sleep(self.poll)


@click.command("demo")
@click.option(
    "--lead",
    type=Duration(seconds=True),
    default="3m",
    show_default=True,
    help="Interruption this long after the notice sequence starts (at least 2m).",
)
@click.option(
    "--poll",
    type=Duration(seconds=True, positive=True),
    default="5s",
    show_default=True,
    help="Client polling interval.",
)
@click.option(
    "--quiet-for",
    type=Duration(seconds=True),
    default="30s",
    show_default=True,
    help="Polling time before the harness schedules the interruption.",
)
def demo(lead: float, poll: float, quiet_for: float) -> int:
    """Show a spot interruption end to end, in virtual time (takes well under a second).

    Starts the fake EC2 metadata service with IMDSv2 required, runs a client that polls
    spot/instance-action like a checkpoint handler, schedules a FIS-like interruption through
    the control API, and shows the client seeing the rebalance recommendation and the notice.

    \b
    Examples:
      harness demo
      harness demo --lead 5m --poll 2s
    """
    if lead < 120:
        raise InputError("--lead must be at least 2m (a spot notice comes 2m ahead)")
    click.echo("spot-harness demo: a spot interruption end to end, in virtual time\n")

    async def main() -> DemoResult:
        return await Demo(lead, poll, quiet_for).run()

    result = run_virtual(main)
    if result.notice_seen is None:
        click.echo("the client never saw the notice", err=True)
        return EXIT_FAILED
    delay = result.notice_seen - result.notice_issued
    left = result.deadline - result.notice_seen
    click.echo(
        f"\nThe client saw the notice {format_duration(delay)} after it was issued, leaving "
        f"{format_duration(left)} to checkpoint; the fake served {result.requests} requests."
    )
    click.echo(
        "Next: `harness serve` for a server your own handler can poll, and `harness notice --help`."
    )
    return EXIT_OK
