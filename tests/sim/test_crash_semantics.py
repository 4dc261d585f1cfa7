"""What a crash keeps: a process crash keeps what the OS has; a lost host keeps only what was
fsynced, an unsynced rename surviving or not by the seed. The reference runtime is correct under
both outcomes, and the checks accept both."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from harness.history import Kind
from harness.scenario import load_text
from harness.sim.pagecache import PageCache
from harness.sim.runner import RunResult, run_scenario

SCENARIO = """
description: crash at the directory fsync of the second local save
seed: {seed}
target: reference
job: {{items: 300, seconds_per_item: 1s, checkpoint_every: 1m, state_size: 64MiB}}
env: {{cloud: aws, imdsv2: required}}
timeline:
  - at: 30s
    crash: {{at: local.fsync_dir, nth: 2, lose: {lose}}}
expect: [exactly_once, resume_correct, durable, completes, reference_layout]
"""


def crash_run(lose: str, seed: int) -> RunResult:
    (loaded,) = load_text(SCENARIO.format(seed=seed, lose=lose))
    return run_scenario(loaded.scenario)


def test_a_process_crash_keeps_the_unsynced_rename_and_the_replacement_resumes_from_it() -> None:
    result = crash_run("process", 1)
    assert result.status == "passed", [c.result.violations for c in result.checks]
    assert not result.history.of_kind(Kind.LOCAL_UNSYNCED_LOST)
    resumed = result.history.of_kind(Kind.RESUMED)[1]
    assert (resumed.data["tier"], resumed.data["position"]) == ("local", 60)


def test_a_lost_host_drops_or_keeps_the_unsynced_rename_by_seed_and_both_pass() -> None:
    outcomes = set()
    for seed in range(1, 7):
        result = crash_run("host", seed)
        assert result.status == "passed", (seed, [c.result.violations for c in result.checks])
        (lost,) = result.history.of_kind(Kind.LOCAL_UNSYNCED_LOST)
        outcomes.update(lost.data["files"].values())
    assert outcomes == {"rename survived", "rename lost: the name is gone"}


@pytest.mark.parametrize("synced", [True, False])
def test_unsynced_data_is_lost_with_the_host_and_synced_data_is_not(
    tmp_path: Path, synced: bool
) -> None:
    cache = PageCache(tmp_path)
    (tmp_path / "state.tmp").write_bytes(b"new state")
    cache.note("local.write", "state.tmp")
    if synced:
        cache.note("local.fsync", "state.tmp")
    lost = cache.lose(random.Random(0))
    assert (tmp_path / "state.tmp").read_bytes() == (b"new state" if synced else b"")
    assert lost == ({} if synced else {"state.tmp": "unsynced data lost: the file is empty"})


def test_a_lost_rename_brings_back_the_previous_content(tmp_path: Path) -> None:
    cache = PageCache(tmp_path)
    (tmp_path / "latest").write_bytes(b"old")
    cache.note("local.rename", "latest")  # just before the rename takes effect
    (tmp_path / "latest").write_bytes(b"new")
    outcome = cache.lose(_always(0.9))
    assert outcome == {"latest": "rename lost: the name holds its previous content"}
    assert (tmp_path / "latest").read_bytes() == b"old"


class _always(random.Random):  # a generator whose every draw is ``value``
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value
