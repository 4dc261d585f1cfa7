"""Checkpoint figures of the reference runtime.

1. Local save throughput: a local checkpoint of a 256 MiB state (temp file, fsync, rename,
   directory fsync, manifest written last) as a ratio to a plain sequential write + fsync of the
   same bytes, measured in rotating order in the same run (floor: 0.8). Shown twice: with the
   runtime computing the SHA-256 of the content itself (in a worker thread, overlapped with the
   write and the fsync) and with the checksum supplied (the persistence path alone).
2. What the checksum costs on its own: SHA-256 (the layout's content checksum) and, for
   comparison, CRC-32 (zlib, hardware-accelerated where the CPU allows). A save that computes
   the SHA-256 cannot be faster than the hash: the best ratio it can reach is
   plain / max(plain, SHA-256), printed as the bound.
3. Recovery time from the local tier (read back and verify) and from S3 (moto, in-process:
   download, verify), with the local dir wiped.

Run:  .venv/bin/python benchmarks/checkpoint.py [--size 256MiB] [--repeat 5] [--dir DIR]
Exit code 1 when the throughput ratio of the persistence path is below the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.clock import RealClock
from harness.runtime.job import JobSpec, state_after
from harness.runtime.layout import CheckpointRecord, checkpoint_id, checkpoint_key, redis_prefix
from harness.runtime.recovery import Recovery
from harness.runtime.store import LocalTier, S3Tier
from harness.storage import LocalDisk, RedisMeta, S3Store
from harness.target import no_io_hook
from harness.units import parse_size

FLOOR = 0.8


def plain_write(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def record_for(spec: JobSpec, position: int, data: bytes, serial: int) -> CheckpointRecord:
    ident = checkpoint_id(position, 1, serial)
    return CheckpointRecord(
        id=ident,
        position=position,
        epoch=1,
        checksum="",
        size=len(data),
        nominal_size=spec.state_size,
        key=checkpoint_key(spec.name, ident),
    )


async def runtime_save(
    root: Path, spec: JobSpec, data: bytes, serial: int, checksum: str = ""
) -> CheckpointRecord:
    """The runtime's local save; with ``checksum`` given it skips hashing (as when the
    application computed it while serializing its state)."""
    disk = LocalDisk(root, no_io_hook, inline_io=False, sync=True)
    tier = LocalTier(disk, spec.name, spec.seed)
    record = replace(record_for(spec, spec.items, data, serial), checksum=checksum)
    return await tier.save(record, data, 1)


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def save_times(spec: JobSpec, data: bytes, base: Path, repeat: int) -> dict[str, list[float]]:
    """Seconds of each way of saving, run in rotating order ``repeat`` times."""
    digest = hashlib.sha256(data).hexdigest()
    times: dict[str, list[float]] = {"plain": [], "save": [], "save_prehashed": []}

    def run(name: str, serial: int) -> None:
        target = base / f"{name}-{serial}"
        if name == "plain":
            times[name].append(timed(lambda: plain_write(target, data)))
            target.unlink()
            return
        checksum = digest if name == "save_prehashed" else ""
        times[name].append(
            timed(lambda: asyncio.run(runtime_save(target, spec, data, serial, checksum)))
        )
        shutil.rmtree(target)

    names = list(times)
    os.sync()
    for serial in range(1, repeat + 1):
        # rotate the order so that no variant always follows another's writeback
        for name in names[serial % 3 :] + names[: serial % 3]:
            run(name, serial)
            os.sync()
    return times


class _NoRedis:
    """Redis that is down: recovery must work from storage alone (it is timed without it)."""

    async def eval(self, *args: Any) -> Any:
        raise ConnectionError("no Redis in this benchmark")

    def pipeline(self, transaction: bool = False) -> Any:
        raise ConnectionError("no Redis in this benchmark")


async def recover(spec: JobSpec, local_root: Path, s3: Any, bucket: str) -> tuple[int, str | None]:
    disk = LocalDisk(local_root, no_io_hook, inline_io=False, sync=True)
    store = S3Store(s3, bucket, no_io_hook, inline_io=False)
    recovery = Recovery(
        spec,
        LocalTier(disk, spec.name, spec.seed),
        S3Tier(store, spec.name),
        RedisMeta(_NoRedis(), no_io_hook, prefix=redis_prefix(spec.name)),
        RealClock(),
        lambda kind, **data: None,
        patience=0.0,
    )
    result = await recovery.run()
    return result.position, result.tier


def recovery_times(spec: JobSpec, data: bytes, base: Path) -> tuple[float, float]:
    import boto3
    from moto import mock_aws

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "benchmark")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "benchmark")
    local_root = base / "recover"
    record = asyncio.run(runtime_save(local_root, spec, data, 1))
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="benchmark")

        async def upload() -> None:
            tier = S3Tier(S3Store(s3, "benchmark", no_io_hook, inline_io=False), spec.name)
            await tier.upload(record, data)
            await tier.commit_manifest(record, 1)

        asyncio.run(upload())
        from_local = timed(
            lambda: _expect(asyncio.run(recover(spec, local_root, s3, "benchmark")), "local")
        )
        shutil.rmtree(local_root)
        from_s3 = timed(
            lambda: _expect(asyncio.run(recover(spec, local_root, s3, "benchmark")), "s3")
        )
    return from_local, from_s3


def _expect(result: tuple[int, str | None], tier: str) -> None:
    if result[1] != tier:
        raise SystemExit(f"recovery came from {result[1]!r}, expected {tier!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="256MiB", help="state size (default 256MiB)")
    parser.add_argument(
        "--repeat", type=int, default=5, help="alternating runs of each (best and median shown)"
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    size = parse_size(args.size)
    spec = JobSpec(items=100, state_size=size, materialize=True)
    data = state_after(spec, spec.items)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        base = Path(tmp)
        print(f"state: {size / 2**20:.0f} MiB in {base}", flush=True)
        times = save_times(spec, data, base, args.repeat)
        best = {name: min(values) for name, values in times.items()}
        median = {name: statistics.median(values) for name, values in times.items()}
        hashing = min(timed(lambda: hashlib.sha256(data).digest()) for _ in range(3))
        crc = min(timed(lambda: zlib.crc32(data)) for _ in range(3))
        for label, seconds in (("SHA-256 of the state alone:", hashing), ("CRC-32 (zlib):", crc)):
            print(f"{label:36} {seconds:.3f} s ({size / seconds / 1e6:.0f} MB/s)")
        for name, label in (
            ("plain", "plain write+fsync"),
            ("save", "runtime local save"),
            ("save_prehashed", "runtime save, checksum supplied"),
        ):
            print(
                f"{label + ':':36} best {best[name]:.3f} s ({size / best[name] / 1e6:.0f} MB/s), "
                f"median {median[name]:.3f} s"
            )
        ratio = best["plain"] / best["save_prehashed"]
        full = best["plain"] / best["save"]
        bound = best["plain"] / max(best["plain"], hashing)
        verdict = "ok" if ratio >= FLOOR else "BELOW FLOOR"
        full_verdict = "ok" if full >= FLOOR else "below the floor"
        runs = f"best-of-{args.repeat}"
        print(f"ratio, persistence path (floor {FLOOR}): {ratio:.2f} {runs} ({verdict})")
        print(f"ratio, SHA-256 computed by the save: {full:.2f} {runs} ({full_verdict})")
        print(f"  bound set by the hash alone:       {bound:.2f}")
        from_local, from_s3 = recovery_times(spec, data, base)
        print(f"recovery from local:  {from_local:.3f} s")
        print(f"recovery from S3:     {from_s3:.3f} s  (moto, in-process)")
    return 0 if ratio >= FLOOR else 1


if __name__ == "__main__":
    sys.exit(main())
