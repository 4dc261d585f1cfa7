"""The virtual clock: idle time is skipped, timers keep their order, sockets still work."""

from __future__ import annotations

import asyncio
import random
import threading
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web

from harness.clock import (
    DEFAULT_EPOCH,
    LoopClock,
    RealClock,
    SkewedClock,
    ThreadUseError,
    VirtualEventLoop,
    clock_for_running_loop,
    lean_iterations_available,
    run_virtual,
    suspend,
)


def test_two_hour_sleep_ends_at_the_right_virtual_time() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(7200)
        return start, loop.time()

    start, end = run_virtual(main)
    assert (start, end) == (0.0, 7200.0)


def test_timers_fire_in_order_at_their_virtual_times() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        fired: list[tuple[str, float]] = []

        async def sleeper(name: str, delay: float) -> None:
            await asyncio.sleep(delay)
            fired.append((name, loop.time()))

        loop.call_later(90, lambda: fired.append(("call_later", loop.time())))
        await asyncio.gather(sleeper("c", 300), sleeper("a", 5), sleeper("b", 120))
        return fired

    assert run_virtual(main) == [("a", 5.0), ("call_later", 90.0), ("b", 120.0), ("c", 300.0)]


def test_asyncio_timeout_runs_in_virtual_time() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(30):
                await asyncio.Event().wait()
        return loop.time()

    assert run_virtual(main) == 30.0


def test_calendar_time_is_derived_from_the_loop_clock() -> None:
    async def main() -> None:
        clock = clock_for_running_loop()
        assert isinstance(clock, LoopClock)
        assert clock.now() == DEFAULT_EPOCH
        await clock.sleep(120)
        assert clock.now() == DEFAULT_EPOCH + timedelta(minutes=2)
        skewed = SkewedClock(clock, offset=-5)
        assert skewed.now() == DEFAULT_EPOCH + timedelta(seconds=115)
        assert skewed.monotonic() == clock.monotonic() == 120.0

    run_virtual(main)


def test_real_loop_gets_the_real_clock() -> None:
    async def main() -> None:
        assert isinstance(clock_for_running_loop(), RealClock)

    asyncio.run(main())


def test_http_exchange_over_loopback_inside_the_virtual_loop() -> None:
    """A client and a server in one virtual loop: delays are virtual, bytes are real."""

    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        seen: list[tuple[str, float]] = []

        async def handler(request: web.Request) -> web.Response:
            seen.append(("server got request", loop.time()))
            await asyncio.sleep(10)  # a slow server, in virtual time
            return web.Response(text="pong")

        app = web.Application()
        app.router.add_get("/ping", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            async with aiohttp.ClientSession() as session:
                await asyncio.sleep(60)
                async with session.get(f"http://127.0.0.1:{port}/ping") as response:
                    body = await response.text()
                seen.append((f"client got {body}", loop.time()))
                timeout = aiohttp.ClientTimeout(total=3)
                with pytest.raises(TimeoutError):
                    await session.get(f"http://127.0.0.1:{port}/ping", timeout=timeout)
                seen.append(("client timed out", loop.time()))
        finally:
            await runner.cleanup()
        return seen

    assert run_virtual(main) == [
        ("server got request", 60.0),
        ("client got pong", 70.0),
        ("server got request", 70.0),
        ("client timed out", 73.0),
    ]


def test_to_thread_runs_on_the_loop_and_can_suspend_for_virtual_time() -> None:
    """A blocking call handed to the executor runs in a greenlet: no thread, deterministic, and
    ``suspend`` lets the loop go on meanwhile."""

    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        seen: list[tuple[str, float]] = []

        def blocking() -> str:
            seen.append(("call starts", loop.time()))
            assert suspend(5.0)
            seen.append(("call resumes", loop.time()))
            return threading.current_thread().name

        async def ticker() -> None:
            for _ in range(3):
                await asyncio.sleep(2)
                seen.append(("tick", loop.time()))

        ticking = asyncio.create_task(ticker())
        thread = await asyncio.to_thread(blocking)
        await ticking
        assert thread == threading.main_thread().name
        return seen

    assert run_virtual(main) == [
        ("call starts", 0.0),
        ("tick", 2.0),
        ("tick", 4.0),
        ("call resumes", 5.0),
        ("tick", 6.0),
    ]


def test_an_executor_call_raises_into_its_caller_and_ends_when_the_caller_is_cancelled() -> None:
    async def main() -> list[str]:
        seen: list[str] = []

        def failing() -> None:
            raise OSError("disk on fire")

        def long_call() -> None:
            try:
                suspend(60)
                seen.append("finished")  # never: the caller was cancelled meanwhile
            finally:
                seen.append("unwound")

        with pytest.raises(OSError, match="disk on fire"):
            await asyncio.to_thread(failing)
        waiting = asyncio.create_task(asyncio.to_thread(long_call))
        await asyncio.sleep(1)
        waiting.cancel()
        await asyncio.sleep(120)
        return seen

    assert run_virtual(main) == ["unwound"]


def test_suspend_outside_an_executor_call_does_nothing() -> None:
    assert suspend(10) is False


def test_a_host_name_lookup_is_refused_in_virtual_time() -> None:
    async def main() -> None:
        with pytest.raises(ThreadUseError, match="virtual time"):
            await asyncio.get_running_loop().getaddrinfo("example.invalid", 80)

    run_virtual(main)


def test_a_blocking_call_on_the_loop_lets_only_external_timers_fire() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualEventLoop)
        seen: list[tuple[str, float]] = []
        loop.call_later(1, lambda: seen.append(("process timer", loop.time())))
        loop.call_later_external(2, lambda: seen.append(("world timer", loop.time())))
        loop.call_later_external(9, lambda: seen.append(("kill", loop.time())))
        completed = loop.block(5, stop=lambda: False)
        seen.append(("call returns", loop.time()))
        stopped = loop.block(10, stop=lambda: seen[-1][0] == "kill")
        seen.append(("killed mid-call" if not stopped else "?", loop.time()))
        await asyncio.sleep(0)
        assert completed
        return seen

    assert run_virtual(main) == [
        ("world timer", 2.0),
        ("call returns", 5.0),
        ("kill", 9.0),
        ("killed mid-call", 9.0),
        ("process timer", 9.0),
    ]


def test_virtual_time_never_goes_backward() -> None:
    loop = VirtualEventLoop()
    try:
        with pytest.raises(ValueError):
            loop.advance(-1)
    finally:
        loop.close()


def _busy_trace(lean: bool) -> tuple[list[tuple[str, float]], int]:
    """A seeded tangle of timers (many at the same instant), cancellations (enough for asyncio
    to rebuild its heap), callbacks that schedule more, and tasks: what ran, when, in order."""
    rng = random.Random(7)
    trace: list[tuple[str, float]] = []
    loop = VirtualEventLoop(lean=lean)
    lean_iterations = 0
    lean_run_once = loop._lean_run_once

    def counted(scheduled: list[asyncio.TimerHandle]) -> None:
        nonlocal lean_iterations
        lean_iterations += 1
        lean_run_once(scheduled)

    loop._lean_run_once = counted  # type: ignore[method-assign]

    def fire(name: str) -> None:
        trace.append((name, loop.time()))
        if rng.random() < 0.3:
            loop.call_soon(fire, f"{name}/soon")
        if rng.random() < 0.2:
            loop.call_later(rng.choice((0, 1, 2.5)), fire, f"{name}/later")

    async def worker(number: int) -> None:
        for step in range(5):
            await asyncio.sleep(rng.choice((0, 0.5, 1)))
            trace.append((f"task{number}.{step}", loop.time()))

    async def main() -> None:
        handles = [
            loop.call_later(rng.choice((1, 2, 3, 3.5)), fire, f"timer{n}") for n in range(300)
        ]
        for handle in rng.sample(handles, 200):  # two thirds: asyncio rebuilds its heap
            handle.cancel()
        await asyncio.gather(*(worker(n) for n in range(8)))
        await asyncio.sleep(10)

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    return trace, lean_iterations


def test_the_lean_iteration_runs_everything_in_asyncios_order() -> None:
    assert lean_iterations_available(), (
        "asyncio's BaseEventLoop._run_once changed: check VirtualEventLoop._lean_run_once "
        "against it and add its digest to harness.clock.RUN_ONCE_DIGESTS"
    )
    plain, none = _busy_trace(lean=False)
    lean, iterations = _busy_trace(lean=True)
    assert none == 0 and iterations > 10  # the lean path was taken
    assert len(plain) > 200
    assert lean == plain


def test_the_lean_iteration_is_off_on_the_full_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.sim import runner

    made: list[VirtualEventLoop] = []

    async def probe() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualEventLoop)
        made.append(loop)

    runner._on_fresh_loop(probe())
    monkeypatch.setenv("HARNESS_SIM_FULL_STACK", "1")
    runner._on_fresh_loop(probe())
    assert [loop._lean for loop in made] == [True, False]
