"""Exploration finds a failing schedule, shrinks it, writes it without overwriting anything,
and the written reproduction fails the same way when replayed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import Phase, given, settings

from harness.cli import main
from harness.explore import explore, schedules, to_scenario
from harness.explore.search import write_reproduction
from harness.scenario.loader import load_file
from harness.scenario.model import ACTIONS, CLOUDS
from harness.sim.runner import run_scenario

OFF_BY_ONE = {"python": "harness.examples.broken:off_by_one_resume"}


@settings(max_examples=60, derandomize=True, database=None, deadline=None)
@given(schedules())
def test_every_generated_schedule_is_a_valid_scenario(data: dict) -> None:  # type: ignore[type-arg]
    scenario = to_scenario(data)
    assert 1 <= len(scenario.timeline) <= 4
    names = [c.name for c in scenario.expect]
    assert names[-6:-3] == ["exactly_once", "resume_correct", "durable"]
    assert names[:-6] in ([], ["saved_before_deadline"])


def test_schedules_reach_every_kind_of_fault_and_every_cloud() -> None:
    actions: set[str] = set()
    clouds: set[str] = set()

    @settings(max_examples=300, derandomize=True, database=None, phases=[Phase.generate])
    @given(schedules())
    def collect(data: dict) -> None:  # type: ignore[type-arg]
        for entry in data["timeline"]:
            actions.update(key for key in entry if key in ACTIONS)
            if "notice" in entry:
                clouds.add(data["env"]["cloud"])

    collect()
    assert actions == set(ACTIONS)
    assert clouds == set(CLOUDS)


@pytest.fixture(scope="module")
def found(tmp_path_factory: pytest.TempPathFactory) -> tuple:  # type: ignore[type-arg]
    out = tmp_path_factory.mktemp("explore")
    return explore(examples=6, seed=3, target=OFF_BY_ONE, out=out), out


def test_a_broken_target_is_found_and_shrunk(found: tuple) -> None:  # type: ignore[type-arg]
    report, out = found
    failure = report.failure
    assert failure is not None and failure.broken == ("resume_correct",)
    assert failure.path.parent == out and failure.path.suffix == ".yaml"
    assert failure.command == f"harness run {failure.path} --seed {failure.seed}"
    written = yaml.safe_load(failure.path.read_text())
    assert len(written["timeline"]) == 1, "shrunk to a single interruption"
    assert failure.path.read_text().startswith(f"# Replay: {failure.command}\n")


def test_the_written_reproduction_fails_the_same_way(found: tuple) -> None:  # type: ignore[type-arg]
    report, _ = found
    (loaded,) = load_file(report.failure.path)
    replay = run_scenario(loaded.scenario, seed=report.failure.seed)
    assert replay.status == "failed"
    assert tuple(c.spec.name for c in replay.broken_checks) == report.failure.broken


def test_a_reproduction_never_overwrites_a_file(found: tuple) -> None:  # type: ignore[type-arg]
    report, out = found
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
        report = explore(
            examples=3,
            seed=11,
            target="reference",
            out=tmp_path / str(index),
            clouds=("aws",),
            max_entries=1,
            progress=lambda n, r, i=index: runs[i].append(r.history.to_jsonl()),
        )
        reports.append(report)
    assert runs[0] == runs[1] and len(runs[0]) >= 3
    # The reference breaks nothing; what a schedule left unexercised is counted, not failed.
    assert reports[0].statuses == {"passed": 3} and reports[0].failure is None
    assert reports[0].unverified.get("fenced") == 3


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


def test_saving_is_expected_only_when_the_schedule_leaves_room_for_it() -> None:
    from harness.explore.strategies import expectations

    env = {"cloud": "aws", "replacement": {"delay": "5s"}}
    roomy = [{"at": "60s", "notice": {"action": "terminate", "lead": "120s"}}]
    tight = [{"at": "60s", "notice": {"kind": "eviction", "grace": "5s"}}]
    faulty = [*roomy, {"at": "10s", "s3": {"outage": True, "for": "60s"}}]
    assert expectations(env, roomy)[0] == "saved_before_deadline"
    assert "saved_before_deadline" not in expectations(env, tight)
    assert "saved_before_deadline" not in expectations(env, faulty)
    moved = {**env, "replacement": {"delay": "5s", "cloud": "gcp"}}
    assert "saved_before_deadline" not in expectations(moved, roomy)


def test_a_schedule_longer_than_max_sim_time_is_never_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["explore", "-n", "2", "--seed", "3", "--out", str(tmp_path), "--max-sim-time", "1m"]
    assert main(args) == 2
    assert "every generated schedule would simulate longer than --max-sim-time (1m)" in (
        capsys.readouterr().err
    )
    assert not list(tmp_path.iterdir())
