"""The one backoff of every retry loop: exponential, capped, jittered from a seeded source."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import boto3
import pytest

from harness.retry import RetryPolicy, seeded_random


def delays(policy: RetryPolicy, count: int) -> list[float]:
    backoff = policy.backoff()
    return [backoff.next() for _ in range(count)]


def test_each_delay_lies_between_half_and_all_of_the_capped_exponential() -> None:
    drawn = delays(RetryPolicy(1.0, 30.0, seeded_random("t", 1)), 8)
    ceilings = [1, 2, 4, 8, 16, 30, 30, 30]
    assert all(c / 2 <= d <= c for d, c in zip(drawn, ceilings, strict=True)), drawn
    assert len(set(drawn)) == len(drawn)  # jittered, not the bare ceilings


def test_the_same_seed_gives_the_same_delays_and_another_seed_others() -> None:
    one = delays(RetryPolicy(1.0, 30.0, seeded_random("retry", 7, "i-1")), 6)
    again = delays(RetryPolicy(1.0, 30.0, seeded_random("retry", 7, "i-1")), 6)
    other = delays(RetryPolicy(1.0, 30.0, seeded_random("retry", 7, "i-2")), 6)
    assert one == again
    assert one != other


def test_each_loop_starts_from_the_base_and_a_long_loop_stays_finite() -> None:
    policy = RetryPolicy(2.0, 10.0, seeded_random("t"))
    first = policy.backoff()
    for _ in range(500):
        assert 5.0 <= first.next() <= 10.0 or first.attempt <= 3
    assert 1.0 <= policy.backoff().next() <= 2.0


def test_real_mode_and_simulation_s3_clients_leave_retrying_to_the_runtime(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from harness.runtime import realmode
    from harness.sim.s3 import shared_client

    explicit = {"mode": "standard", "total_max_attempts": 1}
    assert shared_client().meta.config.retries == explicit
    made: list[Any] = []

    def capture(service: str, **kwargs: Any) -> None:
        made.append(kwargs["config"])
        raise RuntimeError("captured")  # stop before any request

    monkeypatch.setenv("AWS_RETRY_MODE", "legacy")  # an environment that would say otherwise
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "10")
    monkeypatch.setattr(boto3, "client", capture)
    env = {
        "HARNESS_JOB": '{"items": 5}',
        "HARNESS_S3_BUCKET": "bucket",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "HARNESS_LOCAL_DIR": str(tmp_path),
    }
    config = realmode.load_config({}, env)
    with pytest.raises(RuntimeError, match="captured"):
        asyncio.run(realmode.run_real(config, None))
    assert [c.retries for c in made] == [explicit]
