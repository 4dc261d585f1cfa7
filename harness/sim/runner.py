"""Run a scenario in simulation: build the world, play the timeline, snapshot storage, check.

Public API::

    result = run_scenario(scenario, seed=None)          # synchronous, its own virtual loop
    result = await run_scenario_async(scenario)          # inside a running VirtualEventLoop
    result.status        # passed | failed | unverified | xfailed | xpassed | error
    result.history.to_jsonl()                           # byte-identical for the same seed

The same scenario and seed give the same history byte for byte: the loop's clock is virtual,
every random choice comes from the scenario's seed, and nothing read from the wall clock (moto's
timestamps, wall durations) goes into the history.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import tempfile
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from harness.checks import CheckResult, CheckSpec, Golden, StorageSnapshot, evaluate, take_snapshot
from harness.clock import LoopClock, VirtualEventLoop
from harness.history import History, Kind
from harness.scenario.model import Scenario
from harness.sim import moto_patches
from harness.sim.golden import cached_golden, golden_for
from harness.sim.s3 import BackendReader, simulated_bucket
from harness.sim.targets import resolve_target
from harness.sim.timeline import Timeline
from harness.sim.world import World, note_user_interrupt
from harness.target import Target

T = TypeVar("T")
Status = Literal["passed", "failed", "unverified", "xfailed", "xpassed", "error"]
BUCKET = "spot-harness-sim"
#: Outcomes confirmed on the full S3 stack before they are reported (see ``confirm_on_full_stack``).
_CONFIRMED = frozenset({"failed", "xfailed", "xpassed", "error"})
#: How the error of a run whose two stacks disagree begins.
HARNESS_DEFECT = "harness defect: "
#: Where simulated instances keep their local dirs; default: a memory filesystem if there is one.
SCRATCH_ENV = "HARNESS_SIM_SCRATCH"
_MEMORY_FS = Path("/dev/shm")
_MEMORY_FS_MIN_FREE = 256 * 2**20


def scratch_dir() -> str | None:
    """The parent of each run's scratch directory: ``$HARNESS_SIM_SCRATCH`` if set, else
    ``/dev/shm`` when it is a writable memory filesystem with room, else the system temp dir.

    Local files in simulation are small (sizes are modelled, not written) and their timing is
    modelled by the io_hook, so a memory filesystem changes nothing but the cost of creating
    and removing a few dozen files per run, which on a disk-backed /tmp is a tenth of a run.
    """
    chosen = os.environ.get(SCRATCH_ENV)
    if chosen:
        return chosen
    try:
        stats = os.statvfs(_MEMORY_FS)
    except OSError:
        return None
    roomy = stats.f_bavail * stats.f_frsize >= _MEMORY_FS_MIN_FREE
    return str(_MEMORY_FS) if roomy and os.access(_MEMORY_FS, os.W_OK | os.X_OK) else None


@dataclass(frozen=True)
class CheckOutcome:
    """One ``expect`` entry and what its check found."""

    spec: CheckSpec
    result: CheckResult

    @property
    def expected_to_fail(self) -> bool:
        return self.spec.fails is not None

    @property
    def as_expected(self) -> bool:
        """Passed, or failed as the scenario said it would. An unverified check is neither: with
        no evidence, the harness cannot say the guarantee held, nor that it broke."""
        if self.result.unverified:
            return False
        return self.result.passed != self.expected_to_fail

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.spec.label,
            "fails": self.spec.fails,
            "as_expected": self.as_expected,
            **self.result.to_json(),
        }


@dataclass(frozen=True)
class RunResult:
    """Everything one run produced."""

    scenario: Scenario
    history: History
    checks: tuple[CheckOutcome, ...]
    end_reason: str  # completed | budget | gave_up | error
    sim_seconds: float
    wall_seconds: float  # never part of the history
    snapshot: StorageSnapshot | None = None
    error: str | None = None  # a harness or setup error, when the run could not be judged

    @property
    def seed(self) -> int:
        return self.scenario.seed

    @property
    def status(self) -> Status:
        if self.error is not None:
            return "error"
        if not all(c.as_expected for c in self.checks):
            wrong = [c for c in self.checks if not c.as_expected]
            if any(c.result.status == "failed" and not c.expected_to_fail for c in wrong):
                return "failed"
            if any(c.result.unverified for c in wrong):
                return "unverified"
            return "xpassed"
        return "xfailed" if any(c.expected_to_fail for c in self.checks) else "passed"

    @property
    def ok(self) -> bool:
        """Whether the run met the scenario's expectations (passed or xfailed)."""
        return self.status in ("passed", "xfailed")

    @property
    def failed_checks(self) -> list[CheckOutcome]:
        """Checks that did not meet the expectation: broken, unverified, or passing a known-bad."""
        return [c for c in self.checks if not c.as_expected]

    @property
    def broken_checks(self) -> list[CheckOutcome]:
        """Checks whose guarantee the run proved broken (unverified ones are not)."""
        return [c for c in self.failed_checks if not c.result.unverified]

    def to_json(self) -> dict[str, Any]:
        return {
            "description": self.scenario.description,
            "seed": self.seed,
            "status": self.status,
            "end_reason": self.end_reason,
            "sim_seconds": round(self.sim_seconds, 6),
            "wall_seconds": round(self.wall_seconds, 6),
            "error": self.error,
            "checks": [c.to_json() for c in self.checks],
        }


def run_scenario(
    scenario: Scenario,
    *,
    seed: int | None = None,
    target: Target | None = None,
    golden: Golden | None = None,
    confirm: bool = True,
) -> RunResult:
    """Run ``scenario`` (with ``seed`` overriding its own) on a fresh virtual loop.

    A golden that needs a run of its own (targets other than the reference) is made first, on
    its own loop, so that the run itself always starts at virtual time zero. ``confirm``: a run
    that breaks a check is confirmed on the full S3 stack (:func:`confirm_on_full_stack`) before
    it is returned; a search that runs many failing schedules and reports one (``harness
    explore``) passes False and confirms the one it reports.
    """
    scenario = scenario.with_seed(seed)
    started_wall = time.perf_counter()
    try:
        chosen = target or resolve_target(scenario.target)
        expected = golden or golden_of(scenario, chosen)
    except Exception as error:
        return _error_result(scenario, History(lambda: 0.0), started_wall, error)
    result = _on_fresh_loop(run_scenario_async(scenario, target=chosen, golden=expected))
    if not confirm:
        return result
    return confirm_on_full_stack(result, target=chosen, golden=expected, started_wall=started_wall)


def confirm_on_full_stack(
    result: RunResult,
    *,
    target: Target | None = None,
    golden: Golden | None = None,
    started_wall: float | None = None,
) -> RunResult:
    """``result`` itself if it passed (or the S3 shortcut was off); else the same run again with
    every S3 call through moto's HTTP layer (:func:`harness.sim.moto_patches.full_stack`), and
    that run is the one to report: no failure rests on the shortcut alone. The two runs must
    agree event for event; if they do not, the answer is an error run that says so (a defect of
    the shortcut, never a verdict). A passing or unverified run is not run again:
    ``tests/sim/test_s3_shortcut.py`` runs the whole scenario library both ways and requires
    identical histories."""
    if result.status not in _CONFIRMED or not moto_patches.shortcut_active(during_run=False):
        return result
    started = time.perf_counter() - result.wall_seconds if started_wall is None else started_wall
    scenario = result.scenario
    try:
        chosen = target or resolve_target(scenario.target)
        expected = golden or golden_of(scenario, chosen)
    except Exception as error:
        return _error_result(scenario, result.history, started, error)
    with moto_patches.full_stack():
        full = _on_fresh_loop(run_scenario_async(scenario, target=chosen, golden=expected))
    if full.history.to_jsonl() == result.history.to_jsonl() and full.status == result.status:
        return dataclasses.replace(full, wall_seconds=time.perf_counter() - started)
    return _error_result(
        full.scenario,
        full.history,
        started,
        RuntimeError(
            f"the simulation's S3 shortcut and moto disagree on this run ({result.status} "
            f"against {full.status} on the full stack); rerun with {moto_patches.FULL_STACK_ENV}=1 "
            "and report it"
        ),
        HARNESS_DEFECT,
    )


def golden_of(scenario: Scenario, target: Target) -> Golden:
    """What an uninterrupted run of ``scenario`` leaves (its timeline plays no part): cached
    for the reference, else made by a run of its own on a fresh loop. Runs that differ only in
    their timeline can share it (``run_scenario(..., golden=...)``)."""
    expected = cached_golden(scenario, target)
    if expected is None:
        expected = _on_fresh_loop(golden_for(scenario, target, _uninterrupted))
    return expected


def _on_fresh_loop(coro: Coroutine[Any, Any, T]) -> T:
    # The metadata servers in memory and the lean loop iteration, like the S3 shortcut: off on
    # the full stack.
    shortcut = moto_patches.shortcut_active(during_run=False)
    loop = VirtualEventLoop(memory_network=shortcut, lean=shortcut)
    previous = _watch_ctrl_c()
    try:
        return loop.run_until_complete(coro)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _watch_ctrl_c() -> Any:
    """Tell a person's Ctrl-C from a target's own ``KeyboardInterrupt`` (which only ends its
    incarnation); returns the handler to restore, or None off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupted(signum: int, frame: Any) -> None:
        note_user_interrupt()
        raise KeyboardInterrupt

    return signal.signal(signal.SIGINT, interrupted)


async def run_scenario_async(
    scenario: Scenario,
    *,
    seed: int | None = None,
    target: Target | None = None,
    golden: Golden | None = None,
) -> RunResult:
    """Run ``scenario`` inside the running :class:`~harness.clock.VirtualEventLoop`."""
    loop = asyncio.get_running_loop()
    if not isinstance(loop, VirtualEventLoop):
        raise RuntimeError("simulated runs need a VirtualEventLoop (use run_scenario)")
    scenario = scenario.with_seed(seed)
    started_wall = time.perf_counter()
    started = loop.time()
    history = History(loop.time)
    try:
        chosen = target or resolve_target(scenario.target)
        expected = golden or await golden_for(scenario, chosen, _uninterrupted)
    except Exception as error:
        return _error_result(scenario, history, started_wall, error)
    try:
        world, snapshot = await _play(scenario, chosen, history)
    except Exception as error:  # the world could not be built or read back
        return _error_result(scenario, history, started_wall, error)
    if world.error is not None:
        return _error_result(scenario, history, started_wall, world.error)
    try:
        outcomes = _judge(scenario, history, snapshot, expected)
    except Exception as error:
        return _error_result(scenario, history, started_wall, error, "a check crashed: ")
    return RunResult(
        scenario=scenario,
        history=history,
        checks=outcomes,
        end_reason=world.end_reason or "error",
        sim_seconds=loop.time() - started,
        wall_seconds=time.perf_counter() - started_wall,
        snapshot=snapshot,
    )


async def _play(
    scenario: Scenario, target: Target, history: History
) -> tuple[World, StorageSnapshot]:
    loop = asyncio.get_running_loop()
    calendar = LoopClock(loop)
    with (
        tempfile.TemporaryDirectory(prefix="spot-harness-", dir=scratch_dir()) as root,
        simulated_bucket(BUCKET, now=calendar.now, seed=scenario.seed) as s3,
    ):
        run_start = loop.time()
        world = World(scenario, target, history, s3_client=s3, bucket=BUCKET, root=Path(root))
        history.record(
            "harness", Kind.RUN_STARTED, scenario=scenario.description, seed=scenario.seed
        )
        timeline = Timeline(world)
        timeline.watch()
        world.later(scenario.env.budget, world.finish, "budget")
        virtual = cast(VirtualEventLoop, loop)  # run_scenario_async made sure of it
        virtual.on_stall(lambda now: _stalled(world, now))
        try:
            await world.boot()
            timeline.schedule(start=run_start)
            await world.done.wait()
        except Exception as error:
            world.fail(error)
        finally:
            timeline.disarm()
            history.record("harness", Kind.RUN_FINISHED, reason=world.end_reason or "error")
            await world.shutdown()
            virtual.on_stall(None)
        # Local files keyed by the names the history uses, not by this run's temp paths.
        snapshot = await take_snapshot(
            BackendReader(BUCKET), BUCKET, world.admin_redis, world.local_dirs()
        )
        await world.admin_redis.aclose()
    return world, snapshot


class TargetStalled(RuntimeError):
    """The target kept the loop busy without ever letting virtual time pass."""


def _stalled(world: World, now: float) -> None:
    """End the run at a stall; if the loop still spins after the world was shut down, stop it."""
    stalled = TargetStalled(
        f"the target ran {VirtualEventLoop.STALL_ITERATIONS:,} event-loop iterations at "
        f"t={now:g}s without letting virtual time pass: a busy loop (a retry at once, with no "
        "pause, of a request the metadata service or storage refuses, for instance)"
    )
    if world.error is not None:
        raise stalled
    world.fail(stalled)


def _judge(
    scenario: Scenario, history: History, snapshot: StorageSnapshot, golden: Golden
) -> tuple[CheckOutcome, ...]:
    raw = [{spec.name: dict(spec.params)} if spec.params else spec.name for spec in scenario.expect]
    results = evaluate(raw, history, snapshot, golden)
    return tuple(
        CheckOutcome(spec, result) for spec, result in zip(scenario.expect, results, strict=True)
    )


def _error_result(
    scenario: Scenario,
    history: History,
    started_wall: float,
    error: BaseException,
    prefix: str = "",
) -> RunResult:
    """A run that could not be judged: the history so far and what went wrong."""
    finished = history.of_kind(Kind.RUN_FINISHED)
    return RunResult(
        scenario=scenario,
        history=history,
        checks=(),
        end_reason="error",
        sim_seconds=finished[-1].t if finished else 0.0,
        wall_seconds=time.perf_counter() - started_wall,
        error=f"{prefix}{type(error).__name__}: {error}",
    )


async def _uninterrupted(scenario: Scenario, target: Target) -> tuple[History, StorageSnapshot]:
    """The history and storage of a run of ``scenario`` with an empty timeline (for goldens)."""
    calm = scenario.model_copy(update={"timeline": ()})
    history = History(asyncio.get_running_loop().time)
    _, snapshot = await _play(calm, target, history)
    return history, snapshot
