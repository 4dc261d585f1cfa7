"""Which library scenarios a variant is measured on, and one run of a variant on one of them.

A variant of the reference runtime plays every simulation scenario whose target is the
reference; a variant of the careful handler plays those the careful handler passes (the rule
of ``tests/library/test_careful_library.py``: no crash point at a step a ``put_object``
handler never takes). Either way the variant replaces the scenario's target, and the checks of
the reference runtime's own storage layout are left out, as ``harness run --target`` does.
"""

from __future__ import annotations

from pathlib import Path

from harness.examples.yardstick import Variant
from harness.scenario import library
from harness.scenario.loader import LoadedScenario, load_paths
from harness.scenario.model import Scenario, TargetSpec
from harness.sim.runner import RunResult, run_scenario

#: Steps a handler that uploads with ``put_object`` and writes files plainly never reports:
#: a crash point there never fires, so the story never happens.
STEPS_A_HANDLER_NEVER_TAKES = (
    "local.",
    "s3.create_multipart",
    "s3.upload_part",
    "s3.complete_multipart",
    "s3.abort_multipart",
    "s3.list_uploads",
)


def reference_scenarios(root: Path | None = None) -> list[LoadedScenario]:
    """The library's simulation scenarios whose target is the reference runtime."""
    loaded, problems = load_paths([root or library.library_root()])
    if problems:
        raise ValueError("the scenario library has problems: " + "; ".join(map(str, problems)))
    return [item for item in loaded if item.scenario.target.reference]


def scenarios_for(variant: Variant, every: list[LoadedScenario]) -> list[LoadedScenario]:
    """The scenarios of ``every`` (:func:`reference_scenarios`) that ``variant`` plays."""
    if variant.base == "reference":
        return list(every)
    return [item for item in every if unreached_crash_step(item.scenario) is None]


def unreached_crash_step(scenario: Scenario) -> str | None:
    """The step of a crash point in ``scenario`` that a ``put_object`` handler never takes (so
    the story never happens to it), if any."""
    for entry in scenario.timeline:
        step = entry.crash.at if entry.crash is not None else None
        if step is not None and step.startswith(STEPS_A_HANDLER_NEVER_TAKES):
            return step
    return None


def name_of(item: LoadedScenario) -> str:
    """``aws/terminate_mid_job``: the scenario's library name."""
    return str(library.display_name(item.file) or item.file).removeprefix(library.PREFIX)


def run_variant(variant: Variant, scenario: Scenario) -> RunResult:
    """``scenario`` played with ``variant`` as its target."""
    return run_scenario(scenario.with_target(TargetSpec(python=variant.target)))


def run_reference(scenario: Scenario) -> RunResult:
    """``scenario`` as written (its target: the reference runtime)."""
    return run_scenario(scenario)
