"""EventBridge-shaped events for notices, written to a sink when the notice fires.

AWS emits ``EC2 Spot Instance Interruption Warning`` and ``EC2 Instance Rebalance
Recommendation`` events (source ``aws.ec2``) when it sends the matching metadata signals; handlers
that listen on EventBridge (a Lambda draining a node, an SQS queue feeding a controller) are
tested with these. Sinks: a JSON-lines file, an HTTP POST per event, or an SQS queue via boto3.

A sink spec string chooses one: ``events.jsonl`` (a file), ``http://host/path`` (POST), or
``sqs:<queue url>``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError

SPOT_WARNING = "EC2 Spot Instance Interruption Warning"
REBALANCE = "EC2 Instance Rebalance Recommendation"


class EventSink(Protocol):
    """Where EventBridge-shaped events go. ``send`` must not raise for delivery problems that a
    real event bus would absorb; it may raise for misconfiguration."""

    async def send(self, event: dict[str, Any]) -> None: ...

    async def close(self) -> None: ...


class JsonLinesSink:
    """Appends one JSON document per line (never truncates an existing file)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"events sink {self.path} is a directory; give a file path")
        if not self.path.parent.is_dir():
            raise ValueError(
                f"events sink {self.path}: the folder {self.path.parent} does not exist; "
                "create it or choose another path"
            )
        if not holds_json_lines(self.path):
            raise ValueError(
                f"events sink {self.path} exists and is not a JSON-lines file; refusing to "
                "append events to it (choose another path or remove the file)"
            )

    async def send(self, event: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(event, sort_keys=True) + "\n")

    async def close(self) -> None:
        return None


#: Told about each delivery that failed, e.g. to print it (``harness serve`` does).
FailureListener = Callable[[str], None]


class _Deliveries:
    """Failed deliveries of a remote sink: kept in ``failures`` and passed to a listener, never
    raised (an event bus absorbs them too). Messages name the destination without any user
    info or query, which may hold credentials."""

    def __init__(self, destination: str, on_failure: FailureListener | None) -> None:
        self.failures: list[str] = []
        self.on_failure = on_failure
        self._shown = _without_secrets(destination)

    def failed(self, why: str) -> None:
        message = f"event not delivered to {self._shown}: {why}"
        self.failures.append(message)
        if self.on_failure is not None:
            self.on_failure(message)


def _without_secrets(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else url


class HttpPostSink(_Deliveries):
    """POSTs each event as JSON to a URL (an EventBridge API destination stand-in)."""

    def __init__(
        self, url: str, *, timeout: float = 5.0, on_failure: FailureListener | None = None
    ) -> None:
        super().__init__(url, on_failure)
        self.url = url
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def send(self, event: dict[str, Any]) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(self.timeout))
        try:
            async with self._session.post(self.url, json=event) as response:
                if response.status >= 300:
                    self.failed(f"HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError) as error:
            self.failed(type(error).__name__)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class SqsSink(_Deliveries):
    """Sends each event as an SQS message body, the way an EventBridge rule targeting SQS does.

    boto3 is blocking, so each send runs in the loop's default executor (real-time servers only;
    a virtual-time run should use a file or an in-memory sink).
    """

    def __init__(
        self, queue_url: str, client: Any = None, *, on_failure: FailureListener | None = None
    ) -> None:
        super().__init__(queue_url, on_failure)
        self.queue_url = queue_url
        self._client = client

    def _sqs(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("sqs", region_name=_region_of(self.queue_url))
        return self._client

    async def send(self, event: dict[str, Any]) -> None:
        body = json.dumps(event, sort_keys=True)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(
                None, lambda: self._sqs().send_message(QueueUrl=self.queue_url, MessageBody=body)
            )
        except (BotoCoreError, ClientError) as error:
            self.failed(_aws_reason(error))

    async def close(self) -> None:
        return None


class MemorySink:
    """Keeps events in a list (tests, and virtual-time runs that inspect them afterwards)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def send(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    async def close(self) -> None:
        return None


def holds_json_lines(path: Path) -> bool:
    """Whether ``path`` is missing, empty, or starts with a JSON object on its first line."""
    try:
        with path.open("rb") as existing:
            first = existing.readline(1 << 20).strip()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if not first:
        return True
    try:
        return isinstance(json.loads(first), dict)
    except ValueError:
        return False


def sink_from_spec(spec: str, on_failure: FailureListener | None = None) -> EventSink:
    """A sink from a CLI/config string: a file path, an http(s) URL, or ``sqs:<queue url>``.

    ``on_failure`` hears about each event a remote sink could not deliver."""
    if spec.startswith("sqs:"):
        queue_url = spec[len("sqs:") :]
        if not urlsplit(queue_url).scheme.startswith("http"):
            raise ValueError(f"sqs sink needs a queue URL after 'sqs:', got {queue_url!r}")
        return SqsSink(queue_url, on_failure=on_failure)
    if urlsplit(spec).scheme in ("http", "https"):
        return HttpPostSink(spec, on_failure=on_failure)
    if not spec:
        raise ValueError("events sink is empty: give a file path, an http(s) URL or sqs:<url>")
    if "://" in spec:
        raise ValueError(
            f"events sink {spec!r}: unknown scheme; give a file path, an http(s) URL or "
            "sqs:<queue url>"
        )
    return JsonLinesSink(spec)


def _aws_reason(error: Exception) -> str:
    """The error's class and AWS code: the message of some botocore errors quotes the request."""
    code = getattr(error, "response", {}).get("Error", {}).get("Code")
    return f"{type(error).__name__} ({code})" if code else type(error).__name__


def _region_of(queue_url: str) -> str:
    host = urlsplit(queue_url).hostname or ""
    parts = host.split(".")
    if len(parts) >= 3 and parts[0] == "sqs":
        return parts[1]
    return "us-east-1"


def event_id(seed: int, notice_id: str, detail_type: str) -> str:
    """A stable event id (same seed and notice, same id), shaped like EventBridge's UUIDs."""
    digest = hashlib.sha256(f"{seed}:{notice_id}:{detail_type}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def ec2_event(
    *,
    detail_type: str,
    detail: dict[str, Any],
    event_uuid: str,
    time: str,
    account: str,
    region: str,
    instance_id: str,
) -> dict[str, Any]:
    """One EventBridge event from ``aws.ec2`` about one instance."""
    return {
        "version": "0",
        "id": event_uuid,
        "detail-type": detail_type,
        "source": "aws.ec2",
        "account": account,
        "time": time,
        "region": region,
        "resources": [f"arn:aws:ec2:{region}:{account}:instance/{instance_id}"],
        "detail": detail,
    }
