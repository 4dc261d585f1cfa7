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


WEBHOOK_NOTICES = """
description: three webhook notices to one instance; the first lands as it boots and is never seen
seed: 0
target: {python: "harness.examples.handlers.careful:target"}
job: {items: 480, seconds_per_item: 1s, checkpoint_every: 90s, state_size: 64MiB, output_every: 40}
env: {cloud: webhook, replacement: {delay: 5s}}
timeline:
  - at: 0s
    notice: {kind: interruption, lead: 83s, action: terminate}
  - at: 50s
    notice: {kind: interruption, action: terminate, lead: 145s}
expect: [true_deadline, exactly_once]
"""


def test_true_deadline_holds_no_sighting_of_a_later_notice_against_an_earlier_one() -> None:
    (loaded,) = load_text(WEBHOOK_NOTICES, file="<test>")
    result = run_scenario(loaded.scenario)
    (seen,) = result.history.of_kind("notice.seen")
    assert float(seen.data["deadline"]) == 195.0, "the sighting is the second notice's"
    (deadline,) = [c for c in result.checks if c.spec.name == "true_deadline"]
    assert deadline.result.status == "passed", deadline.result.violations
