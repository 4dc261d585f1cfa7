"""Coverage of the target's code while explored schedules run: the tracer's scope, the score
that steers the search towards arcs no run reached, determinism, and the CLI's options."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import hypothesis
import pytest

from harness.cli import main
from harness.errors import InputError
from harness.explore import coverage as cover
from harness.explore import explore
from harness.explore.coverage import (
    RARE,
    RARE_ARCS,
    ArcRecorder,
    CoverageCampaign,
    Scope,
    executable_lines,
    scope_for,
)
from harness.explore.pytest_campaign import merge_stats
from harness.runtime.job import JobSpec, expected_outputs
from harness.sim.golden import reference_golden

INSIDE = """\
import outside


def pick(flag):
    if flag:
        return outside.helper(1)
    return outside.helper(2)


async def waits(loop_future):
    first = 1
    await loop_future
    return first + 1
"""

OUTSIDE = """\
def helper(value):
    doubled = value * 2
    return doubled
"""


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, Path]:
    """``inside`` (in package folder ``scoped/``) calling ``outside`` (not in the scope)."""
    scoped = tmp_path / "scoped"
    scoped.mkdir()
    (scoped / "inside.py").write_text(INSIDE)
    (tmp_path / "outside.py").write_text(OUTSIDE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(scoped))
    for name in ("inside", "outside"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return importlib.import_module("inside"), scoped


def _lines_of(source: str, *texts: str) -> list[int]:
    lines = source.splitlines()
    return [next(n for n, line in enumerate(lines, 1) if text in line) for text in texts]


def test_the_tracer_records_arcs_of_the_scope_and_nothing_outside(
    modules: tuple[ModuleType, Path],
) -> None:
    inside, scoped = modules
    recorder = ArcRecorder(Scope((scoped.resolve(),)))
    before = sys.gettrace()
    with recorder.recording() as arcs:
        assert inside.pick(True) == 2
    assert sys.gettrace() is before, "the tracer in force before is put back"
    assert list(arcs) == [str(scoped.resolve() / "inside.py")], "outside.py is not recorded"
    (taken,) = arcs.values()
    start, test, branch, other = _lines_of(INSIDE, "def pick", "if flag", "helper(1)", "helper(2)")
    assert taken == {(-start, test), (test, branch), (branch, -start)}
    assert other not in {line for arc in taken for line in arc}
    with recorder.recording() as again:
        inside.pick(False)
    assert (test, other) in again[str(scoped.resolve() / "inside.py")]


def test_a_coroutine_resumes_where_it_stopped_and_returns_once(
    modules: tuple[ModuleType, Path],
) -> None:
    import asyncio

    inside, scoped = modules
    recorder = ArcRecorder(Scope((scoped.resolve(),)))

    async def main() -> int:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task: asyncio.Future[int] = asyncio.ensure_future(inside.waits(future))
        await asyncio.sleep(0)  # the coroutine suspends at its await
        future.set_result(None)
        return await task

    with recorder.recording() as arcs:
        assert asyncio.run(main()) == 2
    (taken,) = arcs.values()
    start, first, waits, back = _lines_of(
        INSIDE, "async def waits", "first = 1", "await loop_future", "return first + 1"
    )
    assert {(-start, first), (first, waits), (back, -start)} <= taken
    assert (waits, -start) not in taken, "a suspension is not an exit"


def test_scope_code_the_harness_runs_to_judge_is_not_recorded() -> None:
    recorder = ArcRecorder(scope_for("reference"))
    job = {"items": 30, "seconds_per_item": "1s", "checkpoint_every": "10s", "output_every": 10}
    with recorder.recording() as judging:
        reference_golden(job)  # harness/sim/golden.py computes expected outputs with job.py
    with recorder.recording() as running:
        expected_outputs(JobSpec.from_mapping(job))
    job_py = str(Path(sys.modules["harness.runtime.job"].__file__ or "").resolve())
    assert judging == {}
    assert running[job_py], "the same function called from elsewhere is recorded"


def test_the_score_rewards_a_run_that_reaches_new_arcs(
    modules: tuple[ModuleType, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    inside, scoped = modules
    scores: list[tuple[float, str]] = []
    monkeypatch.setattr(cover, "target", lambda score, label: scores.append((score, label)))
    campaign = CoverageCampaign(Scope((scoped.resolve(),)))
    for _ in range(RARE):
        campaign.measure(None, lambda: inside.pick(True))
    assert scores == [(0.0, RARE_ARCS)] * RARE, "every run reaches the same arcs: none is rare"
    campaign.measure(None, lambda: inside.pick(False))
    # pick(False) shares entry->test with the others and adds test->other and other->exit.
    assert scores[-1] == (2.0, RARE_ARCS)
    campaign.measure(None, lambda: inside.pick(False))
    assert scores[-1] == (0.0, RARE_ARCS), "two runs in 22 is no longer rare"
    assert campaign.progress == [(1, 3), (RARE + 1, 5)], "the first run reaching each count"
    recording = CoverageCampaign(Scope((scoped.resolve(),)), steer=False)
    recording.measure(None, lambda: inside.pick(True))
    assert len(scores) == RARE + 2 and recording.arcs == 3, "recording alone does not steer"


def test_executable_lines_are_the_lines_of_functions(modules: tuple[ModuleType, Path]) -> None:
    _, scoped = modules
    lines = executable_lines(scoped / "inside.py")
    body = _lines_of(INSIDE, "if flag", "helper(1)", "helper(2)", "first = 1", "return first")
    assert set(body) <= lines
    assert not lines & set(_lines_of(INSIDE, "import outside", "def pick", "async def waits"))


def test_stats_and_shards_merge_into_the_union(modules: tuple[ModuleType, Path]) -> None:
    inside, scoped = modules
    one, two = (CoverageCampaign(Scope((scoped.resolve(),)), steer=False) for _ in range(2))
    one.measure(None, lambda: inside.pick(True))
    two.measure(None, lambda: inside.pick(False))
    total: dict[str, Any] = {}
    merge_stats(total, {"runs": 1, "coverage": one.stats()})
    merge_stats(total, {"runs": 1, "coverage": two.stats()})
    (figures,) = total["coverage"]["files"].values()
    test, branch, other = _lines_of(INSIDE, "if flag", "helper(1)", "helper(2)")
    assert figures["lines"] == [test, branch, other]
    assert len(figures["arcs"]) == 5 and total["runs"] == 2


def test_steered_exploration_is_deterministic_for_a_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    scores: list[float] = []

    def scored(score: float, label: str) -> None:
        scores.append(score)
        hypothesis.target(score, label=label)

    monkeypatch.setattr(cover, "target", scored)

    def schedules() -> tuple[list[str], list[tuple[int, int]]]:
        seen: list[str] = []
        # Rare at one run in two, so that the short search gets scores above zero to climb.
        campaign = CoverageCampaign(scope_for("reference"), rare=2)
        explore(
            examples=12,
            seed=5,
            clouds=("aws",),
            max_entries=2,
            progress=lambda _, result: seen.append(result.scenario.model_dump_json()),
            coverage=campaign,
        )
        return seen, campaign.progress

    first = schedules()
    first_scores = list(scores)
    assert len(first[0]) == 12 and first[1][0][0] == 1, "every run recorded, the first reaches arcs"
    assert any(score > 0 for score in first_scores), "the search was steered"
    assert schedules() == first and scores[len(first_scores) :] == first_scores


def test_the_default_scope_is_the_target_s_own_code() -> None:
    runtime = Path(importlib.import_module("harness.runtime").__file__ or "").resolve().parent
    assert scope_for("reference").roots == (runtime,)
    examples = Path(importlib.import_module("harness.examples").__file__ or "").resolve().parent
    broken = {"python": "harness.examples.broken:off_by_one_resume"}
    assert scope_for(broken).roots == (examples,)
    # A package and its folder name one root (the folder of the code that runs: a checkout's
    # or an installed package's, as the test runs).
    assert scope_for(broken, ["harness.runtime", str(runtime)]).roots == (runtime,)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--cover", "no.such.package", "--stats"], "--cover no.such.package: no such file"),
        (["--cover", "README.md", "--stats"], "not a Python file"),
        (["--cover", "harness.runtime"], "add --steer-coverage, --stats or --coverage-report"),
        (["--workers", "2", "--coverage-report", "x.txt"], "reads the merged journal"),
    ],
)
def test_cli_refuses_bad_coverage_options(
    args: list[str], reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explore", "-q", "-n", "1", *args]) == 2
    assert reason in capsys.readouterr().err


def test_cli_never_overwrites_a_coverage_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "uncovered.txt"
    existing.write_text("mine\n")
    assert main(["explore", "-q", "-n", "1", "--coverage-report", str(existing)]) == 2
    assert "the file exists; name a new one" in capsys.readouterr().err
    assert existing.read_text() == "mine\n"
    with pytest.raises(InputError, match="does not exist"):
        cover.check_report_path(tmp_path / "missing" / "report.txt")


def test_cli_prints_coverage_and_lists_the_lines_no_run_reached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "uncovered.txt"
    args = ["explore", "-q", "-n", "2", "--seed", "3", "--cloud", "gcp", "--stats"]
    assert main([*args, "--steer-coverage", "--coverage-report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "target coverage (harness/runtime): " in out
    assert "distinct arcs, at each run that reached new ones:\n  run 1: " in out
    text = report.read_text()
    header, *rest = text.splitlines()
    assert header.startswith("# Lines in functions of harness/runtime that no explored run")
    assert "after 2 runs" in header
    listed = [line for line in rest if line[:6].strip().isdigit()]
    missing = int(header.split(": ")[1].split(" of ")[0])
    assert len(listed) == missing > 0
    assert "harness/runtime/monitor/azure.py: " in text, "a GCP-only campaign never runs Azure"
