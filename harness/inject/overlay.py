"""The on-host agent's metadata overlay: fake interruption paths, the real IMDS for the rest.

``harness agent`` serves the AWS dialect of the fake metadata plane, restricted to the paths that
carry interruption signals (``spot/*``, ``events/*``, ``autoscaling/*``) plus the IMDSv2 token
endpoint. Every other path (credentials, identity document, instance id, user data, ...) and every
interruption path with no fake notice in effect goes to the real metadata service, so a job's
SDKs keep working and a real notice still shows through.

Tokens: clients get their IMDSv2 token from the overlay (the fake checks it as IMDS would). For a
pass-through request the overlay sends its own upstream token instead, fetched once and renewed
before it expires; the client's token never leaves the host's overlay.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from aiohttp import web

from fake_imds import aws
from fake_imds.eventbridge import EventSink
from fake_imds.middleware import Unfaked, error_page
from fake_imds.server import DIALECTS, DialectSite, FakeImds, ImdsV2Mode
from harness.clock import Clock

DIALECT = "aws-overlay"
#: Metadata paths (after the version) the overlay fakes; the rest goes upstream.
FAKED_PATHS = (
    "api/token",
    "meta-data/spot",
    "meta-data/spot/*",
    "meta-data/events",
    "meta-data/events/*",
    "meta-data/autoscaling",
    "meta-data/autoscaling/*",
)
DEFAULT_UPSTREAM = "http://169.254.169.254"
UPSTREAM_TOKEN_TTL = 21600
#: Renew the upstream token this long before it expires.
TOKEN_MARGIN = 60.0
#: Response headers worth keeping from the real service.
_KEPT_HEADERS = ("Content-Type", "Last-Modified", "ETag", aws.TOKEN_TTL_HEADER)
_SENT_HEADERS = ("Accept", "User-Agent", "Accept-Encoding")

#: Where the real service tells the :class:`~fake_imds.aws.AwsOptions` identity fields.
_IDENTITY_PATHS = {
    "instance_id": "/latest/meta-data/instance-id",
    "instance_type": "/latest/meta-data/instance-type",
    "availability_zone": "/latest/meta-data/placement/availability-zone",
    "region": "/latest/meta-data/placement/region",
    "account_id": "/latest/dynamic/instance-identity/document",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def faked(path: str) -> bool:
    """Whether the overlay answers ``path`` itself (``/latest/meta-data/spot/instance-action``)."""
    parts = path.split("/", 2)
    rest = parts[2].strip("/") if len(parts) > 2 else ""
    return any(fnmatch.fnmatchcase(rest, pattern) for pattern in FAKED_PATHS)


class _OverlaySite(DialectSite):
    """The AWS dialect's site, with every route wrapped to answer only the faked paths."""

    def __init__(self, site: DialectSite) -> None:
        self.__dict__.update(site.__dict__)
        self.name = "aws"  # the AWS dialect reads its options and logs under its own name

    def add_route(self, method: str, path: str, handler: Handler) -> Any:
        return super().add_route(method, path, _only_faked(handler))


def _only_faked(handler: Handler) -> Handler:
    async def overlay(request: web.Request) -> web.StreamResponse:
        # The fake answers first, so its IMDSv2 checks (401, 403, 405) apply to every path; a
        # successful answer for a path it does not own is replaced by the real service's.
        response = await handler(request)
        if response.status == 200 and not faked(request.path):
            raise Unfaked
        return response

    return overlay


def install(site: DialectSite) -> None:
    """The ``aws-overlay`` dialect: the AWS dialect restricted to :data:`FAKED_PATHS`."""
    aws.install(_OverlaySite(site))


DIALECTS.setdefault(DIALECT, f"{__name__}:install")


class Upstream:
    """The real metadata service, reached with the overlay's own IMDSv2 token."""

    def __init__(self, base_url: str, clock: Clock, *, timeout: float = 2.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._token: str | None = None
        self._token_expires = 0.0

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, auto_decompress=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def token(self, *, renew: bool = False) -> str | None:
        """A valid upstream token, or None when the service takes no tokens (IMDSv1 only)."""
        now = self._clock.monotonic()
        if not renew and self._token and now < self._token_expires - TOKEN_MARGIN:
            return self._token
        headers = {aws.TOKEN_TTL_HEADER: str(UPSTREAM_TOKEN_TTL)}
        async with self._client().put(f"{self.base_url}/latest/api/token", headers=headers) as r:
            if r.status in (403, 404, 405):
                self._token = None
                return None
            r.raise_for_status()
            self._token = (await r.text()).strip()
        self._token_expires = now + UPSTREAM_TOKEN_TTL
        return self._token

    async def forward(self, request: web.Request) -> web.StreamResponse:
        """The fallback for every path the overlay does not fake."""
        headers = {k: request.headers[k] for k in _SENT_HEADERS if k in request.headers}
        try:
            status, body, kept = await self._fetch(request.method, request.path_qs, headers)
            if status == 401:  # our token went stale early (the service restarted): renew once
                await self.token(renew=True)
                status, body, kept = await self._fetch(request.method, request.path_qs, headers)
        except (aiohttp.ClientError, TimeoutError):
            return error_page(502)
        return web.Response(status=status, body=body, headers=kept)

    async def _fetch(
        self, method: str, path_qs: str, headers: Mapping[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        sent = dict(headers)
        token = await self.token()
        if token:
            sent[aws.TOKEN_HEADER] = token
        url = self.base_url + path_qs
        async with self._client().request(method, url, headers=sent, allow_redirects=False) as r:
            body = await r.read()
            kept = {k: r.headers[k] for k in _KEPT_HEADERS if k in r.headers}
            return r.status, body, kept

    async def get_text(self, path: str) -> str | None:
        """One metadata value (for the agent's own identity), or None."""
        try:
            status, body, _ = await self._fetch("GET", path, {})
        except (aiohttp.ClientError, TimeoutError):
            return None
        return body.decode(errors="replace").strip() if status == 200 else None


async def upstream_identity(upstream: Upstream) -> dict[str, str]:
    """The real instance's id, type and zone, for the overlay's own EventBridge events."""
    found: dict[str, str] = {}
    for name, path in _IDENTITY_PATHS.items():
        value = await upstream.get_text(path)
        if value is None:
            if not found:
                break  # the service is not there (not on EC2): do not wait for every field
            continue
        if name == "account_id":
            value = _account_from_document(value)
        if value:
            found[name] = value
    return found


def _account_from_document(text: str) -> str:
    try:
        document = json.loads(text)
    except ValueError:
        return ""
    return str(document.get("accountId", "")) if isinstance(document, dict) else ""


def overlay_server(
    upstream: Upstream,
    identity: Mapping[str, str],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Clock | None = None,
    control_token: str | None = None,
    imdsv2: ImdsV2Mode = "optional",
    events: EventSink | str | None = None,
) -> FakeImds:
    """The agent's server: the ``aws-overlay`` dialect with ``upstream`` as its fallback.

    Raises :class:`fake_imds.server.UnsafeBindError` beyond loopback without a token.
    """
    fields: dict[str, Any] = {f: identity[f] for f in _IDENTITY_PATHS if f in identity}
    options = aws.AwsOptions(**fields)
    return FakeImds(
        host,
        port,
        clock=clock,
        imdsv2=imdsv2,
        control_token=control_token,
        events=events,
        dialects=[DIALECT],
        options={"aws": options},
        fallback=upstream.forward,
    )
