"""``harness serve`` (as a real process, stopped by signals), ``harness notice`` and
``harness demo``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fake_imds.sync import SyncFakeImds
from harness.cli import main

SPOT = "/latest/meta-data/spot/instance-action"


@pytest.fixture(autouse=True)
def _no_server_settings(no_proxy: None, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HARNESS_IMDS_URL", "HARNESS_CONTROL_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


# -- harness serve ------------------------------------------------------------------------------
class Served:
    def __init__(self, process: subprocess.Popen[str], banner: list[str]) -> None:
        self.process = process
        self.banner = banner
        self.url = banner[0].split()[3]

    def stop(self, sig: int) -> tuple[int, str]:
        self.process.send_signal(sig)
        _, err = self.process.communicate(timeout=20)
        return self.process.returncode, err


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> Served:
        process = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        started.append(process)
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(3)]
        assert banner[0].startswith("fake metadata server: http://127.0.0.1:"), banner
        return Served(process, banner)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_its_urls_serves_and_stops_cleanly(
    serve: Callable[..., Served], sig: int
) -> None:
    served = serve("--imdsv2", "required", "--instance-id", "i-0aaaaaaaaaaaaaaa1")
    assert not served.url.endswith("/")  # so that $URL/latest/... is a path the server answers
    assert served.banner[1].startswith(f"control API:          {served.url}/_harness/v1")
    assert f"AWS_EC2_METADATA_SERVICE_ENDPOINT={served.url}\n" in served.banner[2]
    assert get(served.url + "/latest/meta-data/instance-id")[0] == 401  # IMDSv2 required
    request = urllib.request.Request(
        served.url + "/latest/api/token", method="PUT",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=5) as reply:
        token = reply.read().decode()
    request = urllib.request.Request(
        served.url + "/latest/meta-data/instance-id", headers={"X-aws-ec2-metadata-token": token}
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        assert reply.read().decode() == "i-0aaaaaaaaaaaaaaa1"
    assert main(["notice", "--url", served.url, "--lead", "2m"]) == 0
    code, err = served.stop(sig)
    assert code == 0
    assert "notice-0001 aws spot-interruption terminate: issued" in err
    assert err.rstrip().endswith("stopping")


def test_serve_writes_events_to_a_file(serve: Callable[..., Served], tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    served = serve("--events", str(events))
    assert main(["notice", "--url", served.url, "--kind", "rebalance"]) == 0
    assert served.stop(signal.SIGTERM)[0] == 0
    (event,) = [json.loads(line) for line in events.read_text().splitlines()]
    assert event["detail-type"] == "EC2 Instance Rebalance Recommendation"


def test_serve_refuses_to_listen_beyond_loopback_without_a_token(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert "control token" in capsys.readouterr().err


def test_serve_reports_a_taken_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 3
    assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err


def test_serve_refuses_a_bad_events_sink(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--events", "sqs:queue-name"]) == 2
    assert "queue URL" in capsys.readouterr().err


# -- harness notice -----------------------------------------------------------------------------
def test_notice_schedules_through_the_control_api(
    fake_imds: SyncFakeImds, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["notice", "--url", fake_imds.url, "--action", "stop", "--lead", "90s"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("scheduled notice-0001: aws spot-interruption stop, visible ")
    status, body = get(fake_imds.url + SPOT)
    assert status == 200 and json.loads(body)["action"] == "stop"


def test_notice_generic_fields_kind_at_and_params(
    fake_imds: SyncFakeImds, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["notice", "--url", fake_imds.url, "--kind", "asg-termination",
            "--param", "state=Warmed:Stopped", "--at", "+1h", "--json"]  # fmt: skip
    assert main(args) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["kind"] == "asg-termination" and answer["state"] == "scheduled"
    assert answer["params"] == {"state": "Warmed:Stopped"}
    assert main(["notice", "--url", fake_imds.url, "--kind", "fis-spot-interruption",
                 "--lead", "4m"]) == 0  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[1].split(",")[0].strip() for line in lines] == [
        "aws rebalance rebalance",
        "aws spot-interruption terminate",
    ]


def test_notice_list_and_cancel(
    fake_imds: SyncFakeImds, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["notice", "--url", fake_imds.url, "--list"]) == 0
    assert capsys.readouterr().out.strip() == "no notices"
    main(["notice", "--url", fake_imds.url])
    assert main(["notice", "--url", fake_imds.url, "--cancel", "notice-0001"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("(canceled)")
    assert get(fake_imds.url + SPOT)[0] == 404
    assert main(["notice", "--url", fake_imds.url, "--list"]) == 0
    assert "canceled" in capsys.readouterr().out


def test_notice_bad_input_is_refused_naming_the_field(
    fake_imds: SyncFakeImds, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["notice", "--url", fake_imds.url, "--action", "explode"]) == 2
    err = capsys.readouterr().err
    assert "HTTP 400" in err and "[field: action]" in err
    assert main(["notice", "--url", fake_imds.url, "--lead", "2 minutes"]) == 2
    assert "Invalid value for '--lead'" in capsys.readouterr().err  # refused before sending
    assert main(["notice", "--url", fake_imds.url, "--param", "novalue"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["notice", "--url", fake_imds.url, "--lead", "2m", "--param", "lead=3m"]) == 2
    assert "give it once" in capsys.readouterr().err
    assert main(["notice", "--url", "127.0.0.1:1338"]) == 2
    assert fake_imds.requests() == []


def test_notice_sends_the_token_and_never_prints_it(
    fake_imds_factory: Callable[..., SyncFakeImds],
    capsys: pytest.CaptureFixture[str],
) -> None:
    imds = fake_imds_factory(control_token="t0ps3cret")
    assert main(["notice", "--url", imds.url]) == 3
    err = capsys.readouterr().err
    assert "HTTP 401" in err and "t0ps3cret" not in err
    assert main(["notice", "--url", imds.url, "--token", "t0ps3cret"]) == 0
    out, err = capsys.readouterr()
    assert "t0ps3cret" not in out + err


def test_notice_reports_an_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert main(["notice", "--url", f"http://127.0.0.1:{port}"]) == 3
    assert "cannot reach the control API" in capsys.readouterr().err


# -- harness demo -------------------------------------------------------------------------------
def test_demo_shows_a_client_seeing_the_notice(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    order = [
        "GET without a token -> 401",
        "polling spot/instance-action every 5s: 404",
        'POST /_harness/v1/notices {"kind": "fis-spot-interruption", "lead": "3m"} -> 201',
        "rebalance recommendation",
        'GET spot/instance-action -> 200 {"action": "terminate", "time": "2026-01-01T00:03:30Z"}',
        "deadline: the instance is terminated",
        "saw the notice 0s after it was issued, leaving 2m to checkpoint",
    ]
    positions = [out.index(line) for line in order]
    assert positions == sorted(positions)


def test_demo_refuses_a_short_lead(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--lead", "1m"]) == 2
    assert "at least 2m" in capsys.readouterr().err
