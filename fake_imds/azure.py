"""The Azure dialect: Scheduled Events (``/metadata/scheduledevents``) and ``/metadata/instance``.

Like Azure's Instance Metadata Service: every request needs ``Metadata: true`` and a known
``api-version`` (400 with Azure's JSON error otherwise) and must not carry ``X-Forwarded-For``;
with throttling on, more than 5 requests in a second get 429.

Notices of cloud ``azure`` render as events. ``kind`` is the event type in lower case
(``preempt``, ``terminate``, ``freeze``, ``reboot``, ``redeploy``); ``issued_at`` is when the
event appears (``Scheduled``), ``deadline`` its ``NotBefore``, when it starts on its own. An
approval (``POST`` with ``StartRequests``) starts it at once: the notice's state becomes
``started`` and its deadline moves to the approval time. A ``Started`` event keeps its
``EventId``, shows a blank ``NotBefore``, and vanishes when it is over (a Freeze after its
duration, a Reboot or Redeploy after ``params["window"]``; a Preempt or Terminate never, the
VM is gone). ``DocumentIncarnation`` rises every time the document changes.

An approval for a well-formed id that is not (or no longer) in the document is accepted with
200 and changes nothing, as is a second approval of the same event.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web
from pydantic import Field, StrictInt, field_validator

from fake_imds.control import At, Duration, NoticeBody, NoticeSpec, literal_value
from fake_imds.middleware import NOTE, Unfaked, forwarded, reason
from fake_imds.model import MetadataPlane, Notice, RateWindow
from fake_imds.vocabulary import MIN_LEAD

if TYPE_CHECKING:
    from fake_imds.server import DialectSite

SCHEDULED_EVENTS_PATH = "/metadata/scheduledevents"
INSTANCE_PATH = "/metadata/instance"
SCHEDULED_EVENTS_VERSIONS = (
    "2017-03-01", "2017-08-01", "2017-11-01", "2019-01-01", "2019-08-01", "2020-07-01",
)  # fmt: skip
INSTANCE_VERSIONS = (
    "2017-03-01", "2017-04-02", "2017-08-01", "2017-10-01", "2017-12-01", "2018-02-01",
    "2018-04-02", "2018-10-01", "2019-02-01", "2019-03-11", "2019-04-30", "2019-06-01",
    "2019-06-04", "2019-08-01", "2019-08-15", "2019-11-01", "2020-06-01", "2020-07-15",
    "2020-09-01", "2020-10-01", "2020-12-01", "2021-01-01", "2021-02-01", "2021-03-01",
    "2021-05-01", "2021-08-01", "2021-10-01", "2021-11-01", "2021-11-15", "2021-12-13",
    "2023-07-01",
)  # fmt: skip
#: Azure's per-VM request limit when throttling is on (requests per second).
THROTTLE_LIMIT = 5
#: Content type of the JSON documents (with ``charset=utf-8``, as ``web.json_response`` sends).
JSON = "application/json"

EventType = Literal["Freeze", "Reboot", "Redeploy", "Preempt", "Terminate"]
EVENT_TYPES: dict[str, EventType] = {
    "freeze": "Freeze",
    "reboot": "Reboot",
    "redeploy": "Redeploy",
    "preempt": "Preempt",
    "terminate": "Terminate",
}
#: Minimum notice per event type, as Azure documents it (seconds).
DEFAULT_LEADS = {
    "freeze": 15 * 60.0,
    "reboot": 15 * 60.0,
    "redeploy": 10 * 60.0,
    "preempt": 30.0,
    "terminate": 5 * 60.0,
}
MIN_PREEMPT_LEAD = MIN_LEAD[("azure", "preempt")]
DESCRIPTIONS = {
    "freeze": "Host server is undergoing maintenance.",
    "reboot": "Virtual machine is going to be restarted as requested by authorized user.",
    "redeploy": "Virtual machine is going to be moved to a new host.",
    "preempt": "Virtual machine is being evicted from Azure Spot capacity.",
    "terminate": "Virtual machine is going to be deleted as requested by authorized user.",
}
_EVENT_NAMESPACE = uuid.UUID("5d6f6f4e-8a53-4d8e-9a53-0f1a7e1c2b3d")


@dataclass(frozen=True)
class AzureOptions:
    """The VM as IMDS describes it (a Spot VM by default) and whether throttling is on."""

    vm_name: str = "spot-worker-1"
    vm_id: str = "02aab8a4-74ef-476e-8182-f6d2ba4166a6"
    location: str = "westeurope"
    vm_size: str = "Standard_NC4as_T4_v3"
    resource_group: str = "spot-harness"
    subscription_id: str = "8d10da13-8125-4ba9-a717-bf7490507b3d"
    priority: str = "Spot"
    eviction_policy: str = "Deallocate"
    zone: str = "1"
    private_ip: str = "10.0.0.4"
    throttle: bool = False


# -- rendering (pure functions of notices and the clock) ----------------------------------------


def event_id(notice: Notice) -> str:
    """A stable GUID per notice: the same from Scheduled to Started."""
    return _event_id(notice.id)


@functools.lru_cache(maxsize=1024)  # asked for every event on every request
def _event_id(notice_id: str) -> str:
    return str(uuid.uuid5(_EVENT_NAMESPACE, notice_id)).upper()


def started_at(notice: Notice) -> float:
    """When the event starts: on approval, else at its NotBefore."""
    return float(notice.params.get("started_at", notice.deadline))


def event_ends_at(notice: Notice) -> float | None:
    """When a Started event leaves the document (None: it stays, the VM is gone)."""
    if notice.kind in ("preempt", "terminate"):
        return None
    if notice.kind == "freeze":
        return started_at(notice) + max(0.0, float(notice.params.get("duration", 0)))
    return started_at(notice) + float(notice.params.get("window", 60.0))


def render_event(notice: Notice, plane: MetadataPlane, vm_name: str) -> dict[str, Any] | None:
    """The event as Azure shows it now, or None when it is not (or no longer) in the document."""
    now = plane.now()
    if not notice.visible(now):
        return None
    started = notice.state == "started" or now >= notice.deadline
    ends = event_ends_at(notice)
    if started and ends is not None and now >= ends and now > started_at(notice):
        return None
    return {
        "EventId": event_id(notice),
        "EventStatus": "Started" if started else "Scheduled",
        "EventType": EVENT_TYPES[notice.kind],
        "ResourceType": "VirtualMachine",
        "Resources": [vm_name],
        "NotBefore": "" if started else plane.rfc1123(notice.deadline),
        "Description": str(notice.params.get("description", DESCRIPTIONS[notice.kind])),
        "EventSource": str(notice.params.get("source", "Platform")),
        "DurationInSeconds": int(notice.params.get("duration", -1)),
    }


def render_times(notice: Notice, plane: MetadataPlane) -> None:
    """Every time the document could show of ``notice`` (raises if one is past the calendar)."""
    if notice.cloud == "azure" and notice.kind in EVENT_TYPES:
        plane.rfc1123(notice.deadline)
        ends = event_ends_at(notice)
        if ends is not None:
            plane.rfc1123(ends)


def render_events(plane: MetadataPlane, vm_name: str) -> list[dict[str, Any]]:
    notices = sorted(plane.notices("azure"), key=lambda n: (n.issued_at, n.id))
    events = (render_event(n, plane, vm_name) for n in notices if n.kind in EVENT_TYPES)
    return [e for e in events if e is not None]


def instance_document(options: AzureOptions) -> dict[str, Any]:
    """``/metadata/instance``: the parts clients read to tell a Spot VM and its eviction."""
    return {
        "compute": {
            "azEnvironment": "AzurePublicCloud",
            "evictionPolicy": options.eviction_policy,
            "isHostCompatibilityLayerVm": "false",
            "location": options.location,
            "name": options.vm_name,
            "osType": "Linux",
            "priority": options.priority,
            "provider": "Microsoft.Compute",
            "resourceGroupName": options.resource_group,
            "resourceId": (
                f"/subscriptions/{options.subscription_id}/resourceGroups/"
                f"{options.resource_group}/providers/Microsoft.Compute/virtualMachines/"
                f"{options.vm_name}"
            ),
            "subscriptionId": options.subscription_id,
            "tags": "",
            "vmId": options.vm_id,
            "vmScaleSetName": "",
            "vmSize": options.vm_size,
            "zone": options.zone,
        },
        "network": {
            "interface": [
                {
                    "ipv4": {
                        "ipAddress": [
                            {"privateIpAddress": options.private_ip, "publicIpAddress": ""}
                        ],
                        "subnet": [{"address": "10.0.0.0", "prefix": "24"}],
                    },
                    "ipv6": {"ipAddress": []},
                    "macAddress": "000D3A9B1C2D",
                }
            ]
        },
    }


# -- HTTP ---------------------------------------------------------------------------------------


def azure_error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


#: Azure IMDS' documented wording for the statuses a fault may inject.
_FAULT_MESSAGES = {
    410: "Gone. Retry after some time for a max of 70 seconds.",
    429: "Too many requests",
    500: "Internal server error. Retry after some time.",
    503: "Service unavailable. Retry after some time.",
}


def fault_page(status: int) -> web.Response:
    """A fault's injected error status as Azure's JSON error document."""
    return azure_error(status, _FAULT_MESSAGES.get(status, f"{reason(status)}. Retry later."))


def _newest(versions: Sequence[str]) -> list[str]:
    return sorted(versions, reverse=True)[:3]


def _check_request(request: web.Request, versions: Sequence[str]) -> web.Response | None:
    """Azure's checks, in its order: proxy, Metadata header, api-version."""
    if forwarded(request):
        return azure_error(400, "Bad request. Request must not contain X-Forwarded-For header.")
    if request.headers.get("Metadata", "").lower() != "true":
        return azure_error(400, "Bad request. Required metadata header not specified")
    version = request.query.get("api-version")
    if version is None:
        return azure_error(
            400,
            "Bad request. api-version was not specified in the request. For more information "
            "refer to aka.ms/azureimds",
            **{"newest-versions": _newest(versions)},
        )
    if version not in versions:
        return azure_error(
            400,
            "Bad request. api-version is invalid or was not specified in the request. For "
            "more information refer to aka.ms/azureimds",
            **{"newest-versions": _newest(versions)},
        )
    return None


class MalformedApproval(ValueError):
    pass


def parse_start_requests(raw: str) -> list[str]:
    """The EventIds of a ``{"StartRequests": [{"EventId": "..."}]}`` body."""
    try:
        body = json.loads(raw)
    except ValueError:
        raise MalformedApproval("the body is not JSON") from None
    requests = body.get("StartRequests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        raise MalformedApproval('expected {"StartRequests": [{"EventId": "<id>"}]}')
    ids = []
    for item in requests:
        value = item.get("EventId") if isinstance(item, dict) else None
        if not isinstance(value, str):
            raise MalformedApproval("every StartRequests entry needs an EventId string")
        try:
            uuid.UUID(value)
        except ValueError:
            raise MalformedApproval(f"EventId {value!r} is not a valid event id") from None
        ids.append(value.upper())
    return ids


class AzureMetadata:
    """The dialect's state over one plane: DocumentIncarnation and the throttle window."""

    def __init__(
        self, plane: MetadataPlane, options: AzureOptions | None = None, *, fallback: bool = False
    ) -> None:
        self.plane = plane
        self.options = options or AzureOptions()
        #: Whether paths this fake does not have go to the server's fallback (a real service).
        self.fallback = fallback
        self._incarnation = 0
        self._events: list[dict[str, Any]] = []
        self._encoded: bytes | None = None  # the document as served, while its events hold
        self._window = RateWindow(THROTTLE_LIMIT)

    def on_change(self, _notice: Notice | None = None) -> None:
        """Re-render on every plane change, so no change goes uncounted between two polls."""
        self._render()

    def document(self) -> dict[str, Any]:
        self._render()
        return {"DocumentIncarnation": self._incarnation, "Events": list(self._events)}

    def encoded(self) -> bytes:
        """:meth:`document` as JSON, encoded once per change of the document: the events are
        rendered anew on every request (they depend on the time), only their encoding is kept
        while they are equal to the last ones."""
        self._render()
        if self._encoded is None:
            document = {"DocumentIncarnation": self._incarnation, "Events": self._events}
            self._encoded = json.dumps(document).encode()
        return self._encoded

    def _render(self) -> None:
        # Events hold strings, ints and lists of strings: equal as values exactly when their
        # JSON is equal, so comparing them counts the same changes as comparing their text.
        events = render_events(self.plane, self.options.vm_name)
        if events != self._events:
            self._events = events
            self._incarnation += 1
            self._encoded = None

    def approve(self, ids: Sequence[str]) -> list[str]:
        """Start the named events now; the ids of the notices they are (started or not)."""
        now = self.plane.now()
        matched = []
        wanted = set(ids)
        for notice in self.plane.visible_notices("azure"):
            if event_id(notice) not in wanted or render_event(notice, self.plane, "") is None:
                continue
            matched.append(notice.id)
            if notice.state == "started" or now >= notice.deadline:
                continue  # already started: approving again is fine and changes nothing
            params = {**notice.params, "started_at": now}
            self.plane.update_notice(notice.id, state="started", deadline=now, params=params)
        return matched

    def _refusal(self, request: web.Request, versions: Sequence[str]) -> web.Response | None:
        """Azure's header and api-version checks, then its throttling (when turned on)."""
        refused = _check_request(request, versions)
        if refused is None and self.options.throttle and not self._window.admit(self.plane.now()):
            return azure_error(429, "Too many requests")
        return refused

    async def scheduled_events(self, request: web.Request) -> web.Response:
        refused = self._refusal(request, SCHEDULED_EVENTS_VERSIONS)
        if refused is not None:
            return refused
        if request.method == "GET":
            return web.Response(body=self.encoded(), content_type=JSON, charset="utf-8")
        if request.method != "POST":
            return azure_error(405, f"The requested method {request.method} is not allowed.")
        try:
            ids = parse_start_requests(await request.text())
        except MalformedApproval as error:
            return azure_error(400, f"Bad request. {error}")
        request[NOTE] = {"approved": ids, "notices": self.approve(ids)}
        return web.Response(status=200)

    async def not_found(self, request: web.Request) -> web.Response:
        """Any other ``/metadata/`` path: Azure's checks first, then its JSON 404."""
        if self.fallback:
            raise Unfaked(request.path)
        refused = _check_request(request, INSTANCE_VERSIONS)
        return refused or azure_error(404, "Not found")

    async def instance(self, request: web.Request) -> web.Response:
        refused = self._refusal(request, INSTANCE_VERSIONS)
        if refused is not None:
            return refused
        if request.method != "GET":
            return azure_error(405, f"The requested method {request.method} is not allowed.")
        node: Any = instance_document(self.options)
        for part in [p for p in request.match_info.get("tail", "").split("/") if p]:
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return azure_error(404, "Not found")
        if request.query.get("format") == "text":
            if isinstance(node, dict | list):
                return azure_error(400, "Bad request. format=text is only for leaf values")
            return web.Response(text=str(node), content_type="text/plain")
        return web.json_response(node)


# -- notices (control API) ----------------------------------------------------------------------
class AzureNotice(NoticeBody):
    """An Azure scheduled event; ``lead`` defaults to Azure's documented notice (Preempt 30 s
    and never less, Terminate 5 min, Redeploy 10 min, Freeze and Reboot 15 min)."""

    cloud: Literal["azure"]
    kind: str
    action: str | None = None
    lead: Duration
    at: At = None
    source: Literal["Platform", "User"] = Field(default="Platform", description="EventSource")
    description: str | None = Field(
        default=None, min_length=1, max_length=1024, description="default: per kind"
    )

    @field_validator("action", mode="before")
    @classmethod
    def _action_is_the_kind(cls, action: Any) -> Any:
        kind = literal_value(cls, "kind")
        if action is not None and action != kind:
            raise ValueError(f"'action' of an azure {kind} event is {kind!r}; omit it")
        return action

    def specs(self, plane: MetadataPlane) -> Sequence[NoticeSpec]:
        # source, description if given, and the kind's own: a freeze's duration, a window
        shared = {"cloud", "kind", "action", "lead", "at"}
        params = self.model_dump(exclude=shared, exclude_none=True)
        return [NoticeSpec("azure", self.kind, self.kind, self.lead, self.at, params)]


class AzurePreemptBody(AzureNotice):
    """Preempt: the Spot VM is evicted at the deadline."""

    kind: Literal["preempt"] = "preempt"
    action: Literal["preempt"] | None = None
    lead: Duration = Field(default=DEFAULT_LEADS["preempt"], description="at least 30s")

    @field_validator("lead")
    @classmethod
    def _at_least_azures_notice(cls, lead: float) -> float:
        if lead < MIN_PREEMPT_LEAD:
            raise ValueError(f"'lead': Azure gives a Preempt at least 30s notice, got {lead:g}s")
        return lead


class AzureTerminateBody(AzureNotice):
    """Terminate: the VM is deleted at the deadline."""

    kind: Literal["terminate"]
    action: Literal["terminate"] | None = None
    lead: Duration = DEFAULT_LEADS["terminate"]
    source: Literal["Platform", "User"] = Field(default="User", description="EventSource")


class AzureFreezeBody(AzureNotice):
    """Freeze: the VM is paused for ``duration`` seconds."""

    kind: Literal["freeze"]
    action: Literal["freeze"] | None = None
    lead: Duration = DEFAULT_LEADS["freeze"]
    duration: StrictInt = Field(default=5, ge=0, le=3600, description="seconds paused")


class AzureRebootBody(AzureNotice):
    """Reboot; the Started event stays ``window`` long."""

    kind: Literal["reboot"]
    action: Literal["reboot"] | None = None
    lead: Duration = DEFAULT_LEADS["reboot"]
    window: Duration = Field(default=60.0, description="how long the Started event stays")


class AzureRedeployBody(AzureNotice):
    """Redeploy to another host; the Started event stays ``window`` long."""

    kind: Literal["redeploy"]
    action: Literal["redeploy"] | None = None
    lead: Duration = DEFAULT_LEADS["redeploy"]
    window: Duration = Field(default=60.0, description="how long the Started event stays")


#: The Azure kinds of ``POST /_harness/v1/notices``, the default first.
NOTICE_BODIES: tuple[type[NoticeBody], ...] = (
    AzurePreemptBody,
    AzureTerminateBody,
    AzureFreezeBody,
    AzureRebootBody,
    AzureRedeployBody,
)


def install(site: DialectSite) -> None:
    """Serve Scheduled Events and instance metadata; ``site.options`` may give AzureOptions."""
    options = site.options(AzureOptions())
    if not isinstance(options, AzureOptions):
        raise TypeError(f"azure options must be AzureOptions, got {type(options).__name__}")
    metadata = AzureMetadata(site.plane, options, fallback=site.has_fallback)
    site.plane.add_renderer(lambda notice: render_times(notice, site.plane))
    site.plane.subscribe(metadata.on_change)
    site.on_reset(metadata.on_change)
    site.add_route("*", SCHEDULED_EVENTS_PATH, metadata.scheduled_events)
    site.add_route("*", INSTANCE_PATH, metadata.instance)
    site.add_route("*", INSTANCE_PATH + "/{tail:.*}", metadata.instance)
    site.add_route("*", "/metadata/{tail:.*}", metadata.not_found)
    site.error_page(fault_page)
