"""The in-memory loopback network (harness/loopback.py) against real loopback sockets.

A simulated run reaches its metadata servers over in-memory sockets unless the full stack is
asked for. The switch must change nothing a run shows: the same history event for event, each
event recorded at the same iteration of the event loop, for scenarios that exercise what a
connection can go through (metadata faults that reset, hang or refuse, two instances at once,
hanging GETs, aiohttp's client as well as the reference runtime's). The edge cases of a
connection (a reset or a timeout fault in the middle of a request, a server that closes, a
client that gives up early) are played both ways and must leave the same trace: what the client
saw, when, and what the server logged.

``tests/sim/test_s3_shortcut.py`` compares the whole library between the full stack and every
shortcut at once; this file isolates the network, so the S3 shortcut is on in both runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fake_imds.server import FakeImds
from harness.clock import VirtualEventLoop
from harness.history import History
from harness.loopback import MemoryNetwork, MemorySocket
from harness.runtime.monitor.http import HttpSession, Unreachable, request
from harness.scenario import load_paths
from harness.sim import moto_patches, runner
from harness.sim.golden import cached_golden, golden_for
from harness.sim.targets import resolve_target

REPO = Path(__file__).resolve().parents[2]

#: A subset of the library, not all of it (the S3 shortcut's test runs all of it both ways,
#: with the network switched with it): every scenario whose metadata service misbehaves, the
#: ones with two instances at once or a hanging GET, aiohttp's client (Azure approvals, the
#: IMDSv1 poller) and a plain notice per cloud. About a quarter of the library's run time.
SUBSET = (
    "imds_connection_resets",
    "imds_timeouts",
    "imds_throttled",
    "imds_server_errors",
    "imdsv2_token_401s",
    "hanging_get_blackholed",
    "hangs_without_timeout",
    "overlap_superseded_instance",
    "approves_before_save",
    "imdsv1_poller",
    "preemption",
    "interruption",
)

URL_PATH = "/latest/meta-data/instance-id"


def _subset() -> list[Any]:
    loaded, problems = load_paths([REPO / "scenarios"])
    assert problems == []
    chosen = [item for item in loaded if item.file.stem in SUBSET]
    assert sorted(item.file.stem for item in chosen) == sorted(SUBSET)
    return chosen


@contextlib.contextmanager
def _iterations(loop: VirtualEventLoop) -> Iterator[list[int]]:
    """A one-element list holding how many times the loop has polled so far."""
    count = [0]
    selector: Any = loop._selector  # type: ignore[attr-defined]
    poll = selector.select

    def counted(timeout: float | None = None) -> Any:
        count[0] += 1
        return poll(timeout)

    selector.select = counted
    yield count


def _play(item: Any, *, memory: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list[int]]:
    """The run's history (JSON lines) and the loop iteration at which each event came."""
    scenario = item.scenario
    target = resolve_target(scenario.target)
    golden = cached_golden(scenario, target) or runner._on_fresh_loop(
        golden_for(scenario, target, runner._uninterrupted)
    )
    loop = VirtualEventLoop(memory_network=memory)
    marks: list[int] = []
    record = History.record
    with _iterations(loop) as count:

        def marked(self: History, *args: Any, **kwargs: Any) -> Any:
            marks.append(count[0])
            return record(self, *args, **kwargs)

        monkeypatch.setattr(History, "record", marked)
        try:
            result = loop.run_until_complete(
                runner.run_scenario_async(scenario, target=target, golden=golden)
            )
        finally:
            monkeypatch.setattr(History, "record", record)
            loop.close()
    return f"{result.status}\n{result.history.to_jsonl()}", marks


@pytest.mark.parametrize("item", _subset(), ids=lambda item: item.file.stem)
def test_a_run_is_the_same_in_memory_and_over_sockets(
    item: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    over_sockets = _play(item, memory=False, monkeypatch=monkeypatch)
    in_memory = _play(item, memory=True, monkeypatch=monkeypatch)
    assert in_memory[0] == over_sockets[0]
    assert in_memory[1] == over_sockets[1]  # each event at the same loop iteration


def test_the_simulation_uses_the_network_unless_the_full_stack_is_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[bool] = []

    async def probe() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualEventLoop)
        seen.append(loop.network is not None)

    runner._on_fresh_loop(probe())
    with moto_patches.full_stack():
        runner._on_fresh_loop(probe())
    monkeypatch.setenv(moto_patches.FULL_STACK_ENV, "1")
    runner._on_fresh_loop(probe())
    assert seen == [True, False, False]


# -- the edge cases of one connection, played both ways ------------------------------------------
Trace = list[tuple[Any, ...]]
Story = Callable[[FakeImds, HttpSession, Trace], Awaitable[None]]


def _both_ways(story: Story) -> Trace:
    """Play ``story`` against a fresh server over sockets and in memory; the traces must be
    equal (what happened, at which virtual time and loop iteration), and the one is returned."""
    traces = []
    for memory in (False, True):
        loop = VirtualEventLoop(memory_network=memory)
        trace: Trace = []
        with _iterations(loop) as count:
            try:
                loop.run_until_complete(_serve(story, trace))
            finally:
                loop.close()
        trace.append(("iterations", count[0]))
        traces.append(trace)
    assert traces[1] == traces[0]
    return traces[0]


async def _serve(story: Story, trace: Trace) -> None:
    async with FakeImds("127.0.0.1", 0) as imds, HttpSession() as session:
        await story(imds, session, trace)
        trace.append(("log", [(r.path, r.status) for r in imds.plane.requests]))


async def _get(imds: FakeImds, session: HttpSession, trace: Trace, budget: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    try:
        reply = await request(session, "GET", imds.url + URL_PATH, timeout=budget)
    except Unreachable as error:
        # the port is the one thing that differs between runs
        trace.append(("unreachable", str(error).replace(str(imds.port), "PORT"), loop.time()))
    else:
        trace.append(("answer", reply.status, loop.time()))


async def _later(seconds: float, act: Callable[[], Any]) -> None:
    await asyncio.sleep(seconds)
    act()


def test_a_reset_fault_that_begins_mid_request_resets_the_connection() -> None:
    async def story(imds: FakeImds, session: HttpSession, trace: Trace) -> None:
        imds.plane.add_fault("latency", seconds=1.0)  # the request is held a second
        reset = _later(0.5, lambda: imds.plane.add_fault("reset"))
        await asyncio.gather(_get(imds, session, trace), reset)

    trace = _both_ways(story)
    assert trace[:2] == [
        ("unreachable", "ConnectionResetError: [Errno 104] Connection reset by peer", 1.0),
        ("log", [(URL_PATH, 0)]),  # 0: no answer
    ]


def test_a_timeout_fault_holds_the_request_until_the_client_gives_up() -> None:
    async def story(imds: FakeImds, session: HttpSession, trace: Trace) -> None:
        imds.plane.add_fault("timeout", duration=5.0)
        await _get(imds, session, trace, budget=2.0)
        await asyncio.sleep(4.0)
        await _get(imds, session, trace)  # the fault is over: a fresh connection is answered

    trace = _both_ways(story)
    assert trace[:3] == [
        ("unreachable", "TimeoutError", 2.0),
        ("answer", 200, 6.0),
        ("log", [(URL_PATH, 0), (URL_PATH, 200)]),
    ]


def test_a_closed_server_ends_idle_connections_and_refuses_new_ones() -> None:
    async def story(imds: FakeImds, session: HttpSession, trace: Trace) -> None:
        await _get(imds, session, trace)
        await imds.close()  # the idle keep-alive connection gets an end of file
        await _get(imds, session, trace)  # stale connection: once more, fresh, refused

    trace = _both_ways(story)
    assert trace[:3] == [
        ("answer", 200, 0.0),
        (
            "unreachable",
            "ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', PORT)",
            0.0,
        ),
        ("log", [(URL_PATH, 200)]),
    ]


class _Recorder(asyncio.Protocol):
    """A raw client that notes every callback its transport makes."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.transport: asyncio.Transport | None = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.trace.append(("connected", asyncio.get_running_loop().time()))

    def data_received(self, data: bytes) -> None:
        self.trace.append(("data", data.split(b"\r\n", 1)[0]))

    def eof_received(self) -> bool:
        self.trace.append(("eof",))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.trace.append(("lost", repr(exc)))
        self.lost.set_result(None)


async def _raw(imds: FakeImds, trace: Trace) -> _Recorder:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(lambda: _Recorder(trace), "127.0.0.1", imds.port)
    return protocol


def test_a_client_that_closes_early_is_never_answered_and_the_server_forgets_it() -> None:
    async def story(imds: FakeImds, session: HttpSession, trace: Trace) -> None:
        imds.plane.add_fault("latency", seconds=3.0)
        client = await _raw(imds, trace)
        assert client.transport is not None
        client.transport.write(f"GET {URL_PATH} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await asyncio.sleep(1.0)
        trace.append(("in flight", imds.plane.earliest_in_flight()))
        client.transport.close()  # gives up before the answer
        await client.lost
        await asyncio.sleep(5.0)
        trace.append(("in flight", imds.plane.earliest_in_flight()))

    trace = _both_ways(story)
    assert trace[:5] == [
        ("connected", 0.0),
        ("in flight", 0.0),
        ("lost", "None"),
        ("in flight", None),  # the held request was cancelled with its connection
        ("log", [(URL_PATH, 0)]),  # and logged as asked, without an answer
    ]


def test_a_client_that_shuts_its_side_gets_an_end_of_file_after_the_server_logged_it() -> None:
    async def story(imds: FakeImds, session: HttpSession, trace: Trace) -> None:
        client = await _raw(imds, trace)
        assert client.transport is not None
        client.transport.write(
            f"GET {URL_PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )
        client.transport.write_eof()
        await client.lost

    trace = _both_ways(story)
    # aiohttp closes a connection whose client sent its end of file. Whether the answer was
    # written before that depends on when aiohttp's handler task runs (eagerly from Python
    # 3.12 on): the same both ways, so only the rest is asserted here.
    assert [entry for entry in trace if entry[0] != "data"][:4] == [
        ("connected", 0.0),
        ("eof",),
        ("lost", "None"),
        ("log", [(URL_PATH, 200)]),
    ]
    assert [entry for entry in trace if entry[0] == "data"] in ([], [("data", b"HTTP/1.1 200 OK")])


def _server_connections(imds: FakeImds) -> list[Any]:
    """The connections aiohttp's server holds open."""
    runner: Any = imds._runner
    return list(runner.server.connections)


def test_a_client_of_the_loops_low_level_socket_calls_is_answered_and_ends_with_its_socket() -> (
    None
):
    async def story(imds: FakeImds, session: HttpSession, trace: Trace) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", imds.port))
        await loop.sock_sendall(sock, f"GET {URL_PATH} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        answer = await loop.sock_recv(sock, 65536)
        trace.append(("answer", answer.split(b"\r\n", 1)[0], loop.time()))
        sock.close()
        del sock  # the server sees the connection end
        await asyncio.sleep(1.0)
        trace.append(("open connections", len(_server_connections(imds))))

    trace = _both_ways(story)
    assert trace[:2] == [("answer", b"HTTP/1.1 200 OK", 0.0), ("open connections", 0)]


# -- the sockets themselves ------------------------------------------------------------------------
def _pair(network: MemoryNetwork, listener: MemorySocket) -> tuple[MemorySocket, MemorySocket]:
    client = MemorySocket(network)
    with pytest.raises(BlockingIOError):  # in progress, as a non-blocking connect is
        client.connect(listener.getsockname())
    server, peer = listener.accept()
    assert peer == client.getsockname() and server.getpeername() == peer
    return client, server


def test_memory_sockets_behave_as_linux_tcp_does_at_the_edges() -> None:
    network = MemoryNetwork()
    listener = network.listen("127.0.0.1", 0)
    try:
        client, server = _pair(network, listener)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing more waiting
        assert client.send(b"ping") == 4
        assert server.recv(2) == b"pi" and server.recv(10) == b"ng"
        with pytest.raises(BlockingIOError):
            server.recv(10)
        client.send(b"unread")
        server.close()  # data left unread: the peer is reset, not ended
        with pytest.raises(ConnectionResetError):
            client.recv(10)
        assert client.recv(10) == b""  # after the reset, end of file
        with pytest.raises(BrokenPipeError):
            client.send(b"more")

        client, server = _pair(network, listener)
        server.shutdown(socket.SHUT_WR)
        assert client.recv(10) == b""  # end of file; the peer still reads
        client.send(b"late")
        assert server.recv(10) == b"late"
        server.close()
        client.send(b"after the close")  # answered with a reset, after the end of file:
        assert client.recv(10) == b""  # the end of file first,
        with pytest.raises(BrokenPipeError):  # then a broken pipe (CLOSE_WAIT)
            client.send(b"more")

        waiting = MemorySocket(network)
        with pytest.raises(BlockingIOError):
            waiting.connect(listener.getsockname())
        listener.close()  # a connection never accepted is reset
        with pytest.raises(ConnectionResetError):
            waiting.recv(10)
        with pytest.raises(ConnectionRefusedError):
            MemorySocket(network).connect(listener.getsockname())
    finally:
        listener.close()


class _CountingSelector:
    """Wraps the virtual selector's real selector, counting non-blocking polls."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.polls = 0

    def select(self, timeout: float | None = None) -> Any:
        self.polls += 1
        return self.real.select(timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_the_loop_polls_real_files_only_when_one_could_be_ready() -> None:
    loop = VirtualEventLoop(memory_network=True)
    selector: Any = loop._selector  # type: ignore[attr-defined]
    counting = selector._real = _CountingSelector(selector._real)

    async def polls_while(seconds: float) -> int:
        before = counting.polls
        for _ in range(3):
            await asyncio.sleep(seconds)
        return counting.polls - before

    async def main() -> list[int]:
        only_the_wakeup_pipe = await polls_while(1.0)
        real, other_end = socket.socketpair()  # watched, never ready
        loop.add_reader(real.fileno(), lambda: None)
        with_a_real_socket = await polls_while(1.0)
        loop.remove_reader(real.fileno())
        real.close()
        other_end.close()
        without_it_again = await polls_while(1.0)
        loop.add_signal_handler(signal.SIGUSR2, lambda: None)
        with_a_signal_handler = await polls_while(1.0)
        loop.remove_signal_handler(signal.SIGUSR2)
        return [only_the_wakeup_pipe, with_a_real_socket, without_it_again, with_a_signal_handler]

    try:
        counts = loop.run_until_complete(main())
    finally:
        loop.close()
    assert counts[0] == 0 and counts[2] == 0  # epoll is not asked at all
    assert counts[1] > 0 and counts[3] > 0
    assert loop.time() == 12.0  # the clock jumped all the same
