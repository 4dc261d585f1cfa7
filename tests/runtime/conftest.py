from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runtime.world import World

SMALL_JOB = {
    "items": 200,
    "seconds_per_item": "1s",
    "checkpoint_every": "30s",
    "state_size": "8MiB",
    "output_size": "64KiB",
    "output_every": 40,
    "seed": 7,
}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, dict(SMALL_JOB))
    yield w
    w.close()
