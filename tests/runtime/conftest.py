from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from tests.runtime.world import World, new_s3_client

SMALL_JOB = {
    "items": 200,
    "seconds_per_item": "1s",
    "checkpoint_every": "30s",
    "state_size": "8MiB",
    "output_size": "64KiB",
    "output_every": 40,
    "seed": 7,
}


@pytest.fixture(scope="module")
def s3_client() -> Iterator[Any]:
    with mock_aws():
        yield new_s3_client()


@pytest.fixture
def world(tmp_path: Path, s3_client: Any) -> Iterator[World]:
    w = World(tmp_path, dict(SMALL_JOB), s3_client)
    yield w
    w.close()
