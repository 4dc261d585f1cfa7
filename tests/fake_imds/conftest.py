"""Fixtures the fake metadata server's tests share."""

from __future__ import annotations

import pytest

from fake_imds.sync import SyncFakeImds


@pytest.fixture
def imds(fake_imds: SyncFakeImds, monkeypatch: pytest.MonkeyPatch) -> SyncFakeImds:
    """The plugin's ``fake_imds`` (every dialect on one port, as `harness serve` runs), with
    loopback kept away from any proxy for clients that read the environment."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return fake_imds
