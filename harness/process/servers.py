"""The servers behind a process run: the moto S3 server, Redis, and the watchdog.

All bind 127.0.0.1 on port 0 (a real ``redis-server`` listens on a Unix socket only, in the
run's directory) and all are stopped by their owner on every path. The target never sees these
addresses: it talks to the proxies in front of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Literal

RedisKind = Literal["fake", "real"]
#: How long a real redis-server may take to accept connections.
REDIS_START_TIMEOUT = 10.0
REGION = "us-east-1"
#: Dummy credentials: moto accepts any; they only have to be present.
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class ServerError(RuntimeError):
    """A server could not be started; the message says what is missing."""


class Watchdog:
    """A separate process that kills the run's process groups if the harness dies
    (see :mod:`harness.process.watchdog`)."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "harness.process.watchdog"],
            stdin=subprocess.PIPE,
            start_new_session=True,  # out of the terminal's group: a Ctrl-C does not reach it
            text=True,
        )

    def _send(self, line: str) -> None:
        stdin = self._process.stdin
        if stdin is not None and not stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                stdin.write(line + "\n")
                stdin.flush()

    def guard(self, pgid: int) -> None:
        self._send(f"+{pgid}")

    def release(self, pgid: int) -> None:
        self._send(f"-{pgid}")

    def close(self) -> None:
        if self._process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self._process.stdin.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


class MotoS3:
    """A moto server in a thread of this process, on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError:
            raise ServerError(
                "command targets need moto's server and fakeredis: "
                "pip install 'spot-harness[process]'"
            ) from None

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def create_bucket(self, bucket: str) -> None:
        client = self.client()
        client.create_bucket(Bucket=bucket)
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

    def drop_bucket(self, bucket: str) -> None:
        """Forget the run's bucket (moto keeps its state in this process)."""
        from moto.s3.models import s3_backends

        from harness.sim.s3 import ACCOUNT_ID

        with contextlib.suppress(Exception):
            s3_backends[ACCOUNT_ID]["aws"].buckets.pop(bucket, None)
            s3_backends.bucket_accounts.pop(bucket, None)

    def stop(self) -> None:
        self._server.stop()


class RedisBackend:
    """fakeredis' TCP server in a thread (``fake``) or a ``redis-server`` process (``real``)."""

    def __init__(self, kind: RedisKind, root: Path, watchdog: Watchdog) -> None:
        self.kind = kind
        self._process: subprocess.Popen[bytes] | None = None
        self._fake: Any = None
        self.socket: Path | None = None
        self.port: int | None = None
        self._watchdog = watchdog
        if kind == "fake":
            self._start_fake()
        else:
            self._start_real(root, watchdog)

    def _start_fake(self) -> None:
        from fakeredis import TcpFakeServer

        server = TcpFakeServer(("127.0.0.1", 0), server_type="redis")
        server.daemon_threads = True  # a client left connected must not hold up the end
        threading.Thread(target=server.serve_forever, daemon=True, name="fakeredis").start()
        self._fake = server
        self.port = int(server.server_address[1])

    def _start_real(self, root: Path, watchdog: Watchdog) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerError(
                "--redis real needs `redis-server` (Debian: apt-get install redis-server; the "
                "test setup installs it from tests/system_packages.txt)"
            )
        self.socket = root / "redis.sock"
        self._process = subprocess.Popen(
            [
                binary,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        watchdog.guard(self._process.pid)
        deadline = time.monotonic() + REDIS_START_TIMEOUT
        while not self.socket.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ServerError("redis-server did not start (is it installed and working?)")
            time.sleep(0.01)

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.socket is not None:
            return await asyncio.open_unix_connection(str(self.socket))
        assert self.port is not None
        return await asyncio.open_connection("127.0.0.1", self.port)

    def client(self) -> Any:
        """An asyncio redis client straight to the backend (for restarts and the snapshot)."""
        import redis.asyncio as aioredis

        if self.socket is not None:
            return aioredis.Redis(unix_socket_path=str(self.socket))
        return aioredis.Redis(host="127.0.0.1", port=self.port or 6379)

    def stop(self) -> None:
        if self._fake is not None:
            self._fake.shutdown()
            self._fake.server_close()
            self._fake = None
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._watchdog.release(self._process.pid)
            self._process = None
