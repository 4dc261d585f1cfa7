"""The typed, frozen scenario model: what a scenario YAML file means.

Top-level keys (as in the design): ``description, seed, target, job, env, timeline, expect``.
Durations, sizes and bandwidths use the one grammar of :mod:`harness.units` and are stored as
floats (seconds, bytes per second). Every model forbids unknown keys, so a typo is an error with
a "did you mean" hint from the loader (:mod:`harness.scenario.loader`), never a silent default.

A timeline entry has exactly one trigger (``at:`` a time from the start of the run, or ``on:``
the nth occurrence of a history event plus an optional delay) and exactly one action (a notice,
a hard kill, a crash at a persistence step, an IMDS / S3 / Redis / disk fault, clock skew, an
overlap). Cross-field rules that need the whole scenario (a notice kind valid for its cloud, a
known check name) live in :func:`semantic_problems`, which the loader runs with positions.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from harness.checks import CHECKS, DEFAULT_EXPECT
from harness.history import Kind
from harness.target import PERSISTENCE_STEPS
from harness.units import (
    BANDWIDTH_HELP,
    DURATION_HELP,
    UnitError,
    parse_bandwidth,
    parse_duration,
)

Cloud = Literal["aws", "gcp", "azure", "webhook", "kubernetes"]
CLOUDS: tuple[Cloud, ...] = ("aws", "gcp", "azure", "webhook", "kubernetes")


def _duration(value: Any) -> float:
    if isinstance(value, str | int | float):
        return parse_duration(value)
    raise UnitError(f"expected {DURATION_HELP}, got {value!r}")


def _signed_duration(value: Any) -> float:
    if isinstance(value, str) and value.strip().startswith("-"):
        return -_duration(value.strip()[1:])
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        return -_duration(-value)
    return _duration(value)


def _bandwidth(value: Any) -> float:
    if isinstance(value, str | int | float):
        return parse_bandwidth(value)
    raise UnitError(f"expected {BANDWIDTH_HELP}, got {value!r}")


_DURATION_SCHEMA = {
    "anyOf": [{"type": "string"}, {"type": "number", "minimum": 0}],
    "description": DURATION_HELP,
    "examples": ["250ms", "90s", "2m", "1h30m", "PT2M"],
}

#: Seconds; YAML accepts the duration grammar (``90s``, ``2m``, ``PT2M``, a bare number).
Duration = Annotated[float, BeforeValidator(_duration), WithJsonSchema(_DURATION_SCHEMA)]
#: Seconds that may be negative (``-90s``): clock skew.
SignedDuration = Annotated[
    float,
    BeforeValidator(_signed_duration),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "number"}],
            "description": "a duration, optionally negative: -90s, 5m",
        }
    ),
]
#: Bytes per second; YAML accepts ``100MB/s``, ``1Gbit/s``.
Bandwidth = Annotated[
    float,
    BeforeValidator(_bandwidth),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "number", "exclusiveMinimum": 0}],
            "description": BANDWIDTH_HELP,
            "examples": ["100MB/s", "1Gbit/s"],
        }
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _empty_if_flag(value: Any) -> Any:
    """``kill:`` / ``kill: true`` / ``kill: {}`` all mean "with the defaults"."""
    return {} if value is None or value is True else value


# -- target -------------------------------------------------------------------------------------


class ReadySpec(_Model):
    """When a command target counts as up: ``at:`` times of the timeline start from then."""

    event: str | None = Field(
        default=None, description="a kind the target writes to HARNESS_EVENTS, e.g. job.started"
    )
    log: str | None = Field(default=None, description="a regex matched on stdout or stderr lines")
    after: Duration | None = Field(default=None, description="a fixed time after the start")
    timeout: Duration = Field(default=30.0, description="give up (an error) after this long")

    @model_validator(mode="after")
    def _one_kind(self) -> ReadySpec:
        _exactly_one_of(self, ("event", "log", "after"), "ready")
        return self


STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


class TargetSpec(_Model):
    """What runs as the instance: ``reference``, ``{python: "pkg.mod:factory"}`` or a command.

    A ``python`` target names either an ``async def target(ctx)`` or a zero-argument factory
    returning one. ``command`` targets run in the process tier (real processes, real time):
    ``cwd``, ``env``, ``ready``, ``stop_signal``, ``supervisor`` and ``python`` (then the
    interpreter that a leading ``python`` in the command stands for) belong to them.
    """

    reference: bool = False
    python: str | None = Field(
        default=None,
        description='"package.module:attribute": an async target or a factory returning one; '
        "with `command`: the interpreter a leading `python` stands for (default: the harness's)",
    )
    command: tuple[str, ...] | None = Field(default=None, min_length=1)
    cwd: str | None = Field(
        default=None, description="working directory, relative to the scenario file's folder"
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="extra environment variables of the command"
    )
    ready: ReadySpec | None = Field(
        default=None, description="when the process counts as up (default: once started)"
    )
    stop_signal: str = Field(
        default="SIGTERM", description="the signal a platform's shutdown sends (then SIGKILL)"
    )
    supervisor: bool = Field(
        default=False,
        description="aws / azure: a supervisor on the host sends stop_signal when a notice "
        "appears (kubernetes and gcp send it anyway)",
    )
    network: Literal["host", "namespace"] = Field(
        default="host",
        description="namespace (root, Linux): run in a network namespace where "
        "169.254.169.254:80 and metadata.google.internal reach the fake metadata server",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_shorthand(cls, value: Any) -> Any:
        if value == "reference":
            return {"reference": True}
        if isinstance(value, str):
            raise ValueError(
                f"unknown target {value!r}; use `reference`, "
                '{python: "package.module:factory"} or {command: [...]}'
            )
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> TargetSpec:
        if self.command is not None:
            if self.reference:
                raise ValueError("a target is exactly one of `reference`, `python:` or `command:`")
            if self.stop_signal not in STOP_SIGNALS:
                raise ValueError(
                    f"unknown stop_signal `{self.stop_signal}`, expected one of: "
                    f"{', '.join(STOP_SIGNALS)}{did_you_mean(self.stop_signal, STOP_SIGNALS)}"
                )
            return self
        process_only = [
            n for n in ("cwd", "ready", "supervisor") if getattr(self, n) not in (None, False)
        ]
        if self.network != "host":
            process_only.append("network")
        if self.env or self.stop_signal != "SIGTERM":
            process_only.append("env" if self.env else "stop_signal")
        if process_only:
            raise ValueError(f"`{process_only[0]}` belongs to `command:` targets")
        chosen = ["python"] if self.python is not None else []
        if self.reference:
            chosen.append("reference")
        if len(chosen) != 1:
            raise ValueError("a target is exactly one of `reference`, `python:` or `command:`")
        if self.python is not None and not _PYTHON_TARGET.match(self.python):
            raise ValueError(
                f'`python: {self.python}` must be "package.module:attribute" (or, with '
                "`command:`, the interpreter to run it with)"
            )
        return self

    @property
    def label(self) -> str:
        if self.command:
            return "command:" + " ".join(self.command)
        if self.python:
            return f"python:{self.python}"
        return "reference"


_PYTHON_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

_TARGET_SCHEMA = {
    "anyOf": [
        {"const": "reference"},
        {
            "type": "object",
            "properties": {"python": {"type": "string", "pattern": r"^[\w.]+:[\w.]+$"}},
            "required": ["python"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {
                "command": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "cwd": {"type": "string"},
                "env": {"type": "object", "additionalProperties": {"type": "string"}},
                "ready": {
                    "type": "object",
                    "properties": {
                        "event": {"type": "string"},
                        "log": {"type": "string"},
                        "after": _DURATION_SCHEMA,
                        "timeout": _DURATION_SCHEMA,
                    },
                    "additionalProperties": False,
                },
                "stop_signal": {"enum": list(STOP_SIGNALS)},
                "supervisor": {"type": "boolean"},
                "network": {"enum": ["host", "namespace"]},
                "python": {"type": "string", "description": "interpreter for a leading `python`"},
            },
            "required": ["command"],
            "additionalProperties": False,
        },
    ],
    "description": 'reference, {python: "pkg.mod:factory"} or {command: ["python", "job.py"], '
    "cwd, env, ready, stop_signal, supervisor, network, python}",
}


# -- environment --------------------------------------------------------------------------------


class S3Env(_Model):
    """The modelled S3 link: how long storage operations take (semantics come from moto)."""

    upload: Bandwidth = Field(default=100e6, description="upload bandwidth")
    download: Bandwidth = Field(default=200e6, description="download bandwidth")
    latency: Duration = Field(default=0.02, description="per-request latency")


class RedisEnv(_Model):
    latency: Duration = Field(default=0.001, description="per-command latency")


class DiskEnv(_Model):
    """The instance's local NVMe."""

    write: Bandwidth = Field(default=1e9, description="write bandwidth")
    read: Bandwidth = Field(default=2e9, description="read bandwidth")
    latency: Duration = Field(default=0.0001, description="per-operation latency")
    fsync: Duration = Field(default=0.002, description="time of one fsync")


class ReplacementEnv(_Model):
    """How the next instance comes up after one is gone."""

    delay: Duration = Field(default=30.0, description="from an instance's end to the next boot")
    cloud: Cloud | None = Field(
        default=None, description="cloud of every replacement (default: env.cloud)"
    )


class Env(_Model):
    cloud: Cloud = "aws"
    imdsv2: Literal["optional", "required", "disabled"] = "optional"
    s3: S3Env = S3Env()
    redis: RedisEnv = RedisEnv()
    disk: DiskEnv = DiskEnv()
    replacement: ReplacementEnv = ReplacementEnv()
    budget: Duration = Field(
        default=12 * 3600.0, description="simulated time after which the run stops"
    )
    max_instances: int = Field(default=200, ge=1, description="incarnations before giving up")


# -- triggers -----------------------------------------------------------------------------------

Scalar = str | int | float | bool | None


class OnTrigger(_Model):
    """Fire on the ``nth`` history event of kind ``event`` (matching ``where``), ``delay`` later."""

    event: str = Field(description="a history event kind, e.g. checkpoint.upload_started")
    nth: int = Field(default=1, ge=1)
    delay: Duration = 0.0
    where: dict[str, Scalar] = Field(
        default_factory=dict, description="event data that must match, e.g. {tier: s3}"
    )
    incarnation: int | None = Field(default=None, ge=1, description="only events of this one")


# -- actions ------------------------------------------------------------------------------------

NoticeAction = Literal["terminate", "stop", "hibernate"]

#: Notice kinds per cloud, the first being the default; the value says whether it ends the
#: instance at its deadline.
NOTICE_KINDS: Mapping[Cloud, Mapping[str, bool]] = {
    "aws": {
        "spot-interruption": True,
        "rebalance": False,
        "scheduled-event": True,
        "asg-termination": True,
    },
    "gcp": {"preemption": True, "maintenance": False},
    "azure": {
        "preempt": True,
        "terminate": True,
        "freeze": False,
        "reboot": True,
        "redeploy": True,
    },
    "webhook": {"interruption": True},
    "kubernetes": {"eviction": True},
}

#: The actions each cloud's notices can announce.
_NOTICE_ACTIONS: Mapping[Cloud, tuple[NoticeAction, ...]] = {
    "aws": ("terminate", "stop", "hibernate"),
    "gcp": ("terminate", "stop"),
    "azure": ("terminate",),
    "webhook": ("terminate", "stop", "hibernate"),
    "kubernetes": ("terminate",),
}

#: Shortest default lead (notice to deadline) per cloud, for validation; the notice itself gets
#: its cloud's default from the metadata plane. On Kubernetes it is the grace period.
DEFAULT_LEAD: Mapping[Cloud, float] = {
    "aws": 120.0,
    "gcp": 30.0,
    "azure": 30.0,
    "webhook": 120.0,
    "kubernetes": 30.0,
}


class Notice(_Model):
    """An interruption notice in the dialect of ``cloud`` (default: the instance's cloud)."""

    cloud: Cloud | None = None
    kind: str | None = Field(default=None, description="default: the cloud's spot interruption")
    action: NoticeAction = "terminate"
    lead: Duration | None = Field(
        default=None,
        validation_alias=AliasChoices("lead", "grace"),
        description="notice to deadline (the grace period on kubernetes); default per cloud",
    )
    rebalance_before: Duration | None = Field(
        default=None, description="aws: a rebalance recommendation this long before the notice"
    )

    def resolved_cloud(self, default: Cloud) -> Cloud:
        return self.cloud or default

    def resolved_kind(self, default: Cloud) -> str:
        return self.kind or next(iter(NOTICE_KINDS[self.resolved_cloud(default)]))

    def resolved_lead(self, default: Cloud) -> float:
        return self.lead if self.lead is not None else DEFAULT_LEAD[self.resolved_cloud(default)]

    def ends_instance(self, default: Cloud) -> bool:
        cloud = self.resolved_cloud(default)
        return NOTICE_KINDS[cloud].get(self.resolved_kind(default), True)


class Kill(_Model):
    """The instance vanishes with no notice (host failure)."""

    local_disk: Literal["wiped", "kept"] = "wiped"


class Crash(_Model):
    """The process dies just before the ``nth`` call of persistence step ``at``."""

    at: str = Field(
        description="a persistence step, e.g. s3.complete_multipart",
        json_schema_extra={"enum": list(PERSISTENCE_STEPS)},
    )
    nth: int = Field(default=1, ge=1, description="counted from when the entry fires")
    local_disk: Literal["wiped", "kept"] = "kept"

    @field_validator("at")
    @classmethod
    def _known_step(cls, value: str) -> str:
        if value not in PERSISTENCE_STEPS:
            raise ValueError(
                f"unknown persistence step `{value}`, expected one of: "
                f"{', '.join(PERSISTENCE_STEPS)}{did_you_mean(value, PERSISTENCE_STEPS)}"
            )
        return value


def _exactly_one_of(model: BaseModel, names: tuple[str, ...], what: str) -> None:
    chosen = [n for n in names if getattr(model, n) not in (None, False)]
    if len(chosen) != 1:
        raise ValueError(
            f"{what} takes exactly one of {', '.join(f'`{n}`' for n in names)}"
            + (f" (got {', '.join(chosen)})" if chosen else "")
        )


class ImdsFault(_Model):
    """A failure of the metadata service on requests whose path matches ``path`` (glob)."""

    status: int | None = Field(default=None, ge=400, le=599, description="e.g. 500, 503, 401")
    latency: Duration | None = None
    timeout: bool = Field(default=False, description="accept and never answer")
    reset: bool = Field(default=False, description="drop the connection")
    throttle: int | None = Field(default=None, ge=0, description="429 beyond N requests/s")
    path: str = Field(default="*", description="e.g. /latest/api/token for token failures")
    for_: Duration | None = Field(default=None, alias="for", description="default: until the end")

    @model_validator(mode="after")
    def _one_kind(self) -> ImdsFault:
        _exactly_one_of(self, ("status", "latency", "timeout", "reset", "throttle"), "imds")
        return self


#: S3 error codes and the HTTP status each comes with.
S3_ERRORS: Mapping[str, int] = {
    "SlowDown": 503,
    "ServiceUnavailable": 503,
    "InternalError": 500,
    "RequestTimeout": 400,
    "AccessDenied": 403,
    "NoSuchBucket": 404,
}
_S3_STATUS_CODES = {500: "InternalError", 503: "ServiceUnavailable"}


def _s3_error(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        if value not in _S3_STATUS_CODES:
            raise ValueError(f"S3 status {value} is not modelled; use 500 or 503 or an error code")
        return _S3_STATUS_CODES[value]
    if isinstance(value, str) and value.isdigit():
        return _s3_error(int(value))
    if isinstance(value, str) and value not in S3_ERRORS:
        raise ValueError(
            f"unknown S3 error `{value}`, expected one of: {', '.join(S3_ERRORS)}, 500, 503"
            f"{did_you_mean(value, list(S3_ERRORS))}"
        )
    return value


class S3Fault(_Model):
    """An S3 failure on the steps in ``ops`` (default every ``s3.*`` step)."""

    error: Annotated[str | None, BeforeValidator(_s3_error)] = Field(
        default=None, description="SlowDown, InternalError, ServiceUnavailable, 500, 503, ..."
    )
    outage: bool = Field(default=False, description="the endpoint is unreachable")
    bandwidth: Bandwidth | None = Field(default=None, description="reduced bandwidth")
    latency: Duration | None = Field(default=None, description="added per-request latency")
    corrupt: str | None = Field(
        default=None, description="glob of keys whose newest object gets corrupted, silently"
    )
    ops: tuple[str, ...] | None = Field(default=None, description="e.g. [s3.upload_part]")
    count: int | None = Field(default=None, ge=1, description="affect only the next N calls")
    for_: Duration | None = Field(default=None, alias="for", description="default: until the end")

    @model_validator(mode="after")
    def _one_kind(self) -> S3Fault:
        _exactly_one_of(self, ("error", "outage", "bandwidth", "latency", "corrupt"), "s3")
        for op in self.ops or ():
            if not op.startswith("s3.") or op not in PERSISTENCE_STEPS:
                raise ValueError(f"`{op}` is not an S3 persistence step")
        return self


class RedisFault(_Model):
    down: bool = Field(default=False, description="connections fail")
    restart: bool = Field(default=False, description="restarted empty (no persistence)")
    latency: Duration | None = Field(default=None, description="slow: added per-command latency")
    for_: Duration | None = Field(default=None, alias="for", description="default: until the end")

    @model_validator(mode="after")
    def _one_kind(self) -> RedisFault:
        _exactly_one_of(self, ("down", "restart", "latency"), "redis")
        if self.restart and self.for_ is not None:
            raise ValueError("a redis restart is instantaneous; drop `for`")
        return self


class DiskFault(_Model):
    """A fault of the local disk of every instance (current and later ones)."""

    full: bool = Field(default=False, description="writes fail with ENOSPC")
    bandwidth: Bandwidth | None = Field(default=None, description="slow: reduced bandwidth")
    latency: Duration | None = Field(default=None, description="slow: added per-op latency")
    for_: Duration | None = Field(default=None, alias="for", description="default: until the end")

    @model_validator(mode="after")
    def _one_kind(self) -> DiskFault:
        _exactly_one_of(self, ("full", "bandwidth", "latency"), "disk")
        return self


class ClockFault(_Model):
    """The instances' calendar clock runs ``skew`` ahead (negative: behind) of the cloud's."""

    skew: SignedDuration


class Overlap(_Model):
    """The next instance to be superseded keeps running ``for`` after its replacement starts."""

    for_: Duration = Field(default=60.0, alias="for")


ACTIONS = ("notice", "kill", "crash", "imds", "s3", "redis", "disk", "clock", "overlap")


class TimelineEntry(_Model):
    """One step of the story: a trigger (``at`` or ``on``) and one action."""

    at: Duration | None = Field(default=None, description="time from the start of the run")
    on: OnTrigger | None = None
    note: str | None = None
    notice: Notice | None = None
    kill: Annotated[Kill | None, BeforeValidator(_empty_if_flag)] = None
    crash: Crash | None = None
    imds: ImdsFault | None = None
    s3: S3Fault | None = None
    redis: RedisFault | None = None
    disk: DiskFault | None = None
    clock: ClockFault | None = None
    overlap: Annotated[Overlap | None, BeforeValidator(_empty_if_flag)] = None

    @model_validator(mode="after")
    def _one_trigger_one_action(self) -> TimelineEntry:
        if (self.at is None) == (self.on is None):
            raise ValueError("a timeline entry needs exactly one trigger: `at:` or `on:`")
        _exactly_one_of(self, ACTIONS, "a timeline entry")
        return self

    @property
    def action_name(self) -> str:
        return next(n for n in ACTIONS if getattr(self, n) is not None)

    @property
    def action(self) -> BaseModel:
        value = getattr(self, self.action_name)
        assert isinstance(value, BaseModel)
        return value


# -- expectations -------------------------------------------------------------------------------

#: Check names and their parameters (name -> (param -> required)), from :data:`CHECKS`.
CHECK_PARAMS: Mapping[str, Mapping[str, bool]] = {
    name: {param: param not in info.defaults for param in info.params}
    for name, info in CHECKS.items()
}
_DURATION_PARAMS = {
    param for info in CHECKS.values() for param, kind in info.params.items() if kind == "duration"
}


class CheckSpec(_Model):
    """One expectation: a check name, its parameters, and whether it is known to fail."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    fails: str | None = Field(
        default=None, description="the target is known to break this check: why (xfail)"
    )

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, value: Any) -> Any:
        """``durable`` or ``{lost_work: {at_most: 30s, fails: "..."}}``."""
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, dict) and len(value) == 1 and "name" not in value:
            ((name, params),) = value.items()
            params = dict(params or {}) if isinstance(params, dict) or params is None else params
            if not isinstance(params, dict):
                raise ValueError(f"parameters of `{name}` must be a mapping, got {params!r}")
            fails = params.pop("fails", None)
            if fails is True:
                fails = "known-bad target"
            return {"name": name, "params": params, "fails": fails}
        return value

    @model_validator(mode="after")
    def _known(self) -> CheckSpec:
        if self.name not in CHECK_PARAMS:
            raise ValueError(
                f"unknown check `{self.name}`, expected one of: {', '.join(CHECK_PARAMS)}"
                f"{did_you_mean(self.name, list(CHECK_PARAMS))}"
            )
        allowed = CHECK_PARAMS[self.name]
        for key in self.params:
            if key not in allowed:
                hint = did_you_mean(key, [*allowed, "fails"])
                raise ValueError(f"unknown parameter `{key}` of check `{self.name}`{hint}")
        missing = [k for k, required in allowed.items() if required and k not in self.params]
        if missing:
            raise ValueError(f"check `{self.name}` needs `{missing[0]}`")
        for key in _DURATION_PARAMS & set(self.params):
            self.params[key] = parse_duration(self.params[key])
        return self

    @property
    def label(self) -> str:
        if not self.params:
            return self.name
        inner = ", ".join(f"{k}={v:g}s" for k, v in self.params.items())
        return f"{self.name}({inner})"


_CHECK_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"enum": list(CHECK_PARAMS)},
        {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "properties": {
                name: {
                    "type": ["object", "null"],
                    "properties": {
                        **{p: _DURATION_SCHEMA for p in params},
                        "fails": {"type": ["string", "boolean"]},
                    },
                    "additionalProperties": False,
                }
                for name, params in CHECK_PARAMS.items()
            },
            "additionalProperties": False,
        },
    ]
}


# -- the scenario -------------------------------------------------------------------------------


class Scenario(_Model):
    """One interruption story. ``source`` (file, document) is set by the loader."""

    description: str = Field(min_length=1)
    seed: int = Field(default=0, ge=0, description="seed of every random choice in the run")
    target: Annotated[TargetSpec, WithJsonSchema(_TARGET_SCHEMA)] = TargetSpec(reference=True)
    job: dict[str, Any] = Field(
        default_factory=dict, description="job parameters of the target (items, state_size, ...)"
    )
    env: Env = Env()
    timeline: tuple[TimelineEntry, ...] = ()
    expect: tuple[Annotated[CheckSpec, WithJsonSchema(_CHECK_SCHEMA)], ...] = Field(
        default=tuple(CheckSpec(name=n) for n in DEFAULT_EXPECT),
        description="checks that must pass (or, with `fails`, are known to fail)",
    )

    @field_validator("description")
    @classmethod
    def _one_line(cls, value: str) -> str:
        """Folded YAML (``>``) leaves a trailing newline; reports want one clean line."""
        return " ".join(value.split())

    def with_seed(self, seed: int | None) -> Scenario:
        """This scenario with its seed overridden (``harness run --seed N``)."""
        return self if seed is None else self.model_copy(update={"seed": seed})

    @property
    def known_bad(self) -> tuple[CheckSpec, ...]:
        return tuple(c for c in self.expect if c.fails is not None)


# -- semantic rules over the whole scenario -----------------------------------------------------

Loc = tuple[str | int, ...]
_KNOWN_EVENTS = tuple(
    value for name, value in vars(Kind).items() if name.isupper() and isinstance(value, str)
)


def semantic_problems(scenario: Scenario) -> list[tuple[Loc, str]]:
    """Rules that need more than one field: (location, message) pairs, empty when fine."""
    problems: list[tuple[Loc, str]] = []
    for index, entry in enumerate(scenario.timeline):
        problems.extend(entry_problems(entry, ("timeline", index), scenario.env.cloud))
    return problems


def entry_problems(entry: TimelineEntry, here: Loc, cloud: Cloud) -> list[tuple[Loc, str]]:
    """The semantic rules of one timeline entry (``cloud``: the scenario's default cloud)."""
    problems: list[tuple[Loc, str]] = []
    if entry.on is not None and entry.on.event not in _KNOWN_EVENTS:
        hint = did_you_mean(entry.on.event, _KNOWN_EVENTS)
        if hint:  # targets may record kinds of their own; only near-misses are typos
            problems.append(((*here, "on", "event"), f"unknown event `{entry.on.event}`{hint}"))
    if entry.notice is not None:
        problems.extend(_notice_problems(entry.notice, cloud, (*here, "notice")))
    return problems


def _notice_problems(notice: Notice, default: Cloud, here: Loc) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    cloud = notice.resolved_cloud(default)
    kinds = NOTICE_KINDS[cloud]
    if notice.kind is not None and notice.kind not in kinds:
        hint = did_you_mean(notice.kind, list(kinds))
        expected = ", ".join(kinds)
        message = f"unknown {cloud} notice kind `{notice.kind}`, expected one of: {expected}{hint}"
        problems.append(((*here, "kind"), message))
    allowed = _NOTICE_ACTIONS[cloud]
    if notice.action not in allowed:
        where = ", ".join(c for c, actions in _NOTICE_ACTIONS.items() if notice.action in actions)
        message = f"`{notice.action}` notices exist on {where}, not on {cloud}"
        problems.append(((*here, "action"), message))
    preempt = cloud == "azure" and notice.resolved_kind(default) == "preempt"
    if preempt and notice.resolved_lead(default) < 30:
        problems.append(((*here, "lead"), "Azure gives a Preempt at least 30s notice"))
    if notice.rebalance_before is not None and cloud != "aws":
        problems.append(((*here, "rebalance_before"), "rebalance recommendations are aws-only"))
    return problems


def did_you_mean(word: str, choices: Any) -> str:
    """``"; did you mean `x`?"`` for the closest choice, or an empty string."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean `{match[0]}`?" if match else ""
