"""Storage in simulation: how long each persistence step takes, and which faults it meets.

Each instance's :class:`SimIoHook` sees every persistence step: S3 requests and Redis commands
on the clients the harness handed out (:mod:`harness.sim.observe` calls it), and the steps of the
bundled local-disk helper. It waits the modelled duration on the virtual clock (bandwidth and
latency from the scenario's ``env``, changed by active faults), raises the error a real client
would see for an injected fault (a botocore ``ClientError`` such as ``SlowDown``,
``EndpointConnectionError`` for an outage, a redis ``ConnectionError``, ``OSError(ENOSPC)``), or
ends the instance at a crash point. Every step is recorded as a ``storage.op`` event once it
took effect or failed.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import redis.exceptions
from botocore.exceptions import ClientError, EndpointConnectionError

from harness.clock import VirtualEventLoop, suspend
from harness.history import History, Kind
from harness.scenario.model import S3_ERRORS, Env
from harness.target import InstanceCrash

if TYPE_CHECKING:
    from harness.sim.world import Instance

FaultKind = Literal[
    "s3.error",
    "s3.outage",
    "s3.bandwidth",
    "s3.latency",
    "redis.down",
    "redis.latency",
    "disk.full",
    "disk.bandwidth",
    "disk.latency",
]

_S3_MESSAGES = {
    "SlowDown": "Please reduce your request rate.",
    "ServiceUnavailable": "Service is unable to handle request.",
    "InternalError": "We encountered an internal error. Please try again.",
    "RequestTimeout": "Your socket connection to the server was not read from or written to "
    "within the timeout period.",
    "AccessDenied": "Access Denied",
    "NoSuchBucket": "The specified bucket does not exist",
}

_S3_WRITES = ("s3.put_object", "s3.upload_part")
#: The fault kinds that slow a step down (they change its modelled duration).
_SLOWING: tuple[FaultKind, ...] = (
    "s3.latency",
    "s3.bandwidth",
    "redis.latency",
    "disk.latency",
    "disk.bandwidth",
)


def s3_operation_name(op: str) -> str:
    """botocore's operation name of a persistence step: ``s3.put_object`` -> ``PutObject``."""
    special = {
        "s3.create_multipart": "CreateMultipartUpload",
        "s3.complete_multipart": "CompleteMultipartUpload",
        "s3.abort_multipart": "AbortMultipartUpload",
        "s3.list_uploads": "ListMultipartUploads",
        "s3.list_objects": "ListObjectsV2",
    }
    if op in special:
        return special[op]
    return "".join(part.capitalize() for part in op.removeprefix("s3.").split("_"))


def s3_client_error(code: str, op: str) -> ClientError:
    """The exception botocore raises for an S3 error response ``code``."""
    status = S3_ERRORS.get(code, 500)
    response: Any = {
        "Error": {"Code": code, "Message": _S3_MESSAGES.get(code, code)},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, s3_operation_name(op))


@dataclass
class StorageFault:
    """An injected storage fault, active from ``start`` until ``end`` (``None``: run end)."""

    id: str
    kind: FaultKind
    start: float
    end: float | None = None
    ops: tuple[str, ...] | None = None
    remaining: int | None = None  # calls it still affects (``count``)
    code: str | None = None  # S3 error code
    value: float = 0.0  # bandwidth (B/s) or latency (s)
    incarnation: int | None = None  # only this instance meets it (a partition of one host)

    def applies(self, op: str, now: float, incarnation: int | None = None) -> bool:
        if now < self.start or (self.end is not None and now >= self.end):
            return False
        if self.incarnation is not None and incarnation != self.incarnation:
            return False
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.ops is not None:
            return op in self.ops
        return op.startswith(self.kind.split(".")[0].replace("disk", "local") + ".")


_Failure = tuple[BaseException, "StorageFault"]


@dataclass
class CrashPoint:
    """``crash: {at, nth}``: armed when its timeline entry fires, counting from then;
    ``crash: {ordinal}`` (``step`` None): the run's step of that number, counted from the start."""

    step: str | None
    nth: int
    local_disk: Literal["wiped", "kept"]
    entry: int
    host_lost: bool = False  # the host lost power, not just the process (``lose: host``)
    ordinal: int | None = None
    seen: int = 0

    def reached(self, op: str, ordinal: int) -> bool:
        """Whether the step ``op``, the run's step number ``ordinal``, is this point."""
        if self.step is None:
            return ordinal == self.ordinal
        if self.step != op:
            return False
        self.seen += 1
        return self.seen == self.nth


@dataclass(frozen=True)
class StepStart:
    """A persistence step as it starts (before its time, faults and crash points)."""

    ordinal: int  # over the run, every instance, from 1
    t: float
    instance: str
    op: str
    key: str | None


#: Told of every persistence step of a run as it starts (``harness crash-points`` lists them);
#: a run's tasks inherit it from the caller of ``run_scenario``.
STEP_WATCHER: contextvars.ContextVar[Callable[[StepStart], None] | None] = contextvars.ContextVar(
    "spot_harness_step_watcher", default=None
)


class StorageModel:
    """The world's storage timing and faults, shared by every instance's hook."""

    def __init__(self, env: Env, history: History, now: Callable[[], float]) -> None:
        self.env = env
        self.history = history
        self.now = now
        self.faults: list[StorageFault] = []
        self.crash_points: list[CrashPoint] = []
        self.steps_started = 0  # the ordinal of the latest step (``crash: {ordinal}``)
        #: Called when a crash point ends an instance (set by the world).
        self.on_crash: Callable[[Instance, CrashPoint], None] = lambda instance, point: None

    def active(
        self, op: str, *kinds: FaultKind, incarnation: int | None = None
    ) -> list[StorageFault]:
        """The faults of ``kinds`` that a step ``op`` of instance ``incarnation`` meets now."""
        if not self.faults:
            return []  # most steps of most runs: no fault was ever injected
        now = self.now()
        return [f for f in self.faults if f.kind in kinds and f.applies(op, now, incarnation)]

    def duration(self, op: str, nbytes: int, incarnation: int | None = None) -> float:
        """Modelled seconds of one step of instance ``incarnation``, with the active slow-downs."""

        # The faults this step meets, found once (``applies`` only reads), then taken by kind.
        meeting = self.active(op, *_SLOWING, incarnation=incarnation)

        def active(kind: FaultKind) -> list[StorageFault]:
            return [f for f in meeting if f.kind == kind]

        if op.startswith("s3."):
            s3 = self.env.s3
            rate = s3.download if op == "s3.get_object" else s3.upload
            latency = s3.latency + sum(f.value for f in active("s3.latency"))
            rate = min([rate, *(f.value for f in active("s3.bandwidth"))])
            moving = nbytes if op in _S3_WRITES or op == "s3.get_object" else 0
            return latency + moving / rate
        if op.startswith("redis."):
            return self.env.redis.latency + sum(f.value for f in active("redis.latency"))
        disk = self.env.disk
        latency = disk.latency + sum(f.value for f in active("disk.latency"))
        if op in ("local.fsync", "local.fsync_dir"):
            return latency + disk.fsync
        rate = disk.read if op == "local.read" else disk.write
        rate = min([rate, *(f.value for f in active("disk.bandwidth"))])
        moving = nbytes if op in ("local.write", "local.read") else 0
        return latency + moving / rate

    def failure(self, op: str, incarnation: int | None = None) -> _Failure | None:
        """The error an active fault makes this step of instance ``incarnation`` raise, if any
        (consumes a ``count``)."""
        kinds: tuple[FaultKind, ...] = ("s3.outage", "s3.error", "redis.down", "disk.full")
        for fault in self.active(op, *kinds, incarnation=incarnation):
            if fault.kind == "disk.full" and op != "local.write":
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
            return _error_for(fault, op), fault
        return None


def _error_for(fault: StorageFault, op: str) -> BaseException:
    if fault.kind == "s3.error":
        return s3_client_error(fault.code or "InternalError", op)
    if fault.kind == "s3.outage":
        return EndpointConnectionError(endpoint_url="https://s3.us-east-1.amazonaws.com")
    if fault.kind == "redis.down":
        return redis.exceptions.ConnectionError(
            "Error 111 connecting to redis:6379. Connection refused."
        )
    return OSError(errno.ENOSPC, "No space left on device")


#: The hook of the instance whose code is running (set in each instance's task; tasks and
#: blocking calls it starts inherit it). Requests made outside any instance are not observed.
CURRENT_HOOK: contextvars.ContextVar[SimIoHook | None] = contextvars.ContextVar(
    "spot_harness_instance_hook", default=None
)


class SimIoHook:
    """One simulated instance's storage seam.

    The harness observes every S3 request and Redis command an instance makes through the clients
    it was handed (:mod:`harness.sim.observe`), and every step of the bundled local-disk helper
    (through this hook, as there is no seam on plain file I/O). Each such step is timed by the
    storage model, meets the active faults and crash points, and is recorded as ``storage.op``
    once it took effect (or failed).

    Targets never need to call the hook. The bundled runtime still does before its S3 requests,
    to declare the nominal size of compact simulated content (a size hint, nothing else), and
    for multipart parts that exist only in the time model (``physical=False``).
    """

    def __init__(self, model: StorageModel, instance: Instance) -> None:
        self.model = model
        self.instance = instance
        self._hints: dict[tuple[str, str | None], int] = {}

    async def __call__(
        self, op: str, *, nbytes: int = 0, key: str | None = None, physical: bool = True
    ) -> None:
        self._alive()
        if op.startswith(("s3.", "redis.")) and physical:
            if op.startswith("s3."):
                self._hints[(op, key)] = nbytes  # the request itself is observed
            return
        await self.before_async(op, key, nbytes)
        if op.startswith("local."):
            self.instance.page_cache.note(op, key)
        self.record(op, key, nbytes, ok=True, observed="hook" if physical else "model")

    # -- the seam ------------------------------------------------------------------------------
    def _alive(self) -> None:
        if not self.instance.alive or self.instance.exited:
            raise InstanceCrash("the instance is gone")

    def _prepare(self, op: str, key: str | None, nbytes: int) -> tuple[float, _Failure | None]:
        self._alive()
        self._crash_point(op, key)
        incarnation = self.instance.incarnation
        return self.model.duration(op, nbytes, incarnation), self.model.failure(op, incarnation)

    def _settle(self, op: str, key: str | None, nbytes: int, failure: _Failure | None) -> None:
        self._alive()
        if failure is not None:
            error, fault = failure
            self.record(op, key, nbytes, ok=False, error=_describe(error), fault=fault.id)
            raise error

    async def before_async(self, op: str, key: str | None, nbytes: int) -> None:
        """Before a step made from a coroutine: crash point, modelled time, injected fault."""
        wait, failure = self._prepare(op, key, nbytes)
        await self.instance.clock.sleep(wait)
        self._settle(op, key, nbytes, failure)

    def before_blocking(self, op: str, key: str | None, nbytes: int) -> int:
        """The same before a blocking request (boto3). In a call handed to the executor
        (``asyncio.to_thread``) the call is suspended for the modelled time while the world goes
        on; made directly on the loop it holds the whole simulated process for that long, as it
        would for real. Returns the bytes the step moves (with the runtime's size hint)."""
        nbytes = max(nbytes, self._hints.pop((op, key), 0))
        wait, failure = self._prepare(op, key, nbytes)
        self.wait_blocking(wait)
        self._settle(op, key, nbytes, failure)
        return nbytes

    def wait_blocking(self, seconds: float) -> None:
        if seconds <= 0 or suspend(seconds):
            self._alive()
            return
        loop = asyncio.get_running_loop()
        if not isinstance(loop, VirtualEventLoop):
            return
        instance = self.instance
        if not loop.block(seconds, stop=lambda: not instance.alive):
            raise InstanceCrash("killed during a blocking call")

    def _crash_point(self, op: str, key: str | None) -> None:
        model = self.model
        model.steps_started += 1
        ordinal = model.steps_started
        watcher = STEP_WATCHER.get()
        if watcher is not None:
            watcher(StepStart(ordinal, model.now(), self.instance.instance_id, op, key))
        for point in model.crash_points:
            if point.reached(op, ordinal):
                model.crash_points.remove(point)
                self.record(op, key, 0, ok=False, error="crash", fault=f"crash@{op}")
                model.on_crash(self.instance, point)
                which = f"call {point.nth}" if point.step is not None else f"step {ordinal}"
                raise InstanceCrash(f"crash before {op} ({which})")

    def record(self, op: str, key: str | None, nbytes: int, **outcome: Any) -> None:
        """One ``storage.op`` event: what the step was, and how it ended."""
        self.model.history.record(
            "storage",
            Kind.STORAGE_OP,
            self.instance.instance_id,
            op=op,
            key=key,
            bytes=nbytes,
            **outcome,
        )


def _describe(error: BaseException) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return f"{type(error).__name__}: {error}"
