"""Load benchmark of the fake AWS metadata server against a bare aiohttp server.

A separate load process (wrk, installed from Debian packages if missing) keeps 100 keep-alive
connections polling ``spot/instance-action`` with an IMDSv2 token, the way a fleet of handlers
would. The server under test is pinned to one core (taskset) and wrk to another; a bare aiohttp
server answering a constant 404 is measured in the same run as the yardstick.

    python benchmarks/imds_load.py                 # 10 s per server, 100 connections
    python benchmarks/imds_load.py --duration 5s --connections 50

Prints requests/s, p50 and p99 latency for each server and the ratio to the bare one, checks the
floors (>= 10,000 requests/s, p99 <= 10 ms, ratio >= 0.5) and exits 1 if one is missed.
Loopback only; every run is bounded by --duration (at most 60 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

SPOT_PATH = "/latest/meta-data/spot/instance-action"
FLOOR_RPS = 10_000.0
FLOOR_P99_MS = 10.0
FLOOR_RATIO = 0.5
MAX_DURATION = 60.0


# -- the servers, each run in its own pinned process ----------------------------------------------
async def serve_bare() -> None:
    from aiohttp import web

    async def not_found(_request: web.Request) -> web.Response:
        return web.Response(status=404, text="404 - Not Found")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", not_found)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()


async def serve_fake(with_notice: bool) -> None:
    from fake_imds.server import FakeImds

    async with FakeImds(imdsv2="required") as server:
        if with_notice:
            server.plane.add_notice("aws", "spot-interruption", "terminate", lead=3600)
        print(server.port, flush=True)
        await asyncio.Event().wait()


# -- the driver -----------------------------------------------------------------------------------
@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    requests: int
    cpu_us: float = 0.0


def ensure_wrk(install: bool) -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if not install:
        sys.exit("wrk is not installed; run without --no-install or `apt-get install wrk`")
    print("installing wrk from the Debian packages ...", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(
        [*sudo, "apt-get", "install", "-y", "-q", "wrk"], check=True, env=env, timeout=600
    )
    found = shutil.which("wrk")
    if not found:
        sys.exit("wrk could not be installed; install it and run again")
    return found


def pinned(cpu: int | None, command: list[str]) -> list[str]:
    if cpu is None or not shutil.which("taskset"):
        return command
    return ["taskset", "-c", str(cpu), *command]


def start_server(kind: str, cpu: int | None) -> tuple[subprocess.Popen[str], int]:
    root = Path(__file__).resolve().parent.parent
    command = pinned(cpu, [sys.executable, str(Path(__file__).resolve()), "--serve", kind])
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.isdigit():
        process.kill()
        sys.exit(f"the {kind} server did not start (got {line!r})")
    return process, int(line)


def fetch_token(port: int) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/latest/api/token",
        method="PUT",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": "21600"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=5) as reply:
        return str(reply.read().decode())


def run_wrk(wrk: str, port: int, token: str, args: argparse.Namespace, seconds: float) -> str:
    command = pinned(
        args.client_cpu,
        [
            wrk,
            "--latency",
            f"-t{args.threads}",
            f"-c{args.connections}",
            f"-d{max(1, round(seconds))}s",
            "-H",
            f"X-aws-ec2-metadata-token: {token}",
            f"http://127.0.0.1:{port}{SPOT_PATH}",
        ],
    )
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30)
    if done.returncode != 0:
        sys.exit(f"wrk failed: {done.stderr.strip()}")
    return done.stdout


def parse_wrk(name: str, output: str) -> Result:
    def latency_ms(percentile: str) -> float:
        match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        if not match:
            sys.exit(f"cannot read the {percentile}th percentile from wrk:\n{output}")
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
        return float(match.group(1)) * scale

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    if errors:
        print(f"  {name}: socket errors: {errors.group(1)}")
    if not rps or not total:
        sys.exit(f"cannot read wrk's output:\n{output}")
    return Result(
        name,
        float(rps.group(1)),
        latency_ms("50"),
        latency_ms("99"),
        int(non_2xx.group(1)) if non_2xx else 0,
        int(total.group(1)),
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to report CPU per request: a figure
    that other load on the machine does not distort the way it distorts requests/s."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(name: str, kind: str, wrk: str, args: argparse.Namespace) -> Result:
    process, port = start_server(kind, args.server_cpu)
    try:
        token = fetch_token(port) if kind != "bare" else "unused"
        run_wrk(wrk, port, token, args, 1)  # warm-up
        print(f"measuring {name} for {args.seconds:g} s ...", flush=True)
        cpu_before = cpu_seconds(process.pid)
        result = parse_wrk(name, run_wrk(wrk, port, token, args, args.seconds))
        result.cpu_us = (cpu_seconds(process.pid) - cpu_before) / result.requests * 1e6
        return result
    finally:
        process.terminate()
        process.wait(10)


def parse_seconds(text: str) -> float:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from harness.units import parse_duration

    seconds = parse_duration(text)
    if not 1 <= seconds <= MAX_DURATION:
        raise argparse.ArgumentTypeError(f"--duration must be between 1s and {MAX_DURATION:g}s")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration",
        dest="seconds",
        type=parse_seconds,
        default=10.0,
        help="per server, e.g. 10s (1s..60s)",
    )
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--server-cpu", type=int, default=0, help="core the server is pinned to")
    parser.add_argument("--client-cpu", type=int, default=1, help="core wrk is pinned to")
    parser.add_argument("--no-install", action="store_true", help="never apt-get install wrk")
    parser.add_argument("--serve", choices=["bare", "fake", "fake-notice"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        coro = serve_bare() if args.serve == "bare" else serve_fake(args.serve == "fake-notice")
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(coro)
        return 0
    if (os.cpu_count() or 1) < 2:
        args.server_cpu = args.client_cpu = None
    wrk = ensure_wrk(not args.no_install)
    bare = measure("bare aiohttp, constant 404", "bare", wrk, args)
    fake = measure("fake IMDS, no notice (404)", "fake", wrk, args)
    notice = measure("fake IMDS, notice (200)", "fake-notice", wrk, args)
    report([bare, fake, notice], args)
    ok = all(
        r.rps >= FLOOR_RPS and r.p99_ms <= FLOOR_P99_MS and r.rps / bare.rps >= FLOOR_RATIO
        for r in (fake, notice)
    )
    print("floors (>= 10,000 req/s, p99 <= 10 ms, ratio >= 0.5):", "met" if ok else "MISSED")
    return 0 if ok else 1


def report(results: list[Result], args: argparse.Namespace) -> None:
    bare = results[0]
    print(
        f"\n{args.connections} keep-alive connections, wrk -t{args.threads}, "
        f"{args.seconds:g} s each, server on cpu {args.server_cpu}, wrk on cpu {args.client_cpu}"
    )
    print(
        f"{'server':<30} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>6} "
        f"{'cpu us/req':>10} {'cpu ratio':>9}"
    )
    for r in results:
        print(
            f"{r.name:<30} {r.rps:>10,.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
            f"{r.rps / bare.rps:>6.2f} {r.cpu_us:>10.1f} {bare.cpu_us / r.cpu_us:>9.2f}"
        )


if __name__ == "__main__":
    sys.exit(main())
