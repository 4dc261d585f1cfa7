"""Interruption notices, the way a careful handler watches for them on each cloud.

- AWS: IMDSv2. A session token (6 h TTL) is fetched once and reused; a GET answered 401 gets
  a fresh token and is sent again; a token PUT refused with 403/404/405 means IMDSv1 only. An
  error, a timeout or a 429 is "no answer" (tried again next round, reported as blindness after
  three in a row), never "no notice". ``spot/instance-action`` is polled every 5 s; the Auto
  Scaling lifecycle state and scheduled maintenance events every 20 s and 60 s, one request
  at a time, 2.5 s apart (a throttled metadata service answers 429 to bursts).
  A spot notice's deadline is its ``time``, but never later than two minutes after it was seen
  (this machine's calendar clock may run behind the cloud's).
- GCP: a hanging GET on ``instance/preempted`` with ``wait_for_change`` held at most 20 s (its
  client timeout 2 s more); TRUE gives 30 s.
- Azure: Scheduled Events every 2 s; Preempt, Terminate and Redeploy end the VM, Reboot keeps
  its disk. An event is approved (``StartRequests``) once the state is saved.
- Webhook: a receiver on 127.0.0.1 (port 0) announced through ``ctx.extra["register_webhook"]``.
- Signals (every cloud): SIGTERM on ``ctx.signals`` starts the grace period
  (``ctx.extra["grace_period"]``, else 30 s); Kubernetes evictions and GCP's soft off send it.

Each notice is reported once as ``notice.seen`` with its deadline on ``ctx.clock.monotonic()``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from aiohttp import web

from harness.target import InstanceContext

SPOT = "/latest/meta-data/spot/instance-action"
LIFECYCLE = "/latest/meta-data/autoscaling/target-lifecycle-state"
SCHEDULED = "/latest/meta-data/events/maintenance/scheduled"
TOKEN = "/latest/api/token"
PREEMPTED = "/computeMetadata/v1/instance/preempted"
AZURE_EVENTS = "/metadata/scheduledevents?api-version=2020-07-01"

HTTP_TIMEOUT = 2.0
TICK = 2.5  # between two metadata requests
SLOW_PATHS = {LIFECYCLE: 20.0, SCHEDULED: 60.0}
NOT_IN_A_GROUP = 300.0  # lifecycle state 404: poll it rarely
TOKEN_TTL = 21600
#: A spot notice comes about two minutes before its time (a bound whatever this clock says).
SPOT_LEAD = 120.0
#: Seconds a hanging GET asks to be held: with the client timeout on top, a dropped connection
#: blinds the watcher for less than GCP's 30 s notice.
GCP_WAIT = 20
BLIND_AFTER = 3
GCP_GRACE = 30.0
DEFAULT_GRACE = 30.0
#: A notice further away than this is acted on this long before its deadline.
ACT_BEFORE = 300.0
#: Scheduled-event codes that end or restart the instance, and what they do to the local disk.
SCHEDULED_ACTIONS = {
    "instance-stop": "stop",
    "instance-retirement": "terminate",
    "instance-reboot": "stop",
    "system-reboot": "stop",
}
AZURE_ACTIONS = {
    "Preempt": "terminate",
    "Terminate": "terminate",
    "Redeploy": "terminate",
    "Reboot": "stop",
}


class NoAnswer(Exception):
    """The metadata service gave no usable answer (unreachable, timeout, refused token)."""


@dataclass(frozen=True)
class Notice:
    source: str
    action: str  # terminate | stop (whether the local disk survives)
    deadline: float | None  # on ctx.clock.monotonic(); None: unknown, act at once
    ident: str


class NoticeWatcher:
    """Runs one watcher task per source; :meth:`due` says when to save and stop."""

    def __init__(self, ctx: InstanceContext) -> None:
        self.ctx = ctx
        self.notice: Notice | None = None
        self._seen: set[tuple[str, str]] = set()
        self._failures: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        watchers: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            "aws": self.watch_aws,
            "gcp": self.watch_gcp,
            "azure": self.watch_azure,
            "webhook": self.watch_webhook,
        }
        chosen = [self.watch_signals]
        if self.ctx.cloud in watchers:
            chosen.append(watchers[self.ctx.cloud])
        self._tasks = [asyncio.ensure_future(watch()) for watch in chosen]

    def stop(self) -> None:
        """Cancel the watchers (they close their sessions as they unwind)."""
        for task in self._tasks:
            task.cancel()

    def due(self) -> Notice | None:
        """The notice to act on now: any with an unknown or near deadline."""
        notice = self.notice
        if notice is None or notice.deadline is None:
            return notice
        return notice if notice.deadline - self.ctx.clock.monotonic() <= ACT_BEFORE else None

    def report(self, notice: Notice) -> None:
        if (notice.source, notice.ident) in self._seen:
            return
        self._seen.add((notice.source, notice.ident))
        self.ctx.emit(
            "notice.seen", source=notice.source, action=notice.action, deadline=notice.deadline
        )
        current = self.notice
        if current is None or (
            notice.deadline is not None
            and (current.deadline is None or notice.deadline < current.deadline)
        ):
            self.notice = notice

    def deadline_of(self, when: datetime, *, lead: float | None = None) -> float:
        """A calendar instant on the monotonic clock (through this machine's calendar). With
        the ``lead`` the cloud gives, no later than that long from now: a calendar clock
        running behind the cloud's must not push the deadline past the real one."""
        deadline = self.ctx.clock.monotonic() + (when - self.ctx.clock.now()).total_seconds()
        return deadline if lead is None else min(deadline, self.ctx.clock.monotonic() + lead)

    async def approve(self, notice: Notice) -> None:
        """Azure: approve the event (``StartRequests``) once the state is saved, so the platform
        need not wait for ``NotBefore``. Nothing for other sources; a failure changes nothing."""
        if notice.source != "azure":
            return
        body = {"StartRequests": [{"EventId": notice.ident}]}
        timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout, headers={"Metadata": "true"}) as http:
            try:
                async with http.post(self.ctx.imds_url + AZURE_EVENTS, json=body):
                    pass
            except (aiohttp.ClientError, TimeoutError):
                pass  # NotBefore still holds: the event starts then

    def answered(self, source: str, ok: bool, why: str = "") -> None:
        """Count failures in a row; three make the source blind (reported, not "no notice")."""
        if ok:
            if self._failures.pop(source, 0) >= BLIND_AFTER:
                self.ctx.emit("monitor.sighted", source=source)
            return
        self._failures[source] = self._failures.get(source, 0) + 1
        if self._failures[source] == BLIND_AFTER:
            self.ctx.emit("monitor.blind", source=source, reason=why)

    # -- AWS ------------------------------------------------------------------------------------
    async def watch_aws(self) -> None:
        timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            imds = Imdsv2(http, self.ctx.imds_url)
            due = dict.fromkeys(SLOW_PATHS, 0.0)
            while True:
                await self._poll_spot(imds)
                await self.ctx.clock.sleep(TICK)
                now = self.ctx.clock.monotonic()
                path = next((p for p, when in due.items() if when <= now), None)
                if path is not None:
                    due[path] = now + await self._poll_slow(imds, path)
                await self.ctx.clock.sleep(TICK)

    async def _poll_spot(self, imds: Imdsv2) -> None:
        status, body = await self._aws_get(imds, SPOT)
        if status != 200:
            return
        try:
            document = json.loads(body)
            when = datetime.strptime(document["time"], "%Y-%m-%dT%H:%M:%S%z")
            action = str(document["action"])
        except (ValueError, KeyError, TypeError):
            return
        if action in ("terminate", "stop", "hibernate"):
            ident = f"spot/{action}/{document['time']}"
            deadline = self.deadline_of(when, lead=SPOT_LEAD)
            self.report(Notice("aws", action, deadline, ident))

    async def _poll_slow(self, imds: Imdsv2, path: str) -> float:
        """Poll the lifecycle state or scheduled events; the seconds until the next poll."""
        status, body = await self._aws_get(imds, path)
        if path == LIFECYCLE:
            if status == 404:
                return NOT_IN_A_GROUP
            if status == 200 and body.strip() == "Terminated":
                self.report(Notice("aws", "terminate", None, "autoscaling/Terminated"))
        elif status == 200:
            for notice in self._scheduled(body):
                self.report(notice)
        return SLOW_PATHS[path]

    def _scheduled(self, body: str) -> list[Notice]:
        try:
            events = json.loads(body)
        except ValueError:
            return []
        found = []
        for event in events if isinstance(events, list) else []:
            action = SCHEDULED_ACTIONS.get(str(event.get("Code")))
            if action is None or event.get("State", "active") != "active":
                continue
            try:
                when = datetime.strptime(str(event["NotBefore"]), "%d %b %Y %H:%M:%S %Z")
            except (KeyError, ValueError):
                continue
            deadline = self.deadline_of(when.replace(tzinfo=UTC))
            found.append(Notice("aws", action, deadline, f"scheduled/{event.get('EventId')}"))
        return found

    async def _aws_get(self, imds: Imdsv2, path: str) -> tuple[int, str]:
        try:
            status, body = await imds.get(path)
        except NoAnswer as error:
            self.answered("aws", False, str(error))
            return 0, ""
        self.answered("aws", status in (200, 404), f"HTTP {status}")
        return status, body

    # -- GCP ------------------------------------------------------------------------------------
    async def watch_gcp(self) -> None:
        headers = {"Metadata-Flavor": "Google"}
        etag: str | None = None
        async with aiohttp.ClientSession(headers=headers) as http:
            while True:
                url = self.ctx.imds_url + PREEMPTED
                if etag is not None:
                    url += f"?wait_for_change=true&last_etag={etag}&timeout_sec={GCP_WAIT}"
                try:
                    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT + (GCP_WAIT if etag else 0))
                    async with http.get(url, timeout=timeout) as reply:
                        status, body = reply.status, await reply.text()
                        etag = reply.headers.get("ETag", etag or "0")
                except (aiohttp.ClientError, TimeoutError) as error:
                    status, body = 0, type(error).__name__
                self.answered("gcp", status == 200, body if status == 0 else f"HTTP {status}")
                if status != 200:
                    await self.ctx.clock.sleep(1.0)
                elif body.strip().upper() == "TRUE":
                    deadline = self.ctx.clock.monotonic() + GCP_GRACE
                    self.report(Notice("gcp", "terminate", deadline, f"preempted/{etag}"))

    # -- Azure ----------------------------------------------------------------------------------
    async def watch_azure(self) -> None:
        timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout, headers={"Metadata": "true"}) as http:
            while True:
                try:
                    async with http.get(self.ctx.imds_url + AZURE_EVENTS) as reply:
                        status, body = reply.status, await reply.text()
                except (aiohttp.ClientError, TimeoutError) as error:
                    status, body = 0, type(error).__name__
                self.answered("azure", status == 200, f"HTTP {status}")
                if status == 200:
                    for notice in self._azure_events(body):
                        self.report(notice)
                await self.ctx.clock.sleep(2.0)

    def _azure_events(self, body: str) -> list[Notice]:
        try:
            events = json.loads(body).get("Events") or []
        except (ValueError, AttributeError):
            return []
        found = []
        for event in events:
            action = AZURE_ACTIONS.get(str(event.get("EventType")))
            if action is None:
                continue
            not_before = str(event.get("NotBefore") or "")
            deadline = (
                self.deadline_of(parsedate_to_datetime(not_before))
                if not_before
                else self.ctx.clock.monotonic()  # started: it is happening now
            )
            found.append(Notice("azure", action, deadline, str(event.get("EventId"))))
        return found

    # -- webhook and signals --------------------------------------------------------------------
    async def watch_webhook(self) -> None:
        async def receive(request: web.Request) -> web.Response:
            try:
                body: Any = await request.json()
                action = str(body.get("action", "terminate"))
                when = datetime.fromisoformat(str(body["deadline"]).replace("Z", "+00:00"))
            except (ValueError, KeyError, AttributeError):
                return web.json_response({"error": "expected action and deadline"}, status=400)
            ident = str(body.get("id", body["deadline"]))
            self.report(Notice("webhook", action, self.deadline_of(when), ident))
            return web.json_response({"accepted": True})

        app = web.Application()
        app.router.add_post("/notice", receive)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            port = runner.addresses[0][1]
            register = self.ctx.extra.get("register_webhook")
            if callable(register):
                register(f"http://127.0.0.1:{port}/notice")
            await asyncio.Event().wait()  # serve until cancelled
        finally:
            await runner.cleanup()

    async def watch_signals(self) -> None:
        grace = float(self.ctx.extra.get("grace_period") or DEFAULT_GRACE)
        count = 0
        while True:
            name = await self.ctx.signals.get()
            if name in ("SIGTERM", "SIGINT"):
                count += 1
                deadline = self.ctx.clock.monotonic() + grace
                self.report(Notice("signals", "terminate", deadline, f"{name}/{count}"))


class Imdsv2:
    """IMDSv2 GETs with a cached session token, refreshed once when a GET answers 401."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.token: str | None = None
        self.v1_only = False

    async def get(self, path: str) -> tuple[int, str]:
        for fresh in (False, True):
            headers = await self._headers(fresh)
            status, body = await self._send("GET", path, headers)
            if status != 401 or self.v1_only:
                return status, body
        return 401, ""

    async def _headers(self, fresh: bool) -> dict[str, str]:
        if self.v1_only:
            return {}
        if fresh or self.token is None:
            ttl = {"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL)}
            status, body = await self._send("PUT", TOKEN, ttl)
            if status in (403, 404, 405):
                self.v1_only = True  # IMDSv1 only, as botocore falls back
                return {}
            if status != 200 or not body:
                raise NoAnswer(f"token PUT answered HTTP {status}")
            self.token = body.strip()
        return {"X-aws-ec2-metadata-token": self.token or ""}

    async def _send(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
        try:
            async with self.http.request(method, self.base_url + path, headers=headers) as reply:
                return reply.status, await reply.text()
        except (aiohttp.ClientError, TimeoutError) as error:
            raise NoAnswer(f"{type(error).__name__}: {error}") from None
