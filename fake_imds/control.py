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
``GET    requests``        the served-request log (``?since=N`` skips the first N)
``POST   reset``           forget notices, faults and the log
=========================  ==================================================================

``POST notices`` dispatches on ``cloud`` to :data:`NOTICE_PARSERS`: each cloud's module
provides ``parse_notice(body, plane) -> Sequence[NoticeSpec]`` and is registered there by name,
so a cloud adds its notice kinds without touching this module's logic. Malformed bodies get
``400 {"error": "...", "field": "<name>"}``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast, get_args

from aiohttp import web

from fake_imds.model import CLOUDS, Cloud, Fault, FaultKind, MetadataPlane, Notice, ServedRequest
from harness.units import DURATION_HELP, UnitError, parse_duration

PREFIX = "/_harness/v1"


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


# -- body field helpers, for every cloud's parser -----------------------------------------------
def check_fields(body: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Refuse unknown fields, so a typo (``leed``) is an error rather than silently ignored."""
    allowed_set = set(allowed)
    for name in body:
        if name not in allowed_set:
            known = ", ".join(sorted(allowed_set))
            raise BodyError(name, f"unknown field {name!r}; allowed here: {known}")


def duration_field(body: Mapping[str, Any], name: str, default: float | None = None) -> float:
    value = body.get(name)
    if value is None:
        if default is None:
            raise BodyError(name, f"{name!r} is required: {DURATION_HELP}")
        return default
    try:
        return parse_duration(value)
    except (UnitError, TypeError, AttributeError):
        raise BodyError(name, f"{name!r}: expected {DURATION_HELP}, got {value!r}") from None


def choice_field(
    body: Mapping[str, Any], name: str, choices: Sequence[str], default: str | None = None
) -> str:
    value = body.get(name, default)
    if value is None:
        raise BodyError(name, f"{name!r} is required: one of {', '.join(choices)}")
    if value not in choices:
        raise BodyError(name, f"{name!r} must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def string_field(body: Mapping[str, Any], name: str, default: str | None = None) -> str:
    value = body.get(name, default)
    if not isinstance(value, str) or not value:
        raise BodyError(name, f"{name!r} must be a non-empty string, got {value!r}")
    return value


def int_field(
    body: Mapping[str, Any], name: str, default: int, *, low: int, high: int | None = None
) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BodyError(name, f"{name!r} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"between {low} and {high}"
        raise BodyError(name, f"{name!r} must be {bounds}, got {value}")
    return value


def at_field(body: Mapping[str, Any], plane: MetadataPlane, name: str = "at") -> float | None:
    """``at``: an absolute ISO-8601 time (``2026-01-01T00:05:00Z``) or ``+<duration>`` from now.

    Returns a clock instant, or ``None`` when absent (meaning: now).
    """
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BodyError(name, f"{name!r} must be an ISO-8601 time or +<duration>, got {value!r}")
    if value.startswith("+"):
        return plane.now() + duration_field({name: value[1:]}, name)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BodyError(
            name,
            f"{name!r} must be an ISO-8601 time such as 2026-01-01T00:05:00Z, or +<duration> "
            f"such as +30s, got {value!r}",
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return plane.at_calendar(when)


# -- faults -------------------------------------------------------------------------------------
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
_FAULT_FIELDS = ("kind", "path", "for", "status", "latency", "limit")


def parse_fault(body: Mapping[str, Any]) -> tuple[FaultKind, float | None, dict[str, Any]]:
    """(kind, duration, Fault params) from a ``POST faults`` body."""
    check_fields(body, _FAULT_FIELDS)
    kind = cast(FaultKind, choice_field(body, "kind", FAULT_KINDS))
    pattern = string_field(body, "path", "*")
    if not pattern.startswith(("/", "*")):
        raise BodyError(
            "path",
            f"'path' is a pattern on the request path (/latest/meta-data/*), "
            f"it must start with / or *, got {pattern!r}",
        )
    duration = duration_field(body, "for") if body.get("for") is not None else None
    params: dict[str, Any] = {"pattern": pattern}
    if kind == "status":
        params["status"] = int_field(body, "status", 500, low=400, high=599)
    elif kind == "latency":
        params["seconds"] = duration_field(body, "latency")
    elif kind == "throttle":
        params["limit"] = int_field(body, "limit", 5, low=1)
    return kind, duration, params


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


def request_json(served: ServedRequest, plane: MetadataPlane) -> dict[str, Any]:
    return {
        "t": round(served.t, 6),
        "time": plane.calendar(served.t).isoformat(timespec="milliseconds"),
        "method": served.method,
        "path": served.path,
        "status": served.status,
        "remote": served.remote,
        "dialect": served.dialect,
        "fault": served.fault,
    }


# -- what the handlers do, callable without HTTP (the sync wrapper, the runner) ---------------
def schedule_notice(plane: MetadataPlane, body: Mapping[str, Any]) -> list[Notice]:
    """Validate a ``POST notices`` body with its cloud's parser and schedule the notice(s)."""
    cloud = body.get("cloud", "aws")
    if cloud not in CLOUDS:
        raise BodyError("cloud", f"'cloud' must be one of {', '.join(CLOUDS)}, got {cloud!r}")
    specs = notice_parser(cloud)(body, plane)
    return [
        plane.add_notice(s.cloud, s.kind, s.action, lead=s.lead, at=s.at, params=s.params)
        for s in specs
    ]


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
    return plane.add_fault(kind, duration=duration, **params)


# -- handlers -----------------------------------------------------------------------------------
def _error(status: int, message: str, field_name: str | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if field_name is not None:
        body["field"] = field_name
    return web.json_response(body, status=status)


async def _json_object(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise BodyError("body", "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BodyError("body", "the body must be a JSON object")
    return body


class ControlApi:
    def __init__(self, plane: MetadataPlane, reset_hooks: list[Callable[[], None]]) -> None:
        self.plane = plane
        self.reset_hooks = reset_hooks

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
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            return _error(400, "'since' must be an integer index into the log", "since")
        log = list(self.plane.requests)[max(since, 0) :]
        return web.json_response(
            {
                "total": len(self.plane.requests),
                "requests": [request_json(r, self.plane) for r in log],
            }
        )

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
    app: web.Application, plane: MetadataPlane, reset_hooks: list[Callable[[], None]]
) -> ControlApi:
    api = ControlApi(plane, reset_hooks)
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
    add("POST", f"{PREFIX}/reset", api.reset)
    add("*", f"{PREFIX}/{{tail:.*}}", api.unknown)
    return api
