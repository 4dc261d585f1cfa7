"""A small HTTP/1.1 client for metadata endpoints, shared by the polling adapters.

Metadata services are plain ``http://`` on an IP literal (no DNS, hence no resolver thread), answer
small bodies, and are polled every few seconds for as long as an instance lives, so the cost of
each request matters more than features: this client keeps connections alive (one per request in
flight, reused afterwards), writes a request in one ``send`` and parses the answer as it arrives.
It speaks what those services answer: ``Content-Length``, chunked, or a body ended by close.

Timeouts run on the event loop's clock (virtual in simulation). A request that gets no HTTP
answer at all (refused, reset, closed, timed out) raises :class:`Unreachable`. As HTTP clients
do, an idempotent request that fails on a reused keep-alive connection before any byte of an
answer came back is sent once more on a fresh connection (the server may have closed the idle
connection meanwhile).
"""

from __future__ import annotations

import asyncio
import functools
import json as jsonlib
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_HEAD_END = b"\r\n\r\n"
_MAX_HEAD = 64 * 1024


@dataclass(frozen=True)
class Reply:
    status: int
    text: str
    headers: dict[str, str]


class Unreachable(Exception):
    """No HTTP answer at all: refused, reset, timed out."""


class _NoAnswer(Exception):
    """The connection ended before an answer began (``started``: some bytes had come)."""

    def __init__(self, reason: str, *, started: bool) -> None:
        super().__init__(reason)
        self.started = started


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reused = False
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[Reply, bool]] | None = None
        self._head: tuple[int, dict[str, str], bool] | None = None  # status, headers, keep-alive
        self._body_mode = ""  # length | chunked | close | none
        self._length = 0
        self._method = "GET"
        self._eof = False

    # -- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is not None:
            self._advance()

    def eof_received(self) -> bool | None:
        self._eof = True
        if self._waiter is not None:
            self._advance()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._eof = True
        if self._waiter is not None and not self._waiter.done():
            reason = f"{type(exc).__name__}: {exc}" if exc else "connection closed"
            self._fail(reason)

    # -- one exchange ------------------------------------------------------------------------------
    @property
    def usable(self) -> bool:
        return self.transport is not None and not self._eof and not self.transport.is_closing()

    async def exchange(self, method: str, payload: bytes, deadline: float) -> tuple[Reply, bool]:
        """Send a request; the reply and whether the connection may carry another. Past
        ``deadline`` (loop time) it fails with :class:`TimeoutError`."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[tuple[Reply, bool]] = loop.create_future()
        self._waiter = waiter
        self._method = method
        self._head = None
        self._buffer.clear()
        self.transport.write(payload)
        # One timer handle rather than an asyncio.timeout() scope: a tenth of a poll's cost.
        timer = loop.call_at(deadline, _time_out, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()
            self.transport = None

    def _fail(self, reason: str) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(_NoAnswer(reason, started=bool(self._buffer or self._head)))

    def _advance(self) -> None:
        try:
            if self._head is None and not self._parse_head():
                return
            body = self._parse_body()
        except ValueError as error:
            self._fail(f"malformed answer: {error}")
            return
        if body is None:
            return
        assert self._head is not None and self._waiter is not None
        status, headers, keep_alive = self._head
        text = body.decode("utf-8", errors="replace")  # metadata is ASCII/UTF-8 text
        if not self._waiter.done():
            self._waiter.set_result((Reply(status, text, headers), keep_alive and not self._eof))

    def _parse_head(self) -> bool:
        end = self._buffer.find(_HEAD_END)
        if end < 0:
            if len(self._buffer) > _MAX_HEAD:
                raise ValueError("header section too long")
            if self._eof:
                self._fail("connection closed before an answer")
            return False
        head = bytes(self._buffer[:end])
        del self._buffer[: end + len(_HEAD_END)]
        status, headers, keep_alive, self._body_mode, self._length = _head(head, self._method)
        self._head = (status, dict(headers), keep_alive)
        return True

    def _parse_body(self) -> bytes | None:
        """The whole body once it is in, else None (more bytes to come)."""
        mode = self._body_mode
        if mode == "none":
            return b""
        if mode == "length":
            if len(self._buffer) >= self._length:
                return bytes(self._buffer[: self._length])
            return self._truncated()
        if mode == "close":
            return bytes(self._buffer) if self._eof else None
        return self._parse_chunks()

    def _parse_chunks(self) -> bytes | None:
        body = bytearray()
        position = 0
        buffer = self._buffer
        while True:
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                return self._truncated()
            size = int(buffer[position:line_end].split(b";")[0].strip() or b"x", 16)
            start = line_end + 2
            if size == 0:  # then optional trailers, then an empty line
                if buffer[start : start + 2] == b"\r\n" or buffer.find(_HEAD_END, start) >= 0:
                    return bytes(body)
                return self._truncated()
            if len(buffer) < start + size + 2:
                return self._truncated()
            body += buffer[start : start + size]
            position = start + size + 2

    def _truncated(self) -> bytes | None:
        """More bytes to come (None); if the peer closed instead, the exchange failed."""
        if self._eof:
            self._fail("connection closed in the middle of an answer")
        return None


#: What an answer's header section says: status, headers, keep-alive, body mode and length.
_Head = tuple[int, dict[str, str], bool, str, int]


@functools.lru_cache(maxsize=64)  # a poller gets the same few header sections again and again
def _head(head: bytes, method: str) -> _Head:
    """Parse a header section (without its blank line) answering a ``method`` request."""
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest.partition(" ")[0]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise ValueError(f"bad status line {lines[0]!r}")
    status = int(code)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise ValueError(f"bad header line {line!r}")
        headers[name.strip()] = value.strip()
    fields = {name.lower(): value for name, value in headers.items()}
    connection = fields.get("connection", "").lower()
    keep_alive = version == "HTTP/1.1" and "close" not in connection
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return status, headers, keep_alive, "none", 0
    if "chunked" in fields.get("transfer-encoding", "").lower():
        return status, headers, keep_alive, "chunked", 0
    if "content-length" in fields:
        return status, headers, keep_alive, "length", int(fields["content-length"])
    return status, headers, False, "close", 0


def _time_out(waiter: asyncio.Future[tuple[Reply, bool]]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class HttpSession:
    """Keep-alive connections per endpoint; an async context manager that closes them all."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._busy: dict[_Connection, None] = {}  # closed in the order they were taken

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()
        for connection in self._busy:
            connection.close()
        self._busy.clear()

    async def send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        timeout: float,  # noqa: ASYNC109
    ) -> Reply:
        """The reply; :class:`TimeoutError` if none came within ``timeout`` seconds."""
        host, port, target = _split(url)
        payload = _request_bytes(method, host, port, target, headers, body)
        deadline = asyncio.get_running_loop().time() + timeout
        connection = self._take(host, port)
        for _ in range(2):
            if connection is None:
                async with asyncio.timeout_at(deadline):
                    connection = await _open(host, port)
            self._busy[connection] = None
            try:
                reply, reusable = await connection.exchange(method, payload, deadline)
            except _NoAnswer as error:
                connection.close()
                if connection.reused and not error.started and method in _IDEMPOTENT:
                    connection = None  # a stale keep-alive connection: once more, fresh
                    continue
                raise Unreachable(str(error)) from None
            except BaseException:
                connection.close()  # cancelled or timed out mid-exchange: never reuse
                raise
            finally:
                if connection is not None:
                    self._busy.pop(connection, None)
            if reusable:
                connection.reused = True
                self._idle.setdefault((host, port), []).append(connection)
            else:
                connection.close()
            return reply
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _take(self, host: str, port: int) -> _Connection | None:
        idle = self._idle.get((host, port))
        while idle:
            connection = idle.pop()
            if connection.usable:
                return connection
            connection.close()
        return None


async def _open(host: str, port: int) -> _Connection:
    loop = asyncio.get_running_loop()
    try:
        _, connection = await loop.create_connection(_Connection, host, port)
    except OSError as error:
        raise Unreachable(f"{type(error).__name__}: {error}") from None
    return connection


@functools.lru_cache(maxsize=256)  # a poller asks for the same few URLs all its life
def _split(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"metadata URLs are plain http://host[:port]/path, got {url!r}")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return parts.hostname, parts.port or 80, target


def _request_bytes(
    method: str, host: str, port: int, target: str, headers: dict[str, str], body: bytes
) -> bytes:
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"{method} {target} HTTP/1.1", f"Host: {authority}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def new_session() -> HttpSession:
    # No proxies from the environment: metadata endpoints are link-local.
    return HttpSession()


async def request(
    session: HttpSession,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    timeout: float,  # noqa: ASYNC109 - a per-request budget on the loop's clock
    json: Any = None,
) -> Reply:
    all_headers = dict(headers or {})
    body = b""
    if json is not None:
        body = jsonlib.dumps(json).encode()
        all_headers.setdefault("Content-Type", "application/json")
    try:
        return await session.send(method, url, all_headers, body, timeout)
    except TimeoutError:
        raise Unreachable("TimeoutError") from None
