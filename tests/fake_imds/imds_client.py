"""Clients of the fake AWS metadata server for the contract tests, in virtual time: through
aiohttp's test server/client around the bare app, or through ``FakeImds`` on a loopback socket."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDictProxy

from fake_imds.control import schedule_notice
from fake_imds.model import MetadataPlane, Notice
from fake_imds.server import FakeImds, ServerConfig, build_app
from harness.clock import clock_for_running_loop, run_virtual

TTL = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN = "X-aws-ec2-metadata-token"
META = "/latest/meta-data/"


@dataclass
class Reply:
    status: int
    text: str
    headers: CIMultiDictProxy[str]

    def json(self) -> Any:
        return json.loads(self.text)


class Imds:
    """A client of one fake server, whichever way it is reached."""

    def __init__(self, send: Callable[..., Any], plane: MetadataPlane) -> None:
        self._send = send
        self.plane = plane
        self.token: str | None = None

    async def request(self, method: str, path: str, **kwargs: Any) -> Reply:
        async with self._send(method, path, **kwargs) as response:
            return Reply(response.status, await response.text(), response.headers)

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        if headers is None and self.token is not None:
            headers = {TOKEN: self.token}
        return await self.request("GET", path, headers=headers or {})

    async def meta(self, leaf: str) -> Reply:
        return await self.get(META + leaf)

    async def put_token(self, ttl: str | None = "21600", **extra: str) -> Reply:
        headers = {} if ttl is None else {TTL: ttl}
        headers.update(extra)
        return await self.request("PUT", "/latest/api/token", headers=headers)

    async def login(self, ttl: str = "21600") -> str:
        reply = await self.put_token(ttl)
        assert reply.status == 200, reply.text
        self.token = reply.text
        return reply.text

    def notice(self, **body: Any) -> Notice:
        return schedule_notice(self.plane, body)[-1]


@asynccontextmanager
async def via_test_client(**config: Any) -> AsyncIterator[Imds]:
    options = {"aws": config.pop("aws")} if "aws" in config else {}
    plane = MetadataPlane(clock_for_running_loop())
    app = build_app(plane, ServerConfig(options=options, **config))
    async with TestClient(TestServer(app)) as client:  # its runner cancels on disconnect
        yield Imds(client.request, plane)


@asynccontextmanager
async def via_socket(**config: Any) -> AsyncIterator[Imds]:
    options = {"aws": config.pop("aws")} if "aws" in config else {}
    async with (
        FakeImds(options=options, **config) as server,
        aiohttp.ClientSession(server.url) as session,
    ):
        yield Imds(session.request, server.plane)


TRANSPORTS = {"test-client": via_test_client, "socket": via_socket}


def runner_for(transport_name: str) -> Callable[..., Any]:
    """``run(test, **server_config)``: run ``async test(imds)`` against a fresh fake, virtually."""
    transport = TRANSPORTS[transport_name]

    def run(test: Callable[[Imds], Awaitable[Any]], **config: Any) -> Any:
        async def main() -> Any:
            async with transport(**config) as imds:
                return await test(imds)

        return run_virtual(main)

    return run
