"""A plain spot handler, the shape most teams write: a training loop, a JSON checkpoint uploaded
with ``put_object`` every ``checkpoint_every`` (one key per checkpoint), an emergency checkpoint
when a notice comes, and a resume from the newest checkpoint that a listing finds and that
reads back intact.

:class:`Handler` is the base of the known-bad handlers of this package (each overrides the one
step it gets wrong) and of :mod:`careful`. It uses only what a handler gets on a real host: the
boto3 client, the redis client, the local dir, the metadata endpoint, the signals; it reports
what it does with ``ctx.emit``. Use it as ``{python: "harness.examples.handlers.basic:target"}``.
"""

from __future__ import annotations

from typing import Any

from harness.examples.handlers.notices import Notice, NoticeWatcher
from harness.examples.handlers.workload import Job, Outputs, State, sha256
from harness.target import InstanceContext, Target

#: Seconds between two attempts at outputs that failed to upload.
OUTPUT_RETRY = 10.0


class Handler:
    """One incarnation of the job: resume, work, checkpoint, and stop when a notice says so."""

    def __init__(self, ctx: InstanceContext) -> None:
        self.ctx = ctx
        self.job = Job.of(ctx.job)
        self.state = State.initial(self.job)
        self.saved_position = 0
        self.outputs = Outputs(ctx, self.job)
        self.watcher = self.make_watcher()
        self.halted: str | None = None
        self._output_retry_at = 0.0

    # -- the parts a handler may do differently ----------------------------------------------
    def make_watcher(self) -> NoticeWatcher:
        return NoticeWatcher(self.ctx)

    async def resume(self) -> dict[str, Any]:
        """Load the newest intact checkpoint into :attr:`state`; the ``job.resumed`` data."""
        for key in sorted(await self.list_checkpoints(), reverse=True):
            data = await self.get(key)
            try:
                self.state = State.decode(data, self.job)
            except ValueError:
                continue  # torn or corrupted: try the one before it
            return {"checkpoint_id": key, "tier": "s3", "key": key, "checksum": sha256(data)}
        return {"checkpoint_id": None, "tier": None}

    async def save(self, key: str, body: bytes, position: int) -> bool:
        """Store one checkpoint: upload it under its own key, then report it durable."""
        return await self.upload(key, body, position)

    async def outputs_written(self) -> bool:
        """Whether every output closed so far is in S3 (one more try for those that failed)."""
        self.outputs.flush()
        return not self.outputs.pending

    async def on_notice(self, notice: Notice) -> bool:
        """Save what is not saved yet and stop; ``True`` ends the incarnation."""
        if self.state.position > self.saved_position:
            await self.checkpoint(f"notice:{notice.action}")
        self.halt("notice")
        return True

    async def s3(self, method: str, **params: Any) -> Any:
        """One call on the boto3 client, inline: it blocks the loop while it lasts."""
        return getattr(self.ctx.s3_client, method)(Bucket=self.ctx.bucket, **params)

    # -- the common parts -----------------------------------------------------------------------
    async def checkpoint(self, reason: str) -> bool:
        """Checkpoint the current state, once every output it covers is written: a resume from
        it never does those items again, so an output still missing then would never be."""
        key, body, position = self.checkpoint_key(), self.state.encode(), self.state.position
        if not await self.outputs_written():
            pending = [self.job.output_key(index) for index in self.outputs.pending]
            error = f"outputs not written yet: {', '.join(pending)}"
            self.ctx.emit("checkpoint.failed", checkpoint_id=key, tier="s3", error=error)
            return False
        self.started(key, reason, body)
        return await self.save(key, body, position)

    async def run(self) -> None:
        self.watcher.start()
        try:
            resumed = await self.resume()
            self.saved_position = self.state.position
            self.ctx.emit("job.resumed", position=self.state.position, **resumed)
            if await self.work():
                await self.finish()
        finally:
            self.watcher.stop()

    async def work(self) -> bool:
        """Steps until the job is done (``True``) or a notice ends the incarnation."""
        last_save = self.ctx.clock.monotonic()
        while self.state.position < self.job.items:
            notice = self.watcher.due()
            if notice is not None and await self.on_notice(notice):
                return False
            await self.ctx.clock.sleep(self.job.seconds_per_item)
            self.state = self.state.advance()
            self.ctx.emit("job.item_done", position=self.state.position)
            self.outputs.closed(self.state.position)
            self.flush_outputs()
            if self.ctx.clock.monotonic() - last_save >= self.job.checkpoint_every:
                last_save = self.ctx.clock.monotonic()
                await self.checkpoint("periodic")
                if self.halted:
                    return False
        return True

    def halt(self, reason: str) -> None:
        """Stop working for good (``job.stopped``): the incarnation ends."""
        self.halted = reason
        self.ctx.emit("job.stopped", position=self.state.position, reason=reason)

    async def finish(self) -> None:
        """Every output written, then ``job.completed``."""
        while self.outputs.pending:
            await self.ctx.clock.sleep(OUTPUT_RETRY)
            self.outputs.flush()
        self.ctx.emit("job.completed", position=self.state.position)

    def flush_outputs(self) -> None:
        now = self.ctx.clock.monotonic()
        if self.outputs.pending and now >= self._output_retry_at:
            self.outputs.flush()
            self._output_retry_at = now + OUTPUT_RETRY if self.outputs.pending else 0.0

    def checkpoint_key(self) -> str:
        """Sorts by position; the instance id keeps two instances' checkpoints apart."""
        return f"{self.prefix()}{self.state.position:010d}-{self.ctx.instance_id}.ckpt"

    def prefix(self) -> str:
        return f"checkpoints/{self.job.name}/"

    async def list_checkpoints(self, start_after: str = "") -> list[str]:
        keys: list[str] = []
        params = {"Prefix": self.prefix(), "StartAfter": start_after}
        while True:
            page = await self.s3("list_objects_v2", **params)
            keys += [item["Key"] for item in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return keys
            params["ContinuationToken"] = page["NextContinuationToken"]

    async def get(self, key: str) -> bytes:
        reply = await self.s3("get_object", Key=key)
        body: bytes = reply["Body"].read()
        return body

    async def put(self, key: str, body: bytes) -> None:
        await self.s3("put_object", Key=key, Body=body)

    def started(self, key: str, reason: str, body: bytes) -> None:
        position = self.state.position
        self.ctx.emit("checkpoint.started", checkpoint_id=key, position=position, reason=reason)
        self.ctx.emit("checkpoint.upload_started", checkpoint_id=key, bytes=len(body))

    async def upload(self, key: str, body: bytes, position: int) -> bool:
        """``put_object``, then ``checkpoint.durable`` (or ``checkpoint.failed``)."""
        try:
            await self.put(key, body)
        except Exception as error:
            self.ctx.emit("checkpoint.failed", checkpoint_id=key, tier="s3", error=repr(error))
            return False
        self.durable(key, body, position)
        return True

    def durable(self, key: str, body: bytes, position: int) -> None:
        self.saved_position = max(self.saved_position, position)
        self.ctx.emit(
            "checkpoint.durable",
            checkpoint_id=key,
            tier="s3",
            position=position,
            key=key,
            checksum=sha256(body),
        )


def handler_target(handler: type[Handler]) -> Target:
    """The ``async def target(ctx)`` that runs ``handler`` once per incarnation."""

    async def target(ctx: InstanceContext) -> None:
        await handler(ctx).run()

    target.__doc__ = handler.__doc__
    # Goldens are cached per target label (module and name): one per handler.
    target.__module__ = handler.__module__
    target.__qualname__ = f"{handler.__name__}.target"
    return target


target = handler_target(Handler)
