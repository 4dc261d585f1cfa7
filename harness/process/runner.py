"""Run a scenario whose target is a command: real processes, real signals, real time.

Public API::

    problems = process_problems(scenario, max_real_time)       # empty when it can run
    result = run_process_scenario(scenario, base_dir=Path("scenarios/process"))
    result.status        # passed | failed | unverified | xfailed | xpassed | error

Per run the harness starts a moto server holding the scenario's (versioned) bucket, a Redis
(fakeredis' TCP server, or ``redis-server`` with ``redis="real"``) and a watchdog; per
incarnation a fake metadata server, an S3 proxy, a Redis proxy and a local directory. The
target gets them through its environment (:func:`target_environment`). The timeline acts on the
real process group: notices appear in its metadata server, a platform's SIGTERM, SIGKILL at the
deadline, SIGSTOP for hibernation, the local directory wiped on terminate; the next incarnation
starts after the replacement delay. The history records what the harness did and what the
proxies saw; the checks judge it with the final storage state and the golden, an uninterrupted
run of the same command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fake_imds.aws import AwsOptions
from fake_imds.control import schedule_notice
from fake_imds.gcp import soft_off_at
from fake_imds.server import FakeImds
from harness.checks import Golden, StorageSnapshot, golden_from_run, take_snapshot
from harness.history import Event, History, Kind, record_fault
from harness.process.faults import ActiveFault, FaultBook
from harness.process.instance import EVENTS_POLL, ProcessInstance
from harness.process.netns import METADATA_IP, NamespaceRefused, NetworkNamespace
from harness.process.plan import DEFAULT_MAX_REAL_TIME, process_problems
from harness.process.redisproxy import RedisProxy
from harness.process.s3proxy import S3Proxy
from harness.process.servers import (
    DUMMY_CREDENTIALS,
    REGION,
    MotoS3,
    RedisBackend,
    RedisKind,
    Watchdog,
)
from harness.process.timescale import RunClock
from harness.process.verdict import judge
from harness.scenario.model import (
    Crash,
    ImdsFault,
    Kill,
    Notice,
    OnTrigger,
    RedisFault,
    S3Fault,
    Scenario,
)
from harness.sim.metadata import ImdsFaults, record_imds_changes
from harness.sim.runner import RunResult
from harness.sim.s3 import corrupt_and_record

EndReason = Literal["completed", "budget", "gave_up", "error"]
LocalDisk = Literal["wiped", "kept"]
#: Environment variables never inherited by a target: real credentials and endpoints.
_SCRUBBED = re.compile(r"^(AWS_|BOTO_|GCE_|GOOGLE_|AZURE_|REDIS_URL$|HARNESS_)")
_PYTHONS = ("python", "python3")
_LOCAL_HOSTS = "127.0.0.1,localhost,169.254.169.254,metadata.google.internal"


class ProcessRunError(RuntimeError):
    """The run could not be played (a target that never became ready, a server that failed)."""


@dataclass(frozen=True)
class ProcessOptions:
    """How process runs are played (``harness run --redis``, ``--max-real-time``)."""

    redis: RedisKind = "fake"
    max_real_time: float = DEFAULT_MAX_REAL_TIME
    #: The process's clock runs this many times faster (libfaketime); see ``timescale``.
    time_scale: float = 1.0


def run_process_scenario(
    scenario: Scenario,
    *,
    seed: int | None = None,
    base_dir: Path | None = None,
    options: ProcessOptions | None = None,
    golden: Golden | None = None,
) -> RunResult:
    """Play ``scenario`` (a ``command:`` target) with real processes; see the module doc."""
    scenario = scenario.with_seed(seed)
    options = options or ProcessOptions()
    base = (base_dir or Path.cwd()).resolve()
    started = time.perf_counter()
    problems = process_problems(scenario, options.max_real_time, options.time_scale)
    if problems:
        return _error(scenario, started, ProcessRunError("; ".join(problems)))
    try:
        expected = golden or (
            _golden(scenario, base, options) if _needs_golden(scenario) else Golden()
        )
        result = asyncio.run(_play(scenario, base, options, expected))
    except ProcessRunError as error:
        return _error(scenario, started, error)
    return result


_GOLDENS: dict[str, Golden] = {}
#: Checks that compare with the golden; without them no uninterrupted run is made.
_GOLDEN_CHECKS = frozenset({"exactly_once", "resume_correct", "completes"})


def _needs_golden(scenario: Scenario) -> bool:
    return any(spec.name in _GOLDEN_CHECKS for spec in scenario.expect)


def _golden(scenario: Scenario, base: Path, options: ProcessOptions) -> Golden:
    """The outcome of an uninterrupted run of the same command (cached per command and job)."""
    target = scenario.target
    key = json.dumps(
        [target.model_dump(mode="json"), scenario.job, scenario.env.cloud, str(base)],
        sort_keys=True,
        default=str,
    )
    if key not in _GOLDENS:
        calm = scenario.model_copy(update={"timeline": (), "expect": ()})
        result = asyncio.run(_play(calm, base, options, Golden()))
        if result.error is not None or result.snapshot is None:
            raise ProcessRunError(f"the uninterrupted (golden) run failed: {result.error}")
        if result.end_reason != "completed":
            exits = result.history.of_kind(Kind.INSTANCE_EXITED)
            said = " | ".join(exits[-1].data.get("output_tail") or ()) if exits else ""
            raise ProcessRunError(
                f"the uninterrupted (golden) run did not complete ({result.end_reason}, "
                f"{len(exits)} exit(s)): the command must exit 0 when its job is done within "
                f"env.budget; its last output: {said or '(none)'}"
            )
        _GOLDENS[key] = golden_from_run(result.history, result.snapshot)
    return _GOLDENS[key]


def _error(scenario: Scenario, started: float, error: BaseException) -> RunResult:
    return RunResult(
        scenario=scenario,
        history=History(lambda: 0.0),
        checks=(),
        end_reason="error",
        sim_seconds=0.0,
        wall_seconds=time.perf_counter() - started,
        error=f"{type(error).__name__}: {error}",
    )


async def _play(
    scenario: Scenario, base: Path, options: ProcessOptions, golden: Golden
) -> RunResult:
    started_wall = time.perf_counter()
    clock = RunClock(options.time_scale)
    history = History(clock.monotonic)
    with tempfile.TemporaryDirectory(prefix="spot-harness-proc-") as scratch:
        root = Path(scratch)
        watchdog = Watchdog()
        moto: MotoS3 | None = None
        redis: RedisBackend | None = None
        world: ProcessWorld | None = None
        netns: NetworkNamespace | None = None
        try:
            if scenario.target.network == "namespace":
                netns = NetworkNamespace()
            moto = await asyncio.to_thread(MotoS3)
            bucket = f"spot-harness-{secrets.token_hex(6)}"  # moto's bucket names are global
            await asyncio.to_thread(moto.create_bucket, bucket)
            redis = RedisBackend(redis_kind(scenario, options), root, watchdog)
            world = ProcessWorld(
                scenario,
                base,
                root,
                clock,
                history,
                moto,
                bucket,
                redis,
                watchdog,
                max_real_time=options.max_real_time,
                netns=netns,
            )
            await world.run()
            snapshot = await _snapshot(world)
        except (ProcessRunError, NamespaceRefused) as error:
            raise ProcessRunError(str(error)) from None
        except Exception as error:
            if world is not None:
                await world.shutdown()
            raise ProcessRunError(f"{type(error).__name__}: {error}") from error
        finally:
            if netns is not None:
                await netns.stop_relays()
                netns.close()
            if redis is not None:
                redis.stop()
            if moto is not None:
                if world is not None:
                    moto.drop_bucket(world.bucket)
                await asyncio.to_thread(moto.stop)
            watchdog.close()
    if world.error is not None:  # keep what happened: the journal shows it
        return RunResult(
            scenario=scenario,
            history=history,
            checks=(),
            end_reason="error",
            sim_seconds=clock.monotonic(),
            wall_seconds=time.perf_counter() - started_wall,
            snapshot=snapshot,
            error=f"{ProcessRunError.__name__}: {world.error}",
        )
    checks = judge(scenario, history, snapshot, golden)
    return RunResult(
        scenario=scenario,
        history=history,
        checks=checks,
        end_reason=world.end_reason or "error",
        sim_seconds=clock.monotonic(),
        wall_seconds=time.perf_counter() - started_wall,
        snapshot=snapshot,
    )


async def _snapshot(world: ProcessWorld) -> StorageSnapshot:
    admin = world.redis.client()
    try:
        return await take_snapshot(world.moto.client(), world.bucket, admin, world.local_dirs())
    finally:
        await admin.aclose()


@dataclass(frozen=True)
class Endpoints:
    """Where the target reaches its metadata server, S3 and Redis."""

    imds: str
    s3: str
    redis: str

    @classmethod
    def of(cls, instance: ProcessInstance) -> Endpoints:
        return cls(instance.imds.url, instance.s3.url, instance.redis.url)


def target_environment(
    instance: ProcessInstance,
    scenario: Scenario,
    bucket: str,
    base: dict[str, str],
    endpoints: Endpoints | None = None,
    clock: RunClock | None = None,
) -> dict[str, str]:
    """The documented environment contract of a command target (see docs/process.md)."""
    where = endpoints or Endpoints.of(instance)
    host = where.imds.removeprefix("http://")
    env = {k: v for k, v in base.items() if not _SCRUBBED.match(k)}
    env.update(DUMMY_CREDENTIALS)
    env.update(
        {
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,  # never a user's profile or real credentials
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": where.imds + "/",
            "AWS_ENDPOINT_URL": where.s3,
            "AWS_ENDPOINT_URL_S3": where.s3,
            "GCE_METADATA_HOST": host,
            "GCE_METADATA_IP": host,
            "HARNESS_IMDS_URL": where.imds,
            "HARNESS_CLOUD": instance.cloud,
            "REDIS_URL": where.redis,
            "HARNESS_BUCKET": bucket,
            "HARNESS_S3_BUCKET": bucket,
            "HARNESS_LOCAL_DIR": str(instance.local_dir),
            "HARNESS_JOB": json.dumps(scenario.job, sort_keys=True, default=str),
            "HARNESS_INSTANCE_ID": instance.instance_id,
            "HARNESS_INCARNATION": str(instance.incarnation),
            "HARNESS_EVENTS": str(instance.events_path),
            "PYTHONUNBUFFERED": "1",
        }
    )
    # Every endpoint is local: an HTTP(S)_PROXY of the host must not be asked for them.
    bypass = ",".join(filter(None, [base.get("NO_PROXY") or base.get("no_proxy"), _LOCAL_HOSTS]))
    env.update({"NO_PROXY": bypass, "no_proxy": bypass})
    env.update(clock.environment(base.get("LD_PRELOAD")) if clock is not None else {})
    env.update(scenario.target.env)
    return env


def redis_kind(scenario: Scenario, options: ProcessOptions) -> RedisKind:
    """A real redis-server when the run (``--redis real``) or the scenario
    (``env.redis.server: real``) asks for one, else fakeredis' TCP server."""
    return "real" if scenario.env.redis.server == "real" else options.redis


class ProcessWorld:
    """Everything one process run owns: instances, faults, the timeline, the end."""

    def __init__(
        self,
        scenario: Scenario,
        base: Path,
        root: Path,
        clock: RunClock,
        history: History,
        moto: MotoS3,
        bucket: str,
        redis: RedisBackend,
        watchdog: Watchdog,
        *,
        max_real_time: float = DEFAULT_MAX_REAL_TIME,
        netns: NetworkNamespace | None = None,
    ) -> None:
        self.scenario = scenario
        self.env = scenario.env
        self.target = scenario.target
        self.base = base
        self.root = root
        self.clock = clock
        self.history = history
        self.moto = moto
        self.bucket = bucket
        self.redis = redis
        self.watchdog = watchdog
        self.netns = netns
        self.loop = asyncio.get_running_loop()
        self.random = random.Random(scenario.seed)
        self.faults = FaultBook(clock.monotonic, clock.real)
        self.crash_points: list[tuple[Crash, int, list[int]]] = []
        self.imds_faults = ImdsFaults(self.now)
        self.instances: list[ProcessInstance] = []
        self.done = asyncio.Event()
        self.end_reason: EndReason | None = None
        self.error: str | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unsubscribes: list[Callable[[], None]] = []
        self._completed_by: str | None = None
        self.budget = min(self.env.budget, max_real_time * clock.scale)
        history.subscribe(self._watch_completion)

    # -- helpers ------------------------------------------------------------------------------
    def now(self) -> float:
        return self.clock.monotonic()

    def later(self, delay: float, callback: Callable[..., Any], *args: Any) -> None:
        real = self.clock.real(max(0.0, delay))
        self._timers.append(self.loop.call_later(real, self._guarded, callback, args))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.fail(task.exception())

    def _guarded(self, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            callback(*args)
        except Exception as error:
            self.fail(error)

    def fail(self, error: BaseException | str | None) -> None:
        if self.error is None:
            self.error = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self.finish("error")

    def finish(self, reason: EndReason) -> None:
        if self.end_reason is None:
            self.end_reason = reason
            self.done.set()

    def record(self, kind: str, instance: ProcessInstance | None = None, **data: Any) -> Event:
        if instance is not None:
            instance.read_events(self.history)  # what it wrote before this comes before this
        return self.history.record(
            "harness", kind, instance.instance_id if instance else None, **data
        )

    @property
    def current(self) -> ProcessInstance | None:
        for instance in reversed(self.instances):
            if instance.alive:
                return instance
        return None

    def local_dirs(self) -> dict[str, Path]:
        return {i.local_name: i.local_dir for i in self.instances}

    # -- the run ------------------------------------------------------------------------------
    async def run(self) -> None:
        self.history.record(
            "harness",
            Kind.RUN_STARTED,
            scenario=self.scenario.description,
            seed=self.scenario.seed,
            tier="process",
        )
        self._watch_timeline()
        if self.netns is not None:  # 169.254.169.254:80 in the namespace: the current instance's
            await self.netns.relay(METADATA_IP, 80, self._imds_address)
        self.later(self.budget, self.finish, "budget")
        try:
            first = await self.boot(None)
            if first is not None:
                await self._wait_ready(first)
                self._schedule_at()
            await self.done.wait()
        finally:
            self.record(Kind.RUN_FINISHED, reason=self.end_reason or "error")
            await self.shutdown()

    async def shutdown(self) -> None:
        for timer in self._timers:
            timer.cancel()
        for unsubscribe in self._unsubscribes:
            unsubscribe()
        self._unsubscribes.clear()
        for instance in self.instances:
            await self._close(instance)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _close(self, instance: ProcessInstance) -> None:
        """The instance's end: nothing of its process group survives it."""
        instance.alive = False
        if instance.closed:
            return
        instance.closed = True
        await instance.kill()
        if instance.pid is not None:
            self.watchdog.release(instance.pid)
        await instance.wait_output()
        instance.read_events(self.history)
        await instance.s3.close()
        await instance.redis.close()
        await instance.imds.close()

    # -- booting ------------------------------------------------------------------------------
    async def boot(self, previous: ProcessInstance | None) -> ProcessInstance | None:
        if self.end_reason is not None:
            return None
        incarnation = len(self.instances) + 1
        if incarnation > self.env.max_instances:
            self.record("run.gave_up", reason=f"{self.env.max_instances} instances")
            self.finish("gave_up")
            return None
        cloud = self.env.cloud_for(incarnation)
        instance_id = f"i-{self.random.getrandbits(68):017x}"
        if previous is not None:
            local_dir, local_name = previous.local_dir, previous.local_name
        else:
            local_dir, local_name = self.root / "local" / instance_id, f"local/{instance_id}"
        local_dir.mkdir(parents=True, exist_ok=True)
        imds = FakeImds(
            "127.0.0.1",
            0,
            clock=self.clock,
            imdsv2=self.env.imdsv2,
            seed=self.scenario.seed,
            options={"aws": AwsOptions(instance_id=instance_id)},
        )
        await imds.start()
        s3 = S3Proxy(self.moto.url, instance_id, self.history, self.faults, self._crash_hook)
        redis = RedisProxy(
            self.redis.open, instance_id, self.history, self.faults, self._crash_hook
        )
        await s3.start()
        await redis.start()
        (self.root / "events").mkdir(exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)
        instance = ProcessInstance(
            incarnation=incarnation,
            instance_id=instance_id,
            cloud=cloud,
            local_dir=local_dir,
            local_name=local_name,
            imds=imds,
            s3=s3,
            redis=redis,
            events_path=self.root / "events" / f"{instance_id}.jsonl",
            log_path=self.root / "logs" / f"{incarnation}-{instance_id}.log",
            clock_origin=self.clock.target_origin(),
            clock_now=self.clock.target_now,
        )
        self.instances.append(instance)
        instance.forget_imds_answers = record_imds_changes(
            self.history, instance.imds.plane, instance.instance_id, lambda: instance.alive
        )
        self.imds_faults.apply(instance.imds.plane)
        argv, endpoints = self._argv(), None
        if self.netns is not None:
            endpoints = await self._inside_namespace(instance)
            argv = self.netns.command(argv)
        env = target_environment(
            instance, self.scenario, self.bucket, dict(os.environ), endpoints, self.clock
        )
        try:
            await instance.spawn(argv, self._cwd(), env, self.watchdog)
        except OSError as error:
            raise ProcessRunError(
                f"cannot start {' '.join(self._argv())!r} in {self._cwd()}: {error.strerror}"
            ) from None
        self.record(
            Kind.INSTANCE_STARTED,
            instance,
            incarnation=incarnation,
            cloud=cloud,
            local_dir=local_name,
            pid=instance.pid,
        )
        self.spawn(self._follow(instance))
        return instance

    async def _inside_namespace(self, instance: ProcessInstance) -> Endpoints:
        """Relays in the namespace to this instance's proxies; the metadata server is at its
        real address there."""
        assert self.netns is not None
        s3 = _address(instance.s3.url)
        redis = _address(instance.redis.url)
        s3_port = await self.netns.relay("127.0.0.1", 0, lambda: s3)
        redis_port = await self.netns.relay("127.0.0.1", 0, lambda: redis)
        return Endpoints(
            f"http://{METADATA_IP}",
            f"http://127.0.0.1:{s3_port}",
            f"redis://127.0.0.1:{redis_port}/0",
        )

    def _imds_address(self) -> tuple[str, int]:
        current = self.current or (self.instances[-1] if self.instances else None)
        if current is None:
            return ("127.0.0.1", 9)  # nothing is up: the connection is refused
        return _address(current.imds.url)

    def _argv(self) -> list[str]:
        command = self.target.command
        assert command is not None
        argv = list(command)
        if argv[0] in _PYTHONS:
            argv[0] = self.target.python or sys.executable
        return argv

    def _cwd(self) -> Path:
        cwd = Path(self.target.cwd) if self.target.cwd else Path(".")
        return cwd if cwd.is_absolute() else (self.base / cwd).resolve()

    async def _wait_ready(self, instance: ProcessInstance) -> None:
        ready = self.target.ready
        if ready is None:
            return
        if ready.after is not None:
            await self.clock.sleep(ready.after)
            return
        seen = asyncio.Event()
        if ready.event is not None:
            kind = ready.event

            def on_event(event: Event) -> None:
                if event.kind == kind and event.instance == instance.instance_id:
                    seen.set()

            self._unsubscribes.append(self.history.subscribe(on_event))
        else:
            assert ready.log is not None
            pattern = re.compile(ready.log)
            instance.watch_lines(lambda line: seen.set() if pattern.search(line) else None)
        assert instance.process is not None
        waiter = asyncio.create_task(seen.wait())
        exited = asyncio.create_task(instance.process.wait())
        finished, _ = await asyncio.wait(
            {waiter, exited}, timeout=ready.timeout, return_when=asyncio.FIRST_COMPLETED
        )
        waiter.cancel()
        exited.cancel()
        if waiter in finished:
            return
        what = f"event {ready.event}" if ready.event else f"a line matching {ready.log!r}"
        code = instance.process.returncode
        why = (
            f"exited ({_describe_exit(code)}) before it was ready"
            if code is not None
            else f"was not ready within {ready.timeout:g}s"
        )
        await asyncio.sleep(0.1)  # let the last lines of its output arrive
        self.fail(
            f"the target {why} (waiting for {what}); its last output: "
            f"{' | '.join(instance.tail) or '(none)'}"
        )

    async def _follow(self, instance: ProcessInstance) -> None:
        """Read the process's events while it runs; handle its own exit."""
        assert instance.process is not None
        while instance.process.returncode is None:
            instance.read_events(self.history)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(instance.process.wait()), EVENTS_POLL)
        instance.exit_code = instance.process.returncode
        if instance.alive:
            self._exited(instance)

    def _exited(self, instance: ProcessInstance) -> None:
        code = instance.exit_code
        assert code is not None
        self.record(
            Kind.INSTANCE_EXITED,
            instance,
            clean=code == 0,
            returncode=code,
            error=None if code == 0 else _describe_exit(code),
            output_tail=list(instance.tail),
        )
        reported = self._completed_by == instance.instance_id
        if code == 0 and not instance.doomed and not reported:
            # A command that exits 0 without a notice has done its job: that is its contract.
            self.record(Kind.JOB_COMPLETED, instance, observed="exit_code")
            self._completed_by = instance.instance_id
        if self._completed_by is not None:
            self.finish("completed")
            return
        if instance.doomed:
            return  # its deadline ends the instance
        instance.alive = False
        self.spawn(self._close(instance))
        self.later(self.env.replacement.delay, self._boot_soon, None)

    def _watch_completion(self, event: Event) -> None:
        if event.kind == Kind.JOB_COMPLETED and self._completed_by is None and event.instance:
            self._completed_by = event.instance

    def _boot_soon(self, previous: ProcessInstance | None) -> None:
        self.spawn(self.boot(previous))

    # -- ending instances ---------------------------------------------------------------------
    async def kill(
        self,
        instance: ProcessInstance,
        reason: str,
        local_disk: LocalDisk,
        action: str | None = None,
    ) -> None:
        """SIGKILL the group now, then record it, wipe or keep the disk, and boot the next."""
        if not instance.alive or self.end_reason is not None:
            return
        instance.alive = False
        instance.s3.alive = False
        instance.redis.alive = False
        instance.redis.cut()
        await instance.kill()
        if local_disk == "wiped":
            shutil.rmtree(instance.local_dir, ignore_errors=True)
        self.record(
            Kind.INSTANCE_KILLED,
            instance,
            reason=reason,
            action=action or (reason if reason in ("crash", "hard_kill") else None),
            local_disk=local_disk,
            local_wiped=local_disk == "wiped",
            returncode=instance.process.returncode if instance.process else None,
        )
        await self._close(instance)
        if self._completed_by is not None:
            self.finish("completed")
            return
        previous = instance if local_disk == "kept" else None
        self.later(self.env.replacement.delay, self._boot_soon, previous)

    def _crash_hook(self, instance_id: str, op: str) -> bool:
        """Called by the proxies before forwarding: True if the process dies at this step."""
        for crash, index, seen in self.crash_points:
            if crash.at != op:
                continue
            seen[0] += 1
            if seen[0] != crash.nth:
                continue
            owner = next(i for i in self.instances if i.instance_id == instance_id)
            self.record("crash.point", owner, step=op, nth=crash.nth, entry=index)
            self.spawn(self.kill(owner, "crash", crash.local_disk))
            return True
        return False

    # -- metadata -----------------------------------------------------------------------------
    def add_imds_fault(self, duration: float | None, params: dict[str, Any]) -> None:
        running = (i.imds.plane for i in self.instances if i.alive)
        self.imds_faults.add(duration, params, running)

    # -- the timeline -------------------------------------------------------------------------
    def _watch_timeline(self) -> None:
        for index, entry in enumerate(self.scenario.timeline):
            if entry.on is not None:
                self._watch(index, entry.on)

    def _schedule_at(self) -> None:
        for index, entry in enumerate(self.scenario.timeline):
            if entry.at is not None:
                self.later(entry.at, self.fire, index)

    def _watch(self, index: int, trigger: OnTrigger) -> None:
        seen = 0

        def listener(event: Event) -> None:
            nonlocal seen
            if not self._matches(event, trigger):
                return
            seen += 1
            if seen == trigger.nth:
                unsubscribe()
                self._unsubscribes.remove(unsubscribe)
                self.later(trigger.delay, self.fire, index)

        unsubscribe = self.history.subscribe(listener)
        self._unsubscribes.append(unsubscribe)

    def _matches(self, event: Event, trigger: OnTrigger) -> bool:
        if event.kind != trigger.event:
            return False
        if any(event.data.get(key) != value for key, value in trigger.where.items()):
            return False
        if trigger.incarnation is not None:
            owner = next((i for i in self.instances if i.instance_id == event.instance), None)
            return owner is not None and owner.incarnation == trigger.incarnation
        return True

    def fire(self, index: int) -> None:
        entry = self.scenario.timeline[index]
        if self.end_reason is not None:
            return
        self.record("timeline.fired", entry=index, action=entry.action_name, note=entry.note)
        getattr(self, f"_on_{entry.action_name}")(index, entry.action)

    def _running(self, index: int) -> ProcessInstance | None:
        instance = self.current
        if instance is None:
            self.record("timeline.skipped", entry=index, reason="no instance is running")
        return instance

    def _on_notice(self, index: int, notice: Notice) -> None:
        instance = self._running(index)
        if instance is None:
            return
        if notice.rebalance_before:
            issued = instance.imds.plane.add_notice("aws", "rebalance", "terminate", lead=0.0)
            self.record(
                Kind.NOTICE_ISSUED,
                instance,
                notice_id=issued.id,
                cloud="aws",
                notice_kind="rebalance",
                action=None,
                deadline=None,
                entry=index,
            )
            self.later(notice.rebalance_before, self._issue, index, instance, notice)
        else:
            self._issue(index, instance, notice)

    def _issue(self, index: int, instance: ProcessInstance, notice: Notice) -> None:
        from harness.sim.timeline import _notice_body

        if not instance.alive or self.end_reason is not None:
            return
        notice = notice.as_told_on(instance.cloud, self.env.cloud)  # type: ignore[arg-type]
        body = _notice_body(notice, instance)  # type: ignore[arg-type]
        issued = schedule_notice(instance.imds.plane, body)[-1]
        instance.forget_imds_answers()  # the first answer after a notice shows it was read
        ends = notice.ends_instance(instance.cloud)  # type: ignore[arg-type]
        hibernate = notice.action == "hibernate"
        gone_at = self.now() if hibernate else issued.deadline
        self.record(
            Kind.NOTICE_ISSUED,
            instance,
            notice_id=issued.id,
            cloud=issued.cloud,
            notice_kind=issued.kind,
            action=notice.action,
            deadline=gone_at if ends else None,
            lead=issued.deadline - issued.issued_at,
            entry=index,
        )
        if not ends:
            return
        instance.doomed = True
        if hibernate:
            instance.frozen = self._send(instance, "SIGSTOP")
        elif issued.cloud == "kubernetes" or (
            self.target.supervisor and issued.cloud in ("aws", "azure", "webhook")
        ):
            self.later(0.0, self._stop_signal, instance)
        elif issued.cloud == "gcp":
            self.later(soft_off_at(issued) - self.now(), self._stop_signal, instance)
        disk: LocalDisk = "wiped" if notice.action == "terminate" else "kept"
        self.later(gone_at - self.now(), self._deadline, instance, issued.id, notice, disk)
        if issued.cloud == "azure":
            self._watch_approval(instance, issued.id, notice, disk)

    def _watch_approval(
        self, instance: ProcessInstance, notice_id: str, notice: Notice, disk: LocalDisk
    ) -> None:
        """An approved Azure event starts at once (see the simulation's timeline)."""
        from harness.sim.timeline import NOTICE_APPROVED, on_approval

        def approved(at: float) -> None:
            if not instance.alive or self.end_reason is not None:
                return
            self.record(NOTICE_APPROVED, instance, notice_id=notice_id, cloud="azure", at=at)
            self.later(0.0, self._deadline, instance, notice_id, notice, disk)

        on_approval(instance.imds.plane, notice_id, approved)

    def _stop_signal(self, instance: ProcessInstance) -> None:
        self._send(instance, self.target.stop_signal)

    def _send(self, instance: ProcessInstance, name: str) -> bool:
        """Record, then send: what the process does about a signal comes after it."""
        if not instance.alive or not instance.signal(0):
            return False
        self.record("signal.sent", instance, signal=name)
        return instance.signal(getattr(signal, name))

    def _deadline(
        self, instance: ProcessInstance, notice_id: str, notice: Notice, disk: LocalDisk
    ) -> None:
        if not instance.alive:
            return
        self.record(Kind.NOTICE_DEADLINE, instance, notice_id=notice_id, action=notice.action)
        self.spawn(self.kill(instance, "deadline", disk, notice.action))

    def _on_kill(self, index: int, kill: Kill) -> None:
        instance = self._running(index)
        if instance is not None:
            self.spawn(self.kill(instance, "hard_kill", kill.local_disk))

    def _on_crash(self, index: int, crash: Crash) -> None:
        self.crash_points.append((crash, index, [0]))

    def _on_imds(self, index: int, fault: ImdsFault) -> None:
        params: dict[str, Any] = {"pattern": fault.path}
        if fault.status is not None:
            params.update(kind="status", status=fault.status)
        elif fault.latency is not None:
            params.update(kind="latency", seconds=fault.latency)
        elif fault.throttle is not None:
            params.update(kind="throttle", limit=fault.throttle)
        else:
            params.update(kind="timeout" if fault.timeout else "reset")
        self.add_imds_fault(fault.for_, params)
        record_fault(self, index, f"imds.{params['kind']}", params, fault.for_)

    def _on_s3(self, index: int, fault: S3Fault) -> None:
        if fault.corrupt is not None:
            corrupt_and_record(self, index, self.bucket, fault)
            return
        if fault.error is not None:
            kind, value = "s3.error", 0.0
        elif fault.outage:
            kind, value = "s3.outage", 0.0
        elif fault.bandwidth is not None:
            kind, value = "s3.bandwidth", fault.bandwidth
        else:
            assert fault.latency is not None
            kind, value = "s3.latency", fault.latency
        self._storage_fault(index, kind, fault.for_, fault.ops, fault.count, fault.error, value)

    def _on_redis(self, index: int, fault: RedisFault) -> None:
        if fault.restart:
            self.spawn(self._restart_redis())
            record_fault(self, index, "redis.restart", {}, 0.0)
        elif fault.down:
            self._storage_fault(index, "redis.down", fault.for_, None, None, None, 0.0)
            for instance in self.instances:
                instance.redis.cut()
        else:
            assert fault.latency is not None
            self._storage_fault(index, "redis.latency", fault.for_, None, None, None, fault.latency)

    async def _restart_redis(self) -> None:
        """A restart without persistence: every key and loaded script is gone, and every open
        connection is cut."""
        admin = self.redis.client()
        try:
            await admin.flushall()
            await admin.script_flush()
        finally:
            await admin.aclose()
        for instance in self.instances:
            instance.redis.cut()

    def _storage_fault(
        self,
        index: int,
        kind: str,
        duration: float | None,
        ops: tuple[str, ...] | None,
        count: int | None,
        code: str | None,
        value: float,
    ) -> None:
        now = self.now()
        end = None if duration is None else now + duration
        self.faults.add(ActiveFault(f"fault-{index}", kind, now, end, ops, count, code, value))
        params = {"ops": list(ops) if ops else None, "count": count, "code": code, "value": value}
        record_fault(self, index, kind, params, duration)


def _address(url: str) -> tuple[str, int]:
    """``(host, port)`` of ``http://host:port`` or ``redis://host:port/0``."""
    location = url.split("://", 1)[1].split("/", 1)[0]
    host, _, port = location.rpartition(":")
    return host, int(port)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"
