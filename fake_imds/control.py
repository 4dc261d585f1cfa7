"""The control API, JSON over HTTP under ``/_harness/v1/``.

=========================  ==================================================================
``GET    /``               what this server is: dialects, notice clouds, clock time
``POST   notices``         schedule a notice: ``{"cloud": "aws", "kind": ..., "action": ...,
                           "lead": "2m", "at": "2026-01-01T00:05:00Z" | "+30s"}`` -> 201
``GET    notices``         every notice (``?cloud=aws`` filters)
``GET    notices/{id}``    one notice
``DELETE notices/{id}``   cancel it
``POST   faults``          ``{"kind": "status"|"latency"|"timeout"|"reset"|"throttle",
                           "path": "/latest/meta-data/*", "for": "30s", "status": 503,
                           "latency": "2s", "limit": 5}`` -> 201
``GET    faults``          the faults in place; ``DELETE faults/{id}`` removes one
``GET    requests``        the served-request log: ``?since=N`` from sequence number N on;
                           ``total`` served, ``dropped`` past the log's ``limit``
``GET    identity/aws``    the instance's identity; ``PATCH`` it with some of its fields
``POST   reset``           forget notices, faults and the log
=========================  ==================================================================

``POST notices`` bodies are pydantic models, one per cloud and kind (:class:`NoticeBody`):
each cloud's module lists its models in ``NOTICE_BODIES``, registered here by name in
:data:`NOTICE_BODIES`, and the body is validated against the union of them all, picked by
``cloud`` then ``kind`` (:class:`Choice`), so a cloud adds its notice kinds without touching this
module's logic and the JSON Schema (``harness schema control``) is generated from the same models.
Malformed bodies get ``400 {"error": "...", "field": "<name>"}`` naming the field, what is wrong
and what it takes: an unknown field, a wrong type, a value out of its range
(:mod:`harness.bounds`), a body over 64 KiB (413) or nesting deeper than 16 levels. Validate,
then store: every notice is rendered the way each dialect would show it before it is scheduled,
so nothing the API accepts can make a metadata path fail later.
"""

from __future__ import annotations

import importlib
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Literal, Protocol, Self, Union, get_args, get_origin

from aiohttp import web
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictInt,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import ErrorDetails

from fake_imds.model import Fault, MetadataPlane, Notice, RenderError, ServedRequest
from fake_imds.vocabulary import CLOUDS, Cloud, FaultKind
from harness.bounds import MONTH, check, format_days
from harness.errors import did_you_mean
from harness.units import (
    DURATION_HELP,
    DURATION_SCHEMA,
    UnitError,
    parse_duration,
)

PREFIX = "/_harness/v1"
#: The largest control-API body accepted (413 beyond), and the deepest JSON nesting (400).
MAX_BODY_BYTES = 64 * 1024
MAX_JSON_DEPTH = 16


class BodyError(ValueError):
    """A malformed control-API body; ``field`` names the culprit."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


@dataclass(frozen=True)
class NoticeSpec:
    """One notice a body asks for: arguments of :meth:`MetadataPlane.add_notice`."""

    cloud: Cloud
    kind: str
    action: str
    lead: float
    at: float | None = None
    params: dict[str, Any] = field(default_factory=dict)


# -- bodies as pydantic models ------------------------------------------------------------------
class Body(BaseModel):
    """A control-API body: unknown fields are refused, and :meth:`parse` turns the first
    validation error into a :class:`BodyError` naming the field."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Self:
        try:
            return cls.model_validate(raw)
        except ValidationError as invalid:
            error = invalid.errors()[0]
            raise body_error(cls, error, error["loc"]) from None


def body_error(model: type[BaseModel], error: ErrorDetails, loc: Sequence[Any]) -> BodyError:
    """A :class:`BodyError` from one pydantic ``error`` at ``loc`` within ``model``, worded
    ``'<field>' <what is wrong>, got <value>`` with the choices or the range to pick from."""
    name = str(loc[0]) if loc else "body"
    kind, given = error["type"], error["input"]
    if kind == "extra_forbidden":
        known = ", ".join(sorted(f.alias or n for n, f in model.model_fields.items()))
        return BodyError(name, f"unknown field {name!r}; allowed here: {known}")
    if kind == "missing":
        return BodyError(name, f"{name!r} is required")
    if kind == "literal_error":
        return _not_one_of(name, _choices(model, name), given)
    low, high = _range(model, name)
    if kind in ("greater_than_equal", "less_than_equal") and None not in (low, high):
        return BodyError(name, f"{name!r} must be between {low} and {high}, got {_short(given)}")
    message = error["msg"].removeprefix("Value error, ")
    if message.startswith((f"{name} = ", f"{name!r}")):  # names the field (a bound) already
        return BodyError(name, message)
    if message.startswith(f"`{name}`"):
        return BodyError(name, f"{message}, got {_short(given)}")
    return BodyError(name, f"{name!r}: {message[:1].lower()}{message[1:]}, got {_short(given)}")


def _not_one_of(name: str, choices: Sequence[str], given: Any) -> BodyError:
    hint = did_you_mean(given, choices) if isinstance(given, str) else ""
    return BodyError(
        name, f"{name!r} must be one of {', '.join(choices)}, got {_short(given)}{hint}"
    )


def _choices(model: type[BaseModel], name: str) -> list[str]:
    """The values a ``Literal`` field (or a union holding one) takes."""
    found: list[str] = []
    pending = [model.model_fields[name].annotation] if name in model.model_fields else []
    while pending:
        annotation = pending.pop(0)
        if get_origin(annotation) is Literal:
            found.extend(str(choice) for choice in get_args(annotation))
        else:
            pending.extend(get_args(annotation))
    return found


def _range(model: type[BaseModel], name: str) -> tuple[Any, Any]:
    info = model.model_fields.get(name)
    metadata = info.metadata if info is not None else []
    low = next((m.ge for m in metadata if hasattr(m, "ge")), None)  # annotated_types.Ge
    high = next((m.le for m in metadata if hasattr(m, "le")), None)
    return low, high


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _bounded_duration(bound: str | None = None) -> BeforeValidator:
    """The duration grammar, then the range of the field (``BOUNDS[bound or field]``)."""

    def validate(value: Any, info: ValidationInfo) -> float:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"expected {DURATION_HELP}")
        try:
            seconds = parse_duration(value)
        except UnitError:
            raise ValueError(f"expected {DURATION_HELP}") from None
        name = (info.field_name or "duration").removesuffix("_")  # for_ is written ``for``
        return check(name, seconds, value, bound=bound)

    return BeforeValidator(validate)


#: Seconds, written in the duration grammar (``90s``, ``2m``, ``PT2M``, a bare number) and
#: within the field's range in :data:`harness.bounds.BOUNDS`.
Duration = Annotated[float, _bounded_duration(), WithJsonSchema(DURATION_SCHEMA)]
#: A scheduled event's lead: up to a month, not a day.
ScheduledLead = Annotated[
    float, _bounded_duration("scheduled_lead"), WithJsonSchema(DURATION_SCHEMA)
]


def _bounded_int(bound: str) -> Callable[[int], int]:
    def validate(value: int) -> int:
        check(bound, value)
        return value

    return validate


#: How far from the server's clock an absolute ``at`` may be, either way.
AT_RANGE = MONTH
AT_HELP = "an ISO-8601 time such as 2026-01-01T00:05:00Z, or +<duration> such as +30s"


def _clock_instant(value: Any, info: ValidationInfo) -> float | None:
    """``at`` as an instant of the plane's clock (given in the validation context): an
    absolute time within a month of the clock either way, or ``+<duration>`` from now."""
    if value is None:
        return None
    plane = (info.context or {}).get("plane")
    if not isinstance(plane, MetadataPlane):  # a bug, not a bad body: pydantic lets it through
        raise TypeError("validate notice bodies with context={'plane': <MetadataPlane>}")
    if not isinstance(value, str):
        raise ValueError(f"'at' must be {AT_HELP}, got {_short(value)}")
    if value.startswith("+"):
        try:
            seconds = parse_duration(value[1:])
        except UnitError:
            raise ValueError(f"'at' must be {AT_HELP}, got {_short(value)}") from None
        return plane.now() + check("at", seconds, value)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        offset = (when - plane.calendar(plane.now())).total_seconds()
    except (ValueError, OverflowError):
        raise ValueError(f"'at' must be {AT_HELP}, got {_short(value)}") from None
    if abs(offset) > AT_RANGE:
        raise ValueError(
            f"at = {value} is out of range: expected within {format_days(AT_RANGE)} "
            f"of the server's clock ({plane.iso(plane.now())})"
        )
    return plane.now() + offset


#: When a notice appears (default: now), as an instant of the server's clock.
At = Annotated[
    float | None,
    BeforeValidator(_clock_instant, json_schema_input_type=str | None),
    Field(description=f"when the notice appears: {AT_HELP}; default: now"),
]


class FaultBody(Body):
    """``POST faults``: a failure of the metadata paths matching ``path``."""

    kind: FaultKind
    path: str = Field(default="*", min_length=1, max_length=1024)
    for_: Duration | None = Field(default=None, alias="for")
    status: StrictInt = Field(default=500, ge=400, le=599)
    latency: Duration | None = None
    limit: Annotated[StrictInt, AfterValidator(_bounded_int("limit"))] = 5


class NoticeBody(Body, ABC):
    """One kind of ``POST notices`` body of one cloud. Each cloud's module defines one model
    per kind in :data:`NOTICE_BODIES`; every model has a ``cloud`` field and a ``kind`` field
    (a ``Literal``), required except in the default cloud and the default kind, so that the
    JSON Schema tells the kinds apart as the server does."""

    @abstractmethod
    def specs(self, plane: MetadataPlane) -> Sequence[NoticeSpec]:
        """The notices to schedule (several for a sequence such as FIS's)."""


#: cloud -> ``"module:NAME"``, NAME being a tuple of the cloud's :class:`NoticeBody` models,
#: the default kind first (imported when first used, as the modules import this one).
NOTICE_BODIES: dict[Cloud, str] = {
    "aws": "fake_imds.aws:NOTICE_BODIES",
    "gcp": "fake_imds.gcp:NOTICE_BODIES",
    "azure": "fake_imds.azure:NOTICE_BODIES",
    "webhook": "fake_imds.webhook:NOTICE_BODIES",
    "kubernetes": "fake_imds.signals:NOTICE_BODIES",
}


@dataclass(frozen=True)
class Choice:
    """A body picked by the value of one of its fields (``key``), the first option being the
    default: a pydantic discriminated union that errors can be traced back through."""

    key: str
    options: Mapping[str, Choice | type[NoticeBody]]

    def annotation(self) -> Any:
        members = tuple(
            Annotated[option.annotation() if isinstance(option, Choice) else option, Tag(tag)]
            for tag, option in self.options.items()
        )
        return Annotated[Union[members], Discriminator(self._tag)]  # noqa: UP007

    def _tag(self, value: Any) -> str | None:
        """The option ``value`` asks for (absent: the default); ``None`` when it names none."""
        if not isinstance(value, Mapping):
            return None
        tag = value.get(self.key, next(iter(self.options)))
        return tag if isinstance(tag, str) else None

    def locate(self, loc: Sequence[Any]) -> tuple[Choice | type[NoticeBody], Sequence[Any]]:
        """The choice or the model an error at ``loc`` is in, and its place there."""
        if loc and loc[0] in self.options:
            option = self.options[loc[0]]
            if isinstance(option, Choice):
                return option.locate(loc[1:])
            return option, loc[1:]
        return self, loc


def literal_value(model: type[BaseModel], name: str) -> str:
    """The one value of a ``Literal`` field, such as a notice body's ``kind``."""
    (value,) = get_args(model.model_fields[name].annotation)
    return str(value)


def _kinds(models: Sequence[type[NoticeBody]]) -> Choice | type[NoticeBody]:
    if len(models) == 1:
        return models[0]
    return Choice("kind", {literal_value(model, "kind"): model for model in models})


@cache
def notice_bodies() -> Choice:
    """Every ``POST notices`` body: the models of each cloud, by ``cloud`` then ``kind``."""
    options: dict[str, Choice | type[NoticeBody]] = {}
    for cloud, entry in NOTICE_BODIES.items():
        module_name, attr = entry.split(":")
        options[cloud] = _kinds(getattr(importlib.import_module(module_name), attr))
    return Choice("cloud", options)


@cache
def notice_adapter() -> TypeAdapter[NoticeBody]:
    return TypeAdapter(notice_bodies().annotation())


def parse_notice(body: Mapping[str, Any], plane: MetadataPlane) -> NoticeBody:
    """The model of a ``POST notices`` body, ``at`` read against ``plane``'s clock; else a
    :class:`BodyError` naming the field."""
    if not isinstance(body, Mapping):
        raise BodyError("body", "the body must be a JSON object")
    try:
        return notice_adapter().validate_python(body, context={"plane": plane})
    except ValidationError as invalid:
        error = invalid.errors()[0]
        where, loc = notice_bodies().locate(error["loc"])
        if isinstance(where, Choice):  # no such cloud, or no such kind on it
            given = body.get(where.key)
            raise _not_one_of(where.key, list(where.options), given) from None
        raise body_error(where, error, loc) from None


# -- faults -------------------------------------------------------------------------------------
def parse_fault(body: Mapping[str, Any]) -> tuple[FaultKind, float | None, dict[str, Any]]:
    """(kind, duration, Fault params) from a ``POST faults`` body."""
    parsed = FaultBody.parse(body)
    if not parsed.path.startswith(("/", "*")):
        raise BodyError(
            "path",
            f"'path' is a pattern on the request path (/latest/meta-data/*), "
            f"it must start with / or *, got {parsed.path!r}",
        )
    params: dict[str, Any] = {"pattern": parsed.path}
    if parsed.kind == "status":
        params["status"] = parsed.status
    elif parsed.kind == "latency":
        if parsed.latency is None:
            raise BodyError("latency", f"'latency' is required: {DURATION_HELP}")
        params["seconds"] = parsed.latency
    elif parsed.kind == "throttle":
        params["limit"] = parsed.limit
    return parsed.kind, parsed.for_, params


def fault_json(fault: Fault, plane: MetadataPlane) -> dict[str, Any]:
    return {
        "id": fault.id,
        "kind": fault.kind,
        "path": fault.pattern,
        "start": plane.iso(fault.start),
        "end": None if fault.end is None else plane.iso(fault.end),
        "status": fault.status if fault.kind == "status" else None,
        "latency": fault.seconds if fault.kind == "latency" else None,
        "limit": fault.limit if fault.kind == "throttle" else None,
    }


def request_json(seq: int, served: ServedRequest, plane: MetadataPlane) -> dict[str, Any]:
    return {
        "seq": seq,
        "t": round(served.t, 6),
        "time": plane.calendar(served.t).isoformat(timespec="milliseconds"),
        "method": served.method,
        "path": served.path,
        "status": served.status,
        "remote": served.remote,
        "dialect": served.dialect,
        "fault": served.fault,
        "note": None if served.note is None else dict(served.note),
    }


# -- what the handlers do, callable without HTTP (the sync wrapper, the runner) ---------------
def schedule_notice(plane: MetadataPlane, body: Mapping[str, Any]) -> list[Notice]:
    """Validate a ``POST notices`` body against its cloud's and kind's model, render every
    notice it makes the way each dialect would show it, and only then schedule them (all or
    none)."""
    specs = parse_notice(body, plane).specs(plane)
    previews = [
        plane.preview_notice(s.cloud, s.kind, s.action, lead=s.lead, at=s.at, params=s.params)
        for s in specs
    ]
    for preview in previews:
        try:
            plane.check_renders(preview)
        except RenderError as error:
            culprit = "at" if "at" in body else "lead"
            raise BodyError(culprit, f"the notice cannot be shown: {error}") from None
    return [plane.store_notice(preview) for preview in previews]


def notices_json(notices: Sequence[Notice], plane: MetadataPlane) -> dict[str, Any]:
    """The answer to ``POST notices``: the last notice (the interruption of a sequence), plus
    ``sequence`` listing all of them when there are several."""
    result = notices[-1].to_json(plane)
    if len(notices) > 1:
        result["sequence"] = [n.to_json(plane) for n in notices]
    return result


def add_fault(plane: MetadataPlane, body: Mapping[str, Any]) -> Fault:
    """Validate a ``POST faults`` body and put the fault in place."""
    kind, duration, params = parse_fault(body)
    try:
        return plane.add_fault(kind, duration=duration, **params)
    except RenderError as error:
        raise BodyError("for", f"the fault cannot be shown: {error}") from None


# -- identity -----------------------------------------------------------------------------------
class IdentityHook(Protocol):
    """A dialect's identity, readable and settable through ``/_harness/v1/identity/<cloud>``."""

    def show(self) -> dict[str, Any]: ...

    def update(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Validate ``body`` (raising :class:`BodyError`), then apply it; the new identity."""
        ...


# -- handlers -----------------------------------------------------------------------------------
def _error(status: int, message: str, field_name: str | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if field_name is not None:
        body["field"] = field_name
    return web.json_response(body, status=status)


async def _json_object(request: web.Request) -> dict[str, Any]:
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise BodyError("body", f"the body is larger than {MAX_BODY_BYTES} bytes")
    raw = await request.content.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise BodyError("body", f"the body is larger than {MAX_BODY_BYTES} bytes")
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise BodyError("body", f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        body = json.loads(raw or b"{}", parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BodyError("body", "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BodyError("body", "the body must be a JSON object")
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's json would accept NaN and Infinity


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large a number")  # 1e400 would be infinity
    return value


def json_depth(raw: bytes) -> int:
    """The deepest nesting of ``[`` and ``{`` in a JSON text, ignoring those inside strings,
    so that nesting is refused before the parser recurses into it."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


class ControlApi:
    def __init__(
        self,
        plane: MetadataPlane,
        reset_hooks: list[Callable[[], None]],
        identities: Mapping[str, IdentityHook],
    ) -> None:
        self.plane = plane
        self.reset_hooks = reset_hooks
        self.identities = identities

    async def info(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "service": "spot-harness fake metadata server",
                "clouds": sorted(NOTICE_BODIES),
                "time": self.plane.iso(self.plane.now()),
                "clock": self.plane.now(),
            }
        )

    async def post_notice(self, request: web.Request) -> web.Response:
        try:
            notices = schedule_notice(self.plane, await _json_object(request))
        except BodyError as bad:
            return _error(400, str(bad), bad.field)
        return web.json_response(notices_json(notices, self.plane), status=201)

    async def list_notices(self, request: web.Request) -> web.Response:
        cloud = request.query.get("cloud")
        if cloud is not None and cloud not in CLOUDS:
            return _error(400, f"'cloud' must be one of {', '.join(CLOUDS)}", "cloud")
        notices = self.plane.notices(cloud)
        return web.json_response({"notices": [n.to_json(self.plane) for n in notices]})

    async def get_notice(self, request: web.Request) -> web.Response:
        notice_id = request.match_info["id"]
        try:
            notice = self.plane.get_notice(notice_id)
        except KeyError:
            return _error(404, f"no notice {notice_id!r}", "id")
        return web.json_response(notice.to_json(self.plane))

    async def delete_notice(self, request: web.Request) -> web.Response:
        notice_id = request.match_info["id"]
        try:
            notice = self.plane.cancel_notice(notice_id)
        except KeyError:
            return _error(404, f"no notice {notice_id!r}", "id")
        return web.json_response(notice.to_json(self.plane))

    async def post_fault(self, request: web.Request) -> web.Response:
        try:
            fault = add_fault(self.plane, await _json_object(request))
        except BodyError as bad:
            return _error(400, str(bad), bad.field)
        return web.json_response(fault_json(fault, self.plane), status=201)

    async def list_faults(self, request: web.Request) -> web.Response:
        faults = [fault_json(f, self.plane) for f in self.plane.faults()]
        return web.json_response({"faults": faults})

    async def delete_fault(self, request: web.Request) -> web.Response:
        fault_id = request.match_info["id"]
        try:
            fault = self.plane.remove_fault(fault_id)
        except KeyError:
            return _error(404, f"no fault {fault_id!r}", "id")
        return web.json_response(fault_json(fault, self.plane))

    async def list_requests(self, request: web.Request) -> web.Response:
        """Entries from sequence number ``since`` on. Sequence numbers count every request
        served since the last reset, so they stay valid once the log drops its oldest
        entries; ``dropped`` says how many it dropped."""
        raw = request.query.get("since", "0")
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
            return _error(400, "'since' must be a sequence number (0, 1, 2, ...)", "since")
        log = self.plane.requests
        return web.json_response(
            {
                "total": log.total,
                "dropped": log.dropped,
                "limit": log.maxlen,
                "requests": [request_json(n, r, self.plane) for n, r in log.since(int(raw))],
            }
        )

    async def get_identity(self, request: web.Request) -> web.Response:
        hook = self._identity(request)
        if isinstance(hook, web.Response):
            return hook
        return web.json_response(hook.show())

    async def patch_identity(self, request: web.Request) -> web.Response:
        hook = self._identity(request)
        if isinstance(hook, web.Response):
            return hook
        try:
            return web.json_response(hook.update(await _json_object(request)))
        except BodyError as bad:
            return _error(400, str(bad), bad.field)

    def _identity(self, request: web.Request) -> IdentityHook | web.Response:
        cloud = request.match_info["cloud"]
        hook = self.identities.get(cloud)
        if hook is None:
            known = ", ".join(sorted(self.identities)) or "none"
            return _error(404, f"no settable identity for {cloud!r} (served: {known})", "cloud")
        return hook

    async def reset(self, request: web.Request) -> web.Response:
        self.plane.reset()
        for hook in self.reset_hooks:
            hook()
        return web.json_response({"reset": True, "time": self.plane.iso(self.plane.now())})

    async def unknown(self, request: web.Request) -> web.Response:
        return _error(
            404, f"no control endpoint {request.method} {request.path}; see GET {PREFIX}/"
        )


def install(
    app: web.Application,
    plane: MetadataPlane,
    reset_hooks: list[Callable[[], None]],
    identities: Mapping[str, IdentityHook] | None = None,
) -> ControlApi:
    api = ControlApi(plane, reset_hooks, identities if identities is not None else {})
    add = app.router.add_route
    add("GET", f"{PREFIX}/", api.info)
    add("GET", PREFIX, api.info)
    add("POST", f"{PREFIX}/notices", api.post_notice)
    add("GET", f"{PREFIX}/notices", api.list_notices)
    add("GET", f"{PREFIX}/notices/{{id}}", api.get_notice)
    add("DELETE", f"{PREFIX}/notices/{{id}}", api.delete_notice)
    add("POST", f"{PREFIX}/faults", api.post_fault)
    add("GET", f"{PREFIX}/faults", api.list_faults)
    add("DELETE", f"{PREFIX}/faults/{{id}}", api.delete_fault)
    add("GET", f"{PREFIX}/requests", api.list_requests)
    add("GET", f"{PREFIX}/identity/{{cloud}}", api.get_identity)
    add("PATCH", f"{PREFIX}/identity/{{cloud}}", api.patch_identity)
    add("POST", f"{PREFIX}/reset", api.reset)
    add("*", f"{PREFIX}/{{tail:.*}}", api.unknown)
    return api
