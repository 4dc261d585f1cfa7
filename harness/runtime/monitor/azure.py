"""Azure Scheduled Events: Preempt / Terminate (and Redeploy, Reboot) by polling, approved once
the state is saved so the platform may proceed early."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from harness.runtime.monitor.core import InterruptionNotice, Monitor, calendar_to_clock
from harness.runtime.monitor.http import HttpSession, Unreachable, new_session, request

EVENTS = "/metadata/scheduledevents?api-version=2020-07-01"
HEADERS = {"Metadata": "true"}
#: EventType -> what it means for the job's local disk.
EFFECTS = {
    "Preempt": "terminate",
    "Terminate": "terminate",
    "Redeploy": "terminate",
    "Reboot": "stop",
}


class AzureEventsSource:
    name = "azure"

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._failures = 0

    async def run(self, monitor: Monitor) -> None:
        async with new_session() as session:
            while True:
                await self._poll(session, monitor)
                await monitor.clock.sleep(monitor.config.poll_interval)

    async def _poll(self, session: HttpSession, monitor: Monitor) -> None:
        timeout = monitor.config.http_timeout
        try:
            reply = await request(
                session, "GET", self.base_url + EVENTS, headers=HEADERS, timeout=timeout
            )
        except Unreachable as error:
            self._failed(monitor, str(error))
            return
        if reply.status != 200:
            self._failed(monitor, f"HTTP {reply.status}")
            return
        self._failures = 0
        monitor.sighted(self.name)
        for notice in parse_events(reply.text, monitor, self._approver(session, monitor)):
            monitor.report(notice)

    def _failed(self, monitor: Monitor, reason: str) -> None:
        self._failures += 1
        if self._failures >= monitor.config.blind_after:
            monitor.blind(self.name, reason)

    def _approver(
        self, session: HttpSession, monitor: Monitor
    ) -> Callable[[str], Callable[[], Awaitable[None]]]:
        def approve(event_id: str) -> Callable[[], Awaitable[None]]:
            async def send() -> None:
                await request(
                    session,
                    "POST",
                    self.base_url + EVENTS,
                    headers=HEADERS,
                    json={"StartRequests": [{"EventId": event_id}]},
                    timeout=monitor.config.http_timeout,
                )

            return send

        return approve


def parse_events(
    body: str,
    monitor: Monitor,
    approve: Callable[[str], Callable[[], Awaitable[None]]] | None = None,
) -> list[InterruptionNotice]:
    """Notices for the interrupting events of a Scheduled Events document."""
    try:
        document: Any = json.loads(body)
    except json.JSONDecodeError:
        return []
    events = document.get("Events") if isinstance(document, dict) else None
    notices = []
    for event in events if isinstance(events, list) else []:
        if not isinstance(event, dict) or event.get("EventType") not in EFFECTS:
            continue
        event_id = str(event.get("EventId", ""))
        not_before = str(event.get("NotBefore") or "")
        when = _parse_rfc1123(not_before)
        notices.append(
            InterruptionNotice(
                source="azure",
                effect=EFFECTS[str(event["EventType"])],
                action=str(event["EventType"]).lower(),
                deadline=(
                    calendar_to_clock(monitor.clock, when)
                    if when is not None
                    else monitor.clock.monotonic()  # Started: it is happening now
                ),
                ident=event_id,
                notice_time=not_before or None,
                acknowledge=approve(event_id) if approve and event_id else None,
            )
        )
    return notices


@functools.lru_cache(maxsize=256)  # every poll shows the same NotBefore until the event starts
def _parse_rfc1123(text: str) -> datetime | None:
    if not text:
        return None
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
