"""Handlers written without the reference runtime (``harness/examples/handlers``): each known-bad
one is caught by the check its scenario names, with the events that prove it, and the careful
one passes the same scenario."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.examples.handlers import KNOWN_BAD
from harness.scenario.loader import load_file
from harness.scenario.model import CheckSpec, Scenario, TargetSpec
from harness.sim.runner import RunResult, run_scenario

KNOWN_BAD_DIR = Path(__file__).resolve().parents[2] / "scenarios" / "known_bad"
CAREFUL = "harness.examples.handlers.careful:target"

#: handler -> (a phrase of the violation, event kinds it must cite)
EVIDENCE = {
    "report_before_put": ("before any write of", {"checkpoint.durable", "storage.op"}),
    "imdsv1_poller": ("no checkpoint was made durable", {"notice.issued", "notice.deadline"}),
    "thread_upload": ("kept working after notice", {"notice.issued", "job.item_done"}),
    "pointer_first": ("before it was durable", {"metadata.committed", "checkpoint.durable"}),
    "save_in_place": ("resumed at position 0", {"job.resumed", "checkpoint.durable"}),
    "exit_without_await": ("no checkpoint was made durable", {"notice.issued"}),
}


def scenario_of(name: str) -> Scenario:
    (loaded,) = load_file(KNOWN_BAD_DIR / f"{name}.yaml")
    return loaded.scenario


def failures(result: RunResult) -> dict[str, list[str]]:
    return {
        c.spec.name: [v.message for v in c.result.violations]
        for c in result.checks
        if not c.result.passed
    }


def test_every_handler_has_a_scenario_and_evidence() -> None:
    assert set(EVIDENCE) == set(KNOWN_BAD)
    for name in KNOWN_BAD:
        scenario = scenario_of(name)
        assert scenario.target.python == f"harness.examples.handlers.{name}:target"
        assert KNOWN_BAD[name] in {c.name for c in scenario.known_bad}


@pytest.mark.parametrize("name", sorted(KNOWN_BAD))
def test_the_named_check_catches_the_handler_with_evidence(name: str) -> None:
    scenario = scenario_of(name)
    result = run_scenario(scenario)
    check = KNOWN_BAD[name]
    broken = {c.spec.name: c.result for c in result.checks if not c.result.passed}
    assert check in broken, f"{name} slipped through {check}: {failures(result)}"
    assert set(broken) <= {c.name for c in scenario.known_bad}, failures(result)
    phrase, kinds = EVIDENCE[name]
    proof = [v for v in broken[check].violations if phrase in v.message]
    assert proof, [v.message for v in broken[check].violations]
    cited = {e.kind for v in proof for e in v.events}
    assert kinds <= cited, f"{name} cites {cited}"
    assert result.status == "xfailed"


@pytest.mark.parametrize("name", sorted(KNOWN_BAD))
def test_the_careful_handler_passes_the_same_scenario(name: str) -> None:
    scenario = scenario_of(name)
    cleared = tuple(CheckSpec(name=c.name, params=c.params) for c in scenario.expect)
    careful = scenario.model_copy(update={"target": TargetSpec(python=CAREFUL), "expect": cleared})
    result = run_scenario(careful)
    assert failures(result) == {}
    assert result.status == "passed"
