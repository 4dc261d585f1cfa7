"""AWS IMDSv2, by polling: the spot interruption notice, the rebalance recommendation, the Auto
Scaling lifecycle state and EC2 scheduled maintenance events.

``spot/instance-action`` is polled every ``poll_interval``; the others change slowly or come long
before they act, so they are polled less often: the rebalance recommendation and the lifecycle
state every ``rebalance_interval`` (the lifecycle state every ``maintenance_interval`` while the
instance is in no Auto Scaling group, i.e. the path is 404), scheduled events every
``maintenance_interval``. A scheduled event is reported at once as "checkpoint soon" and becomes
urgent ``maintenance_lead`` before its ``NotBefore``, so the job keeps working until then.

The session token is cached, refreshed before it expires, and fetched again once when a GET
answers 401. Unreachable IMDS or repeated 401s make the source *blind* (reported), never "no
notice". IMDSv1 (no token) is used only when ``imds_v1_fallback`` is set and the token PUT is
refused with 403/404/405, as botocore does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from harness.runtime.monitor.core import InterruptionNotice, Monitor, calendar_to_clock
from harness.runtime.monitor.http import HttpSession, Unreachable, new_session, request

INSTANCE_ACTION = "/latest/meta-data/spot/instance-action"
REBALANCE = "/latest/meta-data/events/recommendations/rebalance"
LIFECYCLE = "/latest/meta-data/autoscaling/target-lifecycle-state"
SCHEDULED = "/latest/meta-data/events/maintenance/scheduled"
TOKEN = "/latest/api/token"
#: Scheduled-event code -> (effect on the job, action reported). A retirement may stop or
#: terminate the instance (instance-store volumes are lost either way), so only S3 counts; a
#: reboot keeps the disk but not the process, like a stop; system maintenance leaves the
#: instance running, so it only asks for a checkpoint.
SCHEDULED_EFFECTS = {
    "instance-stop": ("stop", "stop"),
    "instance-retirement": ("terminate", "terminate"),
    "instance-reboot": ("stop", "reboot"),
    "system-reboot": ("stop", "reboot"),
    "system-maintenance": ("rebalance", "maintenance"),
}
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}
_REFRESH_FRACTION = 0.9  # refresh when 90 % of the TTL has passed
#: A spot notice is issued about two minutes before its ``time``: whatever the instance's own
#: calendar clock says, the action comes no later than two minutes after the notice was seen.
SPOT_NOTICE_LEAD = 120.0


class TokenRefused(Exception):
    """The token PUT failed in a way that v1 fallback may answer (403/404/405)."""


@dataclass(frozen=True)
class _Answer:
    status: int  # 200 or 404
    body: str


class AwsImdsSource:
    name = "aws"

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._token: str | None = None
        self._token_expires = 0.0
        self._v1 = False
        #: Failed polls in a row, per path: a path that keeps failing blinds the source even
        #: while other paths answer (a fault on ``spot/*`` hides the notice all the same).
        self._failures: dict[str, int] = {}
        self._pending: dict[str, InterruptionNotice] = {}

    async def run(self, monitor: Monitor) -> None:
        config = monitor.config
        now = monitor.clock.monotonic()
        due = {REBALANCE: now, LIFECYCLE: now, SCHEDULED: now}
        async with new_session() as session:
            while True:
                answer = await self._poll(session, monitor, INSTANCE_ACTION)
                if answer is not None and answer.status == 200:
                    self._report(monitor, parse_notice(INSTANCE_ACTION, answer.body, monitor))
                if answer is not None:  # the service answers again: retry failed paths now
                    due.update({path: 0.0 for path in due if path in self._failures})
                for path, when in due.items():
                    if monitor.clock.monotonic() >= when:
                        interval = await self._poll_slow(session, monitor, path)
                        due[path] = monitor.clock.monotonic() + interval
                self._escalate(monitor)
                await monitor.clock.sleep(config.poll_interval)

    async def _poll_slow(self, session: HttpSession, monitor: Monitor, path: str) -> float:
        """Poll one of the slower paths; the seconds until it is due again."""
        config = monitor.config
        answer = await self._poll(session, monitor, path)
        if path == REBALANCE:
            if answer is not None and answer.status == 200:
                self._report(monitor, parse_notice(REBALANCE, answer.body, monitor))
            return config.rebalance_interval
        if path == LIFECYCLE:
            if answer is not None and answer.status == 404:
                return config.maintenance_interval  # in no Auto Scaling group
            if answer is not None:
                self._report(monitor, parse_lifecycle(answer.body))
            return config.rebalance_interval
        if answer is not None:
            self._schedule(monitor, answer)
        return config.maintenance_interval

    def _schedule(self, monitor: Monitor, answer: _Answer) -> None:
        """Report new scheduled events as "checkpoint soon"; keep the ones that will act."""
        events = parse_scheduled(answer.body, monitor) if answer.status == 200 else []
        self._pending = {n.ident: n for n in events if n.effect != "rebalance"}
        lead = monitor.config.maintenance_lead
        for notice in events:
            due = notice.deadline is None or notice.deadline - lead <= monitor.clock.monotonic()
            if notice.effect == "rebalance" or not due:
                monitor.report(replace(notice, effect="rebalance", ident=notice.ident + "/soon"))

    def _escalate(self, monitor: Monitor) -> None:
        """A pending scheduled event becomes urgent ``maintenance_lead`` before it acts."""
        now = monitor.clock.monotonic()
        for ident, notice in list(self._pending.items()):
            if notice.deadline is None or notice.deadline - monitor.config.maintenance_lead <= now:
                del self._pending[ident]
                monitor.report(notice)

    @staticmethod
    def _report(monitor: Monitor, notice: InterruptionNotice | None) -> None:
        if notice is not None:
            monitor.report(notice)

    async def _poll(self, session: HttpSession, monitor: Monitor, path: str) -> _Answer | None:
        """The answer (200 or 404), or None when the poll failed (counted towards blindness)."""
        try:
            status, body = await self._get(session, monitor, path)
        except (Unreachable, TokenRefused) as error:
            self._failed(monitor, path, str(error) or type(error).__name__)
            return None
        if status == 401:
            self._failed(monitor, path, "401 Unauthorized after a fresh token")
            return None
        if status not in (200, 404):
            self._failed(monitor, path, f"HTTP {status}")
            return None
        self._failures.pop(path, None)
        blind_after = monitor.config.blind_after
        if all(count < blind_after for count in self._failures.values()):
            monitor.sighted(self.name)
        return _Answer(status, body)

    def _failed(self, monitor: Monitor, path: str, reason: str) -> None:
        self._failures[path] = self._failures.get(path, 0) + 1
        if self._failures[path] >= monitor.config.blind_after:
            monitor.blind(self.name, reason)

    async def _get(self, session: HttpSession, monitor: Monitor, path: str) -> tuple[int, str]:
        timeout = monitor.config.http_timeout
        for attempt in range(2):
            headers = await self._auth_headers(session, monitor, fresh=attempt > 0)
            reply = await request(
                session, "GET", self.base_url + path, headers=headers, timeout=timeout
            )
            if reply.status != 401 or self._v1:
                return reply.status, reply.text
        return 401, ""

    async def _auth_headers(
        self, session: HttpSession, monitor: Monitor, *, fresh: bool
    ) -> dict[str, str]:
        if self._v1:
            return {}
        now = monitor.clock.monotonic()
        if fresh or self._token is None or now >= self._token_expires:
            await self._fetch_token(session, monitor)
        return {"X-aws-ec2-metadata-token": self._token} if self._token else {}

    async def _fetch_token(self, session: HttpSession, monitor: Monitor) -> None:
        config = monitor.config
        ttl = max(1, min(21600, int(config.token_ttl)))
        reply = await request(
            session,
            "PUT",
            self.base_url + TOKEN,
            headers={"X-aws-ec2-metadata-token-ttl-seconds": str(ttl)},
            timeout=config.http_timeout,
        )
        if reply.status == 200 and reply.text:
            self._token = reply.text.strip()
            self._token_expires = monitor.clock.monotonic() + ttl * _REFRESH_FRACTION
            return
        self._token = None
        if reply.status in (403, 404, 405) and config.imds_v1_fallback:
            self._v1 = True
            return
        raise TokenRefused(f"token PUT answered HTTP {reply.status}")


def parse_notice(path: str, body: str, monitor: Monitor) -> InterruptionNotice | None:
    """A notice from an ``instance-action`` or ``rebalance`` document; None if unparseable."""
    try:
        document = json.loads(body)
    except json.JSONDecodeError:
        return None
    if not isinstance(document, dict):
        return None
    if path == REBALANCE:
        when = document.get("noticeTime")
        return InterruptionNotice(
            source="aws",
            effect="rebalance",
            action="rebalance",
            deadline=None,
            ident=f"rebalance/{when}",
            notice_time=str(when) if when else None,
        )
    action, when = document.get("action"), document.get("time")
    if action not in ("terminate", "stop", "hibernate") or not isinstance(when, str):
        return None
    # The time is cloud time; a calendar clock running behind would push the deadline late.
    deadline = monitor.clock.monotonic() + SPOT_NOTICE_LEAD
    when_parsed = parse_aws_time(when)
    if when_parsed is not None:
        deadline = min(deadline, calendar_to_clock(monitor.clock, when_parsed))
    return InterruptionNotice(
        source="aws",
        effect=str(action),
        action=str(action),
        deadline=deadline,
        ident=f"{action}/{when}",
        notice_time=when,
    )


def parse_lifecycle(body: str) -> InterruptionNotice | None:
    """``Terminated`` in ``autoscaling/target-lifecycle-state``: the group is terminating us.

    The state carries no time: the deadline is unknown (the runtime then allows its
    ``grace_period``; a lifecycle hook's heartbeat usually allows more)."""
    if body.strip() != "Terminated":
        return None
    return InterruptionNotice(
        source="aws",
        effect="terminate",
        action="terminate",
        deadline=None,
        ident="autoscaling/Terminated",
        notice_time=None,
    )


def parse_scheduled(body: str, monitor: Monitor) -> list[InterruptionNotice]:
    """The active events of ``events/maintenance/scheduled``, each with the effect of its code
    and ``NotBefore`` as its deadline; unknown codes and malformed entries are skipped."""
    try:
        document = json.loads(body)
    except json.JSONDecodeError:
        return []
    notices = []
    for event in document if isinstance(document, list) else []:
        if not isinstance(event, dict) or event.get("State", "active") != "active":
            continue
        meaning = SCHEDULED_EFFECTS.get(str(event.get("Code")))
        not_before = str(event.get("NotBefore", ""))
        when = parse_scheduled_time(not_before)
        if meaning is None or when is None:
            continue
        effect, action = meaning
        notices.append(
            InterruptionNotice(
                source="aws",
                effect=effect,
                action=action,
                deadline=calendar_to_clock(monitor.clock, when),
                ident=f"scheduled/{event.get('EventId')}",
                notice_time=not_before,
            )
        )
    return notices


def parse_scheduled_time(text: str) -> datetime | None:
    """``21 Jan 2019 09:00:43 GMT`` (scheduled events' format; English month names whatever
    the locale)."""
    parts = text.split()
    if len(parts) != 5 or parts[4] != "GMT" or parts[1] not in _MONTHS:
        return None
    try:
        clock = datetime.strptime(parts[3], "%H:%M:%S")
        return datetime(
            int(parts[2]),
            _MONTHS[parts[1]],
            int(parts[0]),
            clock.hour,
            clock.minute,
            clock.second,
            tzinfo=UTC,
        )
    except ValueError:
        return None


def parse_aws_time(text: str) -> datetime | None:
    """``2026-01-01T00:02:00Z`` (IMDS' format) as an aware datetime."""
    for pattern in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None
