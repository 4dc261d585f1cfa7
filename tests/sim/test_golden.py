"""One golden for every target: an uninterrupted run of it. The bundled runtime's precomputed
golden is the same thing, computed instead of run."""

from __future__ import annotations

from harness.checks import golden_from_run, same_digest
from harness.runtime import reference_target
from harness.scenario import load_text
from harness.sim.golden import reference_golden
from harness.sim.runner import _on_fresh_loop, _uninterrupted

SCENARIO = """
description: calm reference run
seed: 4
target: reference
job: {items: 240, seconds_per_item: 1s, checkpoint_every: 1m, state_size: 16MiB}
env: {cloud: aws}
"""


def test_the_reference_golden_is_what_an_uninterrupted_run_leaves() -> None:
    (loaded,) = load_text(SCENARIO)
    history, snapshot = _on_fresh_loop(_uninterrupted(loaded.scenario, reference_target))
    ran = golden_from_run(history, snapshot)
    computed = reference_golden(loaded.scenario.job)
    assert ran.items == computed.items == 240
    assert ran.outputs == computed.outputs and ran.outputs
    assert len(ran.states) >= 4, "the calm run checkpointed and storage held each state"
    for position, digest in ran.states.items():
        assert same_digest(digest, computed.state_at(position) or "")


def test_a_run_golden_keeps_only_states_storage_really_held() -> None:
    (loaded,) = load_text(SCENARIO)
    history, snapshot = _on_fresh_loop(_uninterrupted(loaded.scenario, reference_target))
    emptied = type(snapshot)(bucket=snapshot.bucket)
    assert golden_from_run(history, emptied).states == {}
