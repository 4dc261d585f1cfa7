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

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from fake_imds.aws import AwsIdentityBody
from fake_imds.vocabulary import (
    CLOUDS,
    DEFAULT_LEAD,
    IMPLIED_ACTIONS,
    MIN_LEAD,
    NOTICE_ACTIONS,
    NOTICE_KINDS,
    Cloud,
    NoticeAction,
    nearest_action,
)
from harness.bounds import check
from harness.checks import DEFAULT_EXPECT, CheckSpec
from harness.errors import did_you_mean
from harness.history import Kind
from harness.target import PERSISTENCE_STEPS
from harness.units import (
    BANDWIDTH_HELP,
    DURATION_HELP,
    DURATION_SCHEMA,
    UnitError,
    parse_bandwidth,
    parse_duration,
    parse_size,
)

__all__ = ["CLOUDS", "DEFAULT_LEAD", "NOTICE_KINDS", "Cloud", "NoticeAction"]  # re-exported


def _duration(value: Any, info: ValidationInfo | None = None) -> float:
    if isinstance(value, str | int | float):
        return _bounded(parse_duration(value), value, info)
    raise UnitError(f"expected {DURATION_HELP}, got {value!r}")


def _signed_duration(value: Any, info: ValidationInfo | None = None) -> float:
    if isinstance(value, str) and value.strip().startswith("-"):
        return _bounded(-_duration(value.strip()[1:]), value, info)
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        return _bounded(-_duration(-value), value, info)
    return _duration(value, info)


def _bandwidth(value: Any, info: ValidationInfo | None = None) -> float:
    if isinstance(value, str | int | float):
        return _bounded(parse_bandwidth(value), value, info)
    raise UnitError(f"expected {BANDWIDTH_HELP}, got {value!r}")


def _bounded(number: float, given: Any, info: ValidationInfo | None) -> float:
    """``number`` within the range of the field being validated, the message quoting the value
    as written (``lead = 99999999999h is out of range: ...``)."""
    name = info.field_name if info is not None else None
    bound = _FIELD_BOUNDS.get(name or "")
    if name is not None and bound is not None:
        check(
            name.removesuffix("_"), number, given if isinstance(given, str) else None, bound=bound
        )
    return number


#: Seconds; YAML accepts the duration grammar (``90s``, ``2m``, ``PT2M``, a bare number).
Duration = Annotated[float, BeforeValidator(_duration), WithJsonSchema(DURATION_SCHEMA)]
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


#: Model field -> the entry of :data:`harness.bounds.BOUNDS` it is checked against.
_FIELD_BOUNDS: Mapping[str, str] = {
    "at": "at",
    "delay": "delay",
    "for_": "for",
    "budget": "budget",
    "skew": "skew",
    "latency": "latency",
    "fsync": "fsync",
    "rebalance_before": "rebalance_before",
    "upload": "bandwidth",
    "download": "bandwidth",
    "write": "bandwidth",
    "read": "bandwidth",
    "bandwidth": "bandwidth",
    "seed": "seed",
    "nth": "nth",
    "count": "count",
    "incarnation": "incarnation",
    "max_instances": "max_instances",
    "throttle": "throttle",
}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @field_validator("*", mode="after")
    @classmethod
    def _within_bounds(cls, value: Any, info: ValidationInfo) -> Any:
        """Every duration, count and rate within its documented range (:mod:`harness.bounds`)."""
        bound = _FIELD_BOUNDS.get(info.field_name or "")
        if bound is not None and isinstance(value, int | float) and not isinstance(value, bool):
            name = (info.field_name or "").removesuffix("_")
            check(name, value, bound=bound)
        return value


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

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The generated object form, plus the ``reference`` shorthand ``_from_shorthand`` reads."""
        return {"anyOf": [{"const": "reference"}, handler(core_schema)]}

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


# -- environment --------------------------------------------------------------------------------


class S3Env(_Model):
    """The modelled S3 link: how long storage operations take (semantics come from moto)."""

    upload: Bandwidth = Field(default=100e6, description="upload bandwidth")
    download: Bandwidth = Field(default=200e6, description="download bandwidth")
    latency: Duration = Field(default=0.02, description="per-request latency")


class RedisEnv(_Model):
    latency: Duration = Field(default=0.001, description="per-command latency")
    server: Literal["fake", "real"] = Field(
        default="fake",
        description="command targets: fakeredis' TCP server, or a real redis-server (as "
        "`harness run --redis real`); in-process targets always get fakeredis",
    )


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
    aws: AwsIdentityBody = Field(
        default=AwsIdentityBody(),
        description="the AWS instance's identity in metadata (public_ipv4, tags, kernel_id, ...); "
        "each incarnation still gets its own instance_id",
    )

    def cloud_for(self, incarnation: int) -> Cloud:
        """The cloud of the ``incarnation``-th instance (1: the first; later: the replacement's)."""
        if incarnation > 1 and self.replacement.cloud is not None:
            return self.replacement.cloud
        return self.cloud


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

# Notice kinds, actions and default leads per cloud: :mod:`fake_imds.vocabulary`.


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

    @field_validator("lead", mode="before")
    @classmethod
    def _lead_within_bounds(cls, value: Any, info: ValidationInfo) -> Any:
        """A notice comes at most a day ahead; AWS schedules maintenance up to a month ahead."""
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            bound = "scheduled_lead" if info.data.get("kind") == "scheduled-event" else "lead"
            given = value if isinstance(value, str) else None
            check("lead", parse_duration(value), given, bound=bound)
        return value

    def resolved_cloud(self, default: Cloud) -> Cloud:
        return self.cloud or default

    def resolved_kind(self, default: Cloud) -> str:
        return self.kind or next(iter(NOTICE_KINDS[self.resolved_cloud(default)]))

    def resolved_lead(self, default: Cloud) -> float:
        return self.lead if self.lead is not None else DEFAULT_LEAD[self.resolved_cloud(default)]

    def as_told_on(self, cloud: Cloud, home: Cloud, *, grace: float | None = None) -> Notice:
        """This notice as an instance on ``cloud`` can be given it, in a scenario whose own
        cloud is ``home``: the nearest action that cloud announces (a hibernation reaching GCP
        is a stop) and, for a notice written for ``home`` that lands on a replacement of another
        cloud, at least that cloud's shortest lead (on Kubernetes: the pod's grace, ``grace``
        when the target was told one, else the default, in place of the lead written for the
        other cloud)."""
        told = self.resolved_cloud(cloud)
        implied = IMPLIED_ACTIONS.get((told, self.resolved_kind(cloud)))
        update: dict[str, Any] = {"action": implied or nearest_action(told, self.action)}
        foreign = self.cloud is None and cloud != home
        shortest = MIN_LEAD.get((told, self.resolved_kind(cloud)))
        if foreign and told == "kubernetes":
            # An eviction's grace is the pod's, the one its target is told: not the lead
            # written for another cloud (an AWS hibernation's 0 s).
            update["lead"] = grace
        elif foreign and shortest is not None and self.lead is not None:
            update["lead"] = max(self.lead, shortest)
        return self.model_copy(update=update)

    def ends_instance(self, default: Cloud) -> bool:
        cloud = self.resolved_cloud(default)
        return NOTICE_KINDS[cloud].get(self.resolved_kind(default), True)


class Kill(_Model):
    """The instance vanishes with no notice: a host failure, so a kept local disk keeps only
    what was fsynced."""

    local_disk: Literal["wiped", "kept"] = "wiped"


class Crash(_Model):
    """The process dies just before the ``nth`` call of persistence step ``at``, or just before
    the run's persistence step number ``ordinal`` (every step of every instance, counted from
    the start of the run: the numbering ``harness crash-points`` lists)."""

    at: str | None = Field(
        default=None,
        description="a persistence step, e.g. s3.complete_multipart",
        json_schema_extra={"enum": list(PERSISTENCE_STEPS)},
    )
    nth: int = Field(default=1, ge=1, description="counted from when the entry fires")
    ordinal: int | None = Field(
        default=None,
        ge=1,
        description="instead of `at`: the run's Nth persistence step of any kind, counted over "
        "every instance from the start of the run (as `harness crash-points` numbers them)",
    )
    local_disk: Literal["wiped", "kept"] = "kept"
    lose: Literal["process", "host"] = Field(
        default="process",
        description="process: the process dies, the OS keeps its writes and renames; host: the "
        "machine loses power, a kept disk keeps only what was fsynced (an unsynced rename may "
        "or may not survive)",
    )

    @field_validator("at")
    @classmethod
    def _known_step(cls, value: str | None) -> str | None:
        if value is not None and value not in PERSISTENCE_STEPS:
            raise ValueError(
                f"unknown persistence step `{value}`, expected one of: "
                f"{', '.join(PERSISTENCE_STEPS)}{did_you_mean(value, PERSISTENCE_STEPS)}"
            )
        return value

    @model_validator(mode="after")
    def _one_address(self) -> Crash:
        _exactly_one_of(self, ("at", "ordinal"), "a crash")
        if self.ordinal is not None and "nth" in self.model_fields_set:
            raise ValueError("`nth` counts calls of the step named in `at`; drop it with `ordinal`")
        return self


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


CORRUPT_CHOICES = ("newest", "previous", "all")


def _corrupt_choice(value: Any) -> Any:
    """``which`` of a corruption: a name, or n >= 1 (the n-th newest object)."""
    if value is None or value in CORRUPT_CHOICES:
        return value
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str) and value.isdigit():
        number = int(value)
    if number is not None and number >= 1:
        return number
    raise ValueError(
        f"`which` takes {', '.join(CORRUPT_CHOICES)} or a number from 1 (the n-th newest "
        f"object), not `{value}`{did_you_mean(str(value), list(CORRUPT_CHOICES))}"
    )


class S3Fault(_Model):
    """An S3 failure on the steps in ``ops`` (default every ``s3.*`` step)."""

    error: Annotated[
        str | None, BeforeValidator(_s3_error, json_schema_input_type=str | int | None)
    ] = Field(
        default=None, description="SlowDown, InternalError, ServiceUnavailable, 500, 503, ..."
    )
    outage: bool = Field(default=False, description="the endpoint is unreachable")
    bandwidth: Bandwidth | None = Field(default=None, description="reduced bandwidth")
    latency: Duration | None = Field(default=None, description="added per-request latency")
    corrupt: str | None = Field(
        default=None, description="glob of keys whose objects get corrupted, silently"
    )
    which: Annotated[
        str | int | None,
        BeforeValidator(
            _corrupt_choice,
            json_schema_input_type=Literal["newest", "previous", "all"]
            | Annotated[int, Field(ge=1)]
            | None,
        ),
    ] = Field(
        default=None,
        description="with `corrupt`: which matching object, newest written first: newest "
        "(default), previous, all, or n (the n-th newest)",
    )
    damage: Literal["flip", "rollback"] | None = Field(
        default=None,
        description="with `corrupt`: flip (default: a digit of the content's digest changes, "
        "bit rot) or rollback (the oldest matching object's whole body, metadata and ETag are "
        "put in its place, as by a stale replica or a restore from an old backup: "
        "self-consistent, told apart only by a digest recorded elsewhere)",
    )
    ops: tuple[str, ...] | None = Field(default=None, description="e.g. [s3.upload_part]")
    count: int | None = Field(default=None, ge=1, description="affect only the next N calls")
    for_: Duration | None = Field(default=None, alias="for", description="default: until the end")
    incarnation: int | None = Field(
        default=None,
        ge=1,
        description="only the n-th instance meets the fault (a network partition of one host: "
        "a superseded instance cut off while its replacement still reaches S3)",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> S3Fault:
        _exactly_one_of(self, ("error", "outage", "bandwidth", "latency", "corrupt"), "s3")
        for name in ("which", "damage"):
            if getattr(self, name) is not None and self.corrupt is None:
                raise ValueError(
                    f"`{name}` says how `corrupt` damages objects; add `corrupt: <glob>` or drop it"
                )
        if self.corrupt is not None and self.incarnation is not None:
            raise ValueError(
                "a corruption damages the stored objects every instance reads; drop `incarnation`"
            )
        for op in self.ops or ():
            if not op.startswith("s3.") or op not in PERSISTENCE_STEPS:
                raise ValueError(f"`{op}` is not an S3 persistence step")
        return self


class RedisFault(_Model):
    down: bool = Field(default=False, description="connections fail")
    restart: bool = Field(default=False, description="restarted empty (no persistence)")
    latency: Duration | None = Field(default=None, description="slow: added per-command latency")
    for_: Duration | None = Field(default=None, alias="for", description="default: until the end")
    incarnation: int | None = Field(
        default=None,
        ge=1,
        description="only the n-th instance meets the fault (a network partition of one host: "
        "a superseded instance cut off from Redis while its replacement still reaches it)",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> RedisFault:
        _exactly_one_of(self, ("down", "restart", "latency"), "redis")
        if self.restart and self.for_ is not None:
            raise ValueError("a redis restart is instantaneous; drop `for`")
        if self.restart and self.incarnation is not None:
            raise ValueError(
                "a restart empties the server every instance shares; drop `incarnation`"
            )
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
        if self.crash is not None and self.crash.ordinal is not None and self.at != 0:
            raise ValueError(
                "`crash: {ordinal: N}` numbers steps from the start of the run: trigger it `at: 0s`"
            )
        return self

    @property
    def action_name(self) -> str:
        return next(n for n in ACTIONS if getattr(self, n) is not None)

    @property
    def action(self) -> BaseModel:
        value = getattr(self, self.action_name)
        assert isinstance(value, BaseModel)
        return value


# -- the scenario -------------------------------------------------------------------------------


#: Checks that judge the reference runtime's storage layout: left out for any other target.
REFERENCE_ONLY_CHECKS = frozenset({"reference_layout"})


class Scenario(_Model):
    """One interruption story. ``source`` (file, document) is set by the loader."""

    description: str = Field(min_length=1)
    seed: int = Field(default=0, ge=0, description="seed of every random choice in the run")
    target: TargetSpec = TargetSpec(reference=True)
    job: dict[str, Any] = Field(
        default_factory=dict, description="job parameters of the target (items, state_size, ...)"
    )
    env: Env = Env()
    timeline: tuple[TimelineEntry, ...] = ()
    expect: tuple[CheckSpec, ...] = Field(
        default=tuple(CheckSpec(name=n) for n in DEFAULT_EXPECT),
        description="checks that must pass (or, with `fails`, are known to fail)",
    )

    @field_validator("job")
    @classmethod
    def _job_within_bounds(cls, job: dict[str, Any]) -> dict[str, Any]:
        """The job's numbers within their ranges (the target reads the rest of ``job:``)."""
        for key, parse in _JOB_NUMBERS.items():
            value = job.get(key)
            if value is None or isinstance(value, bool):
                continue
            try:
                number = parse(value)
            except (UnitError, TypeError, ValueError, AttributeError):
                continue  # not a number at all: the target's own validation says so
            check(f"job.{key}", number, value if isinstance(value, str) else None, bound=key)
        return job

    @field_validator("timeline")
    @classmethod
    def _timeline_within_bounds(cls, timeline: tuple[Any, ...]) -> tuple[Any, ...]:
        check("timeline", len(timeline))
        return timeline

    @model_validator(mode="before")
    @classmethod
    def _default_expect(cls, data: Any) -> Any:
        """Without ``expect:``, the default checks; ``saved_before_deadline`` only when the
        timeline gives a notice (else it has nothing to judge and would be unverified)."""
        if not isinstance(data, dict) or "expect" in data:
            return data
        timeline = data.get("timeline") or ()
        noticed = any(isinstance(e, dict | TimelineEntry) and _has_notice(e) for e in timeline)
        names = [n for n in DEFAULT_EXPECT if noticed or n != "saved_before_deadline"]
        return {**data, "expect": tuple(CheckSpec(name=n) for n in names)}

    @field_validator("description")
    @classmethod
    def _one_line(cls, value: str) -> str:
        """Folded YAML (``>``) leaves a trailing newline; reports want one clean line."""
        return " ".join(value.split())

    def with_seed(self, seed: int | None) -> Scenario:
        """This scenario with its seed overridden (``harness run --seed N``)."""
        return self if seed is None else self.model_copy(update={"seed": seed})

    def with_target(self, target: TargetSpec) -> Scenario:
        """This scenario played by ``target`` (``harness run --target``); for a target other
        than the reference, without the checks of the reference runtime's own storage layout."""
        expect = self.expect
        if not target.reference:
            expect = tuple(c for c in expect if c.name not in REFERENCE_ONLY_CHECKS)
        return self.model_copy(update={"target": target, "expect": expect})

    @property
    def known_bad(self) -> tuple[CheckSpec, ...]:
        return tuple(c for c in self.expect if c.fails is not None)


def _int(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise TypeError(f"not an integer: {value!r}")


_JOB_NUMBERS: Mapping[str, Callable[[Any], float]] = {
    "items": _int,
    "output_every": _int,
    "seed": _int,
    "seconds_per_item": parse_duration,
    "checkpoint_every": parse_duration,
    "state_size": parse_size,
    "output_size": parse_size,
}


def _has_notice(entry: dict[str, Any] | TimelineEntry) -> bool:
    if isinstance(entry, TimelineEntry):
        return entry.notice is not None
    return entry.get("notice") is not None


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
    if scenario.env.redis.server == "real" and scenario.target.command is None:
        problems.append(
            (
                ("env", "redis", "server"),
                "a real redis-server is for command targets (the process tier); in-process "
                "targets get fakeredis: drop `server: real` or use `target: {command: [...]}`",
            )
        )
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
    allowed = NOTICE_ACTIONS[cloud]
    if notice.action not in allowed:
        where = ", ".join(c for c, actions in NOTICE_ACTIONS.items() if notice.action in actions)
        message = f"`{notice.action}` notices exist on {where}, not on {cloud}"
        problems.append(((*here, "action"), message))
    preempt = cloud == "azure" and notice.resolved_kind(default) == "preempt"
    if preempt and notice.resolved_lead(default) < 30:
        problems.append(((*here, "lead"), "Azure gives a Preempt at least 30s notice"))
    if notice.rebalance_before is not None and cloud != "aws":
        problems.append(((*here, "rebalance_before"), "rebalance recommendations are aws-only"))
    return problems


# -- how much a run would simulate ---------------------------------------------------------------

#: Relative real-time cost of what a run simulates, per item, output object and checkpoint
#: (timed with ``harness run`` on jobs made of each alone: about 3us, 0.6ms and 36ms on one
#: core); a run plans at most ``MAX_SIM_OPERATIONS`` units. An estimate, with a wide margin: the
#: library's heaviest scenario plans about 130,000.
_ITEM_COST, _OUTPUT_COST, _CHECKPOINT_COST = 1, 200, 12_000


class SimWork(BaseModel):
    """An estimate, before a run starts, of what it would simulate."""

    model_config = ConfigDict(frozen=True)

    seconds: float = Field(description="simulated time the run would cover")
    operations: int = Field(description="items, output objects and checkpoints, weighted")


def estimate_work(scenario: Scenario) -> SimWork:
    """What ``scenario`` would simulate: until its job is done or its budget is spent.

    Only the reference target's job is understood; any other target may run for the budget.
    """
    budget = scenario.env.budget
    if not scenario.target.reference:
        return SimWork(seconds=budget, operations=0)
    from harness.runtime import JobSpec, JobSpecError

    try:
        job = JobSpec.from_mapping(scenario.job)
    except JobSpecError:
        return SimWork(seconds=budget, operations=0)
    upload = job.state_size / scenario.env.s3.upload
    every = max(job.checkpoint_every, upload, 1e-3)
    span = min(budget, job.duration + (job.duration / every) * upload)
    done = min(job.items, span / job.seconds_per_item)
    operations = (
        job.items * _ITEM_COST
        + (done / job.output_every) * _OUTPUT_COST
        + (span / every) * _CHECKPOINT_COST
    )
    return SimWork(seconds=span, operations=int(min(operations, 2**62)))
