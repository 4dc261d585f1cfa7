"""An HTTP proxy in front of the moto server: the S3 the process target talks to.

Every request is classified as the S3 operation it is (``s3.put_object``, ``s3.upload_part``,
...), checked against the faults in force, forwarded to moto and recorded in the run's history as
one ``storage.op`` event with what the harness saw: the key, the bytes sent or received, the
HTTP status, the S3 error code and whether it succeeded (``observed: "proxy"``). The target
cannot bypass it: the moto server's own address is never given to the target.

One proxy listens per instance incarnation, so that every request is attributed to the process
that made it without trusting anything the process says.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import aiohttp
from aiohttp import web

from harness.history import History, Kind
from harness.process.faults import FaultBook

#: Request headers not forwarded as they are (aiohttp sets them for the new connection).
_HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_RESPONSE_SKIP = frozenset(
    {"content-length", "transfer-encoding", "connection", "content-encoding"}
)
_ERROR_CODE = re.compile(rb"<Code>([^<]+)</Code>")
_ERROR_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
    "<Message>injected by spot-harness</Message><RequestId>harness</RequestId></Error>"
)
#: HTTP status of each S3 error code a scenario may inject.
ERROR_STATUS = {
    "SlowDown": 503,
    "ServiceUnavailable": 503,
    "InternalError": 500,
    "RequestTimeout": 400,
    "AccessDenied": 403,
    "NoSuchBucket": 404,
}

#: Called before a request is forwarded: ``True`` means the process dies at this step.
CrashHook = Callable[[str, str], bool]


@dataclass(frozen=True)
class S3Request:
    op: str
    bucket: str
    key: str


def classify(
    method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]
) -> S3Request:
    """The S3 operation of a path-style request (``/bucket/key?...``)."""
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    method = method.upper()
    if not bucket:
        return S3Request("s3.list_buckets", "", "")
    if not key:
        return S3Request(_bucket_op(method, query), bucket, "")
    if "uploadId" in query:
        op = {
            "PUT": "s3.upload_part",
            "POST": "s3.complete_multipart",
            "DELETE": "s3.abort_multipart",
            "GET": "s3.list_parts",
        }.get(method, "s3.other")
    elif method == "POST" and "uploads" in query:
        op = "s3.create_multipart"
    elif method == "PUT" and "x-amz-copy-source" in {h.lower() for h in headers}:
        op = "s3.copy_object"
    else:
        op = {
            "PUT": "s3.put_object",
            "GET": "s3.get_object",
            "HEAD": "s3.head_object",
            "DELETE": "s3.delete_object",
        }.get(method, "s3.other")
    return S3Request(op, bucket, key)


def _bucket_op(method: str, query: Mapping[str, str]) -> str:
    if method == "GET" and "uploads" in query:
        return "s3.list_uploads"
    if method == "GET" and "versions" in query:
        return "s3.list_versions"
    if method == "POST" and "delete" in query:
        return "s3.delete_objects"
    return {
        "GET": "s3.list_objects",
        "HEAD": "s3.head_bucket",
        "PUT": "s3.bucket_config",
        "DELETE": "s3.delete_bucket",
    }.get(method, "s3.other")


class S3Proxy:
    """The S3 endpoint of one instance: forwards to ``backend`` and records what it saw."""

    def __init__(
        self,
        backend: str,
        instance_id: str,
        history: History,
        faults: FaultBook,
        crash: CrashHook,
    ) -> None:
        self.backend = backend.rstrip("/")
        self.instance_id = instance_id
        self.history = history
        self.faults = faults
        self.crash = crash
        self.alive = True
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application(client_max_size=1 << 34)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server  # aiohttp keeps the bound sockets here
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._session = aiohttp.ClientSession(auto_decompress=False)
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        self.alive = False
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        s3 = classify(request.method, request.path, request.query, request.headers)
        body = await request.read()
        if not self.alive:
            return _reset(request)
        if self.crash(self.instance_id, s3.op):
            self.alive = False  # the process is gone: this request never reaches storage
            return _reset(request)
        await self._delay(s3.op, len(body))
        outage = self.faults.take(s3.op, "s3.outage")
        if outage is not None:
            self._record(s3, request.method, len(body), ok=False, status=0, error="outage")
            return _reset(request)
        injected = self.faults.take(s3.op, "s3.error")
        if injected is not None:
            code = injected.code or "InternalError"
            status = ERROR_STATUS.get(code, 500)
            self._record(s3, request.method, len(body), ok=False, status=status, error=code)
            return web.Response(
                status=status, body=_ERROR_BODY.format(code=code), content_type="application/xml"
            )
        return await self._forward(request, s3, body)

    async def _delay(self, op: str, size: int) -> None:
        latency = self.faults.take(op, "s3.latency")
        if latency is not None:
            await asyncio.sleep(self.faults.real(latency.value))
        slow = self.faults.take(op, "s3.bandwidth")
        if slow is not None and slow.value > 0:
            await asyncio.sleep(self.faults.real(size / slow.value))

    async def _forward(
        self, request: web.Request, s3: S3Request, body: bytes
    ) -> web.StreamResponse:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        url = self.backend + request.rel_url.raw_path_qs
        async with self._session.request(
            request.method,
            url,
            headers=headers,
            data=body if body else None,
            allow_redirects=False,
        ) as answer:
            data = await answer.read()
            status = answer.status
            reply_headers = [
                (k, v) for k, v in answer.headers.items() if k.lower() not in _RESPONSE_SKIP
            ]
            length = answer.headers.get("Content-Length")
        moved = len(body) if request.method in ("PUT", "POST") else len(data)
        code = ""
        if status >= 300:
            found = _ERROR_CODE.search(data)
            code = found.group(1).decode() if found else f"HTTP {status}"
        elif request.method == "GET":
            await self._delay_download(s3.op, len(data))
        self._record(
            s3,
            request.method,
            moved,
            ok=status < 300,
            status=status,
            error=code or None,
            version_id=answer.headers.get("x-amz-version-id"),
        )
        response = web.Response(status=status, body=data if request.method != "HEAD" else None)
        for key, value in reply_headers:
            response.headers.add(key, value)
        if request.method == "HEAD" and length is not None:
            response.headers["Content-Length"] = length
        return response

    async def _delay_download(self, op: str, size: int) -> None:
        slow = self.faults.take(op, "s3.bandwidth")
        if slow is not None and slow.value > 0:
            await asyncio.sleep(self.faults.real(size / slow.value))

    def _record(self, s3: S3Request, method: str, size: int, **outcome: Any) -> None:
        self.history.record(
            "storage",
            Kind.STORAGE_OP,
            self.instance_id,
            op=s3.op,
            key=s3.key or None,
            bucket=s3.bucket,
            bytes=size,
            method=method,
            observed="proxy",
            **outcome,
        )


def _reset(request: web.Request) -> web.StreamResponse:
    """Drop the connection without an answer, as an unreachable endpoint or a dead host does."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=502)
