"""A small, correct target for engine tests: it reports everything it sees.

Every ``step`` seconds it does one unit of work and then one round of I/O through the real
clients, each step preceded by the io_hook as a storage layer must: a local write (temp file,
fsync, rename), an S3 put of its position, a Redis write. It polls the AWS spot notice over
HTTP, reads ``ctx.signals``, and records each outcome as a ``probe.*`` event, so tests can
assert on what a client in the world saw. It resumes from the position stored in S3 and
completes after ``items`` units.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import aiohttp
from aiohttp import web
from botocore.exceptions import ClientError

from harness.target import InstanceContext

POSITION_KEY = "probe/position"
SPOT_PATH = "/latest/meta-data/spot/instance-action"


async def probe_target(ctx: InstanceContext) -> None:
    items = int(ctx.job.get("items", 10))
    step = float(ctx.job.get("step", 10.0))
    position = await _resume(ctx)
    ctx.emit("job.resumed", position=position, checkpoint_id=None, tier="s3" if position else None)
    watchers = [
        asyncio.create_task(_watch_signals(ctx)),
        asyncio.create_task(_poll_imds(ctx, float(ctx.job.get("poll", 5.0)))),
    ]
    receiver = await _webhook_receiver(ctx) if ctx.job.get("webhook") else None
    try:
        while position < items:
            await ctx.clock.sleep(step)
            position += 1
            ctx.emit("job.item_done", position=position)
            if ctx.job.get("report_clock"):
                ctx.emit("probe.clock", now=ctx.clock.now().isoformat())
            await _io_round(ctx, position)
        ctx.emit("job.completed", position=position)
    finally:
        if receiver is not None:
            await receiver.cleanup()
        for task in watchers:
            task.cancel()
        for task in watchers:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _resume(ctx: InstanceContext) -> int:
    try:
        await ctx.io_hook("s3.get_object", key=POSITION_KEY)
        body = ctx.s3_client.get_object(Bucket=ctx.bucket, Key=POSITION_KEY)["Body"].read()
    except ClientError:
        return 0
    return int(body)


async def _io_round(ctx: InstanceContext, position: int) -> None:
    await _attempt(ctx, "local", _local_write(ctx, position))
    await _attempt(ctx, "s3", _s3_put(ctx, position))
    await _attempt(ctx, "redis", _redis_write(ctx, position))


async def _attempt(ctx: InstanceContext, store: str, work: Any) -> None:
    try:
        await work
    except ClientError as error:
        ctx.emit("probe.error", store=store, error=error.response["Error"]["Code"])
    except Exception as error:
        ctx.emit("probe.error", store=store, error=type(error).__name__, detail=str(error))
    else:
        ctx.emit("probe.ok", store=store)


async def _local_write(ctx: InstanceContext, position: int) -> None:
    final = ctx.local_dir / "position"
    temp = ctx.local_dir / "position.tmp"
    data = str(position).encode()
    await ctx.io_hook("local.write", nbytes=len(data), key="position.tmp")
    with open(temp, "wb") as out:  # noqa: ASYNC230 (simulated time: the hook models it)
        out.write(data)
        await ctx.io_hook("local.fsync", key="position.tmp")
        out.flush()
        os.fsync(out.fileno())
    await ctx.io_hook("local.rename", key="position")
    os.replace(temp, final)


async def _s3_put(ctx: InstanceContext, position: int) -> None:
    await ctx.io_hook("s3.put_object", nbytes=int(ctx.job.get("nbytes", 0)), key=POSITION_KEY)
    ctx.s3_client.put_object(Bucket=ctx.bucket, Key=POSITION_KEY, Body=str(position).encode())


async def _redis_write(ctx: InstanceContext, position: int) -> None:
    await ctx.io_hook("redis.write", key=f"probe:item:{position}")
    await ctx.redis.set(f"probe:item:{position}", position)


async def _watch_signals(ctx: InstanceContext) -> None:
    while True:
        name = await ctx.signals.get()
        ctx.emit("probe.signal", signal=name)


async def _poll_imds(ctx: InstanceContext, every: float) -> None:
    """Poll one metadata path; report each change of (status, body)."""
    path = str(ctx.job.get("imds_path", SPOT_PATH))
    headers = dict(ctx.job.get("imds_headers", {}))
    timeout = aiohttp.ClientTimeout(total=2.0)
    last: tuple[int | None, str] | None = None
    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as http:
        while True:
            try:
                async with http.get(ctx.imds_url + path) as response:
                    now: tuple[int | None, str] = (response.status, await response.text())
            except (aiohttp.ClientError, TimeoutError) as error:
                now = (None, type(error).__name__)
            if now != last:
                ctx.emit("probe.imds", status=now[0], body=now[1])
                last = now
            await ctx.clock.sleep(every)


async def _webhook_receiver(ctx: InstanceContext) -> web.AppRunner:
    """Listen on 127.0.0.1 (port 0) and announce the URL through ``register_webhook``."""

    async def receive(request: web.Request) -> web.Response:
        body = await request.json()
        ctx.emit("probe.webhook", action=body.get("action"), instance=body.get("instance_id"))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/notice", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    ctx.extra["register_webhook"](f"http://127.0.0.1:{port}/notice")
    return runner
