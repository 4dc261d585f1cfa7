"""Every known-bad target breaks exactly the check it is written to break, and the reference
runtime passes that same check in the same scenario: the checks tell good from bad end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.checks import CheckSpec
from harness.examples.broken import BROKEN
from harness.examples.broken_protocol import BROKEN_PROTOCOL
from harness.examples.handlers import KNOWN_BAD as HANDLERS
from harness.scenario.loader import load_file
from harness.scenario.model import Scenario, TargetSpec
from harness.sim.runner import run_scenario

KNOWN_BAD = Path(__file__).resolve().parents[2] / "scenarios" / "known_bad"


def scenario_of(name: str) -> Scenario:
    (loaded,) = load_file(KNOWN_BAD / f"{name}.yaml")
    return loaded.scenario


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_the_broken_target_fails_its_check_and_only_that(name: str) -> None:
    scenario = scenario_of(name)
    _, broken_check = BROKEN[name]
    assert [c.name for c in scenario.known_bad] in (
        [broken_check],
        [broken_check, "detects_notice"],
    )
    result = run_scenario(scenario)
    failed = {c.spec.name: c.result for c in result.checks if not c.result.passed}
    assert broken_check in failed, f"{name} did not break {broken_check}"
    assert set(failed) <= {c.name for c in scenario.known_bad}, f"{name} broke more: {failed}"
    assert all(v.events for v in failed[broken_check].violations), "violations cite events"
    assert result.status == "xfailed"


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_the_reference_runtime_passes_the_same_scenario(name: str) -> None:
    scenario = scenario_of(name)
    cleared = tuple(CheckSpec(name=c.name, params=c.params) for c in scenario.expect)
    reference = scenario.model_copy(
        update={"target": TargetSpec(reference=True), "expect": cleared}
    )
    result = run_scenario(reference)
    assert [c.result.violations for c in result.checks if not c.result.passed] == []
    assert result.status == "passed"


def test_every_known_bad_scenario_names_a_broken_target() -> None:
    names = {path.stem for path in KNOWN_BAD.glob("*.yaml")}
    # the handlers: test_independent_handlers; the protocol ones: tests/checks
    assert names == set(BROKEN) | set(HANDLERS) | set(BROKEN_PROTOCOL)
    for name in set(BROKEN):
        assert scenario_of(name).target.python == f"harness.examples.broken:{name}"


def test_lost_work_and_completes_fail_on_a_real_run_that_exceeds_them() -> None:
    (loaded,) = load_file(KNOWN_BAD.parent / "crash" / "hard_kill_without_notice.yaml")
    strict = loaded.scenario.model_copy(
        update={
            "expect": (
                CheckSpec(name="lost_work", params={"at_most": 5.0}),
                CheckSpec(name="completes", params={"within": 60.0}),
            )
        }
    )
    result = run_scenario(strict)
    lost, completes = (c.result for c in result.checks)
    assert not lost.passed and "was redone by" in lost.violations[0].message
    assert "instance.killed" in [e.kind for e in lost.violations[0].events]
    assert not completes.passed and "the job completed after" in completes.violations[0].message
