"""The harness's own view of a target's storage: every S3 request and Redis command made through
the clients the harness hands out, whatever code makes it.

S3: handlers on the simulation's boto3 client (botocore's event system). Before a request is
sent (``before-call``) the instance's :class:`~harness.sim.iohook.SimIoHook` applies crash
points, injected faults and the modelled transfer time; after S3 answered (``after-call``) the
request is recorded as a ``storage.op`` event with its status. A target that calls
``ctx.s3_client.put_object`` directly is faulted and judged exactly like the bundled runtime.

Redis: :class:`ObservedRedis`, a fakeredis client whose commands and pipelines pass through the
same hook.

Requests are attributed to the instance whose task (or blocking call) makes them, through
:data:`~harness.sim.iohook.CURRENT_HOOK`. S3 requests from a real thread (boto3's transfer
manager with its default thread pool) cannot be timed or attributed deterministically and are
refused with the way out (``TransferConfig(use_threads=False)``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

import fakeredis
from redis.asyncio.client import Pipeline

from harness.clock import ThreadUseError
from harness.sim.iohook import CURRENT_HOOK, SimIoHook

#: botocore operation name -> the persistence step it is recorded (and crash-pointed) as.
S3_STEPS = {
    "PutObject": "s3.put_object",
    "GetObject": "s3.get_object",
    "HeadObject": "s3.head_object",
    "ListObjects": "s3.list_objects",
    "ListObjectsV2": "s3.list_objects",
    "DeleteObject": "s3.delete_object",
    "DeleteObjects": "s3.delete_objects",
    "CopyObject": "s3.copy_object",
    "CreateMultipartUpload": "s3.create_multipart",
    "UploadPart": "s3.upload_part",
    "CompleteMultipartUpload": "s3.complete_multipart",
    "AbortMultipartUpload": "s3.abort_multipart",
    "ListMultipartUploads": "s3.list_uploads",
}

_STEP = "spot_harness_step"  # where a request's step travels in botocore's request context
_MAX_VALUES = 16
_MAX_VALUE_LENGTH = 256

_active_runs = 0  # simulated runs in progress (the handlers refuse real threads meanwhile)


def step_of(operation: str) -> str:
    """``PutObject`` -> ``s3.put_object``; an operation outside the table gets its snake name."""
    found = S3_STEPS.get(operation)
    if found is not None:
        return found
    return "s3." + re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def observe_s3_client(client: Any) -> None:
    """Register the harness's handlers on a boto3 S3 client (once per client)."""
    events = client.meta.events
    events.register("before-parameter-build.s3", _name_the_step, unique_id="spot-harness-step")
    events.register("before-call.s3", _before_call, unique_id="spot-harness-before")
    events.register("after-call.s3", _after_call, unique_id="spot-harness-after")


def begin_run() -> None:
    """A simulated run starts (runs may nest: a golden run inside a run's setup)."""
    global _active_runs
    _active_runs += 1


def end_run() -> None:
    global _active_runs
    _active_runs -= 1


def _name_the_step(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    if _active_runs and threading.current_thread() is not threading.main_thread():
        raise ThreadUseError(
            f"S3 {model.name} was called from a real thread during a simulated run; its time "
            "and its order cannot be simulated. Call boto3 directly, through asyncio.to_thread, "
            "or pass Config=boto3.s3.transfer.TransferConfig(use_threads=False) to transfers"
        )
    key = params.get("Key") or params.get("Prefix") or ""
    context[_STEP] = (step_of(model.name), str(key), _body_size(params.get("Body")))


def _before_call(context: dict[str, Any], **_: Any) -> None:
    hook = CURRENT_HOOK.get()
    step = context.get(_STEP)
    if hook is None or step is None:
        return None
    op, key, nbytes = step
    context[_STEP] = (op, key, hook.before_blocking(op, key, nbytes))
    return None


def _after_call(
    http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
) -> None:
    hook = CURRENT_HOOK.get()
    step = context.get(_STEP)
    if hook is None or step is None:
        return
    op, key, nbytes = step
    status = int(getattr(http_response, "status_code", 0) or 0)
    code = str((parsed.get("Error") or {}).get("Code") or "") if status >= 300 else ""
    if op == "s3.get_object" and status < 300 and not nbytes:
        nbytes = int(parsed.get("ContentLength") or 0)
        incarnation = hook.instance.incarnation
        moving = hook.model.duration(op, nbytes, incarnation) - hook.model.duration(
            op, 0, incarnation
        )
        hook.wait_blocking(moving)
    outcome: dict[str, Any] = {"ok": status < 300, "status": status, "observed": "client"}
    if code:
        outcome["error"] = code
    hook.record(op, key, nbytes, **outcome)


def _body_size(body: Any) -> int:
    if body is None:
        return 0
    if isinstance(body, bytes | bytearray | memoryview | str):
        return len(body)
    try:
        position = body.tell()
        body.seek(0, 2)
        size = int(body.tell()) - int(position)
        body.seek(position)
    except (AttributeError, OSError, ValueError):
        return 0
    return max(0, size)


# -- Redis ----------------------------------------------------------------------------------------

_READ_COMMANDS = frozenset(
    {
        *("GET", "MGET", "GETRANGE", "STRLEN", "EXISTS", "TYPE", "TTL", "PTTL", "KEYS", "SCAN"),
        *("HGET", "HGETALL", "HMGET", "HKEYS", "HVALS", "HLEN", "HEXISTS", "HSCAN"),
        *("LRANGE", "LLEN", "LINDEX", "SMEMBERS", "SISMEMBER", "SCARD", "SSCAN"),
        *("ZRANGE", "ZSCORE", "ZCARD", "ZRANGEBYSCORE", "ZSCAN", "PING", "INFO", "DBSIZE"),
    }
)


def redis_step(commands: Sequence[Sequence[Any]]) -> tuple[str, str | None, str, list[str]]:
    """``(op, first key, command names, values written)`` of one command or a pipeline."""
    named = [(_text(c[0]).upper(), c) for c in commands if c]
    names = [name for name, _ in named]
    writes = [c for name, c in named if name not in _READ_COMMANDS]
    key = next((k for c in commands for k in [_first_key(c)] if k is not None), None)
    values = [
        text
        for c in writes
        for raw in c[1:]
        if isinstance(raw, bytes | str | int) and len(text := _text(raw)) <= _MAX_VALUE_LENGTH
    ][:_MAX_VALUES]
    return ("redis.write" if writes else "redis.read"), key, ",".join(names), values


def _first_key(command: Sequence[Any]) -> str | None:
    name = _text(command[0]).upper()
    if name in ("EVAL", "EVALSHA", "FCALL"):
        count = int(command[2]) if len(command) > 2 else 0
        return _text(command[3]) if count > 0 and len(command) > 3 else None
    if name in ("PING", "INFO", "DBSIZE", "SCAN", "MULTI", "EXEC"):
        return None
    return _text(command[1]) if len(command) > 1 else None


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


class ObservedRedis(fakeredis.FakeAsyncRedis):
    """A fakeredis client whose every command (and pipeline) goes through an instance's hook."""

    harness_hook: SimIoHook

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        call = super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        return await _observed(self.harness_hook, [args], call)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> ObservedPipeline:
        pipe = ObservedPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )
        pipe.harness_hook = self.harness_hook
        return pipe


class ObservedPipeline(Pipeline):
    harness_hook: SimIoHook

    async def execute(self, raise_on_error: bool = True) -> Any:
        commands = [args for args, _ in self.command_stack]
        if not commands:
            return await super().execute(raise_on_error)
        return await _observed(self.harness_hook, commands, super().execute(raise_on_error))


async def _observed(hook: SimIoHook, commands: Sequence[Sequence[Any]], call: Any) -> Any:
    op, key, names, values = redis_step(commands)
    try:
        await hook.before_async(op, key, 0)  # a fault or crash here is recorded by the hook
    except BaseException:
        call.close()
        raise
    try:
        result = await call
    except Exception as error:
        failed = f"{type(error).__name__}: {error}"
        hook.record(op, key, 0, ok=False, error=failed, command=names, observed="client")
        raise
    outcome: dict[str, Any] = {"ok": True, "command": names, "observed": "client"}
    if values:
        outcome["values"] = values
    hook.record(op, key, 0, **outcome)
    return result
