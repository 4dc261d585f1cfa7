"""Crash-point enumeration: crash a scenario's target at each of its persistence steps in turn.

The scenario runs once in simulation while the harness numbers every persistence step the
target makes as it starts (:data:`~harness.sim.iohook.STEP_WATCHER`): its S3 requests and Redis
commands, observed on the clients the harness hands out, and the steps of the local-disk helper
(writes, fsyncs, renames, directory fsyncs). Then, for each step, the scenario runs again with
``crash: {ordinal: N}`` added to its timeline: the instance dies just before step N, losing its
process (the OS keeps its writes and renames) or its host (a kept disk keeps only what was
fsynced), its replacement recovers, and the checks judge the run.

Runs are deterministic, so the run with the crash is the first run up to step N; a crash that
is not reached means the target behaved differently with the same seed.

Checks judged after a crash: the scenario's own and the invariants no crash may break
(:data:`INVARIANTS`), never those a crash breaks by itself for any target
(:data:`CRASH_EXCUSED`: the crash is an interruption nobody announced). ``fails:`` markers of a
known-bad scenario are dropped: each crash is judged on what the guarantees say.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from harness.checks import CheckSpec
from harness.explore.search import _free_path
from harness.history import Kind
from harness.report.render import replay_command
from harness.scenario.model import Crash, Scenario, TimelineEntry
from harness.sim.iohook import STEP_WATCHER, StepStart
from harness.sim.runner import RunResult, golden_of, run_scenario
from harness.sim.targets import resolve_target

Loss = Literal["process", "host"]
LOSSES: tuple[Loss, ...] = ("process", "host")
#: Checks every crash point judges, added to the scenario's own when it leaves them out.
INVARIANTS = ("exactly_once", "resume_correct", "durable", "no_leaked_uploads", "completes")
#: Checks a crash breaks by itself, whatever the target does: nothing announced it, so nothing
#: was saved before a deadline, the work since the last checkpoint is lost, no notice was seen.
CRASH_EXCUSED = frozenset({"saved_before_deadline", "lost_work", "detects_notice"})
#: A crash run's verdict when the rerun never reached the step (the target is not deterministic).
NOT_REACHED = "not_reached"


@dataclass(frozen=True)
class CrashVerdict:
    """One crash at one step and what the checks found."""

    lose: Loss
    scenario: Scenario  # the scenario with the crash in its timeline
    result: RunResult
    reached: bool

    @property
    def status(self) -> str:
        return self.result.status if self.reached else NOT_REACHED

    @property
    def ok(self) -> bool:
        return self.reached and self.result.status == "passed"

    @property
    def broken(self) -> tuple[str, ...]:
        """Labels of the checks this crash proved broken."""
        return tuple(c.spec.label for c in self.result.broken_checks)

    @property
    def problem(self) -> str:
        """Why the crash run is not a pass, in a few words ('' if it passed)."""
        if not self.reached:
            return "the rerun never reached this step"
        if self.result.error is not None:
            return self.result.error
        if self.broken:
            return ", ".join(self.broken)
        unverified = [c.spec.label for c in self.result.failed_checks]
        return "unverified: " + ", ".join(unverified) if unverified else ""

    def to_json(self) -> dict[str, Any]:
        return {
            "lose": self.lose,
            "status": self.status,
            "broken": list(self.broken),
            "problem": self.problem,
            "run": self.result.to_json(),
        }


@dataclass(frozen=True)
class CrashPointRow:
    """A persistence step of the first run and the verdict of a crash just before it."""

    step: StepStart
    verdicts: tuple[CrashVerdict, ...]

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)

    def to_json(self) -> dict[str, Any]:
        step = self.step
        return {
            "step": step.ordinal,
            "t": round(step.t, 6),
            "instance": step.instance,
            "op": step.op,
            "key": step.key,
            "crashes": [v.to_json() for v in self.verdicts],
        }


def judged(scenario: Scenario) -> Scenario:
    """``scenario`` with the checks a crash point judges (see the module's docstring)."""
    kept = [
        CheckSpec(name=c.name, params=c.params)
        for c in scenario.expect
        if c.name not in CRASH_EXCUSED
    ]
    named = {c.name for c in kept}
    added = [CheckSpec(name=name) for name in INVARIANTS if name not in named]
    return scenario.model_copy(update={"expect": (*kept, *added)})


def with_crash(scenario: Scenario, ordinal: int, lose: Loss) -> Scenario:
    """``scenario`` with a crash before its persistence step number ``ordinal`` (the local disk
    kept: a crash is the same machine restarting, or the host losing power)."""
    entry = TimelineEntry(
        at=0.0,
        crash=Crash(ordinal=ordinal, lose=lose),
        note=f"crash-points: {lose} lost before step {ordinal}",
    )
    return scenario.model_copy(update={"timeline": (*scenario.timeline, entry)})


class Enumerator:
    """Runs a scenario's first run and its crash runs, sharing one golden."""

    def __init__(self, scenario: Scenario, seed: int | None = None) -> None:
        self.scenario = judged(scenario.with_seed(seed))
        self.target = resolve_target(self.scenario.target)
        self.golden = golden_of(self.scenario, self.target)

    def first_run(self) -> tuple[RunResult, list[StepStart]]:
        """The scenario as written, and its persistence steps in the order they started."""
        steps: list[StepStart] = []
        token = STEP_WATCHER.set(steps.append)
        try:
            result = run_scenario(self.scenario, target=self.target, golden=self.golden)
        finally:
            STEP_WATCHER.reset(token)
        return result, steps

    def crash(self, step: StepStart, lose: Loss) -> CrashVerdict:
        crashed = with_crash(self.scenario, step.ordinal, lose)
        result = run_scenario(crashed, target=self.target, golden=self.golden)
        return CrashVerdict(lose, crashed, result, crash_reached(result))

    def crash_all(
        self,
        steps: Iterable[StepStart],
        losses: tuple[Loss, ...],
        done: Callable[[CrashPointRow], None] = lambda row: None,
    ) -> list[CrashPointRow]:
        rows = []
        for step in steps:
            row = CrashPointRow(step, tuple(self.crash(step, lose) for lose in losses))
            rows.append(row)
            done(row)
        return rows


def crash_reached(result: RunResult) -> bool:
    return any(
        e.data.get("error") == "crash" and str(e.data.get("fault", "")).startswith("crash@")
        for e in result.history.of_kind(Kind.STORAGE_OP)
    )


def select_steps(
    steps: list[StepStart], span: tuple[int, int] | None, limit: int | None
) -> list[StepStart]:
    """The steps numbered within ``span`` (inclusive), at most ``limit`` of them."""
    chosen = [s for s in steps if span is None or span[0] <= s.ordinal <= span[1]]
    return chosen if limit is None else chosen[:limit]


def scenario_yaml(scenario: Scenario) -> str:
    """The scenario as a file ``harness run`` loads back (durations in seconds, sizes in bytes)."""
    data = scenario.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    data["seed"] = scenario.seed
    data["expect"] = [{c.name: dict(c.params)} if c.params else c.name for c in scenario.expect]
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


def write_failure(verdict: CrashVerdict, step: StepStart, out: Path, name: str) -> tuple[Path, str]:
    """Write a failing crash as a scenario file under ``out`` (a new name, never an existing
    file); returns its path and the command that replays it."""
    out.mkdir(parents=True, exist_ok=True)
    text = scenario_yaml(verdict.scenario)
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    stem = f"{name}-crash-{step.ordinal}-{verdict.lose}-{digest}"
    path = _free_path(out, stem.replace("/", "-"))
    command = replay_command(path, verdict.scenario.seed)
    header = (
        f"# Replay: {command}\n"
        f"# {verdict.lose} lost just before step {step.ordinal}: {step.op} {step.key or ''}"
        f" by {step.instance} at t={step.t:g}s\n"
        f"# Broken: {verdict.problem}\n"
    )
    with path.open("x", encoding="utf-8") as handle:  # "x": never overwrite
        handle.write(header + text)
    return path, command
