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

``POST notices`` dispatches on ``cloud`` to :data:`NOTICE_PARSERS`: each cloud's module
provides ``parse_notice(body, plane) -> Sequence[NoticeSpec]`` and is registered there by name,
so a cloud adds its notice kinds without touching this module's logic. Malformed bodies get
``400 {"error": "...", "field": "<name>"}``: a value out of its range (:mod:`harness.bounds`),
a body over 64 KiB (413) or nesting deeper than 16 levels. Validate, then store: every notice
is rendered the way each dialect would show it before it is scheduled, so nothing the API
accepts can make a metadata path fail later.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol, Self, cast

from aiohttp import web
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
)

from fake_imds.model import Fault, MetadataPlane, Notice, RenderError, ServedRequest
from fake_imds.vocabulary import CLOUDS, Cloud, FaultKind
from harness.bounds import BOUNDS, MONTH, BoundError, check
from harness.units import DURATION_HELP, UnitError, format_duration, parse_duration

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
    """One notice a parser wants scheduled: arguments of :meth:`MetadataPlane.add_notice`."""

    cloud: Cloud
    kind: str
    action: str
    lead: float
    at: float | None = None
    params: dict[str, Any] = field(default_factory=dict)


NoticeParser = Callable[[Mapping[str, Any], MetadataPlane], Sequence[NoticeSpec]]

#: cloud -> its notice parser, or ``"module:function"`` naming one (imported when first used).
NOTICE_PARSERS: dict[str, NoticeParser | str] = {
    "aws": "fake_imds.aws:parse_notice",
    "gcp": "fake_imds.gcp:parse_notice",
    "azure": "fake_imds.azure:parse_notice",
    "webhook": "fake_imds.webhook:parse_notice",
    "kubernetes": "fake_imds.signals:parse_notice",
}


def notice_parser(cloud: str) -> NoticeParser:
    entry = NOTICE_PARSERS.get(cloud)
    if entry is None:
        known = ", ".join(sorted(NOTICE_PARSERS))
        raise BodyError("cloud", f"unknown cloud {cloud!r}; this server knows: {known}")
    if isinstance(entry, str):
        module_name, attr = entry.split(":")
        entry = cast(NoticeParser, getattr(importlib.import_module(module_name), attr))
        NOTICE_PARSERS[cloud] = entry
    return entry


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
            raise body_error(cls, invalid) from None


def body_error(model: type[BaseModel], invalid: ValidationError) -> BodyError:
    error = invalid.errors()[0]
    loc = error["loc"]
    name = str(loc[0]) if loc else "body"
    if error["type"] == "extra_forbidden":
        known = ", ".join(sorted(f.alias or n for n, f in model.model_fields.items()))
        return BodyError(name, f"unknown field {name!r}; allowed here: {known}")
    if error["type"] == "missing":
        return BodyError(name, f"{name!r} is required")
    message = error["msg"].removeprefix("Value error, ")
    if message.startswith(f"{name} = "):  # a bound: it names the field, value and range
        return BodyError(name, message)
    if message.startswith(f"`{name}`"):  # names the field already
        return BodyError(name, f"{message}, got {_short(error['input'])}")
    return BodyError(name, f"{name!r}: {message[:1].lower()}{message[1:]}, got {error['input']!r}")


def bounded_duration(bound: str) -> Callable[[Any], float | None]:
    """A pydantic validator: the duration grammar, then ``BOUNDS[bound]`` (null: absent)."""

    def validate(value: Any) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"expected {DURATION_HELP}")
        try:
            seconds = parse_duration(value)
        except UnitError:
            raise ValueError(f"expected {DURATION_HELP}") from None
        return check(bound, seconds, value)

    return validate


def _bounded_int(bound: str) -> Callable[[int], int]:
    def validate(value: int) -> int:
        check(bound, value)
        return value

    return validate


class FaultBody(Body):
    """``POST faults``: a failure of the metadata paths matching ``path``."""

    kind: FaultKind
    path: str = Field(default="*", min_length=1, max_length=1024)
    for_: Annotated[float | None, BeforeValidator(bounded_duration("for"))] = Field(
        default=None, alias="for"
    )
    status: StrictInt = Field(default=500, ge=400, le=599)
    latency: Annotated[float | None, BeforeValidator(bounded_duration("latency"))] = None
    limit: Annotated[StrictInt, AfterValidator(_bounded_int("limit"))] = 5


class NoticeEnvelope(Body):
    """What every ``POST notices`` body shares; the cloud's parser reads the rest."""

    model_config = ConfigDict(extra="allow", frozen=True)

    cloud: Cloud = "aws"
    kind: str | None = Field(default=None, max_length=64)
    action: str | None = Field(default=None, max_length=64)


# -- body field helpers, for every cloud's parser -----------------------------------------------
def check_fields(body: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Refuse unknown fields, so a typo (``leed``) is an error rather than silently ignored."""
    allowed_set = set(allowed)
    for name in body:
        if name not in allowed_set:
            known = ", ".join(sorted(allowed_set))
            raise BodyError(name, f"unknown field {name!r}; allowed here: {known}")


def duration_field(
    body: Mapping[str, Any], name: str, default: float | None = None, *, bound: str | None = None
) -> float:
    """A duration within ``BOUNDS[bound or name]`` (the default is trusted)."""
    value = body.get(name)
    if value is None:
        if default is None:
            raise BodyError(name, f"{name!r} is required: {DURATION_HELP}")
        return default
    try:
        return cast(float, bounded_duration(bound or name)(value))
    except BoundError as out_of_range:
        raise BodyError(name, str(out_of_range)) from None
    except ValueError:
        raise BodyError(name, f"{name!r}: expected {DURATION_HELP}, got {value!r}") from None


def choice_field(
    body: Mapping[str, Any], name: str, choices: Sequence[str], default: str | None = None
) -> str:
    value = body.get(name, default)
    if value is None:
        raise BodyError(name, f"{name!r} is required: one of {', '.join(choices)}")
    if not isinstance(value, str) or value not in choices:
        raise BodyError(name, f"{name!r} must be one of {', '.join(choices)}, got {value!r}")
    return value


def string_field(
    body: Mapping[str, Any], name: str, default: str | None = None, *, max_length: int = 1024
) -> str:
    value = body.get(name, default)
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise BodyError(
            name,
            f"{name!r} must be a non-empty string of at most {max_length} characters, "
            f"got {_short(value)}",
        )
    return value


def int_field(
    body: Mapping[str, Any], name: str, default: int, *, low: int, high: int | None = None
) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BodyError(name, f"{name!r} must be an integer, got {_short(value)}")
    if name in BOUNDS and high is None:
        high = int(BOUNDS[name].high)
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"between {low} and {high}"
        raise BodyError(name, f"{name!r} must be {bounds}, got {_short(value)}")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


#: How far from the server's clock an absolute ``at`` may be, either way.
AT_RANGE = MONTH


def at_field(body: Mapping[str, Any], plane: MetadataPlane, name: str = "at") -> float | None:
    """``at``: an absolute ISO-8601 time (``2026-01-01T00:05:00Z``) or ``+<duration>`` from now,
    within a month of the server's clock either way.

    Returns a clock instant, or ``None`` when absent (meaning: now).
    """
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BodyError(
            name, f"{name!r} must be an ISO-8601 time or +<duration>, got {_short(value)}"
        )
    if value.startswith("+"):
        return plane.now() + duration_field({name: value[1:]}, name)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        offset = (when - plane.calendar(plane.now())).total_seconds()
    except (ValueError, OverflowError):
        raise BodyError(
            name,
            f"{name!r} must be an ISO-8601 time such as 2026-01-01T00:05:00Z, or +<duration> "
            f"such as +30s, got {_short(value)}",
        ) from None
    if abs(offset) > AT_RANGE:
        raise BodyError(
            name,
            f"{name} = {value} is out of range: expected within {format_duration(AT_RANGE)} "
            f"of the server's clock ({plane.iso(plane.now())})",
        )
    return plane.now() + offset


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
    """Validate a ``POST notices`` body with its cloud's parser, render every notice it makes
    the way each dialect would show it, and only then schedule them (all or none)."""
    if body.get("cloud", "aws") not in CLOUDS:
        cloud = body.get("cloud")
        raise BodyError("cloud", f"'cloud' must be one of {', '.join(CLOUDS)}, got {cloud!r}")
    envelope = NoticeEnvelope.parse(body)
    specs = notice_parser(envelope.cloud)(body, plane)
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
                "clouds": sorted(NOTICE_PARSERS),
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
