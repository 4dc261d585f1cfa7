"""A target that reads its node identity from metadata at start-up, as node handlers do."""

from __future__ import annotations

import aiohttp

from harness.target import InstanceContext

PATHS = ("public-ipv4", "public-hostname", "tags/instance/team")


async def identity_target(ctx: InstanceContext) -> None:
    seen: dict[str, object] = {}
    async with aiohttp.ClientSession(ctx.imds_url) as http:
        for path in PATHS:
            async with http.get(f"/latest/meta-data/{path}") as reply:
                seen[path] = await reply.text() if reply.status == 200 else reply.status
    ctx.emit("probe.identity", **seen)
    ctx.emit("job.completed", position=0)
