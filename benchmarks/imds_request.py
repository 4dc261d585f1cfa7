"""The CPU cost of one simulated metadata request, on one core.

A simulated run reaches each instance's fake metadata server over the in-memory network of
``harness/loopback.py``, in virtual time; the reference runtime's monitor polls it every few
seconds for the whole run (about 420 requests in the standard scenario). This script serves
``--requests`` polls, one every 5 virtual seconds on one keep-alive connection, and prints the
median CPU microseconds a request costs (client, server and event loop together) of
``--rounds`` rounds, for:

1. the reference monitor's client polling EC2's ``spot/instance-action`` with an IMDSv2
   token (404 until a notice: what the standard scenario asks most);
2. the same client polling Azure's Scheduled Events with one event in the document (what
   explored schedules ask most);
3. aiohttp's client polling ``spot/instance-action`` (what user targets written with aiohttp
   send; urllib, requests and curl differ on the client side only);
4. for scale: a bare aiohttp application answering a constant, and a raw asyncio protocol
   answering fixed bytes with the same loop iterations per request as aiohttp's server (the
   floor any server driven by this event loop pays: the client, the loop, the sockets).

Run: ``.venv/bin/python benchmarks/imds_request.py [--requests 2000] [--rounds 5]``. The
script re-executes itself under ``taskset -c 0`` when taskset exists (as ``sim_speed.py`` does).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import cast

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from benchmarks.sim_speed import pin_to_one_core  # noqa: E402
from fake_imds.server import FakeImds  # noqa: E402
from harness.clock import VirtualEventLoop  # noqa: E402
from harness.runtime.monitor.http import HttpSession, request  # noqa: E402

POLL = 5.0  # virtual seconds between two requests
SPOT = "/latest/meta-data/spot/instance-action"
EVENTS = "/metadata/scheduledevents?api-version=2020-07-01"
#: An answer the size of a 404 from the fake EC2 service, as aiohttp's server would word it.
FIXED_ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 1\r\n"
    b"Date: Mon, 07 Dec 2026 20:00:00 GMT\r\nServer: Python/3.11 aiohttp/3.14\r\n\r\nx"
)

Poll = Callable[[], Awaitable[object]]


async def cpu_per_request(poll: Poll, requests: int) -> float:
    """CPU microseconds a request costs: ``poll`` once to warm up, then ``requests`` times."""
    await poll()
    started = time.process_time()
    for _ in range(requests):
        await poll()
        await asyncio.sleep(POLL)
    return (time.process_time() - started) / requests * 1e6


async def reference_aws(requests: int) -> float:
    async with FakeImds("127.0.0.1", 0) as imds, HttpSession() as session:
        ttl = {"X-aws-ec2-metadata-token-ttl-seconds": "21600"}
        token = await request(
            session, "PUT", imds.url + "/latest/api/token", headers=ttl, timeout=2
        )
        headers = {"X-aws-ec2-metadata-token": token.text}
        return await cpu_per_request(
            lambda: request(session, "GET", imds.url + SPOT, headers=headers, timeout=2), requests
        )


async def reference_azure(requests: int) -> float:
    async with FakeImds("127.0.0.1", 0) as imds, HttpSession() as session:
        imds.plane.add_notice("azure", "terminate", "terminate", lead=1e9)
        headers = {"Metadata": "true"}
        return await cpu_per_request(
            lambda: request(session, "GET", imds.url + EVENTS, headers=headers, timeout=2),
            requests,
        )


async def aiohttp_aws(requests: int) -> float:
    async with FakeImds("127.0.0.1", 0) as imds, aiohttp.ClientSession() as session:
        ttl = {"X-aws-ec2-metadata-token-ttl-seconds": "21600"}
        async with session.put(imds.url + "/latest/api/token", headers=ttl) as answer:
            headers = {"X-aws-ec2-metadata-token": await answer.text()}

        async def poll() -> bytes:
            async with session.get(imds.url + SPOT, headers=headers) as answer:
                return await answer.read()

        return await cpu_per_request(poll, requests)


async def bare_aiohttp(requests: int) -> float:
    async def constant(_: web.Request) -> web.Response:
        return web.Response(text="x")

    app = web.Application()
    app.router.add_get("/", constant)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    url = await _listen(lambda sock: web.SockSite(runner, sock).start())
    try:
        async with HttpSession() as session:
            return await cpu_per_request(lambda: request(session, "GET", url, timeout=2), requests)
    finally:
        await runner.cleanup()


class _Floor(asyncio.Protocol):
    """Answers every request with fixed bytes, through the same loop iterations as aiohttp's
    server: a task per connection waiting for requests, a task per request, a keep-alive timer
    armed after each answer."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.requests: list[bytes] = []
        self.waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.task = self.loop.create_task(self._serve())

    def data_received(self, data: bytes) -> None:
        self.requests.append(data)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.task is not None:
            self.task.cancel()

    async def _serve(self) -> None:
        while True:
            if not self.requests:
                self.waiter = self.loop.create_future()
                await self.waiter
            self.requests.pop(0)
            await self.loop.create_task(self._answer())
            self.loop.call_at(self.loop.time() + 75.0, lambda: None).cancel()

    async def _answer(self) -> None:
        assert self.transport is not None
        self.transport.write(FIXED_ANSWER)


async def raw_floor(requests: int) -> float:
    servers: list[asyncio.Server] = []
    connections: list[_Floor] = []

    def connection() -> _Floor:
        connections.append(_Floor())
        return connections[-1]

    async def start(sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        servers.append(await loop.create_server(connection, sock=sock))

    url = await _listen(start)
    try:
        async with HttpSession() as session:
            return await cpu_per_request(lambda: request(session, "GET", url, timeout=2), requests)
    finally:
        servers[0].close()
        tasks = [c.task for c in connections if c.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)  # cancelled as their clients left


async def _listen(start: Callable[[socket.socket], Awaitable[None]]) -> str:
    """Start a server on an in-memory listening socket of the running loop; its URL."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualEventLoop)
    # A MemorySocket stands in for a kernel socket: the virtual loop polls it where servers
    # would poll their socket, so create_server and SockSite take it as one.
    sock = cast(socket.socket, loop.listen_socket("127.0.0.1", 0))
    await start(sock)
    return f"http://127.0.0.1:{sock.getsockname()[1]}/"


CASES: dict[str, Callable[[int], Awaitable[float]]] = {
    "1. reference client, EC2 spot/instance-action (404)": reference_aws,
    "2. reference client, Azure scheduled events (one event)": reference_azure,
    "3. aiohttp client, EC2 spot/instance-action (404)": aiohttp_aws,
    "4a. bare aiohttp app answering a constant, reference client": bare_aiohttp,
    "4b. raw protocol with aiohttp's loop iterations, reference client": raw_floor,
}


def measure(case: Callable[[int], Awaitable[float]], requests: int) -> float:
    loop = VirtualEventLoop(memory_network=True)
    try:
        return loop.run_until_complete(case(requests))
    finally:
        loop.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests a round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds a case (the median)")
    args = parser.parse_args()
    note = pin_to_one_core()
    print(f"imds_request: {note}; python {sys.version.split()[0]}; in-memory connections")
    for name, case in CASES.items():
        figures = [measure(case, args.requests) for _ in range(args.rounds)]
        rounds = ", ".join(f"{figure:.1f}" for figure in figures)
        print(f"{name}: median {statistics.median(figures):.1f} us CPU a request ({rounds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
