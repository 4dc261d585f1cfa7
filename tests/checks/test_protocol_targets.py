"""End to end: every known-bad target of :mod:`harness.examples.broken_protocol` breaks its
protocol check in its scenario (violations citing events, nothing else broken beyond what the
scenario marks), and the reference runtime passes that same check in the same scenario, with
something to judge (``passed``, not ``unverified``)."""

from __future__ import annotations

import pytest

from harness.checks import CheckSpec
from harness.examples.broken_protocol import BROKEN_PROTOCOL
from harness.scenario.model import TargetSpec
from harness.sim.runner import run_scenario
from tests.library.test_known_bad import scenario_of


@pytest.mark.parametrize("name", sorted(BROKEN_PROTOCOL))
def test_the_broken_target_fails_its_protocol_check(name: str) -> None:
    scenario = scenario_of(name)
    _, broken_check = BROKEN_PROTOCOL[name]
    assert scenario.target.python == f"harness.examples.broken_protocol:{name}"
    assert broken_check in [c.name for c in scenario.known_bad]
    result = run_scenario(scenario)
    failed = {c.spec.name: c.result for c in result.checks if not c.result.passed}
    assert broken_check in failed, f"{name} did not break {broken_check}"
    assert failed[broken_check].status == "failed"
    assert set(failed) <= {c.name for c in scenario.known_bad}, f"{name} broke more: {failed}"
    assert all(v.events for v in failed[broken_check].violations), "violations cite events"
    assert result.status == "xfailed"


@pytest.mark.parametrize("name", sorted(BROKEN_PROTOCOL))
def test_the_reference_runtime_passes_the_same_scenario(name: str) -> None:
    scenario = scenario_of(name)
    _, broken_check = BROKEN_PROTOCOL[name]
    cleared = tuple(CheckSpec(name=c.name, params=c.params) for c in scenario.expect)
    reference = scenario.model_copy(
        update={"target": TargetSpec(reference=True), "expect": cleared}
    )
    result = run_scenario(reference)
    assert [c.result.violations for c in result.checks if not c.result.passed] == []
    judged = next(c.result for c in result.checks if c.spec.name == broken_check)
    assert judged.status == "passed", judged.reason
    assert result.status == "passed"
