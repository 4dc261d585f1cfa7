"""How fast the fake GCP metadata server releases many hanging GETs when a preemption lands.

A server process holds N ``instance/preempted?wait_for_change=true`` requests from a separate
client process (N keep-alive connections). Once the server holds all N, it schedules a
preemption and notes the moment (CLOCK_MONOTONIC, shared by both processes); the client notes
when each answer arrives. Prints the release latency (p50, p99, last) and exits 1 if an answer
is not ``TRUE`` or the last one takes longer than the floor.

    python benchmarks/gcp_hanging_gets.py               # 1000 waiters
    python benchmarks/gcp_hanging_gets.py --waiters 200

Loopback only; bounded by --waiters (at most 5000) and a 60 s limit.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import time
from multiprocessing.connection import Connection

FLOOR_LAST_MS = 1000.0
LIMIT = 60.0
MAX_WAITERS = 5000


def serve(waiters: int, pipe: Connection) -> None:
    async def main() -> None:
        from fake_imds.control import schedule_notice
        from fake_imds.gcp import GCP_KEY
        from fake_imds.server import FakeImds

        async with FakeImds(dialects=["gcp"]) as server:
            pipe.send(server.url)
            metadata = server.app[GCP_KEY]
            give_up = time.monotonic() + LIMIT
            while metadata.waiters < waiters and time.monotonic() < give_up:  # noqa: ASYNC110
                await asyncio.sleep(0.01)  # the count has no event of its own
            pipe.send(time.monotonic())
            schedule_notice(server.plane, {"cloud": "gcp", "kind": "preemption"})
            await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # client done

    asyncio.run(main())


async def hang(url: str, waiters: int) -> list[tuple[float, str]]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=waiters)
    timeout = aiohttp.ClientTimeout(total=LIMIT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one() -> tuple[float, str]:
            async with session.get(
                f"{url}/computeMetadata/v1/instance/preempted",
                params={"wait_for_change": "true"},
                headers={"Metadata-Flavor": "Google"},
            ) as response:
                body = await response.text()
            return time.monotonic(), body

        return await asyncio.gather(*(one() for _ in range(waiters)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waiters", type=int, default=1000, help="hanging GETs (<= 5000)")
    args = parser.parse_args(argv)
    if not 1 <= args.waiters <= MAX_WAITERS:
        parser.error(f"--waiters must be between 1 and {MAX_WAITERS}")
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(args.waiters, theirs), daemon=True)
    server.start()
    try:
        url = ours.recv()
        client = asyncio.run(_client(url, args.waiters, ours))
    finally:
        ours.send("done")
        server.join(10)
    noticed, answers = client
    latencies = sorted((t - noticed) * 1000 for t, _ in answers)
    wrong = sum(1 for _, body in answers if body != "TRUE")
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
    print(f"hanging GETs released by one preemption notice: {len(answers)}")
    print(f"release latency: p50 {statistics.median(latencies):.1f} ms, p99 {p99:.1f} ms, "
          f"last {latencies[-1]:.1f} ms (floor: last <= {FLOOR_LAST_MS:.0f} ms)")  # fmt: skip
    if wrong or latencies[-1] > FLOOR_LAST_MS:
        print(f"FAILED: {wrong} answers were not TRUE" if wrong else "FAILED: too slow")
        return 1
    return 0


async def _client(
    url: str, waiters: int, pipe: Connection
) -> tuple[float, list[tuple[float, str]]]:
    loop = asyncio.get_running_loop()
    held = asyncio.create_task(hang(url, waiters))
    noticed: float = await loop.run_in_executor(None, pipe.recv)
    return noticed, await held


if __name__ == "__main__":
    sys.exit(main())
