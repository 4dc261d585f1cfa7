"""Webhook delivery in virtual time against a real aiohttp receiver on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from fake_imds.model import MetadataPlane
from fake_imds.server import FakeImds
from fake_imds.webhook import (
    EVENT_TYPE,
    RetryPolicy,
    WebhookDispatcher,
    WebhookOptions,
    WebhookSender,
    check_url,
)
from harness.clock import clock_for_running_loop, run_virtual
from tests.fake_imds.loopback import serving

Answer = Callable[[int], web.Response]


@asynccontextmanager
async def receiver(answer: Answer, log: list[tuple[float, dict[str, Any]]]) -> AsyncIterator[str]:
    """A receiver that logs each POST (loop time, body) and answers ``answer(n)``."""
    loop = asyncio.get_running_loop()

    async def handle(request: web.Request) -> web.Response:
        log.append((loop.time(), await request.json()))
        return answer(len(log))

    app = web.Application()
    app.router.add_post("/hook", handle)
    async with serving(app) as url:
        yield f"{url}/hook"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_failed_attempts_are_retried_with_exponential_backoff_and_all_recorded() -> None:
    async def main() -> tuple[list[Any], list[float]]:
        log: list[tuple[float, dict[str, Any]]] = []

        def answer(n: int) -> web.Response:
            return web.Response(status=503 if n < 3 else 204)

        async with receiver(answer, log) as url:
            sender = WebhookSender(RetryPolicy(attempts=5, backoff=1, factor=2))
            delivery = await sender.send(url, {"hello": "world"}, notice_id="n-1")
            await sender.close()
        return [a.to_json() for a in delivery.attempts] + [delivery.outcome], [t for t, _ in log]

    attempts, received = run_virtual(main)
    assert attempts == [
        {"attempt": 1, "t": 0.0, "status": 503, "error": None, "ok": False},
        {"attempt": 2, "t": 1.0, "status": 503, "error": None, "ok": False},
        {"attempt": 3, "t": 3.0, "status": 204, "error": None, "ok": True},
        "delivered",
    ]
    assert received == [0.0, 1.0, 3.0]


def test_a_client_error_status_is_final_and_not_retried() -> None:
    async def main() -> tuple[str, int]:
        log: list[tuple[float, dict[str, Any]]] = []
        async with receiver(lambda n: web.Response(status=400), log) as url:
            sender = WebhookSender()
            delivery = await sender.send(url, {})
            await sender.close()
        return delivery.outcome, len(delivery.attempts)

    assert run_virtual(main) == ("failed", 1)


def test_retry_after_stretches_the_wait() -> None:
    async def main() -> list[float]:
        log: list[tuple[float, dict[str, Any]]] = []

        def answer(n: int) -> web.Response:
            if n == 1:
                return web.Response(status=429, headers={"Retry-After": "7"})
            return web.Response(status=200)

        async with receiver(answer, log) as url:
            sender = WebhookSender(RetryPolicy(backoff=1))
            delivery = await sender.send(url, {})
            await sender.close()
        return [a.t for a in delivery.attempts]

    assert run_virtual(main) == [0.0, 7.0]


def test_an_unreachable_receiver_exhausts_the_attempts_with_each_error_recorded() -> None:
    async def main() -> tuple[str, list[tuple[float, bool]], list[str]]:
        port = closed_port()
        seen: list[str] = []
        sender = WebhookSender(
            RetryPolicy(attempts=3, backoff=2, factor=3),
            on_attempt=lambda delivery, attempt: seen.append(f"{attempt.number}:{attempt.ok}"),
        )
        delivery = await sender.send(f"http://127.0.0.1:{port}/hook", {})
        await sender.close()
        errors = [(a.t, a.error is not None and "Connect" in a.error) for a in delivery.attempts]
        return delivery.outcome, errors, seen

    outcome, errors, seen = run_virtual(main)
    assert outcome == "failed"
    assert errors == [(0.0, True), (2.0, True), (8.0, True)]
    assert seen == ["1:False", "2:False", "3:False"]


def test_a_webhook_notice_is_posted_when_it_is_issued_with_the_interruption_fields() -> None:
    async def main() -> tuple[list[tuple[float, dict[str, Any]]], dict[str, Any]]:
        plane = MetadataPlane(clock_for_running_loop())
        log: list[tuple[float, dict[str, Any]]] = []
        async with receiver(lambda n: web.Response(status=200), log) as url:
            dispatcher = WebhookDispatcher(plane, WebhookSender(), "i-0123456789abcdef0")
            dispatcher.start()
            notice = plane.add_notice(
                "webhook", "interruption", "terminate", lead=120, at=60, params={"url": url}
            )
            await asyncio.sleep(59)
            assert log == []  # not issued yet
            await asyncio.sleep(2)
            await dispatcher.drain()
            plane.update_notice(notice.id)  # a later change does not send it again
            await asyncio.sleep(1)
            await dispatcher.drain()
            record = dispatcher.sender.deliveries[0].to_json()
            await dispatcher.close()
        plane.close()
        return log, record

    log, record = run_virtual(main)
    assert len(log) == 1
    t, body = log[0]
    assert t == 60.0
    assert body["type"] == EVENT_TYPE
    assert body["instance_id"] == "i-0123456789abcdef0"
    assert body["action"] == "terminate"
    assert body["notice_time"] == "2026-01-01T00:01:00Z"
    assert body["deadline"] == "2026-01-01T00:03:00Z"
    assert body["lead_seconds"] == 120
    assert body["data"]["instance-action"] == "terminate"
    assert "url" not in body["data"]
    assert record["outcome"] == "delivered"
    assert record["notice_id"] == body["id"]


def test_bad_urls_and_policies_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="absolute http"):
        check_url("ftp://example/hook")
    with pytest.raises(ValueError, match="absolute http"):
        check_url("/hook")
    with pytest.raises(ValueError, match="attempts must be at least 1"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="factor >= 1"):
        RetryPolicy(factor=0.5)


def test_the_control_api_schedules_a_webhook_that_the_server_delivers_and_lists() -> None:
    async def main() -> tuple[int, dict[str, Any], list[tuple[float, dict[str, Any]]], Any]:
        log: list[tuple[float, dict[str, Any]]] = []
        async with (
            receiver(lambda n: web.Response(status=200), log) as url,
            FakeImds(options={"webhook": WebhookOptions(instance_id="i-0feed")}) as server,
            aiohttp.ClientSession() as session,
        ):
            body = {"cloud": "webhook", "url": url, "lead": "2m", "at": "+30s"}
            async with session.post(f"{server.control_url}/notices", json=body) as response:
                status, created = response.status, await response.json()
            await asyncio.sleep(31)
            async with session.get(f"{server.control_url}/webhooks") as response:
                listed = await response.json()
        return status, created, log, listed

    status, created, log, listed = run_virtual(main)
    assert status == 201
    assert (created["cloud"], created["action"]) == ("webhook", "terminate")
    assert [(t, b["instance_id"], b["id"]) for t, b in log] == [(30.0, "i-0feed", created["id"])]
    assert log[0][1]["deadline"] == created["deadline"] == "2026-01-01T00:02:30Z"
    assert [(d["notice_id"], d["outcome"], len(d["attempts"])) for d in listed] == [
        (created["id"], "delivered", 1)
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lead": "2m"}, "url"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"url": "http://127.0.0.1:9/hook", "lead": "later"}, "lead"),
        ({"url": "http://127.0.0.1:9/hook", "action": "explode"}, "action"),
        ({"url": "http://127.0.0.1:9/hook", "retries": 3}, "retries"),
    ],
)
def test_malformed_webhook_notices_get_400_naming_the_field(
    body: dict[str, Any], field: str
) -> None:
    async def main() -> tuple[int, Any]:
        async with (
            FakeImds() as server,
            aiohttp.ClientSession() as session,
            session.post(
                f"{server.control_url}/notices", json={"cloud": "webhook", **body}
            ) as response,
        ):
            return response.status, await response.json()

    status, error = run_virtual(main)
    assert status == 400
    assert error["field"] == field


def test_a_host_name_in_virtual_time_fails_at_once_with_the_reason_recorded() -> None:
    async def main() -> tuple[str, list[str | None]]:
        sender = WebhookSender()
        delivery = await sender.send("http://receiver.invalid/hook", {})
        await sender.close()
        return delivery.outcome, [a.error for a in delivery.attempts]

    outcome, errors = run_virtual(main)
    assert outcome == "failed"
    assert len(errors) == 1
    assert errors[0] is not None and "ThreadUseError" in errors[0]


def test_the_delivery_and_signal_listings_need_the_control_token_when_one_is_set() -> None:
    async def main() -> list[int]:
        statuses = []
        async with FakeImds(control_token="s3cret") as server, aiohttp.ClientSession() as session:
            for path in ("webhooks", "signals"):
                for headers in ({}, {"Authorization": "Bearer s3cret"}):
                    url = f"{server.control_url}/{path}"
                    async with session.get(url, headers=headers) as response:
                        statuses.append(response.status)
        return statuses

    assert run_virtual(main) == [401, 200, 401, 200]
