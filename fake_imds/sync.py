"""A synchronous handle on a :class:`~fake_imds.server.FakeImds`, for code that is not async.

The server runs on its own event loop in a background thread, in real time; blocking clients
(botocore's fetchers, ``requests``, ``ec2-metadata``) talk to it over loopback from the calling
thread. Every change to the plane is made on the server's loop, so its timers stay on that loop.

    with SyncFakeImds(imdsv2="required") as imds:
        os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.url
        imds.notice(action="terminate", lead="2m")
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

from fake_imds import control
from fake_imds.model import MetadataPlane, ServedRequest
from fake_imds.server import FakeImds

T = TypeVar("T")

#: How long start-up and each call may take before the wrapper gives up (seconds).
CALL_TIMEOUT = 30.0


class SyncFakeImds:
    """Runs ``FakeImds(**kwargs)`` on a private loop in a daemon thread."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: FakeImds | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> Self:
        if self._loop is not None:
            raise RuntimeError("this server is already started")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="fake-imds", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        server = FakeImds(**self._kwargs)
        try:
            self._run(server.start())
        except BaseException:
            self._stop_loop()
            raise
        self._server = server
        return self

    def close(self) -> None:
        if self._loop is None:
            return
        if self._server is not None:
            self._run(self._server.close())
            self._server = None
        self._stop_loop()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(CALL_TIMEOUT)
        loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- running things on the server's loop --------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coro.close()
            raise RuntimeError("the server is not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(CALL_TIMEOUT)

    def call(self, fn: Callable[[MetadataPlane], T]) -> T:
        """Run ``fn(plane)`` on the server's loop and return its result."""

        async def on_loop() -> T:
            return fn(self.server.plane)

        return self._run(on_loop())

    # -- the same operations as the control API -----------------------------------------------
    def notice(self, **body: Any) -> dict[str, Any]:
        """Schedule a notice; keyword arguments are the ``POST notices`` body fields
        (``kind``, ``action``, ``lead="2m"``, ``at``, ``cloud``...). Raises
        :class:`~fake_imds.control.BodyError` for a bad field. Returns the notice's JSON."""
        return self.call(
            lambda plane: control.notices_json(control.schedule_notice(plane, body), plane)
        )

    def cancel(self, notice_id: str) -> None:
        self.call(lambda plane: plane.cancel_notice(notice_id))

    def fault(self, **body: Any) -> dict[str, Any]:
        """Put a fault in place (``POST faults`` fields: ``kind``, ``path``, ``for``...)."""
        return self.call(lambda plane: control.fault_json(control.add_fault(plane, body), plane))

    def remove_fault(self, fault_id: str) -> None:
        self.call(lambda plane: plane.remove_fault(fault_id))

    def requests(self) -> list[ServedRequest]:
        return self.call(lambda plane: list(plane.requests))

    def reset(self) -> None:
        self.call(lambda plane: plane.reset())

    # -- where it is --------------------------------------------------------------------------
    @property
    def server(self) -> FakeImds:
        if self._server is None:
            raise RuntimeError("the server is not started")
        return self._server

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def control_url(self) -> str:
        return self.server.control_url

    @property
    def port(self) -> int:
        return self.server.port
