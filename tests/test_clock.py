"""The virtual clock: idle time is skipped, timers keep their order, sockets still work."""

from __future__ import annotations

import asyncio
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
    run_virtual,
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


def test_thread_use_is_refused_in_virtual_time() -> None:
    async def main() -> None:
        with pytest.raises(ThreadUseError, match="virtual time"):
            await asyncio.to_thread(print, "never")

    run_virtual(main)


def test_virtual_time_never_goes_backward() -> None:
    loop = VirtualEventLoop()
    try:
        with pytest.raises(ValueError):
            loop.advance(-1)
    finally:
        loop.close()
