"""Azure's documented Scheduled Events polling loop (``requests``), against the fake on a
thread of its own: what the loop saw and did, in order; never how long it took."""

from __future__ import annotations

import json
from typing import Any

import requests

from fake_imds.sync import SyncFakeImds

THIS_VM = "spot-worker-1"


class ScheduledEventsClient:
    """The functions of Azure's Python sample for Scheduled Events, pointed at the fake."""

    def __init__(self, base: str) -> None:
        self.metadata_url = f"{base}/metadata/scheduledevents"
        self.header = {"Metadata": "true"}
        self.query_params = {"api-version": "2020-07-01"}
        self.actions: list[str] = []

    def get_scheduled_events(self) -> Any:
        resp = requests.get(self.metadata_url, headers=self.header, params=self.query_params)
        resp.raise_for_status()
        return resp.json()

    def confirm_scheduled_event(self, event_id: str) -> int:
        payload = json.dumps({"StartRequests": [{"EventId": event_id}]})
        response = requests.post(
            self.metadata_url, headers=self.header, params=self.query_params, data=payload
        )
        return response.status_code

    def handle_scheduled_events(self, data: Any) -> None:
        for event in data["Events"]:
            if THIS_VM not in event["Resources"] or event["EventStatus"] != "Scheduled":
                continue
            # Save state here, then approve so the platform need not wait for NotBefore.
            status = self.confirm_scheduled_event(event["EventId"])
            self.actions.append(f"approved {event['EventType']} {event['EventId']}: {status}")


def test_the_documented_polling_loop_sees_schedules_approves_and_sees_started(
    imds: SyncFakeImds,
) -> None:
    client = ScheduledEventsClient(imds.url)
    documents = []
    last_incarnation = None
    for step in range(4):
        if step == 1:
            imds.notice(cloud="azure", kind="preempt", lead="30s")
        data = client.get_scheduled_events()
        if data["DocumentIncarnation"] != last_incarnation:
            last_incarnation = data["DocumentIncarnation"]
            documents.append(data)
            client.handle_scheduled_events(data)

    empty, scheduled, started = documents
    assert empty["Events"] == []
    (event,) = scheduled["Events"]
    assert (event["EventType"], event["EventStatus"]) == ("Preempt", "Scheduled")
    assert event["NotBefore"].endswith(" GMT")
    assert client.actions == [f"approved Preempt {event['EventId']}: 200"]
    (after,) = started["Events"]
    assert (after["EventId"], after["EventStatus"], after["NotBefore"]) == (
        event["EventId"],
        "Started",
        "",
    )
    assert empty["DocumentIncarnation"] < scheduled["DocumentIncarnation"]
    assert scheduled["DocumentIncarnation"] < started["DocumentIncarnation"]


def test_the_sample_gets_azures_errors_when_it_leaves_out_what_is_required(
    imds: SyncFakeImds,
) -> None:
    url = f"{imds.url}/metadata/scheduledevents"
    no_header = requests.get(url, params={"api-version": "2020-07-01"})
    no_version = requests.get(url, headers={"Metadata": "true"})
    bad_body = requests.post(
        url, headers={"Metadata": "true"}, params={"api-version": "2020-07-01"}, data="{"
    )
    assert [r.status_code for r in (no_header, no_version, bad_body)] == [400, 400, 400]
    assert no_header.json()["error"] == "Bad request. Required metadata header not specified"
    assert "newest-versions" in no_version.json()
    assert "error" in bad_body.json()


def test_instance_metadata_tells_the_sample_it_is_a_spot_vm(imds: SyncFakeImds) -> None:
    response = requests.get(
        f"{imds.url}/metadata/instance",
        headers={"Metadata": "true"},
        params={"api-version": "2021-02-01"},
    )
    compute = response.json()["compute"]
    assert (compute["priority"], compute["evictionPolicy"]) == ("Spot", "Deallocate")
