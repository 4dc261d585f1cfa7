"""One clock for everything time-based: real, or virtual on an asyncio loop.

In simulation the asyncio loop's own ``time()`` *is* the virtual time. When no callback is ready
the loop does not wait: it polls its sockets without blocking and, if none is ready, jumps its
clock to the next timer. ``asyncio.sleep``, ``asyncio.timeout``, aiohttp's timeouts and every
timer of the fake metadata plane therefore run in virtual time, over real loopback sockets too,
and a two-hour sleep returns at once.

Calendar time (a notice's ``time`` field, token expiry, ``LastModified``) is derived from the same
clock: ``epoch + loop.time()``.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

#: Where virtual calendar time starts unless a scenario says otherwise.
DEFAULT_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class Clock(Protocol):
    """What time-based code may ask of time. Implementations must be cheap to call."""

    def monotonic(self) -> float:
        """Seconds on the clock's monotonic scale (the running loop's ``time()``)."""

    def now(self) -> datetime:
        """Calendar time, timezone-aware UTC."""

    async def sleep(self, seconds: float) -> None:
        """Sleep on this clock."""


class RealClock:
    """The wall clock: the running loop's monotonic time and the system's calendar time."""

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class LoopClock:
    """Calendar time derived from a loop's clock: ``epoch + loop.time()``.

    Bound to one loop so that code outside a running loop (a sync wrapper, a report) can still
    read it. With a :class:`VirtualEventLoop` this is the virtual clock.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, epoch: datetime = DEFAULT_EPOCH) -> None:
        if epoch.tzinfo is None:
            raise ValueError("epoch must be timezone-aware")
        self._loop = loop
        self._epoch = epoch

    def monotonic(self) -> float:
        return self._loop.time()

    def now(self) -> datetime:
        return self._epoch + timedelta(seconds=self._loop.time())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class SkewedClock:
    """A clock whose calendar time runs ``offset`` seconds ahead of (or behind) another's."""

    def __init__(self, base: Clock, offset: float) -> None:
        self._base = base
        self.offset = offset

    def monotonic(self) -> float:
        return self._base.monotonic()

    def now(self) -> datetime:
        return self._base.now() + timedelta(seconds=self.offset)

    async def sleep(self, seconds: float) -> None:
        await self._base.sleep(seconds)


class ThreadUseError(RuntimeError):
    """Raised when code running in virtual time tries to use a thread pool."""


class _VirtualSelector(selectors.BaseSelector):
    """Wraps a real selector: never blocks while a timer is pending, jumps the clock instead."""

    def __init__(self, loop: VirtualEventLoop) -> None:
        self._real = selectors.DefaultSelector()
        self._loop = loop

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            # No timer at all: only real I/O (a socket, a thread waking the loop) can make
            # progress, so waiting for it in real time is the only correct thing to do.
            return self._real.select(None)
        self._loop.advance(timeout)
        return []


class VirtualEventLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` is virtual and which skips idle time.

    Loopback TCP delivers data within the sending system call, so polling the sockets without
    blocking before each jump is enough for request/response exchanges between a client and a
    server in the same loop. Thread pools are refused unless ``allow_threads`` is set, because
    a thread's result would arrive at a wall-clock-dependent virtual time.
    """

    def __init__(self, *, allow_threads: bool = False) -> None:
        self._now = 0.0
        self._allow_threads = allow_threads
        super().__init__(selector=_VirtualSelector(self))

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move virtual time forward (never backward)."""
        if seconds < 0:
            raise ValueError("virtual time cannot go backward")
        self._now += seconds

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        if not self._allow_threads:
            raise ThreadUseError(
                f"{getattr(func, '__qualname__', func)!r} asked for a thread while running in "
                "virtual time; use an IP literal instead of a host name, or make the call "
                "directly (simulated I/O is timed by the world's model, not by threads)"
            )
        return super().run_in_executor(executor, func, *args)


def run_virtual(
    main: Callable[[], Coroutine[Any, Any, T]] | Awaitable[T],
    *,
    allow_threads: bool = False,
) -> T:
    """Run a coroutine to completion on a fresh :class:`VirtualEventLoop`."""
    with asyncio.Runner(loop_factory=lambda: VirtualEventLoop(allow_threads=allow_threads)) as r:
        coro = main() if callable(main) else main
        return r.run(coro)  # type: ignore[arg-type]


def clock_for_running_loop(epoch: datetime = DEFAULT_EPOCH) -> Clock:
    """The natural clock for the running loop: virtual on a virtual loop, else the real one."""
    loop = asyncio.get_running_loop()
    if isinstance(loop, VirtualEventLoop):
        return LoopClock(loop, epoch)
    return RealClock()
