"""pytest fixtures for the fake metadata server (exposed by the ``harness`` pytest plugin).

``fake_imds``: a started :class:`~fake_imds.sync.SyncFakeImds` (IMDSv2 optional, real time),
closed after the test. ``fake_imds_factory``: a function that starts one with your arguments
(``fake_imds_factory(imdsv2="required")``); all are closed after the test.

    def test_handler_sees_the_notice(fake_imds, monkeypatch):
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fake_imds.url)
        fake_imds.notice(action="terminate", lead="2m")
        ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fake_imds.sync import SyncFakeImds


@pytest.fixture
def fake_imds_factory() -> Iterator[Callable[..., SyncFakeImds]]:
    started: list[SyncFakeImds] = []

    def start(**kwargs: Any) -> SyncFakeImds:
        server = SyncFakeImds(**kwargs).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.close()


@pytest.fixture
def fake_imds(fake_imds_factory: Callable[..., SyncFakeImds]) -> SyncFakeImds:
    return fake_imds_factory()
