"""The careful handler, written without the reference runtime, passes every scenario of the
library that applies to it.

A scenario applies to an independent target unless
- it is in ``known_bad/`` (its ``fails:`` markers describe the broken target it names),
- its target is a command (``process/``: a story about that program, run as a process), or
- it crashes the process at a step the target never takes, so that the story never happens:
  ``local.*`` (only the bundled storage helpers report those; plain file I/O is not observed
  step by step) and, for a target that uploads with ``put_object``, the multipart steps.
Checks that judge the reference runtime's own storage layout (``reference_layout``) are left
out of ``expect``, as ``harness run --target`` does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.examples.yardstick.library import unreached_crash_step
from harness.scenario.loader import LoadedScenario, load_paths
from harness.scenario.model import Scenario, TargetSpec
from harness.sim.runner import run_scenario

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"
CAREFUL = "harness.examples.handlers.careful:target"


def not_applicable(item: LoadedScenario) -> str | None:
    """Why a library scenario does not apply to an independent target (``None``: it does)."""
    if item.file.parent.name == "known_bad":
        return "a known-bad target's story"
    if item.scenario.target.command is not None:
        return "a command target's story (the process tier)"
    step = unreached_crash_step(item.scenario)
    if step is not None:
        return f"crash point at {step}, a step the target never takes"
    return None


def for_careful(scenario: Scenario) -> Scenario:
    return scenario.with_target(TargetSpec(python=CAREFUL))


LOADED, PROBLEMS = load_paths((LIBRARY,))
APPLICABLE = [item for item in LOADED if not_applicable(item) is None]


def test_the_rule_leaves_out_only_known_bad_stories_and_crash_points_never_reached() -> None:
    assert PROBLEMS == []
    left_out = {str(item.file.relative_to(LIBRARY)) for item in LOADED if not_applicable(item)}
    known_bad = {str(p.relative_to(LIBRARY)) for p in (LIBRARY / "known_bad").glob("*.yaml")}
    commands = {str(p.relative_to(LIBRARY)) for p in (LIBRARY / "process").glob("*.yaml")}
    never_reached = {
        "crash/crash_before_local_rename.yaml",
        "crash/crash_before_complete_multipart.yaml",
    }
    assert left_out == known_bad | commands | never_reached
    assert len(APPLICABLE) >= 40


@pytest.mark.parametrize(
    "item", APPLICABLE, ids=[str(i.file.relative_to(LIBRARY)) for i in APPLICABLE]
)
def test_the_careful_handler_passes(item: LoadedScenario) -> None:
    result = run_scenario(for_careful(item.scenario))
    broken = {c.spec.name: [v.message for v in c.result.violations] for c in result.failed_checks}
    assert broken == {}, result.error
    assert result.status == "passed", result.error
