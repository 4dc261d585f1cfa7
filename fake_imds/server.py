"""The fake metadata server: one aiohttp app assembled from cloud dialects, served on one port.

Each dialect (``fake_imds.aws``, and the other clouds' modules) is a function
``install(site: DialectSite) -> None`` that adds its routes on their real paths and subscribes
to the :class:`~fake_imds.model.MetadataPlane` if it needs to act when a notice fires. Dialects
are registered by name in :data:`DIALECTS` as ``"module:function"`` strings and imported only
when a server uses them. The control API (``/_harness/v1/``) is always installed.

:class:`FakeImds` is the object tests and the runner use: an async context manager that binds
port 0 by default, exposes :attr:`FakeImds.url` and :attr:`FakeImds.plane`, and works inside
:func:`harness.clock.run_virtual` (its clock defaults to the running loop's).
"""

from __future__ import annotations

import asyncio
import importlib
import ipaddress
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from fake_imds import control, middleware
from fake_imds.eventbridge import EventSink, sink_from_spec
from fake_imds.middleware import Unfaked
from fake_imds.model import DEFAULT_REQUEST_LOG_LIMIT, MetadataPlane
from harness.clock import Clock, VirtualEventLoop, clock_for_running_loop

ImdsV2Mode = Literal["optional", "required", "disabled"]
IMDSV2_MODES: tuple[ImdsV2Mode, ...] = ("optional", "required", "disabled")

#: A handler for requests no dialect fakes (e.g. a pass-through to the real metadata service).
Fallback = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: cloud dialect name -> ``"module:function"`` of its ``install(site)``; imported lazily.
DIALECTS: dict[str, str] = {
    "aws": "fake_imds.aws:install",
    "gcp": "fake_imds.gcp:install",
    "azure": "fake_imds.azure:install",
    "webhook": "fake_imds.webhook:install",
    "signals": "fake_imds.signals:install",
}

#: Dialects a server installs when none are named. A dialect registered elsewhere (such as the
#: on-host agent's ``aws-overlay``, which replaces ``aws``) is installed only when named.
DEFAULT_DIALECTS: tuple[str, ...] = ("aws", "gcp", "azure", "webhook", "signals")


class UnsafeBindError(ValueError):
    """Raised when a server would listen beyond loopback without a control token."""


@dataclass(frozen=True)
class ServerConfig:
    """Everything a dialect may need to know about the server it is part of.

    ``options`` carries dialect-specific settings keyed by dialect name (e.g. ``"aws"`` ->
    :class:`fake_imds.aws.AwsOptions`); each dialect documents what it accepts there.
    """

    imdsv2: ImdsV2Mode = "optional"
    control_token: str | None = None
    events: EventSink | None = None
    seed: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)


class DialectSite:
    """What a dialect's ``install`` gets: the app, the plane, the config and hooks.

    Routes added with :meth:`add_route` are tagged with the dialect's name, which is what the
    served-request log records as ``dialect``.
    """

    def __init__(
        self,
        name: str,
        app: web.Application,
        plane: MetadataPlane,
        config: ServerConfig,
        route_dialects: dict[AbstractRoute, str],
        reset_hooks: list[Callable[[], None]],
        has_fallback: bool = False,
        identities: dict[str, control.IdentityHook] | None = None,
    ) -> None:
        self.name = name
        #: Whether a fallback answers unfaked paths: raise :class:`Unfaked` to hand it a request.
        self.has_fallback = has_fallback
        self.app = app
        self.plane = plane
        self.config = config
        self._route_dialects = route_dialects
        self._reset_hooks = reset_hooks
        self._identities = identities if identities is not None else {}

    def identity(self, hook: control.IdentityHook) -> None:
        """Let the control API show and set this dialect's identity (``identity/<name>``)."""
        self._identities[self.name] = hook

    def add_route(
        self,
        method: str,
        path: str,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> AbstractRoute:
        route = self.app.router.add_route(method, path, handler)
        self._route_dialects[route] = self.name
        return route

    def error_page(self, page: middleware.ErrorPage) -> None:
        """Word this dialect's injected error statuses (faults) its own way: ``page(status)``
        returns the response. Without one, errors are worded the way EC2 does."""
        self.app[middleware.STATE_KEY].error_pages[self.name] = page

    def answer_root(self, answer: middleware.RootAnswer) -> None:
        """Let this dialect answer some requests for ``/`` (a path clouds share) before the
        route's handler: ``answer(request)`` returns the response, or None to pass it on."""
        self.app[middleware.STATE_KEY].root_answers.append(answer)

    def request_note(self, noter: middleware.Noter) -> None:
        """Note what a request of this dialect asks for even when a fault answers it before
        the dialect sees it: ``noter(request)`` returns the note (``ServedRequest.note``)."""
        self.app[middleware.STATE_KEY].noters[self.name] = noter

    def options(self, default: Any) -> Any:
        """This dialect's entry in ``config.options``, or ``default``."""
        return self.config.options.get(self.name, default)

    def on_reset(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` on ``POST /_harness/v1/reset`` (after the plane is reset)."""
        self._reset_hooks.append(hook)

    def on_cleanup(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Await ``hook`` when the server shuts down (close sessions, cancel tasks)."""

        async def cleanup(_app: web.Application) -> None:
            await hook()

        self.app.on_cleanup.append(cleanup)


def load_dialect(name: str) -> Callable[[DialectSite], None]:
    try:
        target = DIALECTS[name]
    except KeyError:
        known = ", ".join(sorted(DIALECTS))
        raise ValueError(f"unknown dialect {name!r}; known dialects: {known}") from None
    module_name, attr = target.split(":")
    install: Callable[[DialectSite], None] = getattr(importlib.import_module(module_name), attr)
    return install


def build_app(
    plane: MetadataPlane,
    config: ServerConfig | None = None,
    *,
    dialects: Sequence[str] | None = None,
    fallback: Fallback | None = None,
) -> web.Application:
    """The aiohttp application: the control API plus the named dialects (default:
    :data:`DEFAULT_DIALECTS`)."""
    config = config or ServerConfig()
    names = list(DEFAULT_DIALECTS if dialects is None else dialects)
    route_dialects: dict[AbstractRoute, str] = {}
    reset_hooks: list[Callable[[], None]] = []
    identities: dict[str, control.IdentityHook] = {}
    state = middleware.ServerState(plane, route_dialects, fallback)
    app = web.Application(middlewares=[state.middleware(config.control_token)])
    app[middleware.STATE_KEY] = state
    control.install(app, plane, reset_hooks, identities)
    for name in names:
        site = DialectSite(
            name, app, plane, config, route_dialects, reset_hooks, fallback is not None, identities
        )
        load_dialect(name)(site)
    app.on_shutdown.append(state.release_hanging)
    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, control_token: str | None) -> None:
    """Refuse to listen beyond loopback without a control token (anyone could inject)."""
    if not is_loopback(host) and not control_token:
        raise UnsafeBindError(
            f"refusing to listen on {host}: beyond loopback anyone who can reach the server "
            "could schedule notices and faults; set a control token (--control-token or "
            "control_token=...) so every control call must carry it"
        )


class FakeImds:
    """A fake metadata server on ``host:port`` (port 0: any free port), as an async context manager.

    ``clock`` defaults to the running loop's (virtual inside :func:`harness.clock.run_virtual`).
    ``events`` is an :class:`~fake_imds.eventbridge.EventSink` or a spec string (a JSON-lines
    file path, an ``http(s)://`` URL, or ``sqs:<queue url>``) receiving EventBridge-shaped events.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Clock | None = None,
        imdsv2: ImdsV2Mode = "optional",
        control_token: str | None = None,
        events: EventSink | str | None = None,
        dialects: Sequence[str] | None = None,
        options: Mapping[str, Any] | None = None,
        fallback: Fallback | None = None,
        plane: MetadataPlane | None = None,
        seed: int = 0,
        request_log_limit: int = DEFAULT_REQUEST_LOG_LIMIT,
    ) -> None:
        if imdsv2 not in IMDSV2_MODES:
            raise ValueError(f"imdsv2 must be one of {', '.join(IMDSV2_MODES)}, got {imdsv2!r}")
        check_bind(host, control_token)
        self.host = host
        self._requested_port = port
        self._clock = clock
        self._events_spec = events
        self._config_args: dict[str, Any] = {
            "imdsv2": imdsv2,
            "control_token": control_token,
            "seed": seed,
            "options": dict(options or {}),
        }
        self._dialects = dialects
        self._fallback = fallback
        self._plane = plane
        self._request_log_limit = request_log_limit
        self._runner: web.AppRunner | None = None
        self._app: web.Application | None = None
        self._events: EventSink | None = None
        self.port = 0

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> Self:
        if self._plane is None:
            self._plane = MetadataPlane(
                self._clock or clock_for_running_loop(), request_log_limit=self._request_log_limit
            )
        spec = self._events_spec
        self._events = sink_from_spec(spec) if isinstance(spec, str) else spec
        config = ServerConfig(events=self._events, **self._config_args)
        self._app = build_app(self._plane, config, dialects=self._dialects, fallback=self._fallback)
        runner = web.AppRunner(
            self._app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        try:
            site = _site(runner, self.host, self._requested_port)
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = _bound_port(runner)
        return self

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        if self._events is not None:
            await self._events.close()
        if self._plane is not None:
            self._plane.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- what users need ----------------------------------------------------------------------
    @property
    def plane(self) -> MetadataPlane:
        if self._plane is None:
            raise RuntimeError("the server has no plane yet: start it (async with FakeImds())")
        return self._plane

    @property
    def app(self) -> web.Application:
        if self._app is None:
            raise RuntimeError("the server is not started")
        return self._app

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:40123``."""
        if not self.port:
            raise RuntimeError("the server is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def control_url(self) -> str:
        return f"{self.url}{control.PREFIX}"


def _site(runner: web.AppRunner, host: str, port: int) -> web.BaseSite:
    """Where the server listens: ``host:port`` over TCP; in virtual time, on a socket of the
    loop's own making (:meth:`harness.clock.VirtualEventLoop.listen_socket`), which is in memory
    when the simulation's shortcuts are on."""
    loop = asyncio.get_running_loop()
    if isinstance(loop, VirtualEventLoop):
        return web.SockSite(runner, loop.listen_socket(host, port))  # type: ignore[arg-type]
    return web.TCPSite(runner, host, port)


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    raise RuntimeError("the server did not bind a TCP port")


__all__ = [
    "DEFAULT_DIALECTS",
    "DIALECTS",
    "IMDSV2_MODES",
    "DialectSite",
    "FakeImds",
    "Fallback",
    "ImdsV2Mode",
    "ServerConfig",
    "Unfaked",
    "UnsafeBindError",
    "build_app",
    "check_bind",
    "is_loopback",
]
