"""An in-memory loopback network for the virtual event loop.

A simulated run talks HTTP to its per-instance metadata servers all the time (the reference
runtime polls every few seconds), and over real loopback sockets each exchange costs two system
calls to send, two to receive and an ``epoll_wait`` per loop iteration. This module stands in for
the kernel instead: :class:`MemorySocket` has the socket methods asyncio's own selector
transports call (``connect``, ``accept``, ``send``, ``recv``, ``shutdown``, ``close``,
``setsockopt``), and :class:`MemoryNetwork` reports their readiness to the loop's selector the
way level-triggered epoll does, in the same order. asyncio's transports, aiohttp's server and
every client above them run unchanged, with the same loop iterations as over real sockets, so a
run's history is the same event for event (``tests/sim/test_memory_network.py``).

What the kernel does that matters here, and is modelled: a non-blocking connect that completes
before the next poll (the server's listener becomes readable, the client writable); data a
``send`` hands to the peer at once; ``shutdown(SHUT_WR)`` and ``close`` seen by the peer as end
of file; a close with ``SO_LINGER`` zero (or with unread data) seen as a connection reset, as is
data sent to a peer that has closed; a listener closed with connections not yet accepted resets
them. Buffers never fill (metadata answers are small), so a send never blocks.

Only connections to an address served in memory (:meth:`MemoryNetwork.listen`) use it; anything
else (a real server, a refused port) goes through real sockets as before. A client's own socket
connected with ``loop.sock_connect`` gets an in-memory socket standing in for it (see
:class:`harness.clock.VirtualEventLoop`): the transport ``create_connection(sock=...)`` makes of
it and the loop's ``sock_sendall`` / ``sock_recv`` use the stand-in, which ends when the socket
is garbage collected. Calling the socket's own methods directly is not supported (it never
connected); no client of the simulation does.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import struct
from collections import deque
from collections.abc import Iterable
from typing import Any

#: File numbers of in-memory sockets start here, far above any real descriptor.
FD_BASE = 1 << 30
#: First local port of an in-memory client connection (the Linux ephemeral range).
EPHEMERAL_PORT = 32768
_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE


def _error(number: int) -> OSError:
    """The OSError subclass a real socket raises for ``number``, with the same text."""
    return OSError(number, os.strerror(number))


class MemorySocket:
    """A non-blocking TCP socket of a :class:`MemoryNetwork` (see the module's docstring)."""

    family = socket.AF_INET
    type = socket.SOCK_STREAM
    proto = socket.IPPROTO_TCP

    def __init__(self, network: MemoryNetwork, local: tuple[str, int] = ("0.0.0.0", 0)):
        self._network = network
        self._fd = network.new_fd(self)
        self.local = local
        self.remote: tuple[str, int] | None = None
        self.peer: MemorySocket | None = None
        self.inbox = bytearray()
        self.got_eof = False  # the peer will send nothing more (FIN)
        self.pending_error: OSError | None = None  # a reset not reported yet
        self.reset = False  # reset once: afterwards reads see end of file, writes EPIPE
        self.write_shut = False
        self.closed = False
        self.listening = False
        self.backlog: deque[MemorySocket] = deque()
        self.linger_zero = False
        self._options: dict[tuple[int, int], Any] = {}
        self._reserved: socket.socket | None = None  # a listener's real port, held meanwhile

    # -- what asyncio asks of a socket -----------------------------------------------------------
    def fileno(self) -> int:
        return -1 if self.closed else self._fd

    def setblocking(self, flag: bool) -> None:
        if flag:
            raise ValueError("in-memory sockets are non-blocking only")

    def gettimeout(self) -> float:
        return 0.0

    def settimeout(self, value: float | None) -> None:
        self.setblocking(value != 0.0)

    def getsockname(self) -> tuple[str, int]:
        return self.local

    def getpeername(self) -> tuple[str, int]:
        if self.remote is None or self.closed:
            raise _error(errno.ENOTCONN)
        return self.remote

    def setsockopt(self, level: int, option: int, value: Any, *rest: Any) -> None:
        self._options[level, option] = value
        if (level, option) == (socket.SOL_SOCKET, socket.SO_LINGER):
            on, seconds = struct.unpack("ii", value)
            self.linger_zero = bool(on) and seconds == 0

    def getsockopt(self, level: int, option: int, buflen: int = 0) -> Any:
        if (level, option) == (socket.SOL_SOCKET, socket.SO_ERROR):
            return 0  # a connect to a listening in-memory address always succeeds
        return self._options.get((level, option), 0)

    def listen(self, backlog: int = 128) -> None:
        self.listening = True

    def connect(self, address: tuple[str, int]) -> None:
        """Start connecting to the listener at ``address``: as on loopback, the handshake is
        done before the next poll, but the call itself reports it in progress."""
        listener = self._network.listener(address)
        if listener is None:
            raise _error(errno.ECONNREFUSED)
        server = MemorySocket(self._network, listener.local)
        self.local = (listener.local[0], self._network.new_port())
        self.remote, server.remote = listener.local, self.local
        self.peer, server.peer = server, self
        listener.backlog.append(server)
        self._network.wake(listener, _READ)
        raise BlockingIOError(errno.EINPROGRESS, os.strerror(errno.EINPROGRESS))

    def connect_ex(self, address: tuple[str, int]) -> int:
        try:
            self.connect(address)
        except OSError as error:
            return error.errno or 0
        return 0

    def accept(self) -> tuple[MemorySocket, tuple[str, int]]:
        if not self.backlog:
            raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
        connection = self.backlog.popleft()
        assert connection.remote is not None
        return connection, connection.remote

    def send(self, data: Any, flags: int = 0) -> int:
        self._check_open()
        if self.pending_error is not None:
            error, self.pending_error = self.pending_error, None
            raise error
        if self.write_shut or self.reset:
            raise _error(errno.EPIPE)
        payload = bytes(data)
        peer = self.peer
        if peer is None or peer.closed:
            # The peer's kernel answers data for a closed socket with a reset.
            self._reset_by_peer()
        elif payload:
            peer.inbox += payload
            self._network.wake(peer, _READ)
        return len(payload)

    def sendall(self, data: Any, flags: int = 0) -> None:
        self.send(data, flags)

    def sendmsg(self, buffers: Iterable[Any], *rest: Any) -> int:
        return self.send(b"".join(bytes(buffer) for buffer in buffers))

    def recv(self, size: int, flags: int = 0) -> bytes:
        self._check_open()
        if self.inbox:
            data = bytes(self.inbox[:size])
            del self.inbox[:size]
            return data
        if self.got_eof:  # as Linux does, an end of file comes before a later reset
            return b""
        if self.pending_error is not None:
            error, self.pending_error = self.pending_error, None
            raise error
        if self.reset:
            return b""
        raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))

    def recv_into(self, buffer: Any, size: int = 0, flags: int = 0) -> int:
        view = memoryview(buffer).cast("B")
        data = self.recv(size or len(view))
        view[: len(data)] = data
        return len(data)

    def shutdown(self, how: int) -> None:
        self._check_open()
        if how in (socket.SHUT_WR, socket.SHUT_RDWR) and not self.write_shut:
            self.write_shut = True
            self._send_fin()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        network = self._network
        network.forget(self._fd)
        if self.listening:
            network.stop_listening(self)
            for waiting in self.backlog:  # never accepted: the kernel resets them
                waiting.closed = True
                if waiting.peer is not None:
                    waiting.peer._reset_by_peer()
            self.backlog.clear()
            if self._reserved is not None:
                self._reserved.close()
            return
        peer = self.peer
        if peer is None or peer.closed:
            return
        if self.linger_zero or self.inbox:  # SO_LINGER 0, or data left unread: a reset
            peer._reset_by_peer()
        elif not self.write_shut:
            self._send_fin()

    def detach(self) -> int:
        raise OSError("an in-memory socket has no descriptor to detach")

    # -- the kernel's side -----------------------------------------------------------------------
    def readiness(self) -> int:
        """The events a poll would report for this socket now."""
        if self.closed:
            return 0
        if self.listening:
            return _READ if self.backlog else 0
        ready = _WRITE if self.peer is not None else 0
        if self.inbox or self.got_eof or self.reset or self.pending_error is not None:
            ready |= _READ
        if self.pending_error is not None:
            ready |= _WRITE
        return ready

    def _send_fin(self) -> None:
        peer = self.peer
        if peer is not None and not peer.closed:
            peer.got_eof = True
            self._network.wake(peer, _READ)

    def _reset_by_peer(self) -> None:
        if self.closed or self.reset:
            return
        self.reset = True
        # A reset after the peer's end of file is a broken pipe (Linux's CLOSE_WAIT case).
        self.pending_error = _error(errno.EPIPE if self.got_eof else errno.ECONNRESET)
        self._network.wake(self, _READ | _WRITE)

    def _check_open(self) -> None:
        if self.closed:
            raise _error(errno.EBADF)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "listening" if self.listening else "open"
        return f"<MemorySocket fd={self._fd} {state} {self.local} -> {self.remote}>"


class MemoryNetwork:
    """The in-memory sockets of one event loop, their listeners and their readiness.

    The selector part mirrors level-triggered epoll: a socket that becomes ready while
    registered for that event joins the end of a ready list (once); a poll reports, in list
    order, every socket still ready for its registered events and keeps those in the list;
    registering or modifying a socket that is ready already puts it on the list."""

    def __init__(self) -> None:
        self._sockets: dict[int, MemorySocket] = {}
        self._listeners: dict[tuple[str, int], MemorySocket] = {}
        self._keys: dict[int, selectors.SelectorKey] = {}
        self._ready: dict[int, None] = {}  # insertion-ordered: the ready list
        self._next_fd = FD_BASE
        self._next_port = EPHEMERAL_PORT

    # -- sockets and addresses -------------------------------------------------------------------
    def new_fd(self, sock: MemorySocket) -> int:
        fd, self._next_fd = self._next_fd, self._next_fd + 1
        self._sockets[fd] = sock
        return fd

    def new_port(self) -> int:
        port, self._next_port = self._next_port, self._next_port + 1
        return port

    def listen(self, host: str, port: int = 0) -> MemorySocket:
        """A listening socket at ``host:port`` (port 0: a free one). A real socket is bound and
        listens on that port meanwhile, so that the address stays this server's: a client
        outside the loop's reach (a blocking call) connects as before, and is never answered,
        as before, since the loop it would need is the one it blocks."""
        real = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        real.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            real.bind((host, port))
            real.listen()
        except OSError:
            real.close()
            raise
        listener = MemorySocket(self, (host, real.getsockname()[1]))
        listener._reserved = real
        listener.listening = True
        self._listeners[listener.local] = listener
        return listener

    def listener(self, address: Any) -> MemorySocket | None:
        """The in-memory listener at ``address`` (a ``(host, port)`` pair), if any."""
        if not isinstance(address, tuple) or len(address) < 2:
            return None
        host, port = address[0], address[1]
        if isinstance(host, bytes):
            host = host.decode()
        return self._listeners.get((str(host).strip("[]"), int(port)))

    def stop_listening(self, listener: MemorySocket) -> None:
        if self._listeners.get(listener.local) is listener:
            del self._listeners[listener.local]

    def owns(self, fd: int) -> bool:
        return fd >= FD_BASE

    def forget(self, fd: int) -> None:
        """A socket was closed: it is no longer polled (as epoll forgets a closed file)."""
        self._sockets.pop(fd, None)
        self._keys.pop(fd, None)
        self._ready.pop(fd, None)

    # -- the selector's part ---------------------------------------------------------------------
    def register(self, fd: int, events: int, data: Any) -> selectors.SelectorKey:
        if fd in self._keys:
            raise KeyError(f"{fd!r} is already registered")
        return self._set_key(fd, events, data)

    def modify(self, fd: int, events: int, data: Any) -> selectors.SelectorKey:
        if fd not in self._keys:
            raise KeyError(f"{fd!r} is not registered")
        return self._set_key(fd, events, data)

    def unregister(self, fd: int) -> selectors.SelectorKey:
        key = self._keys.pop(fd)
        self._ready.pop(fd, None)
        return key

    def keys(self) -> dict[int, selectors.SelectorKey]:
        return self._keys

    def _set_key(self, fd: int, events: int, data: Any) -> selectors.SelectorKey:
        sock = self._sockets.get(fd)
        if sock is None:
            raise ValueError(f"no open in-memory socket has file number {fd}")
        key = selectors.SelectorKey(sock, fd, events, data)
        self._keys[fd] = key
        if sock.readiness() & events:
            self._ready.setdefault(fd, None)
        return key

    def wake(self, sock: MemorySocket, events: int) -> None:
        """``sock`` may have become ready for ``events``: onto the ready list if it is polled
        for one of them."""
        key = self._keys.get(sock._fd)
        if key is not None and key.events & events:
            self._ready.setdefault(sock._fd, None)

    def select(self) -> list[tuple[selectors.SelectorKey, int]]:
        """What a non-blocking poll reports now, in ready-list order."""
        if not self._ready:
            return []
        reported: list[tuple[selectors.SelectorKey, int]] = []
        still: dict[int, None] = {}
        for fd in self._ready:
            key = self._keys.get(fd)
            sock = self._sockets.get(fd)
            if key is None or sock is None:
                continue
            events = sock.readiness() & key.events
            if events:
                reported.append((key, events))
                still[fd] = None
        self._ready = still
        return reported
