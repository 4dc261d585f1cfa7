"""Real mode: the reference runtime on a real host, with real S3, Redis and metadata service.

The config file (YAML) names the job and where things are; every location can also come from the
environment variables the process tier sets (``HARNESS_S3_BUCKET``, ``AWS_ENDPOINT_URL_S3``,
``REDIS_URL``, ``HARNESS_LOCAL_DIR``, ``HARNESS_IMDS_URL`` / ``AWS_EC2_METADATA_SERVICE_ENDPOINT``,
``HARNESS_INSTANCE_ID``, ``HARNESS_EVENTS``, ``HARNESS_JOB``, ``HARNESS_CLOUD``). The file wins
over the environment. Example::

    job: {name: nightly-embed, items: 20000, seconds_per_item: 250ms, checkpoint_every: 5m,
          state_size: 2GiB}
    cloud: aws
    storage: {bucket: my-checkpoints, redis_url: "redis://10.0.0.5:6379/0", local_dir: /nvme/ckpt}
    runtime: {poll_interval: 5s}
    metrics: {port: 9101}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode

from fake_imds.eventbridge import holds_json_lines
from fake_imds.server import is_loopback
from harness.clock import RealClock
from harness.errors import InputError
from harness.history import Kind
from harness.runtime.config import RuntimeConfig
from harness.runtime.job import JobSpec
from harness.runtime.metrics import RuntimeMetrics, serve_metrics
from harness.runtime.runtime import Runtime
from harness.storage.s3 import client_config
from harness.target import InstanceContext

CLOUDS = ("aws", "gcp", "azure", "webhook", "kubernetes")
DEFAULT_IMDS = "http://169.254.169.254"
_TOP_LEVEL = {"job", "cloud", "storage", "runtime", "metrics", "imds_url", "instance_id", "events"}
_STORAGE = {"bucket", "s3_endpoint", "region", "redis_url", "local_dir"}
_SECRET_QUERY_KEYS = {"password", "username"}


class RealModeError(InputError):
    """The config or the environment is incomplete or wrong; the message says how to fix it."""


@dataclass(frozen=True)
class RealModeConfig:
    spec: JobSpec
    runtime: RuntimeConfig
    cloud: str
    bucket: str
    s3_endpoint: str | None
    region: str | None
    redis_url: str
    local_dir: Path
    imds_url: str
    instance_id: str
    events_path: Path | None
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    metrics_token: str | None = field(default=None, repr=False)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> list[str]:
        """What will run, for ``--dry-run`` and the start banner (no secrets: URLs only)."""
        spec = self.spec
        return [
            f"job {spec.name}: {spec.items} items x {spec.seconds_per_item:g}s, checkpoint every "
            f"{spec.checkpoint_every:g}s, state {spec.state_size} bytes, seed {spec.seed}",
            f"cloud {self.cloud}: watching {', '.join(self.runtime.sources_for(self.cloud))} "
            f"(metadata at {self.imds_url})",
            f"S3 bucket {self.bucket}" + (f" at {self.s3_endpoint}" if self.s3_endpoint else ""),
            f"Redis {_redact(self.redis_url)}",
            f"local dir {self.local_dir}",
            f"events to {self.events_path}" if self.events_path else "events: not recorded",
        ]


def load_config(raw: Mapping[str, Any], env: Mapping[str, str]) -> RealModeConfig:
    """Build the real-mode config from the file's mapping and the environment."""
    _refuse_unknown(raw, _TOP_LEVEL, "key")
    job_raw = raw.get("job")
    if job_raw is None and env.get("HARNESS_JOB"):
        job_raw = _json_env(env, "HARNESS_JOB")
    if not isinstance(job_raw, Mapping):
        raise RealModeError("`job:` is missing: give at least {items: N} (or set HARNESS_JOB)")
    spec = JobSpec.from_mapping(job_raw, materialize=True)
    runtime = RuntimeConfig.from_mapping(raw.get("runtime") or spec.extra.get("runtime"))
    storage = _mapping(raw, "storage")
    _refuse_unknown(storage, _STORAGE, "storage key")
    cloud = str(raw.get("cloud") or env.get("HARNESS_CLOUD") or "aws")
    if cloud not in CLOUDS:
        raise RealModeError(f"cloud must be one of {', '.join(CLOUDS)}, got {cloud!r}")
    metrics = _mapping(raw, "metrics")
    metrics_host = str(metrics.get("host", "127.0.0.1"))
    metrics_token = _metrics_token(metrics, env, metrics_host)
    return RealModeConfig(
        spec=spec,
        runtime=runtime,
        cloud=cloud,
        bucket=_required(
            storage.get("bucket") or env.get("HARNESS_S3_BUCKET"),
            "storage.bucket",
            "HARNESS_S3_BUCKET",
        ),
        s3_endpoint=storage.get("s3_endpoint") or env.get("AWS_ENDPOINT_URL_S3"),
        region=storage.get("region") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
        redis_url=_required(
            storage.get("redis_url") or env.get("REDIS_URL"), "storage.redis_url", "REDIS_URL"
        ),
        local_dir=Path(
            _required(
                storage.get("local_dir") or env.get("HARNESS_LOCAL_DIR"),
                "storage.local_dir",
                "HARNESS_LOCAL_DIR",
            )
        ),
        imds_url=_imds_url(raw, env, cloud),
        instance_id=str(raw.get("instance_id") or env.get("HARNESS_INSTANCE_ID") or "local"),
        events_path=_events_path(raw.get("events") or env.get("HARNESS_EVENTS")),
        metrics_host=metrics_host,
        metrics_port=_port(metrics.get("port")),
        metrics_token=metrics_token,
    )


def _metrics_token(metrics: Mapping[str, Any], env: Mapping[str, str], host: str) -> str | None:
    """The bearer token of the metrics endpoint: required when it listens beyond loopback."""
    token_file = metrics.get("token_file")
    token: str | None = env.get("HARNESS_METRICS_TOKEN") or None
    if token_file is not None:
        try:
            token = Path(str(token_file)).read_text(encoding="utf-8").strip() or None
        except OSError as error:
            raise RealModeError(f"metrics.token_file: cannot read it ({error.strerror})") from None
    if token is None and not is_loopback(host):
        raise RealModeError(
            f"metrics.host {host} is beyond loopback: anyone who can reach it could read the "
            "job's progress; give metrics.token_file (or HARNESS_METRICS_TOKEN) so scrapes must "
            "carry `Authorization: Bearer <token>`"
        )
    return token


def _imds_url(raw: Mapping[str, Any], env: Mapping[str, str], cloud: str) -> str:
    """The metadata base URL: the file, HARNESS_IMDS_URL, then each cloud SDK's own variable."""
    url = raw.get("imds_url") or env.get("HARNESS_IMDS_URL")
    if not url and cloud == "aws":
        url = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT")
    if not url and cloud == "gcp" and env.get("GCE_METADATA_HOST"):
        url = "http://" + env["GCE_METADATA_HOST"]
    return str(url or DEFAULT_IMDS).rstrip("/")


def _refuse_unknown(raw: Mapping[str, Any], known: set[str], what: str) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        names = ", ".join(map(repr, unknown))
        raise RealModeError(f"unknown {what}(s) {names}; known: {', '.join(sorted(known))}")


def _mapping(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, Mapping):
        raise RealModeError(f"`{key}:` must be a mapping, got {value!r}")
    return value


def _required(value: Any, key: str, env_name: str) -> str:
    if not value:
        raise RealModeError(f"{key} is not set: add it to the config file or set {env_name}")
    return str(value)


def _optional_path(value: Any) -> Path | None:
    return Path(str(value)) if value else None


def _events_path(value: Any) -> Path | None:
    """The events file, refused when it exists and holds something other than JSON lines."""
    path = _optional_path(value)
    if path is not None:
        _refuse_foreign_events_file(path)
    return path


def _refuse_foreign_events_file(path: Path) -> None:
    if path.is_dir():
        raise RealModeError(f"events file {path} is a directory; give a file path")
    if not holds_json_lines(path):
        raise RealModeError(
            f"events file {path} exists and is not a JSON-lines file; refusing to append events "
            "to it (choose another path for events / HARNESS_EVENTS, or remove the file)"
        )


def _port(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise RealModeError(
            f"metrics.port must be a port number (0 picks a free one), got {value!r}"
        )
    return value


def _json_env(env: Mapping[str, str], name: str) -> Any:
    try:
        return json.loads(env[name])
    except json.JSONDecodeError as error:
        raise RealModeError(f"{name} is not valid JSON: {error}") from None


def _redact(url: str) -> str:
    """A URL without its password, in the user info or in the query (``?password=...``)."""
    address, has_query, rest = url.partition("?")
    query, has_fragment, fragment = rest.partition("#")
    scheme, sep, location = address.partition("://")
    if "@" in location:
        credentials, _, host = location.rpartition("@")
        user = credentials.split(":", 1)[0]
        address = f"{scheme}{sep}{user + ':***@' if user else '***@'}{host}"
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        hidden = [(k, "***" if k.lower() in _SECRET_QUERY_KEYS else v) for k, v in pairs]
        query = urlencode(hidden, safe="*")
    return f"{address}{has_query}{query}{has_fragment}{fragment}"


class EventLog:
    """``emit`` for real mode: JSON lines to the events file, metrics, a short progress line."""

    PROGRESS = {
        Kind.RESUMED,
        Kind.CHECKPOINT_DURABLE,
        Kind.CHECKPOINT_FAILED,
        Kind.NOTICE_SEEN,
        Kind.MONITOR_BLIND,
        Kind.MONITOR_SIGHTED,
        Kind.JOB_STOPPED,
        Kind.JOB_COMPLETED,
    }

    def __init__(
        self,
        instance: str,
        time: Callable[[], float],
        sink: TextIO | None,
        progress: Callable[[str], None] | None,
        metrics: RuntimeMetrics | None,
    ) -> None:
        self.instance = instance
        self._time = time
        self._sink = sink
        self._progress = progress
        self._metrics = metrics
        self._seq = 0
        self.last: dict[str, dict[str, Any]] = {}

    def __call__(self, kind: str, **data: Any) -> None:
        t = self._time()
        if self._sink is not None:
            record = {
                "seq": self._seq,
                "t": round(t, 6),
                "source": "target",
                "kind": kind,
                "instance": self.instance,
                "data": data,
            }
            self._sink.write(json.dumps(record, sort_keys=True, default=str) + "\n")
            self._sink.flush()
        self._seq += 1
        self.last[kind] = data
        if self._metrics is not None:
            self._metrics.observe(kind, data)
        if self._progress is not None and kind in self.PROGRESS:
            details = " ".join(f"{k}={v}" for k, v in data.items() if v is not None)
            self._progress(f"{kind} {details}")


async def run_real(config: RealModeConfig, progress: Callable[[str], None] | None) -> str:
    """Run one incarnation; returns ``completed``, ``stopped`` or ``fenced``."""
    import boto3
    import redis.asyncio as aioredis

    clock = RealClock()
    loop = asyncio.get_running_loop()
    s3 = boto3.client(
        "s3", endpoint_url=config.s3_endpoint, region_name=config.region, config=client_config()
    )
    await asyncio.to_thread(_check_bucket, s3, config.bucket)
    redis_client = aioredis.from_url(config.redis_url)
    config.local_dir.mkdir(parents=True, exist_ok=True)
    metrics = RuntimeMetrics(clock.monotonic, config.spec.seconds_per_item)
    runner = None
    with contextlib.ExitStack() as files:
        sink = None
        if config.events_path is not None:
            _refuse_foreign_events_file(config.events_path)  # it may have changed since loading
            sink = files.enter_context(config.events_path.open("a", encoding="utf-8"))
        log = EventLog(config.instance_id, clock.monotonic, sink, progress, metrics)
        ctx = InstanceContext(
            instance_id=config.instance_id,
            incarnation=1,
            cloud=config.cloud,
            clock=clock,
            imds_url=config.imds_url,
            bucket=config.bucket,
            local_dir=config.local_dir,
            job=config.spec.to_mapping(),
            emit=log,
            s3_client=s3,
            redis=redis_client,
            inline_io=False,
            extra={"register_webhook": lambda url: progress and progress(f"webhook at {url}")},
        )
        for name in ("SIGTERM", "SIGINT"):
            loop.add_signal_handler(getattr(signal, name), ctx.signals.put_nowait, name)
        try:
            if config.metrics_port is not None:
                runner = await serve_metrics(
                    metrics, config.metrics_host, config.metrics_port, token=config.metrics_token
                )
                if progress is not None:
                    address = runner.addresses[0]
                    progress(f"metrics at http://{address[0]}:{address[1]}/metrics")
            await Runtime(ctx, config.spec, config.runtime).run()
        finally:
            for name in ("SIGTERM", "SIGINT"):
                loop.remove_signal_handler(getattr(signal, name))
            if runner is not None:
                await runner.cleanup()
            await redis_client.aclose()
    if Kind.JOB_COMPLETED in log.last:
        return "completed"
    stopped = log.last.get(Kind.JOB_STOPPED, {})
    return "fenced" if stopped.get("reason") == "fenced" else "stopped"


def _check_bucket(s3: Any, bucket: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        raise RealModeError(
            f"S3 bucket {bucket!r} is not usable ({code or error}); create it (versioning on) or "
            "fix storage.bucket / HARNESS_S3_BUCKET"
        ) from None
    except BotoCoreError as error:
        raise RealModeError(f"cannot reach S3: {error}") from None


def environment() -> dict[str, str]:
    return dict(os.environ)
