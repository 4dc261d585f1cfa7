"""AWS IMDSv2: the spot interruption notice and the rebalance recommendation, by polling.

The session token is cached, refreshed before it expires, and fetched again once when a GET
answers 401. Unreachable IMDS or repeated 401s make the source *blind* (reported), never "no
notice". IMDSv1 (no token) is used only when ``imds_v1_fallback`` is set and the token PUT is
refused with 403/404/405, as botocore does.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import aiohttp

from harness.runtime.monitor.core import InterruptionNotice, Monitor, calendar_to_clock
from harness.runtime.monitor.http import Unreachable, new_session, request

INSTANCE_ACTION = "/latest/meta-data/spot/instance-action"
REBALANCE = "/latest/meta-data/events/recommendations/rebalance"
TOKEN = "/latest/api/token"
_REFRESH_FRACTION = 0.9  # refresh when 90 % of the TTL has passed


class TokenRefused(Exception):
    """The token PUT failed in a way that v1 fallback may answer (403/404/405)."""


class AwsImdsSource:
    name = "aws"

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._token: str | None = None
        self._token_expires = 0.0
        self._v1 = False
        self._failures = 0

    async def run(self, monitor: Monitor) -> None:
        config = monitor.config
        next_rebalance = monitor.clock.monotonic()
        async with new_session() as session:
            while True:
                await self._poll(session, monitor, INSTANCE_ACTION)
                if monitor.clock.monotonic() >= next_rebalance:
                    await self._poll(session, monitor, REBALANCE)
                    next_rebalance = monitor.clock.monotonic() + config.rebalance_interval
                await monitor.clock.sleep(config.poll_interval)

    async def _poll(self, session: aiohttp.ClientSession, monitor: Monitor, path: str) -> None:
        try:
            status, body = await self._get(session, monitor, path)
        except (Unreachable, TokenRefused) as error:
            self._failed(monitor, str(error) or type(error).__name__)
            return
        if status == 401:
            self._failed(monitor, "401 Unauthorized after a fresh token")
            return
        if status not in (200, 404):
            self._failed(monitor, f"HTTP {status}")
            return
        self._failures = 0
        monitor.sighted(self.name)
        if status == 200:
            notice = parse_notice(path, body, monitor)
            if notice is not None:
                monitor.report(notice)

    def _failed(self, monitor: Monitor, reason: str) -> None:
        self._failures += 1
        if self._failures >= monitor.config.blind_after:
            monitor.blind(self.name, reason)

    async def _get(
        self, session: aiohttp.ClientSession, monitor: Monitor, path: str
    ) -> tuple[int, str]:
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
        self, session: aiohttp.ClientSession, monitor: Monitor, *, fresh: bool
    ) -> dict[str, str]:
        if self._v1:
            return {}
        now = monitor.clock.monotonic()
        if fresh or self._token is None or now >= self._token_expires:
            await self._fetch_token(session, monitor)
        return {"X-aws-ec2-metadata-token": self._token} if self._token else {}

    async def _fetch_token(self, session: aiohttp.ClientSession, monitor: Monitor) -> None:
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
    deadline = parse_aws_time(when)
    return InterruptionNotice(
        source="aws",
        effect=str(action),
        action=str(action),
        deadline=None if deadline is None else calendar_to_clock(monitor.clock, deadline),
        ident=f"{action}/{when}",
        notice_time=when,
    )


def parse_aws_time(text: str) -> datetime | None:
    """``2026-01-01T00:02:00Z`` (IMDS' format) as an aware datetime."""
    for pattern in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None
