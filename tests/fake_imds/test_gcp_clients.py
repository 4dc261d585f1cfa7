"""Real GCP clients against the fake over loopback: google-auth's metadata helpers, and
``requests`` used exactly as Google's documentation shows for ``wait_for_change``.

Blocking clients need the server on its own thread (:class:`SyncFakeImds`, real time); the
assertions are on what the clients saw and in which order, never on how long it took.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import google.auth.exceptions
import google.auth.transport.requests
import pytest
import requests
from google.auth.compute_engine import _metadata

from fake_imds.gcp import GCP_KEY
from fake_imds.sync import SyncFakeImds

#: google-auth ships py.typed, but its metadata helpers carry no annotations.
metadata_get = cast(Callable[..., Any], _metadata.get)
metadata_ping = cast(Callable[..., bool], _metadata.ping)

WAIT_LIMIT = 20.0  # seconds a test may wait for the other thread before it fails


def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for another thread to reach a state (bounded; fails the test, never asserts time)."""
    give_up = time.monotonic() + WAIT_LIMIT
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def waiters(imds: SyncFakeImds) -> int:
    return imds.server.app[GCP_KEY].waiters


def test_google_auth_metadata_helpers_read_keys_and_the_preemption(imds: SyncFakeImds) -> None:
    request = google.auth.transport.requests.Request()
    root = f"{imds.url}/computeMetadata/v1/"
    assert metadata_get(request, "instance/preempted", root=root) == "FALSE"
    assert metadata_get(request, "instance/scheduling/provisioning-model", root=root) == "SPOT"
    instance = metadata_get(request, "instance/", root=root, recursive=True)
    assert isinstance(instance, dict)
    assert instance["scheduling"]["preemptible"] == "TRUE"
    imds.notice(cloud="gcp", kind="preemption", lead="30s")
    assert metadata_get(request, "instance/preempted", root=root) == "TRUE"
    missing = metadata_get(
        request, "instance/nothing", root=root, return_none_for_not_found_error=True
    )
    assert missing is None


def test_google_auth_ping_finds_the_fake_by_its_flavor_header(
    imds: SyncFakeImds, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GCE_METADATA_IP", f"127.0.0.1:{imds.port}")
    assert metadata_ping(google.auth.transport.requests.Request(), retry_count=1) is True


def test_google_auth_honours_gce_metadata_host_from_the_environment(imds: SyncFakeImds) -> None:
    """The library reads GCE_METADATA_HOST when it is imported, so ask a fresh interpreter."""
    script = textwrap.dedent(
        """
        import json
        import google.auth.transport.requests
        from google.auth.compute_engine import _metadata
        request = google.auth.transport.requests.Request()
        print(json.dumps({
            "project": _metadata.get_project_id(request),
            "preempted": _metadata.get(request, "instance/preempted"),
        }))
        """
    )
    env = {**os.environ, "GCE_METADATA_HOST": f"127.0.0.1:{imds.port}", "NO_PROXY": "127.0.0.1"}
    imds.notice(cloud="gcp", kind="preemption", lead="2m")
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"project": "spot-harness-sim", "preempted": "TRUE"}


def test_a_google_auth_hanging_get_is_released_by_the_preemption(imds: SyncFakeImds) -> None:
    request = google.auth.transport.requests.Request()
    root = f"{imds.url}/computeMetadata/v1/"
    seen: list[Any] = []

    def wait_for_preemption() -> None:
        params = {"wait_for_change": "true"}
        seen.append(metadata_get(request, "instance/preempted", root=root, params=params,
                                  timeout=WAIT_LIMIT))  # fmt: skip

    thread = threading.Thread(target=wait_for_preemption)
    thread.start()
    until(lambda: waiters(imds) == 1, "the hanging GET to arrive")
    assert seen == []  # still held: nothing has changed yet
    imds.notice(cloud="gcp", kind="preemption", lead="30s")
    thread.join(WAIT_LIMIT)
    assert seen == ["TRUE"]


class StopWaiting(Exception):
    pass


def test_googles_documented_wait_for_maintenance_loop_sees_each_change_in_order(
    imds: SyncFakeImds,
) -> None:
    metadata_url = f"{imds.url}/computeMetadata/v1/"
    metadata_headers = {"Metadata-Flavor": "Google"}
    events: list[str | None] = []

    def callback(maintenance_event: str | None) -> None:
        events.append(maintenance_event)
        if len(events) == 2:
            raise StopWaiting

    # As in Google's "Getting live migration notices" sample.
    def wait_for_maintenance(callback: Callable[[str | None], None]) -> None:
        url = metadata_url + "instance/maintenance-event"
        last_maintenance_event = None
        # [START hanging_get]
        last_etag = "0"
        while True:
            params: dict[str, str | bool] = {"last_etag": last_etag, "wait_for_change": True}
            r = requests.get(
                url,
                params=params,
                headers=metadata_headers,
            )
            # During maintenance the service can return a 503, so these should be retried.
            if r.status_code == 503:
                time.sleep(1)
                continue
            r.raise_for_status()
            last_etag = r.headers["etag"]
            # [END hanging_get]
            maintenance_event = None if r.text == "NONE" else r.text
            if maintenance_event != last_maintenance_event:
                last_maintenance_event = maintenance_event
                callback(maintenance_event)

    def run() -> None:
        with contextlib.suppress(StopWaiting):
            wait_for_maintenance(callback)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    until(lambda: waiters(imds) == 1, "the first hanging GET")
    imds.notice(cloud="gcp", kind="maintenance", action="migrate", lead="0.3s")
    thread.join(WAIT_LIMIT)
    assert not thread.is_alive()
    # The sample reports changes only: the initial NONE is not one, its end is.
    assert events == ["MIGRATE_ON_HOST_MAINTENANCE", None]


def test_a_documented_request_without_the_flavor_header_is_forbidden(imds: SyncFakeImds) -> None:
    response = requests.get(f"{imds.url}/computeMetadata/v1/instance/preempted")
    assert response.status_code == 403
    assert response.headers["Metadata-Flavor"] == "Google"
    assert "Missing Metadata-Flavor:Google header" in response.text


def test_google_auth_retries_a_503_fault_then_reports_it(imds: SyncFakeImds) -> None:
    request = google.auth.transport.requests.Request()
    root = f"{imds.url}/computeMetadata/v1/"
    imds.fault(kind="status", status=503, path="/computeMetadata/v1/*")
    with pytest.raises(google.auth.exceptions.TransportError, match="Response status: 503"):
        metadata_get(request, "instance/preempted", root=root, retry_count=2)
    served = [r for r in imds.requests() if r.path == "/computeMetadata/v1/instance/preempted"]
    assert [r.status for r in served] == [503, 503]
