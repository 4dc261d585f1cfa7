"""CPU time of one simulated S3 call, on one core.

Prints the median CPU microseconds a call costs over the mix of calls an exploration makes
(per twelve calls: six plain ``PutObject`` with a SHA-256 checksum and user metadata, a
multipart upload's create, part and completion, a ``GetObject`` of a whole object, a listing
of unfinished uploads and a ``DeleteObject``), with the in-process S3 shortcut and, runs
interleaved, through moto's HTTP layer (``--full-stack-too``). Every call goes through the
simulation's shared client in a simulated run, as a target's calls do; the harness's
observer is registered but no instance hook is active, so no modelled time is waited.

Run: ``.venv/bin/python benchmarks/s3_call.py [--rounds 30] [--full-stack-too]``. Like
``sim_speed.py`` the script re-executes itself under ``taskset -c 0`` when taskset exists. To
compare two versions of the code, run it with ``PYTHONPATH`` pointing at each checkout in
turn (``git archive <commit> | tar -x -C /tmp/before``), alternating the runs.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.sim_speed import pin_to_one_core  # noqa: E402

BUCKET = "s3-call-benchmark"
WHEN = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
BODY = b"x" * 1000
CHECKSUM = base64.b64encode(hashlib.sha256(BODY).digest()).decode()
CALLS_PER_MIX = 12
MIXES_PER_ROUND = 10


def mix(client: Any, label: str) -> None:
    """Twelve calls, in the proportions of an exploration's S3 calls."""
    for index in range(6):
        client.put_object(
            Bucket=BUCKET,
            Key=f"out/{label}/{index}",
            Body=BODY,
            ChecksumSHA256=CHECKSUM,
            Metadata={"pos": str(index)},
        )
    key = f"ckpt/{label}"
    created = client.create_multipart_upload(Bucket=BUCKET, Key=key, ChecksumAlgorithm="SHA256")
    upload = created["UploadId"]
    part = client.upload_part(
        Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=1, Body=BODY, ChecksumSHA256=CHECKSUM
    )
    listed = [{"PartNumber": 1, "ETag": part["ETag"], "ChecksumSHA256": CHECKSUM}]
    client.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": listed}
    )
    client.get_object(Bucket=BUCKET, Key=f"out/{label}/0")["Body"].read()
    client.list_multipart_uploads(Bucket=BUCKET, Prefix="ckpt/")
    client.delete_object(Bucket=BUCKET, Key=f"out/{label}/1")


def per_call_us(client: Any, label: str) -> float:
    """CPU microseconds a call of one round of mixes."""
    started = time.process_time()
    for index in range(MIXES_PER_ROUND):
        mix(client, f"{label}-{index}")
    return (time.process_time() - started) / (MIXES_PER_ROUND * CALLS_PER_MIX) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="rounds of 120 calls each way")
    parser.add_argument(
        "--full-stack-too",
        action="store_true",
        help="also every call through moto's HTTP layer, rounds interleaved",
    )
    args = parser.parse_args()
    note = pin_to_one_core()
    print(f"s3_call: {note}; python {sys.version.split()[0]}")

    from harness.sim import moto_patches
    from harness.sim.s3 import simulated_bucket

    ways: dict[str, list[float]] = (
        {"shortcut": [], "full stack": []} if args.full_stack_too else {"shortcut": []}
    )
    with simulated_bucket(BUCKET, now=lambda: WHEN, seed=1) as client:
        for warm in range(3):
            mix(client, f"warm-{warm}")
        for round_ in range(args.rounds):
            ways["shortcut"].append(per_call_us(client, f"s{round_}"))
            if args.full_stack_too:
                with moto_patches.full_stack():
                    ways["full stack"].append(per_call_us(client, f"f{round_}"))
    figures = ", ".join(f"{way} {statistics.median(us):.0f} us" for way, us in ways.items())
    print(f"median CPU a simulated S3 call, explore's mix, {args.rounds} rounds: {figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
