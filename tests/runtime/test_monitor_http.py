"""The monitor's HTTP client against raw loopback servers sending exactly the bytes a test
chooses: Content-Length, chunked and close-delimited bodies, keep-alive reuse, a stale
keep-alive connection retried once, and failures reported as Unreachable."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from harness.clock import run_virtual
from harness.runtime.monitor.http import Reply, Unreachable, new_session, request

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + (await reader.readexactly(length) if length else b"")


async def serve(script: Script, calls: Callable[[str], Awaitable[list[Reply]]]) -> list[Reply]:
    """Run ``calls(url)`` against a server answering each connection with ``script``, which
    gets the connection's number (1, 2, ...)."""
    count = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        count += 1
        try:
            await script(reader, writer, count)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await calls(f"http://127.0.0.1:{port}/latest/meta-data/x")
    finally:
        server.close()


def test_content_length_chunked_and_close_delimited_bodies() -> None:
    answers = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: abc\r\n\r\nhello",
        b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nnot\r\n6\r\n found\r\n0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\n\r\nto the end",
    ]
    sent: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while answers:
            sent.append(await read_request(reader))
            answer = answers.pop(0)
            writer.write(answer)
            await writer.drain()
            if answer.startswith(b"HTTP/1.0"):
                return

    async def calls(url: str) -> list[Reply]:
        async with new_session() as session:
            return [
                await request(session, "GET", url, headers={"A": "1"}, timeout=2),
                await request(session, "POST", url, json={"k": 1}, timeout=2),
                await request(session, "GET", url, timeout=2),
            ]

    replies = run_virtual(serve(script, calls))
    assert [(r.status, r.text) for r in replies] == [
        (200, "hello"),
        (404, "not found"),
        (200, "to the end"),
    ]
    assert replies[0].headers["ETag"] == "abc"
    assert sent[0].startswith(b"GET /latest/meta-data/x HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nA: 1\r\n" in sent[0]
    assert sent[1].endswith(b'Content-Type: application/json\r\nContent-Length: 8\r\n\r\n{"k": 1}')


def test_keep_alive_reuses_one_connection_and_retries_a_stale_one_once() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        for _ in range(2):
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n" + str(n).encode())
            await writer.drain()
        # Connection 1 closes after two answers without saying so: the third request finds
        # it stale and goes out again on a fresh connection.

    async def calls(url: str) -> list[Reply]:
        async with new_session() as session:
            return [await request(session, "GET", url, timeout=2) for _ in range(3)]

    replies = run_virtual(serve(script, calls))
    assert [r.text for r in replies] == ["1", "1", "2"]


def test_no_answer_is_unreachable_refused_reset_truncated_or_timed_out() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        if n == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")  # then closes
        elif n == 2:
            await asyncio.sleep(60)  # never answers in time

    async def calls(url: str) -> list[Reply]:
        async with new_session() as session:
            for timeout, expected in ((2.0, "closed in the middle"), (2.0, "TimeoutError")):
                with pytest.raises(Unreachable, match=expected):
                    await request(session, "GET", url, timeout=timeout)
        return []

    run_virtual(serve(script, calls))

    async def refused() -> None:
        with socket.socket() as probe:  # a port known to be free: nobody listens there
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        async with new_session() as session:
            with pytest.raises(Unreachable, match="ConnectionRefusedError"):
                await request(session, "GET", f"http://127.0.0.1:{port}/", timeout=2)

    run_virtual(refused())


def test_only_plain_http_urls_are_accepted() -> None:
    async def main() -> None:
        async with new_session() as session:
            with pytest.raises(ValueError, match="plain http"):
                await request(session, "GET", "https://169.254.169.254/", timeout=2)

    run_virtual(main())


def test_a_header_section_seen_before_is_read_the_same_and_each_reply_has_its_own_headers() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Seen: 1\r\n\r\n"

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        for body in (b"ab", b"", b"cd"):  # the same header section three times; HEAD: no body
            await read_request(reader)
            writer.write(head + body)
            await writer.drain()

    async def calls(url: str) -> list[Reply]:
        async with new_session() as session:
            first = await request(session, "GET", url, timeout=2)
            first.headers["X-Seen"] = "changed by its reader"
            return [
                first,
                await request(session, "HEAD", url, timeout=2),
                await request(session, "GET", url, timeout=2),
            ]

    replies = run_virtual(serve(script, calls))
    assert [(r.status, r.text) for r in replies] == [(200, "ab"), (200, ""), (200, "cd")]
    assert [r.headers["X-Seen"] for r in replies[1:]] == ["1", "1"]
