"""Exploration finds a failing schedule, shrinks it, writes it without overwriting anything,
and the written reproduction fails the same way when replayed."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from harness.cli import main
from harness.explore import explore, schedules, to_scenario
from harness.explore.fairness import CONDITIONAL, candidates
from harness.explore.search import ExploreReport, dump, write_reproduction
from harness.explore.strategies import chains, notices, notices_in_degraded_metadata
from harness.scenario.loader import ScenarioError, load_file, load_text
from harness.scenario.model import ACTIONS, CLOUDS, Cloud
from harness.sim.runner import RunResult, run_scenario

OFF_BY_ONE = {"python": "harness.examples.broken:off_by_one_resume"}


@settings(max_examples=60, derandomize=True, database=None, deadline=None)
@given(schedules())
def test_every_generated_schedule_is_a_valid_scenario(data: dict[str, Any]) -> None:
    scenario = to_scenario(data)
    assert 1 <= len(scenario.timeline) <= 4
    names = [c.name for c in scenario.expect]
    assert names == [
        "exactly_once",
        "resume_correct",
        "durable",
        "no_leaked_uploads",
        "fenced",
        "completes",
        "token_renewed",
        "works_through_advisory",
        "approved_after_save",
        "client_timeout",
        "polls_within_lead",
        "true_deadline",
    ]
    # The conditional checks come with parameters drawn from the schedule's own environment.
    assert [_name(raw) for raw in candidates(scenario)] == list(CONDITIONAL)
    # Validated as it is, it is the scenario its YAML text loads as.
    (loaded,) = load_text(dump(data), file="<generated>")
    assert scenario == loaded.scenario


def test_an_invalid_schedule_is_refused_with_the_line_of_its_yaml() -> None:
    data = {"description": "bad", "target": "reference", "timeline": [{"at": "soon"}]}
    with pytest.raises(ScenarioError) as error:
        to_scenario(data)
    assert str(error.value).startswith("<generated>:")
    assert error.value.problems[0].mark.line > 1  # the line of the entry in the YAML text


def _name(raw: str | Mapping[str, Any]) -> str:
    return raw if isinstance(raw, str) else next(iter(raw))


def _generated(count: int, **kwargs: Any) -> list[dict[str, Any]]:
    return _drawn(schedules(**kwargs), count)


@pytest.fixture(scope="module")
def drawn() -> list[dict[str, Any]]:
    return _generated(300)


def test_notices_are_most_of_the_entries_on_every_cloud(
    drawn: list[dict[str, Any]],
) -> None:
    entries = [entry for data in drawn for entry in data["timeline"]]
    notices = [entry["notice"] for entry in entries if "notice" in entry]
    assert len(notices) / len(entries) >= 0.4
    assert {data["env"]["cloud"] for data in drawn} == set(CLOUDS)


@pytest.mark.parametrize(
    ("cloud", "kinds"),
    [
        ("aws", {None, "rebalance", "scheduled-event", "asg-termination"}),
        ("gcp", {"preemption", "maintenance"}),
        ("azure", {"preempt", "terminate", "freeze", "reboot", "redeploy"}),
        ("kubernetes", {"eviction"}),
        ("webhook", {"interruption"}),
    ],
)
def test_every_notice_kind_of_each_cloud_comes(cloud: Cloud, kinds: set[str | None]) -> None:
    drawn: set[str | None] = set()

    @settings(max_examples=60, derandomize=True, database=None, phases=[Phase.generate])
    @given(notices(cloud))
    def collect(notice: dict[str, Any]) -> None:
        drawn.add(notice.get("kind"))

    collect()
    assert drawn == kinds


def test_the_environment_and_the_job_vary(drawn: list[dict[str, Any]]) -> None:
    jobs = [data["job"] for data in drawn]
    runtime = [job.get("runtime", {}) for job in jobs]
    assert any(job.get("materialize") for job in jobs)
    assert {job["state_size"] for job in jobs} >= {"8MiB", "64MiB", "1GiB"}
    assert any(r.get("token_ttl") == "60s" for r in runtime), "a run outlives its tokens"
    assert len({r.get("poll_interval") for r in runtime}) >= 3
    assert any("s3" in data["env"] for data in drawn)
    grace = [
        (job["runtime"]["grace_period"], entry["notice"]["grace"])
        for data, job in zip(drawn, jobs, strict=True)
        if data["env"]["cloud"] == "kubernetes"
        for entry in data["timeline"]
        if "notice" in entry and entry["notice"].get("kind") == "eviction"
    ]
    assert grace and all(told == given for told, given in grace), "the runtime knows the grace"


def test_faults_come_in_a_row_during_recovery_and_during_retries(
    drawn: list[dict[str, Any]],
) -> None:
    triggers = [entry.get("on", {}) for data in drawn for entry in data["timeline"]]
    # Three in a row are rarer in whole schedules (they hold four entries at most): drawn alone.
    chained = _drawn(chains("aws", None), 100)
    assert any(e.get("on", {}).get("incarnation") == 3 for c in chained for e in c), "three"
    recovering = [t for t in triggers if t.get("incarnation") == 2]
    assert {t["event"] for t in recovering} >= {"instance.started", "job.resumed"}
    assert any(t.get("where") == {"op": "s3.put_object", "ok": False} for t in triggers)


def test_schedules_reach_every_kind_of_fault_and_every_cloud(
    drawn: list[dict[str, Any]],
) -> None:
    actions: set[str] = set()
    clouds: set[str] = set()
    for data in drawn:
        for entry in data["timeline"]:
            actions.update(key for key in entry if key in ACTIONS)
            if "notice" in entry:
                clouds.add(data["env"]["cloud"])
    assert actions == set(ACTIONS)
    assert clouds == set(CLOUDS)


@pytest.fixture(scope="module")
def found(tmp_path_factory: pytest.TempPathFactory) -> tuple[ExploreReport, Path]:
    out = tmp_path_factory.mktemp("explore")
    report = explore(
        examples=6, seed=3, target=OFF_BY_ONE, out=out, clouds=("aws",), max_shrinks=40
    )
    return report, out


def test_a_broken_target_is_found_and_shrunk(found: tuple[ExploreReport, Path]) -> None:
    report, out = found
    failure = report.failure
    assert failure is not None and failure.broken == ("resume_correct",)
    assert failure.path.parent == out and failure.path.suffix == ".yaml"
    assert failure.command == f"harness run {failure.path} --seed {failure.seed}"
    written = yaml.safe_load(failure.path.read_text())
    assert len(written["timeline"]) == 1, "shrunk to a single interruption"
    assert failure.path.read_text().startswith(f"# Replay: {failure.command}\n")


def test_the_written_reproduction_fails_the_same_way(found: tuple[ExploreReport, Path]) -> None:
    failure = found[0].failure
    assert failure is not None
    (loaded,) = load_file(failure.path)
    replay = run_scenario(loaded.scenario, seed=failure.seed)
    assert replay.status == "failed"
    assert tuple(c.spec.name for c in replay.broken_checks) == failure.broken


def test_a_reproduction_never_overwrites_a_file(found: tuple[ExploreReport, Path]) -> None:
    report, out = found
    assert report.failure is not None
    first = report.failure.path
    before = first.read_bytes()
    data = yaml.safe_load(before)
    (loaded,) = load_file(first)
    result = run_scenario(loaded.scenario)
    again = write_reproduction({**data, "description": "x"}, result, out)
    third = write_reproduction({**data, "description": "x"}, result, out)
    assert first.read_bytes() == before
    assert again.path != first and third.path not in (first, again.path)
    assert again.path.name.endswith("-2.yaml") and third.path.name.endswith("-3.yaml")


def test_the_same_seed_explores_the_same_schedules(tmp_path: Path) -> None:
    runs: list[list[str]] = [[], []]
    reports = []
    for index in (0, 1):

        def record(n: int, result: RunResult, i: int = index) -> None:
            runs[i].append(result.history.to_jsonl())

        report = explore(
            examples=3,
            seed=11,
            target="reference",
            out=tmp_path / str(index),
            clouds=("aws",),
            max_entries=1,
            progress=record,
        )
        reports.append(report)
    assert runs[0] == runs[1] and len(runs[0]) >= 3
    # The reference breaks nothing; what a schedule left unexercised is counted, not failed.
    assert reports[0].statuses == {"passed": 3} and reports[0].failure is None
    assert reports[0].unverified.get("fenced") == 3


def test_the_schedules_of_a_seed_do_not_depend_on_the_modules_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hypothesis draws now and then a literal of the modules loaded from outside site-packages;
    a module the process loads between two searches (a test's, a target's) must not change
    what a seed explores. The draws are recorded, not run: one passing run stands for all."""
    import importlib
    import sys

    import harness.explore.search as search

    one_notice = {
        "description": "one notice",
        "seed": 0,
        "target": "reference",
        "job": {"items": 60, "seconds_per_item": "1s", "checkpoint_every": "20s"},
        "env": {"cloud": "aws"},
        "timeline": [{"at": "10s", "notice": {"lead": "30s"}}],
        "expect": ["exactly_once", "resume_correct"],
    }
    passing = run_scenario(to_scenario(one_notice))
    assert passing.status == "passed"
    drawn: list[list[str]] = []

    def record(data: dict[str, Any], scenario: Any) -> tuple[dict[str, Any], RunResult]:
        drawn[-1].append(dump(data))
        return data, passing

    monkeypatch.setattr(search, "judge", record)
    probe = tmp_path / "probe"
    probe.mkdir()
    # Numbers in every range the strategies draw from, and words they might take.
    literals = ", ".join([*map(str, range(0, 2000, 3)), *(f"'{w}'" for w in ("aws", "60s"))])
    (probe / "spot_literals_probe.py").write_text(f"LITERALS = ({literals})\n")
    monkeypatch.syspath_prepend(str(probe))
    try:
        for load in (False, True):
            if load:
                importlib.import_module("spot_literals_probe")
            drawn.append([])
            explore(examples=40, seed=23, out=tmp_path / str(load))
    finally:
        sys.modules.pop("spot_literals_probe", None)
    assert len(drawn[0]) >= 30 and drawn[0] == drawn[1]


def test_cli_prints_the_file_and_the_replay_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "explore",
            "-q",
            "--examples",
            "4",
            "--seed",
            "3",
            "--target",
            "harness.examples.broken:off_by_one_resume",
            "--out",
            str(tmp_path),
            "--max-shrinks",
            "3",
            "--cloud",
            "aws",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    (written,) = tmp_path.glob("*.yaml")
    assert "breaks: resume_correct" in out
    assert f"replay: harness run {written} --seed " in out


def test_cli_refuses_an_unknown_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", "--target", "not a target"]) == 2
    assert "use `reference` or `package.module:attribute`" in capsys.readouterr().err


def test_a_schedule_longer_than_max_sim_time_is_never_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["explore", "-n", "2", "--seed", "3", "--out", str(tmp_path), "--max-sim-time", "1m"]
    assert main(args) == 2
    assert "every generated schedule would simulate longer than --max-sim-time (1m)" in (
        capsys.readouterr().err
    )
    assert not list(tmp_path.iterdir())


def test_a_schedule_drawn_again_is_not_run_again_and_steers_as_it_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hypothesis' targeted phase and shrinking draw the same schedule again and again (a
    quarter of 100 examples with seed 5); a run is deterministic, so the repeat costs no run,
    and Hypothesis is told the scores the first run earned."""
    import harness.explore.search as search

    def schedule(at: int) -> dict[str, Any]:
        return {
            "description": "one notice",
            "seed": 0,
            "target": "reference",
            "job": {"items": 60, "seconds_per_item": "1s", "checkpoint_every": "20s"},
            "env": {"cloud": "aws"},
            "timeline": [{"at": f"{at}s", "notice": {"lead": "30s"}}],
            "expect": ["exactly_once", "resume_correct"],
        }

    # Many draws, two schedules: most draws repeat one already run.
    drawn = st.integers(0, 10**6).map(lambda n: schedule(10 + 10 * (n % 2)))
    monkeypatch.setattr(search, "schedules", lambda **_: drawn)
    runs: list[str] = []
    judge = search.judge

    def judge_and_record(data: dict[str, Any], scenario: Any) -> tuple[dict[str, Any], RunResult]:
        runs.append(str(data))
        return judge(data, scenario)

    monkeypatch.setattr(search, "judge", judge_and_record)
    told: dict[str, list[float]] = {}
    monkeypatch.setattr(search, "target", lambda v, label: told.setdefault(label, []).append(v))
    report = explore(examples=12, seed=1, out=tmp_path, steer=True)
    assert sorted(runs) == sorted({str(schedule(10)), str(schedule(20))})
    assert report.examples == 2 and report.statuses == {"passed": 2}
    assert report.repeats >= 1 and report.stats()["repeats"] == report.repeats
    # Every draw told Hypothesis its scores, a repeat the same ones as its first run.
    assert len(told["instances"]) == report.examples + report.repeats
    assert set(told["instances"]) == {2.0}


def test_the_search_is_unsteered_unless_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below 1,000 examples Hypothesis' targeted phase takes the second half of the budget and
    the search loses its spread (docs/explore.md#steering): no score is given unless asked."""
    import harness.explore.search as search

    told: list[str] = []
    monkeypatch.setattr(search, "target", lambda v, label: told.append(label))
    common: dict[str, Any] = {"examples": 2, "seed": 3, "clouds": ("aws",), "max_entries": 1}
    explore(out=tmp_path / "plain", **common)
    assert told == []
    explore(out=tmp_path / "steered", steer=True, **common)
    assert sorted(set(told)) == ["checks judged", "instances", "kinds of events"]


def test_notices_come_while_the_metadata_service_fails(
    drawn: list[dict[str, Any]],
) -> None:
    """Errors, throttling, slow answers, resets and requests never answered, from shortly
    before a notice (a client must tell an error from a notice and give up in time), on the
    polled clouds, and on AWS sometimes on IMDSv2's token alone."""

    def failing_before_notice(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for failing, notice in itertools.pairwise(data["timeline"]):
            if not ("imds" in failing and "notice" in notice and "at" in notice):
                continue
            if 0 <= int(notice["at"][:-1]) - int(failing.get("at", "-1s")[:-1]) <= 60:
                yield failing["imds"]

    assert any(
        data["env"]["cloud"] in ("aws", "gcp", "azure") and any(failing_before_notice(data))
        for data in drawn
    )
    clouds = st.sampled_from(["aws", "gcp", "azure"])
    chosen = _drawn(clouds.flatmap(lambda cloud: notices_in_degraded_metadata(cloud, None)), 200)
    faults = [f for entries in chosen for f in failing_before_notice({"timeline": entries})]
    assert len(faults) == len(chosen)
    kinds = {k for fault in faults for k in fault if k not in ("for", "path")}
    assert kinds == {"status", "throttle", "timeout", "reset", "latency"}
    assert any(fault.get("path") == "/latest/api/token" for fault in faults)


def _drawn(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    found: list[Any] = []

    @settings(max_examples=count, derandomize=True, database=None, phases=[Phase.generate])
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    collect()
    return found
