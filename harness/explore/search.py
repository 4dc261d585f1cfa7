"""Property-based search for a failing interruption schedule, shrunk to the smallest one.

:func:`explore` lets Hypothesis generate schedules (:mod:`harness.explore.strategies`), runs each
in simulation and, on the first schedule whose checks fail, shrinks it and writes the smallest
reproduction as a scenario file, never over an existing file, with the ``harness run FILE --seed
N`` line that replays it. The search is deterministic: the same ``seed`` (or none, derandomized)
explores the same schedules, and nothing is read from or written to a Hypothesis database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, given, reject, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Unsatisfiable

from harness.errors import InputError
from harness.explore.strategies import Data, schedules
from harness.report.render import replay_command
from harness.scenario.loader import load_text
from harness.scenario.model import CLOUDS, Cloud, estimate_work
from harness.sim.runner import HARNESS_DEFECT, RunResult, confirm_on_full_stack, run_scenario
from harness.units import format_duration

Progress = Callable[[int, RunResult], None]


class ScheduleFailed(Exception):
    """Raised inside the property when a generated schedule breaks a check."""

    def __init__(self, data: Data, result: RunResult) -> None:
        broken = ", ".join(c.spec.label for c in result.broken_checks) or result.status
        super().__init__(f"checks broken: {broken}")
        self.data = data
        self.result = result


@dataclass(frozen=True)
class Reproduction:
    """The smallest failing schedule found, as written to disk."""

    path: Path
    seed: int
    broken: tuple[str, ...]

    @property
    def command(self) -> str:
        return replay_command(self.path, self.seed)


@dataclass
class ExploreReport:
    examples: int = 0
    failure: Reproduction | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    #: check name -> runs in which it had nothing to judge (the schedule did not exercise it).
    unverified: dict[str, int] = field(default_factory=dict)

    def unverified_text(self) -> str:
        """``"fenced in 480 runs, resume_correct in 12 runs"``, most often first."""
        ranked = sorted(self.unverified.items(), key=lambda item: (-item[1], item[0]))
        return ", ".join(f"{name} in {count} runs" for name, count in ranked)


def explore(
    *,
    examples: int = 50,
    seed: int | None = None,
    target: Any = "reference",
    out: Path = Path("explore-failures"),
    clouds: tuple[Cloud, ...] = CLOUDS,
    max_entries: int = 4,
    progress: Progress | None = None,
    max_sim_time: float | None = None,
) -> ExploreReport:
    """Search ``examples`` schedules against ``target``; shrink and write the first failure.
    A schedule that would simulate longer than ``max_sim_time`` seconds is never run.

    ``target`` is scenario syntax: ``"reference"`` or ``{"python": "pkg.mod:factory"}``.
    """
    report = ExploreReport()
    first_broken: list[tuple[str, ...]] = []

    def check(data: Data) -> None:
        scenario = to_scenario(data)
        if max_sim_time is not None and estimate_work(scenario).seconds > max_sim_time:
            reject()  # too long to simulate: Hypothesis draws another schedule instead
        result = run_scenario(scenario, confirm=False)  # the one reported is confirmed below
        report.examples += 1
        status = explored_status(result)
        report.statuses[status] = report.statuses.get(status, 0) + 1
        for outcome in result.checks:
            if outcome.result.unverified:
                name = outcome.spec.name
                report.unverified[name] = report.unverified.get(name, 0) + 1
        if progress is not None:
            progress(report.examples, result)
        if explored_status(result) in ("passed", "xfailed"):
            return
        broken = _broken(result)
        if not first_broken:
            first_broken.append(broken)
        # Shrink towards the failure first found, not towards another one met on the way.
        if broken == first_broken[0]:
            raise ScheduleFailed(data, result)

    search = settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=seed is None,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        print_blob=False,
    )(given(schedules(target=target, clouds=clouds, max_entries=max_entries))(check))
    if seed is not None:
        search = hypothesis_seed(seed)(search)
    try:
        search()
    except ScheduleFailed as failure:
        confirmed = confirm_on_full_stack(failure.result)  # never report what only a shortcut saw
        if confirmed.error is not None and confirmed.error.startswith(HARNESS_DEFECT):
            raise RuntimeError(confirmed.error) from None
        report.failure = write_reproduction(failure.data, confirmed, out)
    except Unsatisfiable:
        raise InputError(
            "every generated schedule would simulate longer than --max-sim-time "
            f"({format_duration(max_sim_time or 0)}); raise it"
        ) from None
    return report


def explored_status(result: RunResult) -> str:
    """A generated schedule's outcome: ``passed`` when it broke no guarantee, whatever it left
    unexercised (an unverified check of a schedule is no finding)."""
    return "passed" if result.status == "unverified" else result.status


def _broken(result: RunResult) -> tuple[str, ...]:
    return tuple(c.spec.name for c in result.broken_checks) or (result.status,)


def to_scenario(data: Data) -> Any:
    """Validate generated data exactly as a scenario file would be."""
    (loaded,) = load_text(dump(data), file="<generated>")
    return loaded.scenario


def dump(data: Data) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


def write_reproduction(data: Data, result: RunResult, out: Path) -> Reproduction:
    """Write the failing schedule under ``out`` with a name no existing file has."""
    broken = _broken(result)
    described = {
        **data,
        "description": (
            f"Smallest schedule found by `harness explore` that breaks {', '.join(broken)}."
        ),
    }
    out.mkdir(parents=True, exist_ok=True)
    schedule = {k: v for k, v in data.items() if k != "description"}
    digest = hashlib.sha256(json.dumps(schedule, sort_keys=True).encode()).hexdigest()[:10]
    found = Reproduction(
        path=_free_path(out, f"explore-{digest}"), seed=int(data["seed"]), broken=broken
    )
    text = (
        f"# Replay: {found.command}\n"
        f"# Broken: {', '.join(c.spec.label for c in result.broken_checks) or result.status}\n"
        + dump(described)
    )
    with found.path.open("x", encoding="utf-8") as handle:  # "x": never overwrite
        handle.write(text)
    return found


def _free_path(folder: Path, stem: str) -> Path:
    candidate = folder / f"{stem}.yaml"
    number = 2
    while candidate.exists():
        candidate = folder / f"{stem}-{number}.yaml"
        number += 1
    return candidate
