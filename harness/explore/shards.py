"""The test behind an exploration campaign: one exploration per shard (see
:mod:`harness.explore.pytest_campaign`, which parametrizes ``explore_shard``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.explore.campaign import PROFILES, Shard, plan, run_record
from harness.explore.coverage import campaign_for
from harness.explore.pytest_campaign import RECORDS, STATS
from harness.explore.search import explore
from harness.scenario.model import CLOUDS
from harness.sim.runner import RunResult


def test_shard(
    explore_shard: Shard,
    request: pytest.FixtureRequest,
    record_property: Any,
) -> None:
    option = request.config.getoption
    profile = PROFILES[option("explore_profile")]
    records: list[dict[str, Any]] = []

    def keep(count: int, result: RunResult) -> None:
        records.append(run_record(result, explore_shard, count, history=False))

    named = option("explore_target")
    target = named if named == "reference" else {"python": named}
    seed, database = plan(profile, explore_shard, option("explore_seed"))
    report = explore(
        examples=option("explore_examples") or profile.examples,
        seed=seed,
        target=target,
        out=Path(option("explore_out")),
        clouds=tuple(option("explore_cloud")) or CLOUDS,
        max_entries=option("explore_max_entries"),
        progress=keep,
        database=database,
        max_shrinks=option("explore_max_shrinks"),
        max_sim_time=option("explore_max_sim_time"),
        coverage=campaign_for(target, option("explore_cover"), option("explore_coverage")),
        steer=option("explore_steer"),
    )
    if report.failed_run is not None and report.failure is not None:
        failing = run_record(report.failed_run, explore_shard, report.examples, history=True)
        failing.update(file=str(report.failure.path), replay=report.failure.command)
        records.append(failing)
    record_property(RECORDS, records)
    record_property(STATS, report.stats())
    failure = report.failure
    assert failure is None, (
        f"shard {explore_shard.label} breaks {', '.join(failure.broken)}: {failure.path}\n"
        f"replay: {failure.command}"
    )
