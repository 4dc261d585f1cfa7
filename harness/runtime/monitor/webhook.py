"""A webhook receiver: an aiohttp server on 127.0.0.1, port 0, taking provider-style POSTs.

Accepted bodies (JSON): ``{"action": "terminate", "deadline": "2026-01-01T00:02:00Z"}`` (also
``time`` / ``not_before`` for the deadline, ``lead`` / ``grace`` in the duration grammar, and
``notice_id`` / ``id``), or an EventBridge ``EC2 Spot Instance Interruption Warning`` event
(deadline two minutes after its ``time``). If the world offers ``register_webhook(url)`` in
``ctx.extra`` the receiver announces its URL there.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from harness.runtime.monitor.core import (
    URGENT_ACTIONS,
    InterruptionNotice,
    Monitor,
    calendar_to_clock,
)
from harness.units import UnitError, parse_duration

SPOT_WARNING = "EC2 Spot Instance Interruption Warning"
REBALANCE = "EC2 Instance Rebalance Recommendation"
AWS_LEAD = 120.0


class WebhookSource:
    name = "webhook"

    def __init__(self, register: Callable[[str], Any] | None = None, port: int = 0) -> None:
        self.register = register
        self.host = "127.0.0.1"  # loopback only: the receiver takes no credentials
        self.port = port
        self.url: str | None = None
        self._count = 0
        self._monitor: Monitor | None = None

    async def run(self, monitor: Monitor) -> None:
        self._monitor = monitor
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._receive)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        try:
            port = runner.addresses[0][1]
            self.url = f"http://{self.host}:{port}/notice"
            if callable(self.register):
                result = self.register(self.url)
                if asyncio.iscoroutine(result):
                    await result
            await asyncio.Event().wait()  # serve until cancelled
        finally:
            await runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        monitor = self._monitor
        assert monitor is not None
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"error": "body must be JSON"}, status=400)
        self._count += 1
        try:
            notice = parse_payload(body, monitor, fallback_ident=str(self._count))
        except ValueError as error:
            return web.json_response({"error": str(error)}, status=400)
        if notice is not None:
            monitor.report(notice)
        return web.json_response({"accepted": notice is not None})


def parse_payload(body: Any, monitor: Monitor, *, fallback_ident: str) -> InterruptionNotice | None:
    """A notice from a webhook body; ``None`` for an event that is not an interruption."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    if "detail-type" in body:
        return _eventbridge(body, monitor)
    action = str(body.get("action", "terminate")).lower()
    if action not in (*URGENT_ACTIONS, "rebalance"):
        raise ValueError(f"unknown action {action!r}; use terminate, stop, hibernate or rebalance")
    ident = str(body.get("notice_id") or body.get("id") or fallback_ident)
    when_text = body.get("deadline") or body.get("time") or body.get("not_before")
    deadline: float | None = None
    if isinstance(when_text, str):
        deadline = calendar_to_clock(monitor.clock, _parse_iso(when_text))
    elif isinstance(when_text, int | float):
        deadline = float(when_text)
    else:
        lead = body.get("lead", body.get("grace"))
        if lead is not None:
            try:
                deadline = monitor.clock.monotonic() + parse_duration(lead)
            except UnitError as error:
                raise ValueError(f"lead: {error}") from None
    return InterruptionNotice(
        source="webhook",
        effect=action,
        action=action,
        deadline=deadline,
        ident=ident,
        notice_time=when_text if isinstance(when_text, str) else None,
    )


def _eventbridge(body: dict[str, Any], monitor: Monitor) -> InterruptionNotice | None:
    kind = body.get("detail-type")
    when = _parse_iso(str(body.get("time", "")))
    ident = str(body.get("id", body.get("time")))
    if kind == REBALANCE:
        return InterruptionNotice(
            "webhook", "rebalance", None, ident, str(body.get("time")), action="rebalance"
        )
    if kind != SPOT_WARNING:
        return None
    detail = body.get("detail") or {}
    action = str(detail.get("instance-action", "terminate"))
    deadline = calendar_to_clock(monitor.clock, when + timedelta(seconds=AWS_LEAD))
    return InterruptionNotice(
        "webhook", action, deadline, ident, str(body.get("time")), action=action
    )


def _parse_iso(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO-8601 time: {text!r}") from None
    if when.tzinfo is None:
        raise ValueError(f"time {text!r} has no timezone; add Z or an offset")
    return when
