"""Out-of-band interruption signals: Kubernetes pod eviction, ACPI soft off, GCP preemption.

Each sequence drives a :class:`SignalTarget`, which is either a real process (a pid or an
asyncio subprocess: real SIGTERM, real SIGKILL) or an in-process instance (a signal name put on
``InstanceContext.signals``, a hard kill that cancels its task). Sequences wait on the running
loop's clock only, so in virtual time a 30 s grace period costs nothing, and they record every
step with its loop time in a :class:`SignalReport`.

- :func:`evict`: Kubernetes pod deletion. The optional preStop hook runs first and its time
  counts against the grace period (default 30 s); then SIGTERM; then SIGKILL when the grace
  period is over, but never less than 2 s after SIGTERM (the kubelet's minimum window). A
  preStop hook still running when the period ends is stopped.
- :func:`acpi_shutdown`: ACPI soft off (SIGTERM) with a configurable hard-kill delay.
- :func:`gcp_preemption`: an optional notice period, then the soft off, then the hard off after
  up to 30 s.

:class:`SignalDispatcher` binds these to the metadata plane: a ``kubernetes`` ``eviction``
notice or a ``gcp`` ``preemption`` notice runs its sequence against every registered target
when it is issued. As a server dialect (``signals``) it signals the pids given in
:class:`SignalOptions` (``harness serve --signal-pid``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal as _signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from aiohttp import web
from pydantic import Field

from fake_imds.control import At, Duration, NoticeBody, NoticeSpec
from fake_imds.dispatch import NoticeDispatcher
from fake_imds.model import MetadataPlane, Notice

if TYPE_CHECKING:
    from fake_imds.server import DialectSite

#: Kubernetes' default ``terminationGracePeriodSeconds``.
DEFAULT_GRACE = 30.0
#: The kubelet always leaves a container at least this long between SIGTERM and SIGKILL, even
#: when the preStop hook used up (or outlived) the grace period.
MIN_TERM_WINDOW = 2.0
#: GCP's longest wait between the ACPI soft off (G2) and the hard off (G3).
GCP_MAX_SHUTDOWN = 30.0

StepName = Literal[
    "prestop.started",
    "prestop.finished",
    "prestop.failed",
    "prestop.timed_out",
    "notice",
    "signal",
    "exited",
    "killed",
]

PreStop = Sequence[str] | Callable[[], Awaitable[object]]
"""A preStop hook: a command (argv, run as a subprocess) or an in-process coroutine function."""


class SignalTarget(Protocol):
    """Where signals go: a real process or an in-process instance."""

    def send(self, name: str) -> None:
        """Deliver a catchable signal such as ``"SIGTERM"`` (soft off)."""

    def kill(self) -> None:
        """The hard off: SIGKILL, or cancellation in-process."""

    def alive(self) -> bool: ...

    async def wait_exit(self) -> None:
        """Return once the target has exited (however it ended)."""


def _signal_number(name: str) -> int:
    try:
        return int(_signal.Signals[name])
    except KeyError:
        raise ValueError(f"unknown signal {name!r}; use a name such as SIGTERM or SIGINT") from None


class ProcessTarget:
    """A real process, by asyncio subprocess or by pid (waited for through a pidfd on Linux)."""

    def __init__(self, process: asyncio.subprocess.Process | int) -> None:
        if isinstance(process, int):
            self.pid = process
            self._process: asyncio.subprocess.Process | None = None
        else:
            self.pid = process.pid
            self._process = process

    def send(self, name: str) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, _signal_number(name))

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, _signal.SIGKILL)

    def alive(self) -> bool:
        if self._process is not None:
            return self._process.returncode is None
        return _pid_running(self.pid)

    async def wait_exit(self) -> None:
        if self._process is not None:
            await self._process.wait()
            return
        await _wait_pid(self.pid)

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.returncode


def _pid_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (a zombie has exited, only not been reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


async def _wait_pid(pid: int) -> None:
    """Wait for any process to exit: a pidfd becomes readable when it does (no polling)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[None] = loop.create_future()

    def on_exit() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(fd, on_exit)
    try:
        if _pid_running(pid):
            await exited
    finally:
        loop.remove_reader(fd)
        os.close(fd)


class InProcessTarget:
    """An instance living in this event loop.

    ``on_signal`` receives each soft signal's name (typically ``ctx.signals.put_nowait``);
    the hard off calls ``on_kill`` if given, else cancels ``task``. ``task`` (the instance's
    task), when given, tells whether the instance is still alive and when it exits.
    """

    def __init__(
        self,
        on_signal: Callable[[str], object],
        *,
        task: asyncio.Future[Any] | None = None,
        on_kill: Callable[[], object] | None = None,
    ) -> None:
        if task is None and on_kill is None:
            raise ValueError("an in-process target needs its task or an on_kill callback")
        self._on_signal = on_signal
        self._task = task
        self._on_kill = on_kill
        self._killed = False

    @classmethod
    def for_queue(
        cls, queue: asyncio.Queue[str], task: asyncio.Future[Any], **kwargs: Any
    ) -> InProcessTarget:
        """Deliver to ``InstanceContext.signals``; the hard off cancels ``task``."""
        return cls(queue.put_nowait, task=task, **kwargs)

    def send(self, name: str) -> None:
        _signal_number(name)
        self._on_signal(name)

    def kill(self) -> None:
        self._killed = True
        if self._on_kill is not None:
            self._on_kill()
        elif self._task is not None:
            self._task.cancel()

    def alive(self) -> bool:
        if self._task is not None:
            return not self._task.done()
        return not self._killed

    async def wait_exit(self) -> None:
        if self._task is None:
            await asyncio.Event().wait()  # no task to watch: only the hard off ends it
            return
        await asyncio.wait({self._task})


@dataclass(frozen=True)
class Step:
    """One thing a sequence did, at loop time ``t``."""

    t: float
    name: StepName
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"t": round(self.t, 6), "step": self.name, **self.detail}


StepListener = Callable[[Step], None]


@dataclass
class SignalReport:
    """What a sequence did, in order, and how the target ended (``exited`` or ``killed``)."""

    sequence: str
    steps: list[Step] = field(default_factory=list)
    outcome: Literal["exited", "killed", "running"] = "running"
    listener: StepListener | None = None

    def record(self, name: StepName, **detail: Any) -> Step:
        step = Step(asyncio.get_running_loop().time(), name, detail)
        self.steps.append(step)
        if self.listener is not None:
            self.listener(step)
        return step

    def names(self) -> list[str]:
        return [s.name for s in self.steps]

    def to_json(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "outcome": self.outcome,
            "steps": [s.to_json() for s in self.steps],
        }


async def _exits_within(target: SignalTarget, seconds: float) -> bool:
    """Wait up to ``seconds`` on the loop clock for the target to exit."""
    if not target.alive():
        return True
    if seconds <= 0:
        return False
    try:
        await asyncio.wait_for(target.wait_exit(), seconds)
    except TimeoutError:
        return not target.alive()
    return True


async def _soft_then_hard(
    target: SignalTarget, report: SignalReport, soft: str, hard_after: float
) -> SignalReport:
    """Send ``soft``, wait ``hard_after`` for an exit, then hard-kill; common tail of all."""
    report.record("signal", signal=soft)
    target.send(soft)
    if await _exits_within(target, hard_after):
        report.record("exited")
        report.outcome = "exited"
        return report
    report.record("signal", signal="SIGKILL")
    target.kill()
    await _exits_within(target, 5.0)
    report.record("killed")
    report.outcome = "killed"
    return report


async def _run_pre_stop(pre_stop: PreStop, report: SignalReport, budget: float) -> None:
    """Run the hook for at most ``budget`` seconds and record how it ended."""
    report.record("prestop.started")
    process: asyncio.subprocess.Process | None = None
    if callable(pre_stop):
        hook: asyncio.Future[object] = asyncio.ensure_future(pre_stop())
    else:
        try:
            process = await asyncio.create_subprocess_exec(*pre_stop)
        except OSError as error:  # e.g. the command does not exist: the eviction goes on
            report.record("prestop.failed", error=f"{type(error).__name__}: {error}")
            return
        hook = asyncio.ensure_future(process.wait())
    try:
        result = await asyncio.wait_for(hook, max(budget, 0.0))
    except TimeoutError:
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
        report.record("prestop.timed_out")
        return
    except Exception as error:  # a failing hook does not stop the eviction
        report.record("prestop.failed", error=repr(error))
        return
    if process is not None and result != 0:
        report.record("prestop.failed", returncode=result)
        return
    report.record("prestop.finished")


async def evict(
    target: SignalTarget,
    *,
    grace: float = DEFAULT_GRACE,
    pre_stop: PreStop | None = None,
    listener: StepListener | None = None,
) -> SignalReport:
    """Kubernetes pod eviction: preStop, SIGTERM, SIGKILL when ``grace`` seconds are over
    (at least :data:`MIN_TERM_WINDOW` after SIGTERM, as the kubelet does)."""
    _check_delay("grace", grace)
    report = SignalReport("kubernetes-eviction", listener=listener)
    loop = asyncio.get_running_loop()
    started = loop.time()
    if pre_stop is not None:
        await _run_pre_stop(pre_stop, report, grace)
    remaining = max(MIN_TERM_WINDOW, grace - (loop.time() - started))
    return await _soft_then_hard(target, report, "SIGTERM", remaining)


async def acpi_shutdown(
    target: SignalTarget,
    *,
    hard_kill_after: float,
    soft_signal: str = "SIGTERM",
    listener: StepListener | None = None,
) -> SignalReport:
    """ACPI soft off: ``soft_signal``, then SIGKILL after ``hard_kill_after`` seconds."""
    _check_delay("hard_kill_after", hard_kill_after)
    _signal_number(soft_signal)
    report = SignalReport("acpi-shutdown", listener=listener)
    return await _soft_then_hard(target, report, soft_signal, hard_kill_after)


async def gcp_preemption(
    target: SignalTarget,
    *,
    notice_period: float = 0.0,
    shutdown_period: float = GCP_MAX_SHUTDOWN,
    listener: StepListener | None = None,
) -> SignalReport:
    """GCP preemption: ``notice_period`` (``preempted`` is TRUE), soft off, then the hard off.

    ``shutdown_period`` (at most 30 s) is the time between the soft off and the hard off.
    """
    _check_delay("notice_period", notice_period)
    _check_delay("shutdown_period", shutdown_period)
    if shutdown_period > GCP_MAX_SHUTDOWN:
        raise ValueError(
            f"shutdown_period {shutdown_period:g}s is longer than GCP's {GCP_MAX_SHUTDOWN:g}s; "
            "use a value between 0 and 30 seconds"
        )
    report = SignalReport("gcp-preemption", listener=listener)
    if notice_period > 0:
        report.record("notice", period=notice_period)
        await asyncio.sleep(notice_period)
    return await _soft_then_hard(target, report, "SIGTERM", shutdown_period)


def _check_delay(name: str, seconds: float) -> None:
    if not seconds >= 0:
        raise ValueError(f"{name} must be a non-negative number of seconds, got {seconds!r}")


# -- bound to the metadata plane: notices become signal sequences -------------------------------


class SignalDispatcher(NoticeDispatcher):
    """Runs the signal sequence of each Kubernetes eviction and GCP preemption notice.

    When such a notice is issued, every registered target gets its sequence: an eviction runs
    :func:`evict` with the notice's grace period (the deadline is the SIGKILL), a GCP preemption
    runs :func:`gcp_preemption` with the soft off ``params["shutdown"]`` before the deadline (the
    hard off). Reports are kept in :attr:`reports` as ``(notice id, report)``. A notice issued
    while no target is registered is recorded with an empty report whose outcome stays
    ``running``.
    """

    def __init__(
        self,
        plane: MetadataPlane,
        targets: Sequence[SignalTarget] = (),
        *,
        pre_stop: PreStop | None = None,
        listener: StepListener | None = None,
    ) -> None:
        super().__init__(plane)
        self.pre_stop = pre_stop
        self.listener = listener
        self._targets: list[SignalTarget] = list(targets)
        self.reports: list[tuple[str, SignalReport]] = []
        self._handled: set[str] = set()

    def register(self, target: SignalTarget) -> Callable[[], None]:
        """Deliver future sequences to ``target`` too; returns a function that unregisters it."""
        self._targets.append(target)
        return lambda: self._targets.remove(target)

    def on_change(self, notice: Notice) -> None:
        signalled = (notice.cloud, notice.kind) in (
            ("kubernetes", "eviction"),
            ("gcp", "preemption"),
        )
        if not signalled or notice.id in self._handled:
            return
        now = self.plane.now()
        if not notice.visible(now) or notice.state != "scheduled" or now > notice.deadline:
            return
        self._handled.add(notice.id)
        if not self._targets:
            self.reports.append((notice.id, SignalReport(f"{notice.cloud}-{notice.kind}")))
        for target in list(self._targets):
            self.spawn(self._sequence(notice, target, now))

    async def _sequence(self, notice: Notice, target: SignalTarget, now: float) -> SignalReport:
        remaining = max(0.0, notice.deadline - now)
        if notice.cloud == "kubernetes":
            coro = evict(target, grace=remaining, pre_stop=self.pre_stop, listener=self.listener)
        else:
            shutdown = min(GCP_MAX_SHUTDOWN, float(notice.params.get("shutdown", GCP_MAX_SHUTDOWN)))
            shutdown = min(shutdown, remaining)
            coro = gcp_preemption(
                target,
                notice_period=remaining - shutdown,
                shutdown_period=shutdown,
                listener=self.listener,
            )
        report = await coro
        self.reports.append((notice.id, report))
        return report


# -- notices (control API) and the server hook ----------------------------------------------


class KubernetesEvictionBody(NoticeBody):
    """``{"cloud": "kubernetes", "kind": "eviction", "grace": "30s"}``: SIGTERM when issued
    (after the preStop hook, if the target has one), SIGKILL ``grace`` later."""

    cloud: Literal["kubernetes"]
    kind: Literal["eviction"] = "eviction"
    grace: Duration = Field(default=DEFAULT_GRACE, description="terminationGracePeriodSeconds")
    at: At = None

    def specs(self, plane: MetadataPlane) -> Sequence[NoticeSpec]:
        # The deadline is the SIGKILL, which the kubelet never sends sooner than 2 s after SIGTERM.
        lead = max(self.grace, MIN_TERM_WINDOW)
        params = {"grace": self.grace}
        return [NoticeSpec("kubernetes", self.kind, "terminate", lead, self.at, params)]


#: The Kubernetes body of ``POST /_harness/v1/notices``.
NOTICE_BODIES: tuple[type[NoticeBody], ...] = (KubernetesEvictionBody,)


@dataclass(frozen=True)
class SignalOptions:
    """What ``harness serve`` signals: processes by pid, and the pods' preStop command."""

    pids: tuple[int, ...] = ()
    pre_stop: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for pid in self.pids:
            if not _pid_running(pid):
                raise ValueError(
                    f"no running process has pid {pid}; give the pid of a live process"
                )
        if self.pre_stop is not None and not self.pre_stop:
            raise ValueError("the preStop command is empty; give a command such as 'sh drain.sh'")


DISPATCHER_KEY: web.AppKey[SignalDispatcher] = web.AppKey("signal_dispatcher")


def install(site: DialectSite) -> None:
    """Deliver evictions and GCP preemptions to ``SignalOptions.pids``; more targets can be
    registered on ``app[DISPATCHER_KEY]``. ``GET /_harness/v1/signals`` lists the reports."""
    options = site.options(SignalOptions())
    if not isinstance(options, SignalOptions):
        raise TypeError(f"signals options must be SignalOptions, got {type(options).__name__}")
    targets = [ProcessTarget(pid) for pid in options.pids]
    dispatcher = SignalDispatcher(site.plane, targets, pre_stop=options.pre_stop)
    site.app[DISPATCHER_KEY] = dispatcher

    async def start(_app: web.Application) -> None:
        dispatcher.start()

    async def reports(_request: web.Request) -> web.Response:
        return web.json_response(
            [{"notice_id": notice_id, **r.to_json()} for notice_id, r in dispatcher.reports]
        )

    site.app.on_startup.append(start)
    site.on_cleanup(dispatcher.close)
    site.add_route("GET", "/_harness/v1/signals", reports)
