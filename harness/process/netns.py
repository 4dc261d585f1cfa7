"""``network: namespace``: the target runs where 169.254.169.254 is the fake metadata server.

An unmodified handler that hard-codes ``http://169.254.169.254`` (or
``metadata.google.internal``) cannot be pointed at a local fake by environment variables. With
``network: namespace`` the harness (as root, on Linux) creates a network namespace of its own,
puts 169.254.169.254 on its loopback, maps ``metadata.google.internal`` to it (``ip netns exec``
reads ``/etc/netns/NAME/hosts``), and runs the command inside. Listening sockets are created in
the namespace from a helper thread (``setns`` changes only the calling thread) and served by the
harness's own event loop, which relays each connection to the fake metadata server and the
proxies on the host's loopback. The target has no other network: nothing it does leaves the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

METADATA_IP = "169.254.169.254"
CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/etc/netns")
RELAY_CHUNK = 1 << 16


class NamespaceRefused(RuntimeError):
    """``network: namespace`` cannot be used here; the message says how to run it."""


def why_not() -> str:
    """Why a network namespace cannot be created here (empty when it can)."""
    if not sys.platform.startswith("linux"):
        return "`network: namespace` needs Linux (network namespaces)"
    if os.geteuid() != 0:
        return (
            "`network: namespace` needs root (it creates a network namespace with `ip netns`): "
            "run `sudo harness run ...`, or drop it and let the handler read "
            "AWS_EC2_METADATA_SERVICE_ENDPOINT / GCE_METADATA_HOST"
        )
    if shutil.which("ip") is None:
        return "`network: namespace` needs the `ip` command (Debian: apt-get install iproute2)"
    return ""


class NetworkNamespace:
    """One run's namespace: created on entry, deleted (with its hosts file) on every exit."""

    def __init__(self) -> None:
        reason = why_not()
        if reason:
            raise NamespaceRefused(reason)
        self.name = f"spot-harness-{secrets.token_hex(4)}"
        self._servers: list[asyncio.AbstractServer] = []
        _ip("netns", "add", self.name)
        try:
            _ip("-n", self.name, "link", "set", "lo", "up")
            _ip("-n", self.name, "addr", "add", f"{METADATA_IP}/32", "dev", "lo")
            hosts = NETNS_DIR / self.name / "hosts"
            hosts.parent.mkdir(parents=True, exist_ok=True)
            hosts.write_text(
                f"127.0.0.1 localhost\n{METADATA_IP} metadata.google.internal metadata\n"
            )
        except BaseException:
            self.close()
            raise

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the namespace (``ip netns exec`` execs it: same pid)."""
        return ["ip", "netns", "exec", self.name, *argv]

    def listen(self, host: str, port: int) -> socket.socket:
        """A listening TCP socket bound inside the namespace."""
        made: list[socket.socket | BaseException] = []

        def inside() -> None:
            try:
                with open(f"/var/run/netns/{self.name}") as handle:
                    libc = ctypes.CDLL(None, use_errno=True)
                    if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns failed")
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host, port))
                sock.listen(128)
                sock.setblocking(False)
                made.append(sock)
            except BaseException as error:
                made.append(error)

        thread = threading.Thread(target=inside, name="netns")  # setns is per thread
        thread.start()
        thread.join()
        result = made[0]
        if isinstance(result, BaseException):
            raise result
        return result

    async def relay(self, host: str, port: int, target: Callable[[], tuple[str, int]]) -> int:
        """Serve ``host:port`` inside the namespace by relaying to ``target()`` on the host;
        returns the port bound."""
        sock = self.listen(host, port)

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            to_host, to_port = target()
            try:
                up_reader, up_writer = await asyncio.open_connection(to_host, to_port)
            except OSError:
                writer.transport.abort()
                return
            await asyncio.gather(
                _pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True
            )

        server = await asyncio.start_server(connection, sock=sock)
        self._servers.append(server)
        return int(sock.getsockname()[1])

    async def stop_relays(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        self._servers.clear()

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("netns", "del", self.name)
        shutil.rmtree(NETNS_DIR / self.name, ignore_errors=True)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(RELAY_CHUNK):
            writer.write(chunk)
            await writer.drain()
    finally:
        writer.transport.abort()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)
