"""A TCP proxy in front of Redis that reads the protocol: every command is recorded.

Commands from the client are parsed (RESP arrays, or inline commands), forwarded, and matched in
order with the server's replies, so each one becomes a ``storage.op`` event (``redis.read`` or
``redis.write``, ``command``, ``key``, ``ok``, ``error``, ``observed: "proxy"``) at the moment
its reply passes back. Faults act here: ``down`` refuses and cuts connections, ``latency``
delays every command. One proxy listens per instance incarnation (see the S3 proxy).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from harness.history import History, Kind
from harness.process.faults import FaultBook

#: Commands that change data; every other command counts as a read.
WRITE_COMMANDS = frozenset(
    {
        "SET",
        "SETNX",
        "SETEX",
        "PSETEX",
        "MSET",
        "MSETNX",
        "GETSET",
        "GETDEL",
        "GETEX",
        "APPEND",
        "INCR",
        "INCRBY",
        "INCRBYFLOAT",
        "DECR",
        "DECRBY",
        "DEL",
        "UNLINK",
        "EXPIRE",
        "EXPIREAT",
        "PEXPIRE",
        "PEXPIREAT",
        "PERSIST",
        "RENAME",
        "RENAMENX",
        "COPY",
        "MOVE",
        "HSET",
        "HSETNX",
        "HMSET",
        "HDEL",
        "HINCRBY",
        "HINCRBYFLOAT",
        "LPUSH",
        "RPUSH",
        "LPUSHX",
        "RPUSHX",
        "LPOP",
        "RPOP",
        "LSET",
        "LREM",
        "LTRIM",
        "LINSERT",
        "LMOVE",
        "RPOPLPUSH",
        "SADD",
        "SREM",
        "SPOP",
        "SMOVE",
        "ZADD",
        "ZREM",
        "ZINCRBY",
        "ZPOPMIN",
        "ZPOPMAX",
        "XADD",
        "XDEL",
        "XTRIM",
        "FLUSHDB",
        "FLUSHALL",
        "EVAL",
        "EVALSHA",
        "EVAL_RO",
        "FCALL",
        "SCRIPT",
        "RESTORE",
    }
)
#: Commands that manage the connection: forwarded, not recorded.
_CONNECTION = frozenset({"HELLO", "AUTH", "PING", "CLIENT", "SELECT", "QUIT", "RESET", "ECHO"})

Opened = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
CrashHook = Callable[[str, str], bool]


async def read_value(reader: asyncio.StreamReader, raw: list[bytes]) -> Any:
    """One RESP value (RESP2 and RESP3; errors as :class:`RedisErrorReply`); the bytes read are
    appended to ``raw``, so that the value is passed on exactly as it came."""

    async def line() -> bytes:
        got = await reader.readline()
        if not got:
            raise EOFError
        raw.append(got)
        return got

    async def exactly(size: int) -> bytes:
        got = await reader.readexactly(size)
        raw.append(got)
        return got

    first = await line()
    kind, rest = first[:1], first[1:].rstrip(b"\r\n")
    if kind in (b"+", b"(", b",", b"#"):
        return rest
    if kind == b"-":
        return RedisErrorReply(rest.decode(errors="replace"))
    if kind == b"!":
        return RedisErrorReply((await exactly(int(rest) + 2))[:-2].decode(errors="replace"))
    if kind == b":":
        return int(rest)
    if kind in (b"$", b"="):
        size = int(rest)
        return None if size < 0 else (await exactly(size + 2))[:-2]
    if kind in (b"*", b"~", b">", b"%", b"|"):
        size = int(rest) * (2 if kind in (b"%", b"|") else 1)
        return None if size < 0 else [await read_value(reader, raw) for _ in range(size)]
    if kind == b"_":
        return None
    # An inline command (``PING\r\n``) from a hand-typed client: sent on as it came.
    return first.strip().split()


class RedisErrorReply(str):
    """An error reply (``-ERR ...``)."""


class RedisProxy:
    """The Redis endpoint of one instance."""

    def __init__(
        self,
        open_backend: Opened,
        instance_id: str,
        history: History,
        faults: FaultBook,
        crash: CrashHook,
    ) -> None:
        self.open_backend = open_backend
        self.instance_id = instance_id
        self.history = history
        self.faults = faults
        self.crash = crash
        self.alive = True
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.url = ""

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"redis://127.0.0.1:{port}/0"
        return self.url

    def cut(self) -> None:
        """Drop every open connection (a restart, an outage, the instance's end)."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        self.alive = False
        if self._server is not None:
            self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            if not self.alive or self.faults.active("redis.down"):
                self._record_refused()
                return
            backend_reader, backend_writer = await self.open_backend()
            self._writers.add(backend_writer)
            pending: deque[tuple[str, str, str | None]] = deque()
            upstream = asyncio.create_task(self._commands(reader, backend_writer, pending))
            try:
                await self._replies(backend_reader, writer, pending)
            finally:
                upstream.cancel()
                await asyncio.gather(upstream, return_exceptions=True)
                backend_writer.transport.abort()
        except (ConnectionError, EOFError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # the proxy is closing: asyncio's server would log a cancelled handler
        finally:
            self._writers.discard(writer)
            writer.transport.abort()
            self._tasks.discard(task)

    async def _commands(
        self,
        reader: asyncio.StreamReader,
        backend: asyncio.StreamWriter,
        pending: deque[tuple[str, str, str | None]],
    ) -> None:
        with contextlib.suppress(ConnectionError, EOFError, asyncio.IncompleteReadError):
            while True:
                raw: list[bytes] = []
                command = await read_value(reader, raw)
                if not isinstance(command, list) or not command:
                    continue
                name = _text(command[0]).upper()
                op = "redis.write" if name in WRITE_COMMANDS else "redis.read"
                if self.faults.active("redis.down") or self.crash(self.instance_id, op):
                    self.cut()
                    return
                slow = self.faults.take(op, "redis.latency")
                if slow is not None:
                    await asyncio.sleep(self.faults.real(slow.value))
                key = _text(command[1]) if len(command) > 1 and name not in _KEYLESS else None
                if name in ("EVAL", "EVALSHA", "EVAL_RO", "FCALL") and len(command) > 3:
                    key = _text(command[3])
                pending.append((name, op, key))
                backend.write(b"".join(raw))
                await backend.drain()

    async def _replies(
        self,
        backend: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pending: deque[tuple[str, str, str | None]],
    ) -> None:
        while True:
            raw: list[bytes] = []
            reply = await read_value(backend, raw)
            writer.write(b"".join(raw))
            await writer.drain()
            if not pending:
                continue  # a push message
            name, op, key = pending.popleft()
            if name in _CONNECTION:
                continue
            failed = isinstance(reply, RedisErrorReply)
            self.history.record(
                "storage",
                Kind.STORAGE_OP,
                self.instance_id,
                op=op,
                command=name,
                key=key,
                bytes=0,
                ok=not failed,
                error=str(reply) if failed else None,
                status=None,
                observed="proxy",
            )

    def _record_refused(self) -> None:
        self.history.record(
            "storage",
            Kind.STORAGE_OP,
            self.instance_id,
            op="redis.connect",
            key=None,
            bytes=0,
            ok=False,
            error="connection refused (redis down)",
            status=None,
            observed="proxy",
        )


_KEYLESS = frozenset({"SCRIPT", "FLUSHALL", "FLUSHDB", "INFO", "DBSIZE", "KEYS", "SCAN", "TIME"})


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)
