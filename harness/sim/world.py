"""The simulated world of one run: instances, their metadata servers, storage, faults, the end.

One :class:`World` per run, inside a :class:`~harness.clock.VirtualEventLoop`. It boots instance
incarnations (each an asyncio task calling the target with an
:class:`~harness.target.InstanceContext`), gives each its own fake metadata server (notices are
per instance, as on a real cloud) and local dir, and takes them away: at a notice's deadline, on
a hard kill or at a crash point. A terminate wipes the local dir; a stop, a hibernation or a
process crash keeps it, and the next incarnation is the same machine coming back. The next
incarnation boots ``env.replacement.delay`` after the previous one is gone, until the job
completes or the time budget ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import random
import shutil
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, cast

import fakeredis

from fake_imds.aws import AwsOptions
from fake_imds.server import FakeImds
from harness.checks.golden import sha256_digest
from harness.clock import LoopClock, SkewedClock, VirtualEventLoop
from harness.history import HARNESS_KINDS, History, Kind
from harness.scenario.model import Cloud, Scenario
from harness.sim.iohook import CURRENT_HOOK, CrashPoint, SimIoHook, StorageModel
from harness.sim.metadata import ImdsFaults, record_imds_changes
from harness.sim.observe import ObservedRedis
from harness.sim.pagecache import PageCache
from harness.target import InstanceContext, Target

LocalDisk = Literal["wiped", "kept"]
EndReason = Literal["completed", "budget", "gave_up", "error"]


#: At the end of a run, how often and how long (virtual seconds) to wait for tasks to stop.
STOP_ATTEMPTS = 3
STOP_PATIENCE = 60.0

#: How long an instance may keep running after it reported ``job.completed``.
COMPLETION_GRACE = 600.0


@dataclass(eq=False)
class Instance:
    """One incarnation of the target on one (simulated) machine."""

    incarnation: int
    instance_id: str
    cloud: Cloud
    local_dir: Path
    local_name: str  # the local dir as the history names it (stable across runs)
    clock: SkewedClock
    imds: FakeImds
    ctx: InstanceContext | None = None
    task: asyncio.Task[None] | None = None
    webhook_url: str | None = None
    alive: bool = True
    doomed: bool = False  # a notice will end it
    superseded: bool = False  # an overlap keeps it running past its end
    overlap_for: float = 0.0  # how long it outlives its replacement's boot, when superseded
    superseded_disk: LocalDisk = "wiped"
    superseded_action: str | None = None
    page_cache: PageCache = field(init=False)
    #: The process has ended (exit or kill): nothing of it may act any more, even while the
    #: machine itself stays up until a notice's deadline.
    exited: bool = False
    #: Tasks the target started (its process's other coroutines); they end with the process.
    #: A dict, in the order they started: a set of tasks iterates in the order of their memory
    #: addresses, and the order they are cancelled in is the order their handlers run.
    tasks: dict[asyncio.Task[Any], None] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.page_cache = PageCache(self.local_dir)


class World:
    """Everything one run owns. Create inside the running virtual loop."""

    def __init__(
        self,
        scenario: Scenario,
        target: Target,
        history: History,
        *,
        s3_client: Any,
        bucket: str,
        root: Path,
    ) -> None:
        self.scenario = scenario
        self.env = scenario.env
        self.target = target
        self.history = history
        self.loop = asyncio.get_running_loop()
        self.cloud_clock = LoopClock(self.loop)
        self.s3_client = s3_client
        self.bucket = bucket
        self.root = root
        self.random = random.Random(scenario.seed)
        self.redis_server = fakeredis.FakeServer()
        self.admin_redis = fakeredis.FakeAsyncRedis(server=self.redis_server)
        self.storage = StorageModel(self.env, history, self.loop.time)
        self.storage.on_crash = self._crashed
        self.instances: list[Instance] = []
        self.skew = 0.0
        self.imds_faults = ImdsFaults(self.now)
        self.overlap: float | None = None
        self.done = asyncio.Event()
        self.end_reason: EndReason | None = None
        self.completed_by: Instance | None = None
        self.error: BaseException | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._closing: dict[asyncio.Task[None], None] = {}  # in start order (see tasks)
        # The world's own context, outside every simulated process: its timers and tasks run
        # in a copy of it, never in the context of the instance whose event happened to
        # schedule them (a task started there would belong to that instance's process and end
        # with it: a replacement booted from a zombie's trigger died with the zombie).
        self._world_vars = contextvars.copy_context()
        #: The grace period a Kubernetes target is told (a foreign notice landing on one takes it).
        self.grace_period = _first_grace(scenario)
        history.subscribe(self._watch)
        self.loop.set_exception_handler(self._unhandled)
        self.loop.set_task_factory(_owned_task)

    # -- helpers ------------------------------------------------------------------------------
    def now(self) -> float:
        return self.loop.time()

    def later(self, delay: float, callback: Callable[..., None], *args: Any) -> None:
        """Run ``callback`` ``delay`` seconds from now; errors end the run instead of vanishing.

        The world's timers are external to the simulated processes: they fire on time even
        while a process holds the loop in a blocking call (``VirtualEventLoop.block``)."""
        when = max(0.0, delay)
        context = self._world_vars.copy()
        if isinstance(self.loop, VirtualEventLoop):
            handle = self.loop.call_later_external(
                when, self._guarded, callback, args, context=context
            )
        else:
            handle = self.loop.call_later(when, self._guarded, callback, args, context=context)
        self._timers.append(handle)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task of the world (not of any instance's process), kept until it
        ends so the run's end can wait for it."""
        task = self.loop.create_task(coro, context=self._world_vars.copy())
        self._closing[task] = None
        task.add_done_callback(lambda done: self._closing.pop(done, None))

    def _guarded(self, callback: Callable[..., None], args: tuple[Any, ...]) -> None:
        try:
            callback(*args)
        except Exception as error:  # a harness bug: stop the run and report it
            self.fail(error)

    def fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self.finish("error")

    def finish(self, reason: EndReason) -> None:
        if self.end_reason is None:
            self.end_reason = reason
            self.done.set()

    def record(self, kind: str, instance: Instance | None = None, **data: Any) -> None:
        self.history.record("harness", kind, instance.instance_id if instance else None, **data)

    @property
    def current(self) -> Instance | None:
        """The newest instance that is up and not superseded."""
        for instance in reversed(self.instances):
            if instance.alive and not instance.superseded:
                return instance
        return None

    def live(self) -> list[Instance]:
        return [i for i in self.instances if i.alive]

    # -- booting ------------------------------------------------------------------------------
    async def boot(self, previous: Instance | None = None) -> Instance | None:
        """Start the next incarnation (the same machine as ``previous`` if its disk was kept)."""
        if self.end_reason is not None:
            return None
        incarnation = len(self.instances) + 1
        if incarnation > self.env.max_instances:
            self.record("run.gave_up", reason=f"{self.env.max_instances} instances")
            self.finish("gave_up")
            return None
        cloud = self.env.cloud_for(incarnation)
        # Every incarnation has its own id (the history tells them apart by it); a machine that
        # comes back after a stop or a crash keeps its local dir.
        instance_id = f"i-{self.random.getrandbits(68):017x}"
        local_dir = previous.local_dir if previous is not None else self.root / instance_id
        local_name = previous.local_name if previous is not None else f"local/{instance_id}"
        local_dir.mkdir(parents=True, exist_ok=True)
        identity = {**self.env.aws.changes(), "instance_id": instance_id}
        identity["asg_state"] = self._asg_state
        imds = FakeImds(
            "127.0.0.1",
            0,
            clock=self.cloud_clock,
            imdsv2=self.env.imdsv2,
            seed=self.scenario.seed,
            options={"aws": AwsOptions(**identity)},
        )
        await imds.start()
        clock = SkewedClock(self.cloud_clock, self.skew)
        instance = Instance(incarnation, instance_id, cloud, local_dir, local_name, clock, imds)
        self.instances.append(instance)
        record_imds_changes(
            self.history, instance.imds.plane, instance.instance_id, lambda: instance.alive
        )
        self.imds_faults.apply(instance.imds.plane)
        instance.ctx = self._context(instance)
        self.record(
            Kind.INSTANCE_STARTED,
            instance,
            incarnation=incarnation,
            cloud=cloud,
            local_dir=instance.local_name,
        )
        instance.task = self.loop.create_task(
            self._live(instance), name=instance_id, context=self._world_vars.copy()
        )
        return instance

    @property
    def _asg_state(self) -> str | None:
        """``InService`` when the story ends an instance through its Auto Scaling group (such an
        instance is in one from the start), else None: in no group, the path is 404."""
        for entry in self.scenario.timeline:
            notice = entry.notice
            if notice is not None and notice.kind == "asg-termination":
                return "InService"
        return None

    def _context(self, instance: Instance) -> InstanceContext:
        def register_webhook(url: str) -> None:
            instance.webhook_url = url

        hook = SimIoHook(self.storage, instance)
        redis = ObservedRedis(server=self.redis_server)
        redis.harness_hook = hook
        return InstanceContext(
            instance_id=instance.instance_id,
            incarnation=instance.incarnation,
            cloud=instance.cloud,
            clock=instance.clock,
            imds_url=instance.imds.url,
            bucket=self.bucket,
            local_dir=instance.local_dir,
            job=MappingProxyType(dict(self.scenario.job)),
            emit=lambda kind, **data: self._emit(instance, kind, data),
            s3_client=self.s3_client,
            redis=redis,
            io_hook=hook,
            extra={"register_webhook": register_webhook, "grace_period": self.grace_period},
        )

    def _emit(self, instance: Instance, kind: str, data: dict[str, Any]) -> None:
        if not instance.alive or instance.exited:
            return  # a dead process reports nothing
        if str(kind) in HARNESS_KINDS:
            return  # the harness's own evidence is never taken from the target
        self.history.record("target", str(kind), instance.instance_id, **_jsonable(data))

    async def _live(self, instance: Instance) -> None:
        assert instance.ctx is not None
        # This task's context: every task and blocking call the target starts inherits it, so
        # the harness knows which instance each storage request comes from.
        CURRENT_HOOK.set(cast(SimIoHook, instance.ctx.io_hook))
        error: BaseException | None = None
        try:
            await self.target(instance.ctx)
        except BaseException as caught:  # exits, crashes, cancellation, the target's own bugs
            if isinstance(caught, KeyboardInterrupt) and user_interrupted():
                raise  # the person running the harness pressed Ctrl-C
            error = caught
        if not instance.alive:
            return  # killed: the kill recorded it
        self._end_process(instance)
        code, why = exit_status(error)
        self.record_local(instance)
        self.record(Kind.INSTANCE_EXITED, instance, code=code, clean=code == 0, error=why)
        self._exited(instance)

    def _end_process(self, instance: Instance) -> None:
        """The process is gone: every task it started ends with it, as at a real exit."""
        instance.exited = True
        current = _current_task()
        for task in list(instance.tasks):
            if task is not current and task is not instance.task:
                task.cancel()

    def record_local(self, instance: Instance) -> None:
        """What the instance's local dir holds now (at a kill or an exit), read by the harness."""
        files = {
            path.relative_to(instance.local_dir).as_posix(): sha256_digest(path.read_bytes())
            for path in sorted(instance.local_dir.rglob("*"))
            if path.is_file()
        }
        self.record(Kind.LOCAL_SNAPSHOT, instance, local_dir=instance.local_name, files=files)

    def _unhandled(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """An error no one awaited (a target's background task): into the history, where the
        checks and the report see it, instead of a traceback on the terminal."""
        error = context.get("exception")
        self.record(
            Kind.UNHANDLED_ERROR,
            None,
            message=str(context.get("message", "")),
            error=None if error is None else f"{type(error).__name__}: {error}",
        )

    def _exited(self, instance: Instance) -> None:
        """The process ended by itself: the instance stays until its notice's deadline, if any."""
        if self.completed_by is not None:
            if self.completed_by is instance or not self._working(besides=instance):
                self.finish("completed")
            return
        if instance.doomed or instance.superseded:
            return
        instance.alive = False
        self._close_later(instance)
        self.later(self.env.replacement.delay, self._boot_soon, None)

    def _working(self, besides: Instance | None = None) -> bool:
        """Whether any live instance other than ``besides`` is still running its target."""
        return any(
            i.task is not None and not i.task.done() for i in self.live() if i is not besides
        )

    def _boot_soon(self, previous: Instance | None) -> None:
        self.spawn(self._boot_guarded(previous))

    async def _boot_guarded(self, previous: Instance | None) -> None:
        try:
            instance = await self.boot(previous)
        except Exception as error:
            self.fail(error)
            return
        if instance is not None:
            self._end_superseded(instance)

    # -- ending instances ---------------------------------------------------------------------
    def kill(
        self,
        instance: Instance,
        reason: str,
        local_disk: LocalDisk,
        action: str | None = None,
        *,
        host_lost: bool = False,
    ) -> None:
        """The instance is gone now (``reason``: deadline, hard_kill, crash). ``host_lost``: the
        machine lost power, so a kept disk keeps only what was fsynced (see ``pagecache``)."""
        if not instance.alive or self.end_reason is not None:
            return
        if self.overlap is not None and not instance.superseded and reason != "crash":
            self._supersede(instance, reason, local_disk, action)
            return
        self._take_down(instance, reason, local_disk, action, host_lost=host_lost)
        if self.completed_by is not None:
            if not self._working():
                self.finish("completed")
            return
        if self.current is None and not instance.superseded:
            previous = instance if local_disk == "kept" else None
            self.later(self.env.replacement.delay, self._boot_soon, previous)

    def _take_down(
        self,
        instance: Instance,
        reason: str,
        local_disk: LocalDisk,
        action: str | None,
        *,
        host_lost: bool = False,
    ) -> None:
        instance.alive = False
        if instance.task is not None and instance.task is not _current_task():
            instance.task.cancel()
        self._end_process(instance)
        if host_lost and local_disk == "kept":
            lost = instance.page_cache.lose(self.random)
            if lost:
                self.record(Kind.LOCAL_UNSYNCED_LOST, instance, files=lost)
        self.record_local(instance)
        if local_disk == "wiped":
            shutil.rmtree(instance.local_dir, ignore_errors=True)
        self.record(
            Kind.INSTANCE_KILLED,
            instance,
            reason=reason,
            action=action or (reason if reason in ("crash", "hard_kill") else None),
            local_disk=local_disk,
            local_wiped=local_disk == "wiped",
        )
        self._close_later(instance)

    def _supersede(
        self, instance: Instance, reason: str, local_disk: LocalDisk, action: str | None
    ) -> None:
        """Overlap: the instance keeps running; its replacement boots; it ends later."""
        assert self.overlap is not None
        instance.superseded = True
        instance.overlap_for, self.overlap = self.overlap, None
        instance.superseded_disk = local_disk
        instance.superseded_action = action
        self.record("instance.superseded", instance, reason=reason, overlap=instance.overlap_for)
        self.later(self.env.replacement.delay, self._boot_soon, None)

    def _end_superseded(self, replacement: Instance) -> None:
        """Superseded instances end ``overlap_for`` after their replacement has booted."""
        for old in self.instances:
            if old.superseded and old.alive and old is not replacement:
                self.later(old.overlap_for, self._end_overlap, old)

    def _end_overlap(self, old: Instance) -> None:
        if old.alive:
            self._take_down(old, "superseded", old.superseded_disk, old.superseded_action)

    def _crashed(self, instance: Instance, point: CrashPoint) -> None:
        self.kill(instance, "crash", point.local_disk, host_lost=point.host_lost)

    def _close_later(self, instance: Instance) -> None:
        self.spawn(self._close(instance))

    async def _close(self, instance: Instance) -> None:
        await instance.imds.close()
        if instance.ctx is not None:
            with contextlib.suppress(Exception):
                await instance.ctx.redis.aclose()

    # -- watching the history -----------------------------------------------------------------
    def _watch(self, event: Any) -> None:
        if event.kind == Kind.JOB_COMPLETED and self.completed_by is None:
            self.completed_by = next(
                (i for i in self.instances if i.instance_id == event.instance and i.alive), None
            )
            if self.completed_by is not None:
                self.later(COMPLETION_GRACE, self.finish, "completed")

    # -- imds faults --------------------------------------------------------------------------
    def add_imds_fault(self, duration: float | None, params: dict[str, Any]) -> None:
        self.imds_faults.add(duration, params, (i.imds.plane for i in self.live()))

    def set_skew(self, skew: float) -> None:
        self.skew = skew
        for instance in self.instances:
            instance.clock.offset = skew

    # -- lifecycle ----------------------------------------------------------------------------
    async def shutdown(self) -> None:
        """Stop everything still running; leave storage as it is for the snapshot."""
        for timer in self._timers:
            timer.cancel()
        running = {i.task: i for i in self.instances if i.task is not None and not i.task.done()}
        still_open = self.live()  # the others were closed when they died (``_close_later``)
        for instance in still_open:
            instance.alive = False
            self._end_process(instance)
        pending = list(running)  # cancelled in the order the instances started, every time
        for _ in range(STOP_ATTEMPTS):
            if not pending:
                break
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=STOP_PATIENCE)
            pending = [task for task in pending if not task.done()]
        for task in pending:  # a target that swallows cancellation: leave it, say so
            self.record("instance.unkillable", running[task], attempts=STOP_ATTEMPTS)
        for instance in still_open:
            with contextlib.suppress(Exception):
                await self._close(instance)
        while self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        self.redis_server.connected = True

    def local_dirs(self) -> dict[str, Path]:
        """History name -> real path of every incarnation's local dir."""
        return {i.local_name: i.local_dir for i in self.instances}


_interrupted_by_user = False


def note_user_interrupt() -> None:
    """The person running the harness pressed Ctrl-C (set by the runner's SIGINT handler)."""
    global _interrupted_by_user
    _interrupted_by_user = True


def user_interrupted() -> bool:
    return _interrupted_by_user


def exit_status(error: BaseException | None) -> tuple[int, str | None]:
    """A target's end as a process exit: ``(code, what ended it)``. ``sys.exit(n)`` exits with
    ``n`` (a non-integer code with 1, as Python does), Ctrl-C with 130, an exception with 1."""
    if error is None or isinstance(error, asyncio.CancelledError):
        return 0, None
    if isinstance(error, SystemExit):
        code = error.code
        if code is None:
            return 0, "SystemExit"
        return (code if isinstance(code, int) else 1), f"SystemExit: {code}"
    if isinstance(error, KeyboardInterrupt):
        return 130, "KeyboardInterrupt"
    return 1, f"{type(error).__name__}: {error}"


def _owned_task(
    loop: asyncio.AbstractEventLoop, coro: Any, *, context: Any = None, **kwargs: Any
) -> asyncio.Task[Any]:
    """The loop's task factory: a task started from an instance's code belongs to that
    instance's process (see ``World._end_process``)."""
    task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, context=context, **kwargs)
    hook = context.get(CURRENT_HOOK) if context is not None else CURRENT_HOOK.get()
    if hook is not None:
        owner = hook.instance
        owner.tasks[task] = None
        task.add_done_callback(lambda done: owner.tasks.pop(done, None))
    return task


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


def _first_grace(scenario: Scenario) -> float:
    """The grace period a Kubernetes target is told about (its first eviction's, or 30 s)."""
    for entry in scenario.timeline:
        notice = entry.notice
        if notice is not None and notice.resolved_cloud(scenario.env.cloud) == "kubernetes":
            return notice.resolved_lead(scenario.env.cloud)
    return 30.0


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    """Event data as JSON would give it back (paths and tuples become strings and lists)."""
    try:
        plain: dict[str, Any] = _plain_json(data)  # most reports: no text round trip needed
        return plain
    except (_NotPlain, RecursionError):
        pass
    try:
        text = json.dumps(data, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = json.dumps({k: repr(v) for k, v in data.items()}, sort_keys=True)
    decoded: dict[str, Any] = json.loads(text)
    return decoded


class _NotPlain(Exception):
    """A value :func:`_plain_json` leaves to the JSON round trip."""


_PLAIN_TYPES = frozenset({str, int, float, bool, type(None)})


def _plain_json(value: Any) -> Any:
    """What ``json.loads(json.dumps(value, sort_keys=True))`` gives for a value made only of
    plain scalars, lists, tuples and string-keyed dicts (keys sorted, tuples as lists), without
    the text; raises :class:`_NotPlain` for anything else (a path, an enum, an int-keyed dict)."""
    kind = type(value)
    if kind in _PLAIN_TYPES:
        return value
    if kind is list or kind is tuple:
        return [_plain_json(item) for item in value]
    if kind is dict and all(type(key) is str for key in value):
        return {key: _plain_json(value[key]) for key in sorted(value)}
    raise _NotPlain
