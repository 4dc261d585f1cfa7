"""A command target that polls Azure Scheduled Events and approves every Terminate or Preempt it
sees at once (``StartRequests``), then keeps running: only the platform can end it."""

from __future__ import annotations

import json
import os
import time
import urllib.request

EVENTS = (
    os.environ["HARNESS_IMDS_URL"].rstrip("/") + "/metadata/scheduledevents?api-version=2020-07-01"
)
HEADERS = {"Metadata": "true"}


def call(body: bytes | None = None) -> bytes:
    headers = {**HEADERS, "Content-Type": "application/json"} if body else HEADERS
    request = urllib.request.Request(EVENTS, data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=2) as reply:
        return bytes(reply.read())


print("working from the start", flush=True)
while True:
    for event in json.loads(call())["Events"]:
        if event["EventType"] in ("Terminate", "Preempt") and event["EventStatus"] == "Scheduled":
            call(json.dumps({"StartRequests": [{"EventId": event["EventId"]}]}).encode())
    time.sleep(0.1)
