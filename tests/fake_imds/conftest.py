"""Fixtures the fake metadata server's tests share."""

from __future__ import annotations

import pytest

from fake_imds.sync import SyncFakeImds


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep loopback away from any proxy, for clients that read the environment."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost,::1")
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def imds(fake_imds: SyncFakeImds, no_proxy: None) -> SyncFakeImds:
    """The plugin's ``fake_imds``: every dialect on one port, as `harness serve` runs."""
    return fake_imds
