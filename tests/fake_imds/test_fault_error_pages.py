"""A fault's injected error status is worded in the dialect of the path it hits: EC2's XHTML
page on AWS paths, Google's HTML page (with ``Metadata-Flavor: Google``) on GCP paths, Azure's
JSON error document on Azure paths. Each is read by that cloud's own client, as its docs show."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

import google.auth.exceptions
import google.auth.transport.requests
import pytest
import requests
from google.auth.compute_engine import _metadata

from fake_imds.sync import SyncFakeImds

#: google-auth ships py.typed, but its metadata helpers carry no annotations.
metadata_get = cast(Callable[..., Any], _metadata.get)

AZURE_EVENTS = "/metadata/scheduledevents"


def first_throttled(get: Callable[[], requests.Response]) -> requests.Response:
    """The first 429 of a quick burst past a 1 request/s limit (bounded: ten requests)."""
    for _ in range(10):
        response = get()
        if response.status_code == 429:
            return response
    raise AssertionError("ten quick requests past a 1/s limit were never throttled")


def fault(imds: SyncFakeImds, **body: object) -> None:
    response = requests.post(f"{imds.url}/_harness/v1/faults", json=body, timeout=10)
    assert response.status_code == 201, response.text


def test_gcp_client_gets_googles_error_page_for_an_injected_503(imds: SyncFakeImds) -> None:
    fault(imds, kind="status", status=503, path="/computeMetadata/*")
    url = f"{imds.url}/computeMetadata/v1/instance/preempted"
    response = requests.get(url, headers={"Metadata-Flavor": "Google"}, timeout=10)
    assert response.status_code == 503
    assert response.headers["Metadata-Flavor"] == "Google"
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<title>Error 503 (Service Unavailable)!!1</title>" in response.text
    assert "That\u2019s an error." in response.text and "EC2ws" not in str(response.headers)
    # google-auth's own helper reports Google's page, not an EC2 one.
    with pytest.raises(google.auth.exceptions.TransportError, match=r"Error 503"):
        metadata_get(
            google.auth.transport.requests.Request(),
            "instance/preempted",
            root=f"{imds.url}/computeMetadata/v1/",
            retry_count=1,
        )


def test_gcp_throttling_is_googles_429_page(imds: SyncFakeImds) -> None:
    fault(imds, kind="throttle", limit=1, path="/computeMetadata/*")
    url = f"{imds.url}/computeMetadata/v1/instance/id"
    response = first_throttled(
        lambda: requests.get(url, headers={"Metadata-Flavor": "Google"}, timeout=10)
    )
    assert "Error 429 (Too Many Requests)" in response.text
    assert response.headers["Metadata-Flavor"] == "Google"


def test_azure_client_gets_azures_json_error_for_an_injected_500(imds: SyncFakeImds) -> None:
    fault(imds, kind="status", status=500, path="/metadata/*")
    response = requests.get(
        imds.url + AZURE_EVENTS,
        headers={"Metadata": "true"},
        params={"api-version": "2020-07-01"},
        timeout=10,
    )
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"error": "Internal server error. Retry after some time."}
    with pytest.raises(requests.HTTPError):  # the documented sample's raise_for_status
        response.raise_for_status()


def test_azure_throttling_fault_is_azures_429_document(imds: SyncFakeImds) -> None:
    fault(imds, kind="throttle", limit=1, path="/metadata/*")
    response = first_throttled(
        lambda: requests.get(
            imds.url + "/metadata/instance",
            headers={"Metadata": "true"},
            params={"api-version": "2021-02-01"},
            timeout=10,
        )
    )
    assert json.loads(response.text) == {"error": "Too many requests"}


def test_aws_paths_keep_ec2s_wording(imds: SyncFakeImds) -> None:
    fault(imds, kind="status", status=503, path="/latest/*")
    response = requests.get(f"{imds.url}/latest/meta-data/instance-id", timeout=10)
    assert response.status_code == 503
    assert response.headers["Server"] == "EC2ws"
    assert "<title>503 - Service Unavailable</title>" in response.text
