"""Targets written the way users write them: boto3 and redis called directly, no io_hook.

Each reports just enough (``job.item_done``, ``job.completed``) for the checks; what the harness
records of their storage comes from its own seam on the clients it handed out.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import sys

from harness.target import InstanceContext

KEY = "state/latest.json"


def _body(ctx: InstanceContext) -> bytes:
    return b"x" * int(ctx.job.get("body", 1000))


async def _heartbeat(ctx: InstanceContext, beats: list[float]) -> None:
    """Another coroutine of the same process: notes the clock every second."""
    while True:
        beats.append(ctx.clock.monotonic())
        await ctx.clock.sleep(1)


async def direct_put(ctx: InstanceContext) -> None:
    """A blocking ``put_object`` made straight on the event loop, after a tick of work."""
    await ctx.clock.sleep(int(ctx.job.get("work", 1)))
    ctx.emit("job.item_done", position=1)
    ctx.s3_client.put_object(Bucket=ctx.bucket, Key=KEY, Body=_body(ctx))
    ctx.emit("put.returned")
    ctx.emit("job.completed", position=1)


async def threaded_put(ctx: InstanceContext) -> None:
    """The same through ``asyncio.to_thread`` while a heartbeat coroutine keeps ticking."""
    beats: list[float] = []
    beating = asyncio.create_task(_heartbeat(ctx, beats))
    await ctx.clock.sleep(int(ctx.job.get("work", 1)))
    ctx.emit("job.item_done", position=1)
    await asyncio.to_thread(ctx.s3_client.put_object, Bucket=ctx.bucket, Key=KEY, Body=_body(ctx))
    ctx.emit("put.returned", beats=len(beats))
    beating.cancel()
    ctx.emit("job.completed", position=1)


async def hold_the_loop(ctx: InstanceContext) -> None:
    """A heartbeat and a blocking upload on the loop: the heartbeat stops while it blocks."""
    beats: list[float] = []
    beating = asyncio.create_task(_heartbeat(ctx, beats))
    await ctx.clock.sleep(2.5)
    ctx.s3_client.put_object(Bucket=ctx.bucket, Key=KEY, Body=_body(ctx))
    await ctx.clock.sleep(0)
    ctx.emit("put.returned", beats=beats)
    beating.cancel()
    ctx.emit("job.completed", position=1)


async def redis_user(ctx: InstanceContext) -> None:
    """Its own Redis keys: a hash, a pipeline read, an error it handles."""
    try:
        await ctx.redis.hset("trainer:meta", mapping={"latest": KEY, "step": "7"})
        async with ctx.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall("trainer:meta")
            pipe.get("trainer:epoch")
            await pipe.execute()
    except Exception as error:  # a user's handler logs and goes on
        ctx.emit("redis.failed", error=type(error).__name__)
    ctx.emit("job.completed", position=1)


async def exits_with(ctx: InstanceContext) -> None:
    """Ends the way ``job.exit`` says: ``sys.exit(code)``, an exception, or Ctrl-C."""
    how = str(ctx.job.get("exit", "0"))
    ctx.emit("job.item_done", position=1)
    if how == "raise":
        raise RuntimeError("the handler fell over")
    if how == "interrupt":
        raise KeyboardInterrupt
    sys.exit(int(how))


async def does_nothing(ctx: InstanceContext) -> None:
    """Returns at once: it never works, never saves, never completes."""


async def claims_durable_first(ctx: InstanceContext) -> None:
    """Reports a checkpoint durable, then uploads it a minute later."""
    body = _body(ctx)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    ctx.emit("job.item_done", position=1)
    ctx.emit(
        "checkpoint.durable", checkpoint_id="c1", tier="s3", position=1, key=KEY, checksum=digest
    )
    await ctx.clock.sleep(60)
    await asyncio.to_thread(ctx.s3_client.put_object, Bucket=ctx.bucket, Key=KEY, Body=body)
    ctx.emit("job.completed", position=1)


async def transfer_upload(ctx: InstanceContext) -> None:
    """boto3's transfer manager, with its thread pool (``job.threads``) or without."""
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(use_threads=bool(ctx.job.get("threads", True)))
    body = io.BytesIO(_body(ctx))
    ctx.s3_client.upload_fileobj(body, ctx.bucket, KEY, Config=config)
    ctx.emit("job.completed", position=1)


async def forges_evidence(ctx: InstanceContext) -> None:
    """Reports a write it never made and a local dir it never had, in the harness's own words."""
    ctx.emit("storage.op", op="s3.put_object", key=KEY, bytes=1, ok=True, observed="client")
    ctx.emit("local.snapshot", local_dir="local/x", files={"state": "sha256:" + "0" * 64})
    ctx.emit("job.completed", position=1)


async def spins_on_refusal(ctx: InstanceContext) -> None:
    """Works a little, then asks again at once, forever, as a watcher that retries a refused
    request with no pause would: virtual time never moves again."""
    await ctx.clock.sleep(5)
    ctx.emit("job.item_done", position=1)
    while True:  # noqa: ASYNC110 (the busy loop is the point)
        await asyncio.sleep(0)
