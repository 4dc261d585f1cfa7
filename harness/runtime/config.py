"""The runtime's own settings (how it checkpoints and watches), separate from the job's.

In simulation they come from ``job.runtime`` in the scenario; in real mode from the ``runtime:``
section of the config file. Every duration and size uses :mod:`harness.units`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from harness.errors import InputError
from harness.units import UnitError, parse_bandwidth, parse_duration, parse_size

SOURCES = ("aws", "gcp", "azure", "webhook", "signals")
DEFAULT_SOURCES = {
    "aws": ("aws", "signals"),
    "gcp": ("gcp", "signals"),
    "azure": ("azure", "signals"),
    "webhook": ("webhook", "signals"),
    "kubernetes": ("signals",),
}


class ConfigError(InputError):
    """A runtime setting is malformed; the message names it and the expected form."""


_DURATIONS = {
    "poll_interval",
    "rebalance_interval",
    "maintenance_interval",
    "maintenance_lead",
    "http_timeout",
    "gcp_grace",
    "grace_period",
    "safety_margin",
    "retry_base",
    "retry_max",
    "recovery_patience",
    "token_ttl",
}
_SIZES = {"multipart_threshold", "part_size"}
_BANDWIDTHS = {"assumed_upload_bandwidth", "assumed_disk_bandwidth"}


@dataclass(frozen=True)
class RuntimeConfig:
    # -- store
    keep_local: int = 2
    keep_s3: int = 3
    multipart_threshold: int = 64 * 2**20
    part_size: int = 16 * 2**20
    assumed_upload_bandwidth: float = 100e6
    assumed_disk_bandwidth: float = 1e9
    safety_margin: float = 2.0
    retry_base: float = 1.0
    retry_max: float = 30.0
    recovery_patience: float = 60.0
    # -- monitor
    sources: tuple[str, ...] = ()
    poll_interval: float = 5.0
    rebalance_interval: float = 30.0
    maintenance_interval: float = 120.0  # AWS scheduled events (announced days ahead)
    maintenance_lead: float = 300.0  # save and stop this long before a scheduled event acts
    http_timeout: float = 2.0
    blind_after: int = 3
    token_ttl: float = 21600.0
    imds_v1_fallback: bool = False
    gcp_grace: float = 30.0
    grace_period: float = 30.0
    webhook_port: int = 0  # the receiver always binds 127.0.0.1; 0 picks a free port
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> RuntimeConfig:
        raw = dict(raw or {})
        known = {f.name for f in fields(cls)} - {"extra"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(
                f"unknown runtime setting(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = {}
        for name, value in raw.items():
            values[name] = _parse(name, value)
        config = cls(**values)
        if config.part_size < 5 * 2**20:
            raise ConfigError("runtime.part_size must be at least 5MiB (the S3 minimum)")
        return config

    def sources_for(self, cloud: str) -> tuple[str, ...]:
        return self.sources or DEFAULT_SOURCES.get(cloud, ("signals",))


def _parse(name: str, value: Any) -> Any:
    try:
        if name in _DURATIONS:
            return parse_duration(value)
        if name in _SIZES:
            return parse_size(value)
        if name in _BANDWIDTHS:
            return parse_bandwidth(value)
    except (UnitError, AttributeError) as error:
        raise ConfigError(f"runtime.{name}: {error}") from None
    if name == "sources":
        return _sources(value)
    if name == "imds_v1_fallback":
        if not isinstance(value, bool):
            raise ConfigError(f"runtime.{name} must be true or false, got {value!r}")
        return value
    if name == "webhook_port":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
            raise ConfigError(f"runtime.webhook_port must be a port number, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"runtime.{name} must be a positive integer, got {value!r}")
    return value


def _sources(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(f"runtime.sources must be a list such as [aws, signals], got {value!r}")
    bad = [v for v in value if v not in SOURCES]
    if bad:
        raise ConfigError(
            f"runtime.sources: unknown source(s) {bad!r}; choose from {', '.join(SOURCES)}"
        )
    return tuple(value)
