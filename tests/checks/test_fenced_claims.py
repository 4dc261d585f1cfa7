"""fenced: a newer instance that never resumed nor wrote claimed nothing, so an older one writing
after its start is not a fencing failure (found by explore against the careful handler)."""

from __future__ import annotations

from harness.scenario.loader import load_text
from harness.sim.runner import run_scenario

STILLBORN_REPLACEMENT = """
description: the first replacement is killed as it boots; the zombie of an overlap writes on
seed: 0
target: {python: "harness.examples.handlers.careful:target"}
job: {items: 480, seconds_per_item: 1s, checkpoint_every: 90s, state_size: 64MiB, output_every: 40}
env: {cloud: gcp, replacement: {delay: 81s}}
timeline:
  - at: 0s
    overlap: {for: 10s}
  - at: 0s
    kill: {}
  - on: {event: instance.started, incarnation: 2, delay: 0s}
    kill: {}
expect: [fenced, exactly_once, resume_correct, durable]
"""


def test_a_replacement_killed_before_it_did_anything_fences_nobody() -> None:
    (loaded,) = load_text(STILLBORN_REPLACEMENT, file="<test>")
    result = run_scenario(loaded.scenario)
    first, stillborn = (e.instance for e in result.history.of_kind("instance.started")[:2])
    writes = [e for e in result.history.of_kind("storage.op") if e.instance == stillborn]
    assert not [e for e in writes if str(e.data.get("op")).startswith(("s3.put", "redis.write"))]
    committed = [e for e in result.history.of_kind("metadata.committed") if e.instance == first]
    assert committed, "the zombie went on committing after the stillborn replacement booted"
    (fenced,) = [c for c in result.checks if c.spec.name == "fenced"]
    assert fenced.result.status != "failed", fenced.result.violations
