"""Property-based search for a failing interruption schedule, shrunk to the smallest one.

:func:`explore` lets Hypothesis generate schedules (:mod:`harness.explore.strategies`), runs each
in simulation and, on the first schedule whose checks fail, shrinks it and writes the smallest
reproduction as a scenario file, never over an existing file, with the ``harness run FILE --seed
N`` line that replays it. Without a ``database`` the search is deterministic: the same ``seed``
(or none, derandomized) explores the same schedules. With one (``harness explore --profile dev``)
Hypothesis replays the failures it saved there before it generates new schedules.

Every schedule is judged by the invariants, and by ``saved_before_deadline``, ``detects_notice``
and ``lost_work`` where its run left room for them (:mod:`harness.explore.fairness`). Hypothesis
``target()`` steers the search towards runs that judge more checks, go through more instances
and meet more kinds of events, and, given a steering :class:`CoverageCampaign`
(:mod:`harness.explore.coverage`), towards runs through code of the target few runs reached.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, given, reject, settings, target
from hypothesis import seed as hypothesis_seed
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import Unsatisfiable

from harness.checks import parse_check_spec
from harness.errors import InputError
from harness.explore.coverage import CoverageCampaign, coverage_text, scope_for
from harness.explore.fairness import CONDITIONAL, candidates, fair_checks
from harness.explore.strategies import INVARIANTS, Data, schedules
from harness.report.render import replay_command
from harness.scenario.loader import Mark, SourceMap, load_text, validate_document
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
    #: The run of the smallest failing schedule (its history, for the journal).
    failed_run: RunResult | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    #: check name -> runs in which it had nothing to judge (the schedule did not exercise it).
    unverified: dict[str, int] = field(default_factory=dict)
    #: check name -> runs it judged (passed or failed, not unverified).
    judged: dict[str, int] = field(default_factory=dict)
    #: Timeline entries of every run, and how many of them were notices.
    entries: int = 0
    notices: int = 0
    #: Lines and arcs of the target's code the runs reached (when recorded).
    coverage: CoverageCampaign | None = None
    #: Schedules Hypothesis drew again after they had passed: not run again (a run is
    #: deterministic), not counted in ``examples``.
    repeats: int = 0

    def unverified_text(self) -> str:
        """``"fenced in 480 runs, resume_correct in 12 runs"``, most often first."""
        ranked = sorted(self.unverified.items(), key=lambda item: (-item[1], item[0]))
        return ", ".join(f"{name} in {count} runs" for name, count in ranked)

    def stats(self) -> dict[str, Any]:
        """The figures :func:`stats_text` prints, as numbers (shards' are summed)."""
        return {
            "runs": self.examples,
            "entries": self.entries,
            "notices": self.notices,
            "judged": dict(self.judged),
            "statuses": dict(self.statuses),
            "repeats": self.repeats,
            **({} if self.coverage is None else {"coverage": self.coverage.stats()}),
        }

    def record(self, result: RunResult) -> None:
        """Count one run."""
        self.examples += 1
        status = explored_status(result)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.entries += len(result.scenario.timeline)
        self.notices += sum(1 for entry in result.scenario.timeline if entry.notice is not None)
        for outcome in result.checks:
            tally = self.unverified if outcome.result.unverified else self.judged
            tally[outcome.spec.name] = tally.get(outcome.spec.name, 0) + 1


def stats_text(stats: dict[str, Any]) -> str:
    """The share of notices among generated entries and, per check, the runs that judged it."""
    entries, notices = stats.get("entries", 0), stats.get("notices", 0)
    share = notices / entries if entries else 0.0
    judged = stats.get("judged", {})
    names = [*CONDITIONAL, *(_name(raw) for raw in INVARIANTS)]
    return "\n".join(
        [
            f"{stats.get('runs', 0)} runs, {entries} timeline entries, {notices} notices "
            f"({share:.0%}); {stats.get('repeats', 0)} schedule(s) drawn again, not run again",
            "runs in which each check was judged (passed or failed, not unverified):",
            *(f"  {name:22} {judged.get(name, 0)}" for name in names),
            *coverage_text(stats.get("coverage") or {}),
        ]
    )


def _name(raw: Any) -> str:
    return raw if isinstance(raw, str) else next(iter(raw))


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
    database: Path | None = None,
    max_shrinks: int = 150,
    coverage: CoverageCampaign | None = None,
    steer: bool = False,
) -> ExploreReport:
    """Search ``examples`` schedules against ``target``; shrink and write the first failure.
    A schedule that would simulate longer than ``max_sim_time`` seconds is never run.

    ``target`` is scenario syntax: ``"reference"`` or ``{"python": "pkg.mod:factory"}``.
    ``database``: a folder where Hypothesis keeps the failures it found, to replay them first
    next time (None: nothing is read or written, and the search is deterministic).
    ``max_shrinks``: most runs spent shrinking the first failure.
    ``coverage``: record the arcs of the target's code each run reaches (and steer by them).
    ``steer``: Hypothesis' targeted phase climbs towards the runs that judged the most checks,
    started the most instances and reached the most kinds of events (docs/explore.md#steering).
    """
    report = ExploreReport(coverage=coverage)
    first_broken: list[tuple[str, ...]] = []
    # Failing schedules met so far (they fail again without a run), and the runs shrinking may
    # still take: past that budget an unseen schedule counts as passing, so Hypothesis stops
    # shrinking at the smallest failure found by then.
    failing: dict[str, tuple[Data, RunResult]] = {}
    # Schedules that count as passing (they passed, or while shrinking failed otherwise than
    # the first failure), with what they told Hypothesis' targeted phase: drawn again (the
    # targeted phase and shrinking often land on the same schedule), they are not run again.
    passed: dict[str, Scores] = {}
    shrink_budget = [max_shrinks]

    def check(data: Data) -> None:
        key = json.dumps(data, sort_keys=True)
        if key in passed:
            report.repeats += 1
            _tell(passed[key])
            return
        found = failing.get(key) or run(data, key)
        if found is not None:
            failing[key] = found
            raise ScheduleFailed(*found)  # one place: Hypothesis tells failures by their origin

    def run(data: Data, key: str) -> tuple[Data, RunResult] | None:
        """Run one schedule: (the judged schedule, its run) if it fails as the first did."""
        if first_broken and shrink_budget[0] <= 0:
            return None
        scenario = to_scenario(data)
        if max_sim_time is not None and estimate_work(scenario).seconds > max_sim_time:
            reject()  # too long to simulate: Hypothesis draws another schedule instead
        if first_broken:
            shrink_budget[0] -= 1
        if coverage is None:
            judged, result = judge(data, scenario)
        else:
            judged, result = coverage.measure(scenario, lambda: judge(data, scenario))
        told = coverage.last_scores if coverage is not None else ()
        scores = (*told, *(_steer(result) if steer else ()))
        report.record(result)
        if progress is not None:
            progress(report.examples, result)
        if explored_status(result) in ("passed", "xfailed"):
            passed[key] = scores
            return None
        broken = _broken(result)
        if not first_broken:
            first_broken.append(broken)
        # Shrink towards the failure first found, not towards another one met on the way.
        if broken != first_broken[0]:
            passed[key] = scores
            return None
        return judged, result

    # Steering is opt-in: below 1,000 examples Hypothesis' targeted phase spends the whole second
    # half of the budget mutating the best-scoring schedules, and the search loses its spread
    # (seed 1, 100 examples: 58 of 98 runs on GCP, 3 on AWS); the yardstick of seeded bugs
    # measured 21 of 46 caught steered, 30 of 46 unsteered (docs/explore.md#steering).
    steered = steer or (coverage is not None and coverage.steer)
    phases = (Phase.generate, *((Phase.target,) if steered else ()), Phase.shrink)
    search = settings(
        max_examples=examples,
        database=None if database is None else DirectoryBasedExampleDatabase(database),
        deadline=None,
        derandomize=seed is None and database is None,
        phases=phases if database is None else (Phase.reuse, *phases),
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        print_blob=False,
    )(given(schedules(target=target, clouds=clouds, max_entries=max_entries))(check))
    # Failures saved for one target and set of clouds are kept apart from another's.
    key = json.dumps([target, sorted(clouds), max_entries], sort_keys=True).encode()
    search.hypothesis.inner_test._hypothesis_internal_add_digest = key  # type: ignore[attr-defined]
    if seed is not None:
        search = hypothesis_seed(seed)(search)
    try:
        with drawn_with_fixed_constants(target):
            search()
    except ScheduleFailed as failure:
        confirmed = confirm_on_full_stack(failure.result)  # never report what only a shortcut saw
        if confirmed.error is not None and confirmed.error.startswith(HARNESS_DEFECT):
            raise RuntimeError(confirmed.error) from None
        report.failure = write_reproduction(failure.data, confirmed, out)
        report.failed_run = confirmed
    except Unsatisfiable:
        raise InputError(
            "every generated schedule would simulate longer than --max-sim-time "
            f"({format_duration(max_sim_time or 0)}); raise it"
        ) from None
    return report


@contextlib.contextmanager
def drawn_with_fixed_constants(target: Any) -> Iterator[None]:
    """Let Hypothesis draw, now and then, a literal of the harness's code and of the target's
    (its "local constants": thresholds, leads, sizes, the values bugs hide behind), read from
    those files alone while it explores.

    Hypothesis takes them from whichever modules the process loaded from outside site-packages:
    what it had imported before (a test session, a pytest-xdist worker of a campaign, the
    target) and how the harness was installed (editable: its own modules count; from a wheel:
    none) changed what one seed explored. The same files give the same constants: one seed, one
    set of schedules, for the same code. The hook is Hypothesis' private one (6.131 and later);
    a version without it draws no local constants, and ``tests/explore/test_explore.py`` fails
    if a version finds another way in."""
    from hypothesis.internal.conjecture import providers

    local = getattr(providers, "_get_local_constants", None)
    cache = getattr(providers, "CONSTANTS_CACHE", None)
    if local is None or cache is None:
        yield
        return
    fixed = code_constants(constants_files(target))
    cache.cache.clear()  # filled from other constants by an earlier search
    providers._get_local_constants = lambda: fixed
    try:
        yield
    finally:
        providers._get_local_constants = local
        cache.cache.clear()


def constants_files(target: Any) -> tuple[Path, ...]:
    """Where explore's constants come from: the harness's code, the fake metadata service's and
    the target's own (:func:`~harness.explore.coverage.scope_for`), every file sorted."""
    return tuple(sorted({*_own_files(), *scope_for(target).files()}))


@functools.cache
def _own_files() -> frozenset[Path]:
    """The harness's and the fake metadata service's files (listed once a process)."""
    import fake_imds
    import harness

    roots = (Path(harness.__file__).parent, Path(fake_imds.__file__).parent)
    return frozenset(path for root in roots for path in root.rglob("*.py"))


@functools.lru_cache(maxsize=8)
def code_constants(files: tuple[Path, ...]) -> Any:
    """Hypothesis' constants of ``files``, in sorted sets (the order it draws them from must not
    depend on the hash seed of the process)."""
    from hypothesis.internal.constants_ast import Constants, _constants_from_source
    from hypothesis.internal.floats import float_to_int
    from sortedcontainers import SortedSet

    integers: set[int] = set()
    floats: set[float] = set()
    strings: set[str] = set()
    data: set[bytes] = set()
    for path in files:
        try:
            found = _constants_from_source(path.read_bytes(), limit=True)
        except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
            continue  # Hypothesis skips a file it cannot read or parse too
        integers |= set(found.integers)
        floats |= set(found.floats)
        strings |= set(found.strings)
        data |= set(found.bytes)
    return Constants(
        integers=SortedSet(integers),
        floats=SortedSet(floats, key=float_to_int),
        bytes=SortedSet(data),
        strings=SortedSet(strings),
    )


def judge(data: Data, scenario: Any) -> tuple[Data, RunResult]:
    """Run ``scenario`` with the invariants and every conditional check, then keep the
    conditional checks its run left room for: (the schedule with those checks, the result)."""
    extra = candidates(scenario)
    specs = (*scenario.expect, *(parse_check_spec(raw) for raw in extra))
    # The search runs on the S3 shortcut; the one failure reported is confirmed on the full stack.
    result = run_scenario(scenario.model_copy(update={"expect": specs}), confirm=False)
    if result.error is not None:
        return data, result
    fair = fair_checks(scenario, result.history)
    kept = tuple(c for c in result.checks if c.spec.name not in CONDITIONAL or c.spec.name in fair)
    judged = scenario.model_copy(update={"expect": tuple(c.spec for c in kept)})
    expect = [*data["expect"], *(raw for raw in extra if _name(raw) in fair)]
    return {**data, "expect": expect}, replace(result, scenario=judged, checks=kept)


#: What one run told Hypothesis' targeted phase: (label, score) pairs.
Scores = tuple[tuple[str, float], ...]


def _steer(result: RunResult) -> Scores:
    """Point Hypothesis' targeted phase at the runs that exercise the most; returns the scores."""
    judged = sum(1 for c in result.checks if not c.result.unverified)
    scores = (
        ("checks judged", float(judged)),
        ("instances", float(len(result.history.of_kind("instance.started")))),
        ("kinds of events", float(len({event.kind for event in result.history}))),
    )
    _tell(scores)
    return scores


def _tell(scores: Scores) -> None:
    for label, score in scores:
        target(score, label=label)


def explored_status(result: RunResult) -> str:
    """A generated schedule's outcome: ``passed`` when it broke no guarantee, whatever it left
    unexercised (an unverified check of a schedule is no finding)."""
    return "passed" if result.status == "unverified" else result.status


def _broken(result: RunResult) -> tuple[str, ...]:
    return tuple(c.spec.name for c in result.broken_checks) or (result.status,)


def to_scenario(data: Data) -> Any:
    """Validate generated data exactly as a scenario file would be.

    The data is validated as it is, with the model and checks a scenario file goes through
    (``validate_document``), without dumping it to YAML and parsing it back, a tenth of a
    schedule's cost. Generated data is plain (strings, numbers, lists, mappings), which the YAML
    round trip gives back unchanged; only when it does not validate is it loaded as the YAML
    text, so that the problems name the line and column of the schedule as written out."""
    scenario, problems = validate_document(data, _GENERATED)
    if scenario is None or problems:
        (loaded,) = load_text(dump(data), file="<generated>")
        return loaded.scenario
    return scenario


#: Where generated data comes from: one file with no lines (problems go through the YAML text).
_GENERATED = SourceMap(values={(): Mark("<generated>", 1, 1)})


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
