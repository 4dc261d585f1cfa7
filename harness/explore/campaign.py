"""Exploration campaigns: profiles (how many schedules, whether Hypothesis keeps a database),
shards (one seed each, so N machines explore N different parts of the space) and the journal
records of explored runs.

=========  ========================  ==================================================
profile    schedules (per shard)     search
=========  ========================  ==================================================
ci         200                       derandomized, no database: the same schedules on
                                     every machine, every time
dev        1,000                     seeded, failures kept in ``.harness/hypothesis``
                                     and replayed first next time
nightly    20,000                    as dev, larger
=========  ========================  ==================================================

Shard ``K`` of ``N`` (``--shard K/N``) explores with seed ``base + K`` (base: ``--seed``, else
0): shards never repeat each other's search, and each is deterministic. Hypothesis keeps a
database only for a search it seeds itself, so ``dev`` and ``nightly`` without ``--seed`` search
at random (every shard elsewhere) and replay the failures saved before; with ``--seed`` they are
deterministic and keep no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.explore.search import explored_status
from harness.report.render import result_json
from harness.sim.runner import RunResult


@dataclass(frozen=True)
class Profile:
    name: str
    examples: int
    #: Whether Hypothesis keeps found failures in the project's database folder.
    database: bool
    description: str


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("ci", 200, False, "fixed budget, derandomized, no database: deterministic"),
        Profile("dev", 1000, True, "medium, failures kept in the project's Hypothesis database"),
        Profile("nightly", 20000, True, "large, failures kept in the project's database"),
    )
}

#: Where ``dev`` and ``nightly`` keep Hypothesis' database, relative to the working directory.
DATABASE = Path(".harness/hypothesis")

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (0-based) of ``count``."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``K/N`` with ``0 <= K < N``; InputError naming the fix otherwise."""
        match = _SHARD.match(text)
        if match is None:
            raise InputError(f"--shard {text!r}: expected K/N, e.g. 0/4 (the first of four)")
        index, count = int(match.group(1)), int(match.group(2))
        if count < 1 or not 0 <= index < count:
            raise InputError(
                f"--shard {text}: K must be in 0..N-1 and N at least 1 (e.g. 3/4 is the last "
                "of four)"
            )
        return cls(index, count)

    def seed(self, base: int | None) -> int | None:
        """The seed this shard explores with (None: one unsharded, derandomized search)."""
        if self.count == 1:
            return base
        return (base or 0) + self.index

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"


def plan(profile: Profile | None, shard: Shard, seed: int | None) -> tuple[int | None, Path | None]:
    """(the seed of the search, the database folder): a database for ``dev`` and ``nightly``
    without ``--seed`` (Hypothesis then seeds the search itself), else a seed for each shard."""
    if profile is not None and profile.database and seed is None:
        return None, DATABASE
    return shard.seed(seed), None


def run_record(result: RunResult, shard: Shard, number: int, *, history: bool) -> dict[str, Any]:
    """One explored run for the journal (:mod:`harness.report.journal`), named by shard and
    number. Only failing runs carry their history: a campaign runs thousands of passing ones."""
    record = result_json(result, None, f"explore shard {shard.label} run {number}")
    record["status"] = explored_status(result)  # an unexercised check is no finding
    record["replay"] = None  # a generated schedule has no file until it is written as failing
    if not history:
        record["history"] = []
    return record
