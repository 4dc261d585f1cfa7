"""Event sinks: a delivery that fails is recorded and reported, never raised, and never shows
credentials; a file sink refuses what it must not append to."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, NoCredentialsError

from fake_imds.eventbridge import HttpPostSink, JsonLinesSink, SqsSink, sink_from_spec
from harness.clock import run_virtual

EVENT = {"detail-type": "EC2 Spot Instance Interruption Warning", "detail": {}}


class RefusingSqs:
    """An SQS client whose every call fails the way botocore raises it."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def send_message(self, **_: Any) -> None:
        self.calls += 1
        raise self.error


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (NoCredentialsError(), "NoCredentialsError"),
        (
            ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "SendMessage"),
            "ClientError (AccessDenied)",
        ),
    ],
)
def test_an_sqs_delivery_that_fails_is_reported_not_raised(error: Exception, reason: str) -> None:
    heard: list[str] = []
    queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/interruptions"
    client = RefusingSqs(error)
    sink = SqsSink(queue, client, on_failure=heard.append)
    asyncio.run(sink.send(EVENT))  # boto3 blocks: the sink uses the loop's executor
    assert client.calls == 1
    assert sink.failures == heard == [f"event not delivered to {queue}: {reason}"]


def test_an_http_delivery_that_fails_names_the_url_without_its_secrets() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    heard: list[str] = []
    sink = sink_from_spec(f"http://user:s3cr3t@127.0.0.1:{port}/hook?key=k3y", heard.append)
    assert isinstance(sink, HttpPostSink)

    async def deliver() -> None:
        await sink.send(EVENT)
        await sink.close()

    run_virtual(deliver)
    assert heard == [f"event not delivered to http://127.0.0.1:{port}/hook: ClientConnectorError"]
    assert "s3cr3t" not in heard[0] and "k3y" not in heard[0]


def test_a_file_sink_appends_and_refuses_other_files(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"earlier": true}\n')
    sink = JsonLinesSink(events)
    run_virtual(lambda: sink.send(EVENT))
    assert events.read_text().splitlines()[0] == '{"earlier": true}'
    assert len(events.read_text().splitlines()) == 2

    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    with pytest.raises(ValueError, match="not a JSON-lines file; refusing to append"):
        JsonLinesSink(notes)
    with pytest.raises(ValueError, match="does not exist"):
        JsonLinesSink(tmp_path / "missing" / "events.jsonl")
    with pytest.raises(ValueError, match="unknown scheme"):
        sink_from_spec("ftp://example.com/events")
