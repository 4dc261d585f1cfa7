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
import collections
import contextvars
import functools
import hashlib
import heapq
import inspect
import ipaddress
import selectors
import socket
import weakref
from asyncio.base_events import (  # type: ignore[attr-defined]
    _MIN_CANCELLED_TIMER_HANDLES_FRACTION,
    _MIN_SCHEDULED_TIMER_HANDLES,
    MAXIMUM_SELECT_TIMEOUT,
)
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import greenlet

from harness.loopback import MemoryNetwork, MemorySocket

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
    """Raised when code running in virtual time needs a real thread (a host name lookup)."""


class _VirtualSelector(selectors.BaseSelector):
    """Wraps a real selector: never blocks while a timer is pending, jumps the clock instead.

    With an in-memory network (:mod:`harness.loopback`) its sockets are polled here too, after
    the real ones; while the only real file the loop watches is its own wake-up pipe, and no
    signal handler depends on that pipe, the real selector is not asked at all unless the loop
    must wait (nothing else could have become ready without a thread, which the virtual loop
    does not run)."""

    def __init__(self, loop: VirtualEventLoop, network: MemoryNetwork | None) -> None:
        self._real = selectors.DefaultSelector()
        self._loop = loop
        self._network = network
        self._real_files = 0  # files registered with the real selector
        #: Whether something outside the loop (a thread, a signal) may write its wake-up pipe.
        self.real_wakeups = loop.allow_threads

    def _memory(self, fileobj: Any) -> MemoryNetwork | None:
        network = self._network
        if network is not None and isinstance(fileobj, int) and network.owns(fileobj):
            return network
        return None

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        network = self._memory(fileobj)
        if network is not None:
            return network.register(fileobj, events, data)
        key = self._real.register(fileobj, events, data)
        self._real_files += 1
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        network = self._memory(fileobj)
        if network is not None:
            return network.unregister(fileobj)
        key = self._real.unregister(fileobj)
        self._real_files -= 1
        return key

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        network = self._memory(fileobj)
        if network is not None:
            return network.modify(fileobj, events, data)
        return self._real.modify(fileobj, events, data)

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        network = self._memory(fileobj)
        if network is not None:
            return network.keys()[fileobj]
        return self._real.get_key(fileobj)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        if self._network is None:
            return self._real.get_map()
        return collections.ChainMap(self._network.keys(), self._real.get_map())  # type: ignore[arg-type]

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        network = self._network
        if network is None:
            ready = self._real.select(0)
        else:
            ready = network.select()
            # A real file may be ready only if one besides the loop's wake-up pipe is watched,
            # or if a thread or a signal handler may write to that pipe.
            if self._real_files > 1 or self.real_wakeups:
                ready = self._real.select(0) + ready
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
    server in the same loop.

    Blocking calls sent to an executor (``asyncio.to_thread``, ``run_in_executor``) do not get a
    thread, whose result would arrive at a wall-clock-dependent virtual time: each runs on the
    loop's own thread in a greenlet, deterministically, and may :func:`suspend` itself for
    modelled time (a simulated S3 upload) while the loop goes on. ``allow_threads`` restores
    real threads, for code that truly needs them.
    """

    def __init__(
        self, *, allow_threads: bool = False, memory_network: bool = False, lean: bool = False
    ) -> None:
        self._now = 0.0
        #: The instant the loop last iterated at, and how many iterations it ran there.
        self._instant = -1.0
        self._spins = 0
        self._stall_callback: Callable[[float], None] | None = None
        #: Iterate with :meth:`_lean_run_once` (see there); off on the full stack.
        self._lean = lean and lean_iterations_available()
        self._allow_threads = allow_threads
        self._external: weakref.WeakSet[asyncio.TimerHandle] = weakref.WeakSet()
        #: With ``memory_network``, servers started through :meth:`listen_socket` are reached
        #: over in-memory sockets (:mod:`harness.loopback`) instead of the kernel's loopback.
        self.network = MemoryNetwork() if memory_network else None
        #: Real sockets connected to an in-memory address: the in-memory socket standing in.
        self._stand_ins: weakref.WeakKeyDictionary[socket.socket, MemorySocket] = (
            weakref.WeakKeyDictionary()
        )
        self._stand_in_ends: dict[MemorySocket, weakref.finalize[Any, Any]] = {}
        self._virtual_selector = _VirtualSelector(self, self.network)
        super().__init__(selector=self._virtual_selector)

    def time(self) -> float:
        return self._now

    @property
    def allow_threads(self) -> bool:
        return self._allow_threads

    def add_signal_handler(  # type: ignore[override]
        self, sig: int, callback: Callable[..., object], *args: Any
    ) -> None:
        # A signal reaches the handler through the wake-up pipe: poll it from now on.
        self._virtual_selector.real_wakeups = True
        super().add_signal_handler(sig, callback, *args)

    def listen_socket(self, host: str, port: int) -> socket.socket | MemorySocket:
        """A socket bound to ``host:port`` (port 0: any free one) for ``create_server(sock=...)``:
        in memory when the loop has an in-memory network, else a real one. Servers of a
        simulated run start this way on either path, so that both take the same steps."""
        if self.network is not None:
            return self.network.listen(host, port)
        real = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        real.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            real.bind((host, port))
        except OSError:
            real.close()
            raise
        return real

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        """As asyncio's; a socket connecting to an in-memory address gets an in-memory socket
        standing in for it, which the transport made of it uses. ``create_connection(host,
        port)`` connects this way, and so does aiohttp's client before
        ``create_connection(sock=...)``: the steps are those of a real connection."""
        network = self.network
        if (
            network is None
            or isinstance(sock, MemorySocket)
            or sock.type != socket.SOCK_STREAM
            or network.listener(address) is None
        ):
            return await super().sock_connect(sock, address)
        stand_in = MemorySocket(network)
        try:
            await super().sock_connect(stand_in, address)  # type: ignore[arg-type]
        except BaseException:
            stand_in.close()
            raise
        self._stand_ins[sock] = stand_in
        # Used with the loop's low-level calls, the stand-in ends with the socket it stands for.
        self._stand_in_ends[stand_in] = weakref.finalize(sock, stand_in.close)

    # A socket connected to an in-memory address is used through its stand-in by the loop's
    # low-level socket calls too.
    async def sock_sendall(self, sock: socket.socket, data: Any) -> None:
        return await super().sock_sendall(self._stand_ins.get(sock, sock), data)  # type: ignore[arg-type]

    async def sock_recv(self, sock: socket.socket, nbytes: int) -> bytes:
        return await super().sock_recv(self._stand_ins.get(sock, sock), nbytes)  # type: ignore[arg-type]

    async def sock_recv_into(self, sock: socket.socket, buf: Any) -> int:
        return await super().sock_recv_into(self._stand_ins.get(sock, sock), buf)  # type: ignore[arg-type]

    def _make_socket_transport(
        self, sock: socket.socket, *args: Any, **kwargs: Any
    ) -> asyncio.Transport:
        stand_in = self._stand_ins.pop(sock, None)
        if stand_in is not None:
            self._stand_in_ends.pop(stand_in).detach()  # the transport owns it now
            sock.close()  # never connected: its stand-in carries the connection
            sock = stand_in  # type: ignore[assignment]
        return super()._make_socket_transport(sock, *args, **kwargs)  # type: ignore[misc,no-any-return]

    #: Loop iterations at one virtual instant after which the loop reports a stall, and again
    #: after each as many more: code that never lets virtual time pass (a retry at once on an
    #: error answer) would otherwise spin for ever. The library's 83 runs meet at most 43.
    STALL_ITERATIONS = 200_000

    def on_stall(self, callback: Callable[[float], None] | None) -> None:
        """Call ``callback(now)`` when the loop has iterated :data:`STALL_ITERATIONS` times
        without virtual time moving (and after each as many more); None: no callback. An
        exception it raises ends the loop's run."""
        self._stall_callback = callback

    def _run_once(self) -> None:
        if self._now != self._instant:
            self._instant, self._spins = self._now, 0
        else:
            self._spins += 1
            if self._spins % self.STALL_ITERATIONS == 0 and self._stall_callback is not None:
                self._stall_callback(self._now)
        scheduled = self._scheduled  # type: ignore[attr-defined]
        count = len(scheduled)
        if (
            not self._lean
            or self._debug  # type: ignore[attr-defined]
            or (
                count > _MIN_SCHEDULED_TIMER_HANDLES
                and self._timer_cancelled_count / count > _MIN_CANCELLED_TIMER_HANDLES_FRACTION  # type: ignore[attr-defined]
            )
        ):
            super()._run_once()  # type: ignore[misc]
        else:
            self._lean_run_once(scheduled)

    def _lean_run_once(self, scheduled: list[asyncio.TimerHandle]) -> None:
        """One iteration of asyncio's ``BaseEventLoop._run_once``, step for step, in the case
        the simulation meets on almost every iteration: not in debug mode, and too few
        cancelled timers for asyncio to rebuild its heap (``_run_once`` does both itself).

        The same timers are dropped and run in the same order, the selector is asked with the
        same timeout, the ready callbacks run in the same order; what goes is the cost of the
        general case (reading the clock through ``time()``, the debug branches, processing an
        empty event list). It reads asyncio's private state, so it is used only while asyncio's
        own loop is the one it was written from (:func:`lean_iterations_available`), and not
        on the full stack (``HARNESS_SIM_FULL_STACK=1``), whose runs confirm every failure."""
        while scheduled and scheduled[0]._cancelled:
            self._timer_cancelled_count -= 1  # type: ignore[attr-defined]
            heapq.heappop(scheduled)._scheduled = False  # type: ignore[attr-defined]
        ready: collections.deque[asyncio.Handle] = self._ready  # type: ignore[attr-defined]
        timeout: float | None = None
        if ready or self._stopping:  # type: ignore[attr-defined]
            timeout = 0
        elif scheduled:
            timeout = min(max(0, scheduled[0].when() - self._now), MAXIMUM_SELECT_TIMEOUT)
        events = self._selector.select(timeout)  # type: ignore[attr-defined]
        if events:
            self._process_events(events)  # type: ignore[attr-defined]
        end = self._now + self._clock_resolution  # type: ignore[attr-defined]
        while scheduled and scheduled[0].when() < end:
            handle = heapq.heappop(scheduled)
            handle._scheduled = False  # type: ignore[attr-defined]
            ready.append(handle)
        for _ in range(len(ready)):
            callback = ready.popleft()
            if not callback._cancelled:
                callback._run()

    def advance(self, seconds: float) -> None:
        """Move virtual time forward (never backward)."""
        if seconds < 0:
            raise ValueError("virtual time cannot go backward")
        self._now += seconds

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        if self._allow_threads:
            return super().run_in_executor(executor, func, *args)
        return _GreenletCall(self, func, args).future

    async def getaddrinfo(self, host: Any, *args: Any, **kwargs: Any) -> Any:
        """Only IP literals: a host name lookup would ask real DNS, in real time."""
        if self._allow_threads or host is None or _is_ip_literal(host):
            return await super().getaddrinfo(host, *args, **kwargs)
        raise ThreadUseError(
            f"looking up the host name {host!r} needs a thread and real DNS while running in "
            "virtual time; use an IP literal instead of a host name"
        )

    def call_later_external(
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        """A timer of the world outside the simulated processes (a deadline, a fault): it still
        fires while a process holds the loop in a blocking call (see :meth:`block`)."""
        handle = self.call_later(delay, callback, *args, context=context)
        self._external.add(handle)
        return handle

    def block(self, seconds: float, stop: Callable[[], bool]) -> bool:
        """The caller holds the loop's thread for ``seconds`` of virtual time, as a blocking call
        made directly on the loop does: nothing else of the simulated processes runs meanwhile,
        but external timers (:meth:`call_later_external`) due in that span run at their times.
        Returns False as soon as ``stop()`` is true after one of them (the process was killed
        mid-call), leaving the clock at that instant."""
        end = self._now + max(0.0, seconds)
        scheduled: list[asyncio.TimerHandle] = getattr(self, "_scheduled")  # noqa: B009
        while True:
            pending = set(scheduled)
            due = [
                h for h in self._external if h in pending and not h.cancelled() and h.when() <= end
            ]
            if not due:
                break
            handle = min(due, key=lambda h: (h.when(), scheduled.index(h)))
            scheduled.remove(handle)
            heapq.heapify(scheduled)
            self._external.discard(handle)
            handle._scheduled = False  # type: ignore[attr-defined]
            self._now = max(self._now, handle.when())
            handle._run()
            if stop():
                return False
        self._now = end
        return True


#: Digests of the source of asyncio's ``BaseEventLoop._run_once`` that
#: :meth:`VirtualEventLoop._lean_run_once` repeats (CPython 3.11 and 3.12, then 3.13).
RUN_ONCE_DIGESTS = frozenset({"26970ce6b0d67ef5", "22aebfb8172a0741"})


@functools.cache
def lean_iterations_available() -> bool:
    """Whether asyncio's loop iteration is one :meth:`VirtualEventLoop._lean_run_once` was
    written from (another Python's is used as it is, and ``tests/test_clock.py`` fails)."""
    try:
        source = inspect.getsource(asyncio.base_events.BaseEventLoop._run_once)  # type: ignore[attr-defined]
    except (OSError, TypeError, AttributeError):
        return False
    return hashlib.sha256(source.encode()).hexdigest()[:16] in RUN_ONCE_DIGESTS


def _is_ip_literal(host: Any) -> bool:
    try:
        ipaddress.ip_address(host.decode() if isinstance(host, bytes) else str(host))
    except ValueError:
        return False
    return True


class _CallGreenlet(greenlet.greenlet):  # type: ignore[misc]
    """The greenlet of one blocking call handed to the virtual loop's executor."""


class _GreenletCall:
    """Runs ``func(*args)`` in a greenlet on the loop's thread; its future resolves when it
    returns or raises. A :func:`suspend` inside hands the loop back for that much virtual time;
    if the future is cancelled meanwhile (the caller was killed) the call ends there."""

    def __init__(self, loop: VirtualEventLoop, func: Callable[..., Any], args: tuple[Any, ...]):
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        self.glet = _CallGreenlet(lambda: func(*args))
        # A greenlet starts with an empty context; the call sees its caller's, like a thread
        # started by ``asyncio.to_thread``.
        self.glet.gr_context = contextvars.copy_context()
        self.future.add_done_callback(self._abandon)
        loop.call_soon(self._step)

    def _step(self) -> None:
        if self.glet.dead or self.future.done():
            return
        self.glet.parent = greenlet.getcurrent()
        try:
            asked = self.glet.switch()
        except BaseException as error:  # the call raised: its caller gets the exception
            if not self.future.done():
                self.future.set_exception(error)
            return
        if self.glet.dead:
            if not self.future.done():
                self.future.set_result(asked)
            return
        self.loop.call_later(float(asked), self._step)

    def _abandon(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled() and not self.glet.dead and bool(self.glet):
            self.glet.parent = greenlet.getcurrent()
            self.glet.throw(greenlet.GreenletExit)


def suspend(seconds: float) -> bool:
    """Inside a blocking call run by a :class:`VirtualEventLoop`'s executor: let the loop run
    for ``seconds`` of virtual time, then go on. Returns False (and does nothing) anywhere else,
    e.g. in a blocking call made directly on the loop."""
    current = greenlet.getcurrent()
    if not isinstance(current, _CallGreenlet):
        return False
    current.parent.switch(seconds)
    return True


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
