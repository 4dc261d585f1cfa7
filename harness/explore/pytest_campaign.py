"""A pytest plugin that spreads an exploration campaign over pytest-xdist workers: local cores
(``-n 4``) or other machines (``--tx ssh=user@host//python=python3``, each with spot-harness
installed), one seed per shard, merged on the controller into one journal.

``harness explore --workers N`` runs it for you; the equivalent by hand::

    python -m pytest -p harness.explore.pytest_campaign --pyargs harness.explore.shards \\
        -n 4 --explore-shards 4 --explore-profile dev --explore-journal explore.json

Each shard is one test: it passes when its exploration finds no failing schedule and fails
with the reproduction's path and replay line otherwise. Its runs reach the controller through
the test report (``user_properties``), which xdist carries back from remote workers too, so the
journal is written in one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.explore.campaign import PROFILES, Shard
from harness.explore.coverage import MODES, merge_coverage
from harness.report.journal import Journal
from harness.scenario.model import CLOUDS

#: ``user_properties`` names a shard reports its records and its figures under.
RECORDS = "harness.explore.records"
STATS = "harness.explore.stats"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness explore campaign")
    group.addoption("--explore-profile", choices=sorted(PROFILES), default="ci")
    group.addoption("--explore-shards", type=int, default=1, help="shards (one seed each)")
    group.addoption("--explore-seed", type=int, default=None, help="seed of shard 0")
    group.addoption("--explore-examples", type=int, default=None, help="schedules per shard")
    group.addoption("--explore-target", default="reference")
    group.addoption("--explore-cloud", action="append", choices=CLOUDS, default=[])
    group.addoption("--explore-max-entries", type=int, default=4)
    group.addoption("--explore-max-shrinks", type=int, default=150)
    group.addoption("--explore-max-sim-time", type=float, default=None, help="seconds")
    group.addoption("--explore-out", default="explore-failures")
    group.addoption("--explore-journal", default=None, help="merged journal (controller)")
    group.addoption("--explore-coverage", choices=MODES, default="off", help="of the target's code")
    group.addoption("--explore-cover", action="append", default=[], help="the code to cover")
    group.addoption("--explore-steer", action="store_true", help="Hypothesis' targeted phase")


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("explore_journal")
    if path and not hasattr(config, "workerinput"):  # the controller (or a run without xdist)
        meta = {
            "command": "explore",
            "profile": config.getoption("explore_profile"),
            "shards": config.getoption("explore_shards"),
            "seed": config.getoption("explore_seed"),
            "target": config.getoption("explore_target"),
        }
        config.pluginmanager.register(Merger(Journal(Path(path), meta)), "explore-merger")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "explore_shard" not in metafunc.fixturenames:
        return
    count = metafunc.config.getoption("explore_shards")
    if count < 1:
        raise pytest.UsageError("--explore-shards must be at least 1")
    shards = [Shard(index, count) for index in range(count)]
    metafunc.parametrize("explore_shard", shards, ids=[f"shard{s.index}of{count}" for s in shards])


class Merger:
    """On the controller: every shard's runs into one journal, and the figures summed."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.stats: dict[str, Any] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == RECORDS and isinstance(value, list):
                self.journal.runs.extend(value)
            elif name == STATS and isinstance(value, dict):
                merge_stats(self.stats, value)
        self.journal.meta["explore"] = self.stats
        self.journal.write()

    def pytest_sessionfinish(self) -> None:
        self.journal.finish()


def merge_stats(total: dict[str, Any], part: dict[str, Any]) -> None:
    """Add one shard's counts (numbers, and dicts of numbers) into ``total``."""
    for key, value in part.items():
        if key == "coverage":
            merge_coverage(total.setdefault(key, {}), value)
        elif isinstance(value, dict):
            merge_stats(total.setdefault(key, {}), value)
        else:
            total[key] = total.get(key, 0) + value
