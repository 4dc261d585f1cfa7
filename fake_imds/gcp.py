"""The GCP metadata server dialect (``/computeMetadata/v1/``), rendered from the shared plane.

Like Compute Engine's metadata server: every request needs ``Metadata-Flavor: Google`` (403 with
Google's page otherwise) and must not carry ``X-Forwarded-For``; every response echoes
``Metadata-Flavor: Google`` and carries an ``ETag`` (a hash of the body). Leaves are
``application/text``; directories list their children (``key`` or ``key/``) and, with
``recursive=true``, are JSON with camelCase keys (``alt=text`` flattens them to lines).

Hanging GETs: ``wait_for_change=true`` answers once the rendered value's ETag differs from
``last_etag`` (default: the ETag at the time of the request), or with the unchanged value after
``timeout_sec``. Waiters sleep on the plane's change notification (no polling) and time out on
the loop clock, so any number of them are released the moment a notice makes the value change.

Notices of cloud ``gcp``:

- ``preemption``: ``instance/preempted`` turns ``TRUE`` at ``issued_at``; the ACPI soft off
  comes ``params["shutdown"]`` seconds (at most 30) before the ``deadline``, the hard off at
  the deadline. A lead longer than the shutdown period is the optional notice period.
- ``maintenance``: ``instance/maintenance-event`` is ``MIGRATE_ON_HOST_MAINTENANCE`` or
  ``TERMINATE_ON_HOST_MAINTENANCE`` from ``issued_at`` until the deadline, else ``NONE``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web
from pydantic import Field, ValidationInfo, field_validator

from fake_imds.control import At, Duration, NoticeBody, NoticeSpec
from fake_imds.middleware import NOTE, Unfaked, forwarded, reason
from fake_imds.model import MetadataPlane, Notice
from fake_imds.signals import GCP_MAX_SHUTDOWN
from fake_imds.vocabulary import GcpMaintenanceAction, GcpPreemptionAction

if TYPE_CHECKING:
    from fake_imds.server import DialectSite

PREFIX = "/computeMetadata/v1"
FLAVOR = "Google"
MAINTENANCE_VALUES = {
    "migrate": "MIGRATE_ON_HOST_MAINTENANCE",
    "terminate": "TERMINATE_ON_HOST_MAINTENANCE",
}
#: GCP gives about 60 s notice of host maintenance.
DEFAULT_MAINTENANCE_LEAD = 60.0

Tree = dict[str, Any]  # a directory: name -> Tree or leaf (str, int, list)


@dataclass(frozen=True)
class GcpIdentity:
    """The instance as the metadata server describes it (a Spot VM by default)."""

    instance_id: int = 4520031799277581759
    name: str = "spot-worker-1"
    zone: str = "us-central1-a"
    project_id: str = "spot-harness-sim"
    numeric_project_id: int = 123456789012
    machine_type: str = "g2-standard-8"
    internal_ip: str = "10.128.0.7"
    mac: str = "42:01:0a:80:00:07"
    provisioning_model: str = "SPOT"
    termination_action: str = "STOP"
    service_account: str = "123456789012-compute@developer.gserviceaccount.com"
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def hostname(self) -> str:
        return f"{self.name}.{self.zone}.c.{self.project_id}.internal"


# -- rendering (pure functions of the plane's notices and the clock) ----------------------------


def preempted(plane: MetadataPlane) -> str:
    """``TRUE`` once a preemption notice is in effect, else ``FALSE``."""
    return "TRUE" if plane.visible_notices("gcp", "preemption") else "FALSE"


def maintenance_event(plane: MetadataPlane) -> str:
    now = plane.now()
    pending = [n for n in plane.visible_notices("gcp", "maintenance") if now < n.deadline]
    if not pending:
        return "NONE"
    newest = max(pending, key=lambda n: (n.issued_at, n.id))
    return MAINTENANCE_VALUES.get(newest.action, "MIGRATE_ON_HOST_MAINTENANCE")


#: An access token lives an hour; a new one is issued every 55 minutes (five before expiry).
TOKEN_LIFETIME = 3600
TOKEN_RENEWAL = TOKEN_LIFETIME - 300


class JsonLeaf(str):
    """A leaf served as ``application/json`` and left out of recursive listings, like the
    service account's ``token``."""


def access_token(plane: MetadataPlane, identity: GcpIdentity) -> JsonLeaf:
    """``service-accounts/default/token``: a made-up OAuth token valid for an hour, so google-auth's
    compute-engine credentials refresh against the fake. Like the real server, a new token is
    handed out before the old one is within five minutes of expiring (google-auth would take
    such a token for expired already), so ``expires_in`` stays between 5 and 60 minutes."""
    now = plane.calendar(plane.now()).timestamp()
    issued = now - now % TOKEN_RENEWAL
    digest = hashlib.sha256(f"{identity.service_account}:{issued:.0f}".encode()).hexdigest()
    expires_in = int(issued + TOKEN_LIFETIME - now)
    token = {"access_token": f"ya29.fake-{digest[:48]}", "expires_in": expires_in}
    return JsonLeaf(json.dumps({**token, "token_type": "Bearer"}))


def metadata_tree(plane: MetadataPlane, identity: GcpIdentity) -> Tree:
    """The whole metadata tree as it is now."""
    project = identity.numeric_project_id
    spot = identity.provisioning_model == "SPOT"
    return {
        "instance": {
            "attributes": dict(identity.attributes),
            "cpu-platform": "Intel Cascade Lake",
            "description": "",
            "hostname": identity.hostname,
            "id": identity.instance_id,
            "image": "projects/debian-cloud/global/images/debian-12-bookworm-v20260101",
            "machine-type": f"projects/{project}/machineTypes/{identity.machine_type}",
            "maintenance-event": maintenance_event(plane),
            "name": identity.name,
            "network-interfaces": {
                "0": {
                    "ip": identity.internal_ip,
                    "mac": identity.mac,
                    "network": f"projects/{project}/networks/default",
                }
            },
            "preempted": preempted(plane),
            "scheduling": {
                "automatic-restart": "FALSE" if spot else "TRUE",
                "instance-termination-action": identity.termination_action,
                "on-host-maintenance": "TERMINATE" if spot else "MIGRATE",
                "preemptible": "TRUE" if spot else "FALSE",
                "provisioning-model": identity.provisioning_model,
            },
            "service-accounts": {
                "default": {
                    "aliases": "default",
                    "email": identity.service_account,
                    "scopes": "https://www.googleapis.com/auth/cloud-platform",
                    "token": access_token(plane, identity),
                },
            },
            "tags": "[]",
            "zone": f"projects/{project}/zones/{identity.zone}",
        },
        "project": {
            "attributes": {},
            "numeric-project-id": project,
            "project-id": identity.project_id,
        },
    }


def lookup(tree: Tree, path: str) -> Tree | str | int | None:
    """The node at ``path`` (``instance/scheduling/preemptible``), or None."""
    node: Any = tree
    for part in [p for p in path.split("/") if p]:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node  # type: ignore[no-any-return]


def _camel(key: str) -> str:
    head, *rest = key.split("-")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def to_json(node: Tree, *, under_attributes: bool = False) -> Any:
    """A directory as GCP's recursive JSON: camelCase keys (not under ``attributes``), numbered
    directories as arrays, numbers as numbers, ``tags`` as a JSON array."""
    if node and all(k.isdigit() for k in node):
        return [to_json(node[k]) for k in sorted(node, key=int)]
    result: dict[str, Any] = {}
    for key, value in node.items():
        name = key if under_attributes else _camel(key)
        if isinstance(value, JsonLeaf):
            continue
        if isinstance(value, dict):
            result[name] = to_json(value, under_attributes=key == "attributes")
        elif key == "tags" and not under_attributes:
            result[name] = json.loads(value)
        else:
            result[name] = value
    return result


def to_text(node: Tree | str | int, prefix: str = "") -> str:
    """``alt=text`` of a recursive directory: one ``path value`` line per leaf."""
    if not isinstance(node, dict):
        return f"{prefix} {node}\n" if prefix else f"{node}\n"
    return "".join(
        to_text(value, f"{prefix}/{key}" if prefix else key)
        for key, value in node.items()
        if not isinstance(value, JsonLeaf)
    )


def listing(node: Tree) -> str:
    return "".join(f"{key}/\n" if isinstance(value, dict) else f"{key}\n"
                   for key, value in node.items())  # fmt: skip


@dataclass(frozen=True)
class Rendered:
    body: str
    content_type: str

    @property
    def etag(self) -> str:
        return hashlib.sha256(self.body.encode()).hexdigest()[:16]


class NotFound(Exception):
    pass


class Redirect(Exception):
    pass


class BadRequest(Exception):
    pass


def render(
    plane: MetadataPlane, identity: GcpIdentity, path: str, query: Mapping[str, str]
) -> Rendered:
    """The response to ``GET /computeMetadata/v1/<path>`` now."""
    node = lookup(metadata_tree(plane, identity), path)
    if node is None:
        raise NotFound(path)
    recursive = query.get("recursive", "false").lower() == "true"
    # A recursive directory is JSON unless asked otherwise; a leaf is text unless asked.
    alt = query.get("alt", "json" if recursive and isinstance(node, dict) else "text")
    if alt not in ("json", "text"):
        raise BadRequest(f"Invalid alt parameter value: {alt}")
    if isinstance(node, JsonLeaf):
        return Rendered(str(node), "application/json")
    if not isinstance(node, dict):
        if alt == "json":
            return Rendered(json.dumps(node), "application/json")
        return Rendered(str(node), "application/text")
    if path and not path.endswith("/"):
        raise Redirect(path + "/")
    if not recursive:
        return Rendered(listing(node), "application/text")
    if alt == "text":
        return Rendered(to_text(node), "application/text")
    return Rendered(json.dumps(to_json(node), separators=(",", ":")), "application/json")


# -- HTTP -----------------------------------------------------------------------------------


def _google_error(status: int, why: str) -> web.Response:
    body = (
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n"
        f"  <title>Error {status} ({reason(status)})!!1</title>\n"
        f"  <p><b>{status}.</b> <ins>That\u2019s an error.</ins>\n"
        f"  <p>{why} <ins>That\u2019s all we know.</ins>\n"
    )
    return web.Response(
        status=status,
        text=body,
        content_type="text/html",
        headers={
            "Metadata-Flavor": FLAVOR,
            "Server": "Metadata Server for VM",
            "ETag": Rendered(body, "text/html").etag,
        },
    )


#: What Google's error pages say for the statuses a fault may inject.
_FAULT_WHY = {
    429: "We're sorry, but you have sent too many requests to us recently. Please try again later.",
    500: "The server encountered an error and could not complete your request.",
    502: "The server encountered a temporary error and could not complete your request. "
    "Please try again in 30 seconds.",
    503: "The service you requested is not available at this time. Please try again in 30 seconds.",
}


def fault_page(status: int) -> web.Response:
    """A fault's injected error status, worded as Google's front end words it."""
    why = _FAULT_WHY.get(status, "The server could not complete your request.")
    return _google_error(status, why)


def forbidden_without_flavor(path: str) -> web.Response:
    return _google_error(
        403,
        f"Your client does not have permission to get URL <code>{escape(path)}</code> from this "
        "server. Missing Metadata-Flavor:Google header.",
    )


def forbidden_forwarded(path: str) -> web.Response:
    return _google_error(
        403,
        f"Your client does not have permission to get URL <code>{escape(path)}</code> from this "
        "server. Request had X-Forwarded-For header: metadata is not served through a proxy.",
    )


def not_found(path: str) -> web.Response:
    return _google_error(
        404, f"The requested URL <code>{escape(path)}</code> was not found on this server."
    )


def _respond(rendered: Rendered) -> web.Response:
    return web.Response(
        body=rendered.body.encode(),
        headers={
            "Content-Type": rendered.content_type,
            "Metadata-Flavor": FLAVOR,
            "ETag": rendered.etag,
            "Server": "Metadata Server for VM",
            "X-XSS-Protection": "0",
            "X-Frame-Options": "SAMEORIGIN",
        },
    )


def _redirect(location: str) -> web.Response:
    """A directory asked for without its slash: 301 to the slash form, as GCP answers."""
    headers = {"Location": location, "Metadata-Flavor": FLAVOR, "ETag": Rendered(location, "").etag}
    return web.Response(status=301, headers=headers)


def _wait_params(query: Mapping[str, str]) -> tuple[bool, str | None, float | None]:
    wait = query.get("wait_for_change", "false").lower() == "true"
    timeout: float | None = None
    if "timeout_sec" in query:
        try:
            timeout = float(query["timeout_sec"])
        except ValueError:
            raise BadRequest(
                f"timeout_sec must be a number, got {query['timeout_sec']!r}"
            ) from None
        if timeout <= 0:
            raise BadRequest(f"timeout_sec must be positive, got {query['timeout_sec']!r}")
    return wait, query.get("last_etag"), timeout


def wait_note(request: web.Request) -> dict[str, Any] | None:
    """The request log's note on a hanging GET: that it waits, and its ``timeout_sec``."""
    query = request.query
    if query.get("wait_for_change", "false").lower() != "true":
        return None
    try:
        timeout: float | None = float(query["timeout_sec"]) if "timeout_sec" in query else None
    except ValueError:
        timeout = None
    return {"wait_for_change": True, "timeout_sec": timeout}


class GcpMetadata:
    """The dialect's handlers over one plane and one identity."""

    def __init__(
        self,
        plane: MetadataPlane,
        identity: GcpIdentity | None = None,
        *,
        fallback: bool = False,
    ) -> None:
        self.plane = plane
        self.identity = identity or GcpIdentity()
        #: Whether keys this fake does not have go to the server's fallback (a real service).
        self.fallback = fallback
        self._held: dict[asyncio.Task[Any], None] = {}  # in arrival order: released so

    @property
    def waiters(self) -> int:
        """How many hanging GETs are held right now."""
        return len(self._held)

    async def release_waiters(self, _app: web.Application | None = None) -> None:
        """Cancel every held GET (at shutdown), so closing the server never waits for them."""
        for task in list(self._held):
            task.cancel()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if forwarded(request):
            return forbidden_forwarded(path)
        if request.headers.get("Metadata-Flavor") != FLAVOR:
            return forbidden_without_flavor(path)
        if request.method != "GET":
            return _google_error(405, f"The request method {request.method} is not allowed.")
        sub = path[len(PREFIX) :].lstrip("/")
        try:
            wait, last_etag, timeout = _wait_params(request.query)
            rendered = self._render(sub, request.query)
            if wait:
                request[NOTE] = wait_note(request) or {}
                baseline = last_etag or rendered.etag
                rendered = await self._wait(sub, request.query, rendered, baseline, timeout)
        except NotFound:
            if self.fallback:
                raise Unfaked(path) from None
            return not_found(path)
        except Redirect as moved:
            query = f"?{request.query_string}" if request.query_string else ""
            return _redirect(f"{PREFIX}/{moved.args[0]}{query}")
        except BadRequest as error:
            return _google_error(400, escape(str(error)))
        return _respond(rendered)

    def _render(self, sub: str, query: Mapping[str, str]) -> Rendered:
        return render(self.plane, self.identity, sub, query)

    async def _wait(
        self,
        sub: str,
        query: Mapping[str, str],
        rendered: Rendered,
        baseline: str,
        limit: float | None,
    ) -> Rendered:
        """Hold the request until the ETag differs from ``baseline`` or ``limit`` s pass;
        ``rendered`` is the value now (just rendered: the plane has not changed since)."""
        task = asyncio.current_task()
        assert task is not None
        self._held[task] = None
        try:
            return await self._hold(sub, query, rendered, baseline, limit)
        finally:
            self._held.pop(task, None)

    async def _hold(
        self,
        sub: str,
        query: Mapping[str, str],
        rendered: Rendered,
        baseline: str,
        limit: float | None,
    ) -> Rendered:
        loop = asyncio.get_running_loop()
        ends = None if limit is None else loop.time() + limit
        while rendered.etag == baseline:
            version = self.plane.version
            remaining = None if ends is None else ends - loop.time()
            if remaining is not None and remaining <= 0:
                break
            try:
                await asyncio.wait_for(self.plane.wait_for_change(version), remaining)
            except TimeoutError:
                return self._render(sub, query)
            rendered = self._render(sub, query)
        return rendered


# -- notices (control API) --------------------------------------------------------------------
class GcpNotice(NoticeBody):
    cloud: Literal["gcp"]
    at: At = None


class GcpPreemptionBody(GcpNotice):
    """A preemption: ``instance/preempted`` TRUE and the ACPI soft off ``shutdown`` before the
    hard off (the deadline)."""

    kind: Literal["preemption"] = "preemption"
    action: GcpPreemptionAction = "terminate"
    lead: Duration = Field(default=GCP_MAX_SHUTDOWN, description="notice to hard off")
    shutdown: Duration | None = Field(
        default=None, description="soft off to hard off; default and at most 30s, <= lead"
    )

    @field_validator("shutdown")
    @classmethod
    def _within_lead(cls, shutdown: float | None, info: ValidationInfo) -> float | None:
        lead = info.data.get("lead")
        if shutdown is not None and lead is not None and shutdown > lead:
            raise ValueError("'shutdown' must not be longer than 'lead'")
        return shutdown

    def specs(self, plane: MetadataPlane) -> Sequence[NoticeSpec]:
        shutdown = self.shutdown if self.shutdown is not None else min(self.lead, GCP_MAX_SHUTDOWN)
        params = {"shutdown": shutdown}
        return [NoticeSpec("gcp", self.kind, self.action, self.lead, self.at, params)]


class GcpMaintenanceBody(GcpNotice):
    """A host maintenance event: ``instance/maintenance-event`` shows the action."""

    kind: Literal["maintenance"]
    action: GcpMaintenanceAction = "migrate"
    lead: Duration = DEFAULT_MAINTENANCE_LEAD

    def specs(self, plane: MetadataPlane) -> Sequence[NoticeSpec]:
        return [NoticeSpec("gcp", self.kind, self.action, self.lead, self.at)]


#: The GCP kinds of ``POST /_harness/v1/notices``, the default first.
NOTICE_BODIES: tuple[type[NoticeBody], ...] = (GcpPreemptionBody, GcpMaintenanceBody)


def soft_off_at(notice: Notice) -> float:
    """Clock time of a preemption's ACPI soft off (the hard off is ``notice.deadline``)."""
    return notice.deadline - float(notice.params.get("shutdown", GCP_MAX_SHUTDOWN))


GCP_KEY: web.AppKey[GcpMetadata] = web.AppKey("gcp_metadata")


def install(site: DialectSite) -> None:
    """Serve ``/computeMetadata/v1/``; ``site.options`` may give a :class:`GcpIdentity`."""
    identity = site.options(GcpIdentity())
    if not isinstance(identity, GcpIdentity):
        raise TypeError(f"gcp options must be a GcpIdentity, got {type(identity).__name__}")
    metadata = GcpMetadata(site.plane, identity, fallback=site.has_fallback)
    site.app[GCP_KEY] = metadata
    site.app.on_shutdown.append(metadata.release_waiters)
    for path in (PREFIX, PREFIX + "/{tail:.*}"):
        site.add_route("*", path, metadata.handle)
    site.error_page(fault_page)
    site.request_note(wait_note)
    # ``/`` is shared with AWS (whose root lists versions): a request carrying GCP's flavor
    # header is GCP's, which is how google-auth's ``ping`` tells it is on Compute Engine.
    site.answer_root(_gcp_root)


def _gcp_root(request: web.Request) -> web.Response | None:
    if request.headers.get("Metadata-Flavor") != FLAVOR:
        return None
    if forwarded(request):
        return forbidden_forwarded(request.path)
    return _respond(Rendered("computeMetadata/\n", "application/text"))
