"""detects_notice with two notices close together: a sighting names no notice, so the check
must not hold one notice's (rightly later) deadline against the other."""

from __future__ import annotations

from harness.scenario.loader import load_text
from harness.sim.runner import run_scenario

TWO_PREEMPTS = """
description: two Azure Preempt events a second apart, the second with the earlier deadline
seed: 4
job: {items: 600, seconds_per_item: 1s, checkpoint_every: 90s, state_size: 8MiB}
env: {cloud: azure}
timeline:
  - at: 101s
    notice: {kind: preempt, lead: 280s}
  - at: 102s
    notice: {kind: preempt, lead: 30s}
expect: [{detects_notice: {within: 20s}}, exactly_once, resume_correct]
"""


def test_two_close_notices_are_each_judged_by_their_own_sighting() -> None:
    (loaded,) = load_text(TWO_PREEMPTS, file="<test>")
    result = run_scenario(loaded.scenario)
    sightings = result.history.of_kind("notice.seen")
    deadlines = sorted(float(e.data["deadline"]) for e in sightings)
    assert len(deadlines) == 2 and deadlines[0] < deadlines[1], "both seen, different deadlines"
    (detects,) = [c for c in result.checks if c.spec.name == "detects_notice"]
    assert detects.result.status == "passed", detects.result.violations
    assert result.status == "passed"
