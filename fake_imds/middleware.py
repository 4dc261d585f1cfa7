"""What every metadata request goes through: faults, the fallback, the served-request log; and
the bearer-token check on the control API.

Faults (from :meth:`MetadataPlane.fault_for`) act before any dialect sees the request, the way a
broken network or an overloaded metadata service would: an error status, added latency, a
timeout (the request is accepted and never answered), a connection reset, or 429 throttling.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware
from aiohttp.web_urldispatcher import AbstractRoute

from fake_imds.model import Fault, MetadataPlane, ServedRequest

CONTROL_PREFIX = "/_harness/"

#: Where a dialect puts what it noted about a request (``ServedRequest.note``).
NOTE: web.RequestKey[dict[str, Any]] = web.RequestKey("fake_imds_note", dict)

#: Status recorded in the request log for a request that got no HTTP answer (timeout, reset).
NO_ANSWER = 0

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    410: "Gone",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class Unfaked(Exception):
    """Raised by a dialect handler for a path it does not fake: the server's fallback (if any)
    answers instead, else a 404."""


def reason(status: int) -> str:
    return _REASONS.get(status, "Error")


def _error_body(status: int) -> bytes:
    title = f"{status} - {reason(status)}"
    return (
        '<?xml version="1.0" encoding="iso-8859-1"?>\n'
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
        '\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n'
        f" <head>\n  <title>{title}</title>\n </head>\n"
        f" <body>\n  <h1>{title}</h1>\n </body>\n</html>\n"
    ).encode("latin-1")


_ERROR_BODIES: dict[int, bytes] = {status: _error_body(status) for status in _REASONS}
_ERROR_HEADERS = {"Server": "EC2ws", "Content-Type": "text/html"}


def error_page(status: int, headers: dict[str, str] | None = None) -> web.Response:
    """An error worded the way EC2's metadata service does (XHTML titled ``404 - Not Found``)."""
    body = _ERROR_BODIES.get(status) or _error_body(status)
    all_headers = _ERROR_HEADERS if headers is None else {**_ERROR_HEADERS, **headers}
    return web.Response(status=status, body=body, headers=all_headers)


#: Renders a dialect's own error page for a status (a fault's injected error, for instance).
ErrorPage = Callable[[int], web.Response]
#: What a dialect notes about a request (``ServedRequest.note``), or None.
Noter = Callable[[web.Request], "dict[str, Any] | None"]
#: A dialect's answer to ``/`` before the route's handler (None: not this dialect's request).
RootAnswer = Callable[[web.Request], "web.StreamResponse | None"]

STATE_KEY: web.AppKey[ServerState] = web.AppKey("fake_imds_state")
AnswerT = TypeVar("AnswerT", bound=web.StreamResponse)


class ServerState:
    """Per-server state of the request pipeline (never module-level)."""

    def __init__(
        self,
        plane: MetadataPlane,
        route_dialects: dict[AbstractRoute, str],
        fallback: Callable[[web.Request], Awaitable[web.StreamResponse]] | None,
    ) -> None:
        self.plane = plane
        self.route_dialects = route_dialects
        self.fallback = fallback
        #: dialect name -> its error page; dialects without one answer the EC2 way.
        self.error_pages: dict[str, ErrorPage] = {}
        #: dialect name -> what it notes about a request a fault answers before it sees it.
        self.noters: dict[str, Noter] = {}
        #: Asked in turn before the handler of ``/``, a path dialects share (see
        #: :meth:`DialectSite.answer_root`): a plain check here costs a request far less
        #: than a middleware of its own would.
        self.root_answers: list[RootAnswer] = []
        #: Held requests, in arrival order: released in that order at shutdown (a set would
        #: release them in the order of their memory addresses, and log them so).
        self._hanging: dict[asyncio.Future[None], None] = {}
        self._date: tuple[int, str] = (-1, "")  # the last Date written, for its whole second

    def middleware(self, control_token: str | None) -> Middleware:
        """The one middleware of the app: bearer check on the control API, else faults, the
        fallback and the request log around the dialect's handler."""
        check_bearer = bearer_check(control_token)

        @web.middleware
        async def pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith(CONTROL_PREFIX):
                refused = check_bearer(request)
                return refused if refused is not None else await handler(request)
            return await self.serve(request, handler)

        return pipeline

    async def serve(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        plane = self.plane
        received = plane.now()
        fault = plane.fault_for(request.path)
        if fault is not None and fault.kind != "latency":
            return await self._fail(request, fault, received)
        try:
            with plane.serving(received):
                if fault is not None:
                    await plane.clock.sleep(fault.seconds)
                response = await self._answer(request, handler)
        except asyncio.CancelledError:
            # The client gave up (its own timeout) while the answer was delayed or held: it
            # asked all the same, and the log says so (a request without an answer).
            self._log(request, received, NO_ANSWER, fault)
            raise
        dropped = plane.dropped_since(request.path, received)
        if dropped is not None:  # a fault cut the line while the request was held
            return await self._fail(request, dropped, received)
        self._log(request, received, response.status, fault)
        return self._dated(response)

    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.root_answers and request.path == "/":
            for answer in self.root_answers:
                response = answer(request)
                if response is not None:
                    return response
        try:
            return await handler(request)
        except Unfaked:
            pass
        except web.HTTPNotFound:
            pass  # no dialect has a route for this path
        except web.HTTPMethodNotAllowed as refused:
            return error_page(405, {"Allow": ",".join(sorted(refused.allowed_methods))})
        if self.fallback is not None:
            return await self.fallback(request)
        return error_page(404)

    async def _fail(self, request: web.Request, fault: Fault, received: float) -> web.Response:
        noter = self.noters.get(self.route_dialects.get(request.match_info.route, ""))
        note = None if noter is None else noter(request)
        if note is not None:
            request[NOTE] = note
        if fault.kind in ("status", "throttle"):
            status = fault.status if fault.kind == "status" else 429
            self._log(request, received, status, fault)
            return self._dated(self.error_page_for(request)(status))
        self._log(request, received, NO_ANSWER, fault)
        if fault.kind == "reset":
            reset_connection(request)
        await self._hang()  # timeout: accepted, never answered; reset: the peer is gone
        raise AssertionError("unreachable: a hanging request only ends by cancellation")

    def error_page_for(self, request: web.Request) -> ErrorPage:
        """The error page of the dialect whose route the request matched (EC2's by default)."""
        dialect = self.route_dialects.get(request.match_info.route)
        return self.error_pages.get(dialect, error_page) if dialect else error_page

    async def _hang(self) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._hanging[future] = None
        try:
            await future
        finally:
            self._hanging.pop(future, None)

    def _dated(self, response: AnswerT) -> AnswerT:
        """``response`` dated by the plane's calendar (virtual in simulation), as a metadata
        service's answers are by its own clock: aiohttp would write the host's wall clock, so a
        client reading the service's time (to measure a notice's lead, for instance) would see
        another year than the notice's, and a value that changes with the real second. Set
        before aiohttp prepares the answer, which then writes no date of its own."""
        if not response.prepared:
            now = self.plane.now()
            second = int(self.plane.timestamp(now))
            if second != self._date[0]:
                self._date = (second, self.plane.rfc1123(now))
            response.headers[hdrs.DATE] = self._date[1]
        return response

    async def release_hanging(self, _app: web.Application | None = None) -> None:
        """Cancel requests held by a timeout fault (at shutdown), so closing never waits."""
        for future in list(self._hanging):
            future.cancel()

    def _log(self, request: web.Request, t: float, status: int, fault: Fault | None) -> None:
        # Positional: the log is written on every metadata request.
        self.plane.log_request(
            ServedRequest(
                t,
                request.method,
                request.path,
                status,
                request.remote or "",
                self.route_dialects.get(request.match_info.route, "-"),
                None if fault is None else fault.id,
                request.get(NOTE),
            )
        )


def reset_connection(request: web.Request) -> None:
    """Drop the connection with a TCP RST (SO_LINGER 0), as a dying metadata service would."""
    transport = request.transport
    if transport is None:
        return
    sock: Any = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed by the peer
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def forwarded(request: web.Request) -> bool:
    """Whether the request came through a proxy (metadata services refuse those)."""
    return "X-Forwarded-For" in request.headers


def bearer_check(token: str | None) -> Callable[[web.Request], web.Response | None]:
    """``check(request)``: None if the control call may proceed, else the 401 to send.

    With a token set, every control call needs ``Authorization: Bearer <token>``.
    """
    expected = f"Bearer {token}".encode() if token else b""

    def check(request: web.Request) -> web.Response | None:
        if not token:
            return None
        given = request.headers.get("Authorization", "").encode()
        if hmac.compare_digest(given, expected):
            return None
        return web.json_response(
            {
                "error": "this server needs 'Authorization: Bearer <control token>' "
                "on every control call (harness notice --token ...)",
                "field": "Authorization",
            },
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="spot-harness"'},
        )

    return check
