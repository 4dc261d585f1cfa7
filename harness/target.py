"""The contract between the harness and an in-process target (the reference runtime, or a user's).

A target is an async callable taking an :class:`InstanceContext`: one call is one instance
incarnation, from boot to exit. It learns about interruptions the way a real process would (by
polling ``ctx.imds_url``, or through ``ctx.signals`` for SIGTERM-style delivery), does its storage
through the context's clients, and reports what it does with ``ctx.emit``.

The harness sees every persistence step through :class:`IoHook`: the storage layer calls the hook
before each step, named as in :data:`PERSISTENCE_STEPS`. In simulation the hook sleeps the modelled
duration (bandwidth, latency), raises the realistic error of an injected fault (a botocore
``ClientError``, a redis ``ConnectionError``, ``OSError(ENOSPC)``) or ends the instance with
:class:`InstanceCrash`. In real mode the hook does nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.clock import Clock

#: The persistence steps a storage layer names when it calls the hook; ``crash: {at: ...}`` in a
#: scenario refers to these.
PERSISTENCE_STEPS = (
    "local.write",
    "local.fsync",
    "local.rename",
    "local.fsync_dir",
    "local.read",
    "local.delete",
    "s3.put_object",
    "s3.get_object",
    "s3.head_object",
    "s3.list_objects",
    "s3.delete_object",
    "s3.create_multipart",
    "s3.upload_part",
    "s3.complete_multipart",
    "s3.abort_multipart",
    "s3.list_uploads",
    "redis.read",
    "redis.write",
)


class InstanceCrash(BaseException):
    """The instance is gone (hard kill, crash point, deadline): unwinds the target's task.

    A ``BaseException`` so that a target's ``except Exception`` cannot swallow its own death.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IoHook(Protocol):
    """Called before every persistence step of an instance."""

    async def __call__(
        self, op: str, *, nbytes: int = 0, key: str | None = None, physical: bool = True
    ) -> None: ...


async def no_io_hook(
    op: str, *, nbytes: int = 0, key: str | None = None, physical: bool = True
) -> None:
    """The hook of real mode: storage takes the time it takes."""


Emit = Callable[..., None]


@dataclass
class InstanceContext:
    """Everything one instance incarnation gets from its world."""

    instance_id: str
    incarnation: int
    cloud: str  # aws | gcp | azure | webhook | kubernetes
    clock: Clock
    imds_url: str  # base URL of the metadata plane, e.g. http://127.0.0.1:41234
    bucket: str
    local_dir: Path  # the instance's local NVMe: wiped on terminate, kept on stop/hibernate
    job: Mapping[str, Any]
    emit: Emit  # emit(kind, **data): report an event to the history
    s3_client: Any  # a boto3 S3 client (moto in simulation)
    redis: Any  # a redis.asyncio.Redis (fakeredis in simulation)
    io_hook: IoHook = no_io_hook
    #: Signals delivered in-process (``"SIGTERM"``), for Kubernetes evictions and GCP soft-off.
    signals: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    #: Extra details of the world (webhook receiver URL, Azure/GCP specifics).
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: Whether blocking client calls (boto3) may run inline: true in simulation, where the
    #: hook models their duration; false for real I/O, where they go to a thread.
    inline_io: bool = True


Target = Callable[[InstanceContext], Awaitable[None]]
"""An in-process target: ``async def target(ctx) -> None``; one call per incarnation."""
