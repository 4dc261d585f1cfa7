"""``harness inject --via agent``: schedule a notice through an on-host agent's control API
(``POST /_harness/v1/notices``) and follow it until its deadline.

The client is async (aiohttp) so tests run it against a real agent in virtual time. The bearer
token goes in a header only; it is never printed, logged or put in an error message. Ctrl-C
while following cancels the notice (``DELETE notices/{id}``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from harness.errors import EnvironmentProblem, InputError
from harness.inject.plan import AgentPlan
from harness.inject.status import StatusLine, when
from harness.units import format_duration

CONTROL_PREFIX = "/_harness/v1"
TOKEN_ENV = "HARNESS_AGENT_TOKEN"


@dataclass(frozen=True)
class ScheduledNotice:
    id: str
    kind: str
    action: str
    issued_at: datetime
    deadline: datetime
    state: str

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ScheduledNotice:
        return cls(
            id=str(body["id"]),
            kind=str(body.get("kind", "")),
            action=str(body.get("action", "")),
            issued_at=_parse_time(str(body["issued_at"])),
            deadline=_parse_time(str(body["deadline"])),
            state=str(body.get("state", "scheduled")),
        )


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class AgentClient:
    """A small client of the control API. ``token`` is sent as a bearer token, never shown."""

    def __init__(self, base_url: str, token: str | None, session: aiohttp.ClientSession) -> None:
        self._base = base_url.rstrip("/") + CONTROL_PREFIX
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._session = session

    async def schedule(self, body: Mapping[str, Any]) -> ScheduledNotice:
        reply = await self._call("POST", "/notices", body)
        return ScheduledNotice.from_json(reply)

    async def notice(self, notice_id: str) -> ScheduledNotice:
        return ScheduledNotice.from_json(await self._call("GET", f"/notices/{notice_id}"))

    async def cancel(self, notice_id: str) -> ScheduledNotice:
        return ScheduledNotice.from_json(await self._call("DELETE", f"/notices/{notice_id}"))

    async def _call(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        url = self._base + path
        try:
            async with self._session.request(
                method, url, json=body, headers=self._headers
            ) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            raise EnvironmentProblem(
                f"cannot reach the agent at {self._base}: {type(error).__name__}: {error}; is "
                "`harness agent` running there, and is the port open to you?",
            ) from None
        return _decode(method, path, status, text)


def _decode(method: str, path: str, status: int, text: str) -> dict[str, Any]:
    try:
        payload = json.loads(text) if text else {}
    except ValueError:
        payload = {"error": text[:200]}
    if status == 401:
        raise EnvironmentProblem(
            "the agent refused the token (401): pass the agent's control token with --token or "
            f"{TOKEN_ENV}",
        )  # like `harness notice`: a refused credential is the environment's, not a typo
    if status >= 400:
        detail = payload.get("error", "") if isinstance(payload, dict) else ""
        field = payload.get("field") if isinstance(payload, dict) else None
        where = f" (field {field!r})" if field else ""
        problem = InputError if status == 400 else EnvironmentProblem
        raise problem(f"the agent answered {status} to {method} {path}: {detail}{where}")
    if not isinstance(payload, dict):
        raise EnvironmentProblem(f"the agent sent an unexpected answer to {method} {path}")
    return payload


@dataclass
class AgentOutcome:
    notice: ScheduledNotice
    final_state: str
    canceled: bool = False


async def apply_agent(
    plan: AgentPlan,
    client: AgentClient,
    status: StatusLine,
    *,
    poll_every: float = 1.0,
) -> AgentOutcome:
    """Schedule the notice and, unless ``--no-wait``, follow it to its deadline."""
    notice = await client.schedule(plan.body())
    status.note(
        f"scheduled {notice.id}: {notice.kind} ({notice.action}) issued "
        f"{when(notice.issued_at)}, deadline {when(notice.deadline)}"
    )
    outcome = AgentOutcome(notice=notice, final_state=notice.state)
    if not plan.wait:
        return outcome
    try:
        await _follow(client, outcome, status, poll_every)
    except (KeyboardInterrupt, asyncio.CancelledError):
        status.note(f"interrupted: canceling {notice.id}")
        canceled = await client.cancel(notice.id)
        outcome.final_state = canceled.state
        outcome.canceled = True
        raise
    return outcome


async def _follow(
    client: AgentClient, outcome: AgentOutcome, status: StatusLine, poll_every: float
) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    total = (outcome.notice.deadline - outcome.notice.issued_at).total_seconds()
    while True:
        current = await client.notice(outcome.notice.id)
        outcome.final_state = current.state
        elapsed = loop.time() - began
        text, countdown = _status_text(current, max(0.0, total - elapsed))
        status.show(text, elapsed, countdown)
        if current.state in ("completed", "canceled"):
            break
        await asyncio.sleep(poll_every)
    status.end()


def _status_text(notice: ScheduledNotice, remaining: float) -> tuple[str, str]:
    """The status (a change of it is a new line off a terminal) and the countdown."""
    if notice.state == "completed":
        return f"{notice.id} {notice.kind}: deadline reached ({notice.action})", ""
    if notice.state == "canceled":
        return f"{notice.id} {notice.kind}: canceled", ""
    left = format_duration(round(remaining)) if remaining else "0s"
    verb = "visible" if notice.state in ("issued", "started") else "scheduled"
    return f"{notice.id} {notice.kind} ({notice.action}): {verb}", f"deadline in about {left}"
