"""The yardstick of seeded bugs: the correct targets pass, and every variant is caught.

Each caught variant is replayed with the cheapest evidence recorded in its registry entry (one
library scenario, or an exploration with a small budget and a fixed seed); the full measurement
is ``benchmarks/explore.py``. Variants no mechanism catches yet are listed in
:data:`NOT_YET_CAUGHT`; :func:`test_every_variant_is_caught` fails strictly as an expected
failure while that list is not empty, so catching them all turns it into a failure that asks
for the list to be emptied.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.examples import yardstick
from harness.examples.yardstick import VARIANTS, Variant
from harness.examples.yardstick.library import run_reference, run_variant
from harness.explore import explore
from harness.scenario import library
from harness.scenario.loader import load_paths
from harness.scenario.model import Scenario, TargetSpec
from harness.sim.runner import run_scenario
from harness.sim.targets import load_python_target

CAREFUL = "harness.examples.handlers.careful:target"

#: Variants that no check, strategy or library scenario catches today (see each entry's
#: ``missing``). Empty it as the mechanisms land: the strict xfail below then demands it.
NOT_YET_CAUGHT: list[str] = []

BY_SCENARIO = [v for v in VARIANTS.values() if v.scenario is not None]
BY_EXPLORE = [v for v in VARIANTS.values() if v.explore is not None]


def library_scenario(name: str) -> Scenario:
    (loaded,), problems = load_paths([library.resolve(library.PREFIX + name)])
    assert problems == []
    return loaded.scenario


def test_the_yardstick_has_at_least_25_variants_on_both_kinds_of_target() -> None:
    bases = [v.base for v in VARIANTS.values()]
    assert len(VARIANTS) >= 25
    assert bases.count("reference") >= 12 and bases.count("careful") >= 8


@pytest.mark.parametrize("variant", list(VARIANTS.values()), ids=list(VARIANTS))
def test_each_entry_names_a_loadable_target_and_explains_itself(variant: Variant) -> None:
    assert load_python_target(variant.target) is getattr(yardstick, variant.name)
    assert variant.models and variant.where and variant.caught_by
    assert variant.caught_today != bool(variant.missing), variant.name


def test_the_not_yet_caught_list_is_exactly_the_entries_without_evidence() -> None:
    assert sorted(NOT_YET_CAUGHT) == sorted(n for n, v in VARIANTS.items() if not v.caught_today)


@pytest.mark.parametrize(
    "name", sorted({v.scenario for v in BY_SCENARIO if v.scenario is not None})
)
def test_the_correct_targets_pass_each_evidence_scenario(name: str) -> None:
    scenario = library_scenario(name)
    assert run_reference(scenario).status == "passed"
    if any(v.base == "careful" and v.scenario == name for v in BY_SCENARIO):
        expect = tuple(c for c in scenario.expect if c.name != "reference_layout")
        careful = scenario.model_copy(
            update={"target": TargetSpec(python=CAREFUL), "expect": expect}
        )
        assert run_scenario(careful).status == "passed"


@pytest.mark.parametrize("variant", BY_SCENARIO, ids=[v.name for v in BY_SCENARIO])
def test_the_recorded_scenario_catches_the_variant(variant: Variant) -> None:
    assert variant.scenario is not None
    result = run_variant(variant, library_scenario(variant.scenario))
    broken = {c.spec.name for c in result.broken_checks}
    assert result.status == "failed", (result.status, result.error)
    assert broken & set(variant.caught_by), broken


@pytest.mark.parametrize("variant", BY_EXPLORE, ids=[v.name for v in BY_EXPLORE])
def test_the_recorded_exploration_catches_the_variant(variant: Variant, tmp_path: Path) -> None:
    assert variant.explore is not None
    report = explore(
        examples=variant.explore.examples,
        seed=variant.explore.seed,
        target={"python": variant.target},
        out=tmp_path,
    )
    assert report.failure is not None
    assert set(report.failure.broken) & set(variant.caught_by), report.failure.broken


@pytest.mark.xfail(
    condition=bool(NOT_YET_CAUGHT),
    strict=True,
    reason=f"not caught yet: {', '.join(NOT_YET_CAUGHT)}",
)
def test_every_variant_is_caught() -> None:
    assert NOT_YET_CAUGHT == []
