"""The golden outcome of a job spec: what an uninterrupted run of the same target leaves behind,
cached per (target, job) for the life of the process.

Every target's golden is :func:`harness.checks.golden_from_run` over one uninterrupted run (its
outputs as stored, the states of the checkpoints storage really held, where it completed). The
bundled runtime's job is a pure function of its spec, so its golden is computed from
:mod:`harness.runtime.job` instead of run: the same outputs and states (a test proves it), plus
the state at every position, not only where the calm run happened to checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator, Mapping
from functools import lru_cache

from harness.checks import Golden, StorageSnapshot, golden_from_run
from harness.history import History
from harness.runtime.job import JobSpec, checksum, expected_outputs, state_after
from harness.scenario.model import Scenario
from harness.sim.targets import target_label
from harness.target import Target

OUTPUT_PREFIX = "outputs/"

UninterruptedRun = Callable[[Scenario, Target], Awaitable[tuple[History, StorageSnapshot]]]

_cache: dict[tuple[str, str], Golden] = {}


class _StateDigests(Mapping[int, str]):
    """``position -> "sha256:<hex>"`` of the reference job's state, computed when asked."""

    def __init__(self, job_json: str) -> None:
        self._job_json = job_json
        self._items = _spec(job_json).items

    def __getitem__(self, position: int) -> str:
        if not 0 <= position <= self._items:
            raise KeyError(position)
        return _state_digest(self._job_json, position)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self._items + 1))

    def __len__(self) -> int:
        return self._items + 1


def _spec(job_json: str) -> JobSpec:
    return JobSpec.from_mapping(json.loads(job_json))


@lru_cache(maxsize=4096)
def _state_digest(job_json: str, position: int) -> str:
    return "sha256:" + checksum(state_after(_spec(job_json), position))


def reference_golden(job: Mapping[str, object]) -> Golden:
    """The golden of the reference job ``job`` (pure functions, nothing run)."""
    job_json = json.dumps(dict(job), sort_keys=True, default=str)
    spec = JobSpec.from_mapping(json.loads(job_json))
    return Golden(
        items=spec.items,
        outputs={key: "sha256:" + digest for key, digest in expected_outputs(spec).items()},
        states=_StateDigests(job_json),
        final_state=_state_digest(job_json, spec.items),
        output_prefix=OUTPUT_PREFIX,
    )


def cache_key(scenario: Scenario, target: Target) -> tuple[str, str]:
    return target_label(target), json.dumps(scenario.job, sort_keys=True, default=str)


def cached_golden(scenario: Scenario, target: Target) -> Golden | None:
    if scenario.target.reference:
        return reference_golden(scenario.job)
    return _cache.get(cache_key(scenario, target))


async def golden_for(scenario: Scenario, target: Target, run: UninterruptedRun) -> Golden:
    """The golden of ``scenario``'s job for ``target``, from the cache or by one calm run."""
    found = cached_golden(scenario, target)
    if found is not None:
        return found
    history, snapshot = await run(scenario, target)
    golden = golden_from_run(history, snapshot, output_prefix=OUTPUT_PREFIX)
    _cache[cache_key(scenario, target)] = golden
    return golden
