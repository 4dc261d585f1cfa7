"""Loopback HTTP helpers: a small app served on a free port (a receiver), and a control-API
call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import web


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 (port 0) until the block ends; yields its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def post_notice(
    session: aiohttp.ClientSession, base: str, body: dict[str, Any]
) -> tuple[int, Any]:
    """``POST /_harness/v1/notices`` on the server at ``base``: (status, JSON answer)."""
    async with session.post(f"{base}/_harness/v1/notices", json=body) as response:
        return response.status, await response.json()
