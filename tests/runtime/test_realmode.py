"""Real mode: config from file and environment, clear errors, and one real-clock run against a
moto server and a Redis-protocol server on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import fakeredis
import pytest
import yaml
from moto.server import ThreadedMotoServer

from harness.cli import EXIT_OK, EXIT_USAGE, main
from harness.runtime import JobSpec, expected_outputs
from harness.runtime.metrics import RuntimeMetrics, serve_metrics
from harness.runtime.realmode import RealModeError, load_config, run_real

ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def test_locations_come_from_the_environment_when_the_file_omits_them(tmp_path: Path) -> None:
    env = {
        "HARNESS_S3_BUCKET": "b1",
        "REDIS_URL": "redis://user:secret@10.0.0.5:6379/0",
        "HARNESS_LOCAL_DIR": str(tmp_path),
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:1338/",
        "HARNESS_JOB": json.dumps({"items": 10, "name": "embed"}),
    }
    config = load_config({"cloud": "aws"}, env)
    assert (config.bucket, config.imds_url, config.spec.name) == (
        "b1",
        "http://127.0.0.1:1338",
        "embed",
    )
    assert config.spec.materialize  # real mode writes real bytes
    described = "\n".join(config.describe())
    assert "secret" not in described and "user:***@10.0.0.5" in described


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://host:6379?password=hunter2", "redis://host:6379?password=***"),
        ("redis://host:6379/0?db=1&PassWord=hunter2", "redis://host:6379/0?db=1&PassWord=***"),
        ("rediss://u:hunter2@host:6380/0?Username=bob", "rediss://u:***@host:6380/0?Username=***"),
        (
            "unix:///run/redis.sock?password=hunter2&db=2",
            "unix:///run/redis.sock?password=***&db=2",
        ),
    ],
)
def test_redis_passwords_in_the_query_are_not_shown(url: str, shown: str) -> None:
    env = {"HARNESS_S3_BUCKET": "b", "REDIS_URL": url, "HARNESS_LOCAL_DIR": "/tmp/x"}
    described = "\n".join(load_config({"job": {"items": 5}}, env).describe())
    assert shown in described
    assert "hunter2" not in described and "bob" not in described


def test_an_events_file_that_is_not_json_lines_is_refused_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes, not events\n")
    env = {
        "HARNESS_JOB": json.dumps({"items": 5}),
        "HARNESS_S3_BUCKET": "b",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "HARNESS_LOCAL_DIR": str(tmp_path),
        "HARNESS_EVENTS": str(notes),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["runtime", "run", "--dry-run"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"events file {notes} exists and is not a JSON-lines file" in err
    assert notes.read_text() == "my notes, not events\n"
    # an existing JSON-lines file is still appended to
    notes.write_text('{"seq": 0, "kind": "job.started"}\n')
    assert main(["runtime", "run", "--dry-run"]) == EXIT_OK


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"job": {"items": 5}}, "HARNESS_S3_BUCKET"),
        ({"job": {"items": 5}, "storage": {"bucket": "b"}}, "REDIS_URL"),
        ({"job": {"items": 5}, "colud": "aws"}, "unknown key(s) 'colud'"),
        ({"job": {"items": 5}, "cloud": "oracle"}, "cloud must be one of"),
        ({}, "`job:` is missing"),
    ],
)
def test_bad_configs_are_refused_with_the_fix(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(RealModeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(raw, {})


def test_cli_reports_a_bad_job_value_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("job: {items: 5, checkpoint_every: soon}\n")
    assert main(["runtime", "run", "--config", str(path)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "job.checkpoint_every" in err and "duration" in err


@pytest.fixture
def servers() -> Iterator[tuple[str, str]]:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    redis_server = fakeredis.TcpFakeServer(("127.0.0.1", 0), server_type="redis")
    thread = threading.Thread(target=redis_server.serve_forever, daemon=True)
    thread.start()
    host, port = moto.get_host_and_port()
    redis_host, redis_port = redis_server.server_address[:2]
    try:
        yield f"http://{host}:{port}", f"redis://{redis_host!s}:{redis_port}/0"
    finally:
        redis_server.shutdown()
        redis_server.server_close()
        moto.stop()


def storage_on(
    servers: tuple[str, str],
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    versioned: bool = False,
) -> tuple[Any, dict[str, str]]:
    """Test credentials, a new bucket on the moto server, and a ``storage:`` mapping naming it
    and the Redis server."""
    endpoint, redis_url = servers
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    if versioned:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    storage = {
        "bucket": bucket,
        "s3_endpoint": endpoint,
        "region": "us-east-1",
        "redis_url": redis_url,
        "local_dir": str(tmp_path / "nvme"),
    }
    return s3, storage


def test_a_real_clock_run_completes_and_records_its_events(
    tmp_path: Path, servers: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    s3, storage = storage_on(servers, "real-mode", tmp_path, monkeypatch, versioned=True)
    job = {
        "items": 6,
        "seconds_per_item": "20ms",
        "checkpoint_every": "50ms",
        "state_size": "64KiB",
        "output_size": "1KiB",
        "output_every": 3,
    }
    config = {
        "job": job,
        "cloud": "kubernetes",
        "storage": storage,
        "events": str(tmp_path / "events.jsonl"),
    }
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["runtime", "run", "--config", str(path), "--quiet"]) == EXIT_OK
    kinds = [
        json.loads(line)["kind"] for line in (tmp_path / "events.jsonl").read_text().splitlines()
    ]
    assert kinds[:3] == ["job.started", "job.epoch", "job.resumed"] and kinds[-1] == "job.completed"
    spec = JobSpec.from_mapping(job, materialize=True)
    for key in expected_outputs(spec):
        assert s3.head_object(Bucket="real-mode", Key=key)["ContentLength"] == 1024
    # a second run finds the job complete and does nothing but say so
    assert main(["runtime", "run", "--config", str(path), "--quiet"]) == EXIT_OK
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    resumed = [
        json.loads(line)["data"] for line in lines if json.loads(line)["kind"] == "job.resumed"
    ]
    assert resumed[-1]["position"] == 6


def test_without_a_config_file_everything_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {
        "HARNESS_JOB": json.dumps({"items": 50, "name": "env-job"}),
        "HARNESS_CLOUD": "gcp",
        "HARNESS_S3_BUCKET": "bucket-from-env",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "HARNESS_LOCAL_DIR": str(tmp_path),
        "GCE_METADATA_HOST": "127.0.0.1:8080",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["runtime", "run", "--dry-run"]) == EXIT_OK
    plan = capsys.readouterr().err
    assert "job env-job: 50 items" in plan
    assert "cloud gcp: watching gcp, signals (metadata at http://127.0.0.1:8080)" in plan
    assert "S3 bucket bucket-from-env" in plan


def test_a_real_sigterm_stops_the_job_cleanly_and_the_next_run_resumes(
    tmp_path: Path, servers: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, storage = storage_on(servers, "real-sigterm", tmp_path, monkeypatch)
    raw = {
        "job": {
            "items": 40,
            "seconds_per_item": "25ms",
            "checkpoint_every": "100ms",
            "state_size": "64KiB",
            "output_size": "1KiB",
            "output_every": 10,
        },
        "cloud": "kubernetes",
        "storage": storage,
        "runtime": {"grace_period": "10s"},
        "events": str(tmp_path / "events.jsonl"),
    }
    config = load_config(raw, {})
    sent: list[str] = []

    def progress(line: str) -> None:
        # the handlers are installed while the job runs: signal ourselves on the first save
        if line.startswith("checkpoint.durable") and not sent:
            sent.append(line)
            asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGTERM)

    assert asyncio.run(run_real(config, progress)) == "stopped"
    assert asyncio.run(run_real(config, None)) == "completed"
    records = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    kinds = [r["kind"] for r in records]
    seen = kinds.index("notice.seen")
    assert records[seen]["data"]["source"] == "signals"
    stopped = next(r["data"] for r in records if r["kind"] == "job.stopped")
    assert stopped["reason"] == "notice" and stopped["saved_position"] == stopped["position"]
    resumed = [r["data"] for r in records if r["kind"] == "job.resumed"]
    assert resumed[-1]["position"] == stopped["saved_position"] > 0


METRICS_ENV = {"HARNESS_S3_BUCKET": "b", "REDIS_URL": "redis://h:6379", "HARNESS_LOCAL_DIR": "/x"}


def test_metrics_beyond_loopback_need_a_token(tmp_path: Path) -> None:
    raw: dict[str, dict[str, Any]] = {
        "job": {"items": 5},
        "metrics": {"host": "0.0.0.0", "port": 9101},
    }
    with pytest.raises(RealModeError, match=r"beyond loopback.*metrics\.token_file"):
        load_config(raw, METRICS_ENV)
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    raw["metrics"] = {**raw["metrics"], "token_file": str(token_file)}
    config = load_config(raw, METRICS_ENV)
    assert config.metrics_token == "s3cret"
    assert "s3cret" not in repr(config) and "s3cret" not in "\n".join(config.describe())
    from_env = load_config(
        {**raw, "metrics": {"host": "0.0.0.0"}}, {**METRICS_ENV, "HARNESS_METRICS_TOKEN": "t"}
    )
    assert from_env.metrics_token == "t"
    assert (
        load_config({"job": {"items": 5}, "metrics": {"port": 0}}, METRICS_ENV).metrics_token
        is None
    )


def test_metrics_scrapes_carry_the_bearer_token() -> None:
    async def scrape(headers: dict[str, str]) -> tuple[int, str]:
        runner = await serve_metrics(RuntimeMetrics(lambda: 0.0, 0.5), "127.0.0.1", 0, token="tok")
        host, port = runner.addresses[0][:2]
        try:
            url = f"http://{host}:{port}/metrics"
            async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as r:
                return r.status, await r.text()
        finally:
            await runner.cleanup()

    assert asyncio.run(scrape({}))[0] == 401
    assert asyncio.run(scrape({"Authorization": "Bearer nope"}))[0] == 401
    status, text = asyncio.run(scrape({"Authorization": "Bearer tok"}))
    assert status == 200 and "spot_harness_events_total" in text
