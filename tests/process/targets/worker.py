"""A small command target for the process-tier tests (standard library only, fast to start).

It resumes from ``checkpoints/position`` in S3, works through ``items`` (one output object per
item), and saves its position to S3 on SIGTERM or when the metadata service shows a notice
(IMDSv2), then exits 0. ``HARNESS_JOB`` switches its behaviours for the tests:

- ``poll``: watch the metadata service for a notice (default true);
- ``save``: save on a notice or SIGTERM (default true); ``save_every_item`` after every item;
- ``ignore_term``: ignore SIGTERM entirely (default false);
- ``grandchild``: start a ``sleep`` in its process group and report its pid;
- ``wrong_after_restart``: an incarnation after the first writes different output content;
- ``report``: write job events to ``HARNESS_EVENTS`` (default true; false: a black box);
- ``pid_file``: write its pid, its grandchild's and its local dir there (one per line).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

JOB = json.loads(os.environ["HARNESS_JOB"])
IMDS = os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"]
S3 = os.environ["AWS_ENDPOINT_URL_S3"] + "/" + os.environ["HARNESS_BUCKET"]
EVENTS = os.environ["HARNESS_EVENTS"]
#: moto reads the access key from a SigV4-shaped header (it does not check the signature).
AUTH = (
    "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host, Signature=0"
)
stop = False


def emit(kind: str, **data: object) -> None:
    if not JOB.get("report", True) and not kind.startswith("test."):
        return
    with open(EVENTS, "a") as sink:
        sink.write(json.dumps({"kind": kind, **data}) + "\n")


def s3(method: str, key: str, body: bytes | None = None) -> bytes | None:
    request = urllib.request.Request(S3 + "/" + key, data=body, method=method)
    request.add_header("Authorization", AUTH)
    request.add_header("Content-Type", "application/octet-stream")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return bytes(answer.read())
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def noticed() -> bool:
    token_request = urllib.request.Request(IMDS + "latest/api/token", method="PUT")
    token_request.add_header("X-aws-ec2-metadata-token-ttl-seconds", "60")
    try:
        with urllib.request.urlopen(token_request, timeout=2) as answer:
            token = answer.read().decode()
        check = urllib.request.Request(IMDS + "latest/meta-data/spot/instance-action")
        check.add_header("X-aws-ec2-metadata-token", token)
        with urllib.request.urlopen(check, timeout=2):
            return True
    except (urllib.error.URLError, OSError):
        return False


def on_term(_signum: int, _frame: object) -> None:
    global stop
    emit("test.sigterm")
    stop = True


def main() -> int:
    signal.signal(signal.SIGTERM, signal.SIG_IGN if JOB.get("ignore_term") else on_term)
    if JOB.get("grandchild"):
        child = subprocess.Popen(["sleep", "600"])
        emit("test.grandchild", pid=child.pid)
        if JOB.get("pid_file"):
            with open(JOB["pid_file"], "w") as f:
                f.write(f"{os.getpid()}\n{child.pid}\n{os.environ['HARNESS_LOCAL_DIR']}\n")
    raw = s3("GET", "checkpoints/position")
    done = int(raw) if raw else 0
    incarnation = int(os.environ["HARNESS_INCARNATION"])
    emit("job.started", items=JOB["items"])
    emit("job.resumed", position=done)
    print("working from", done, flush=True)
    while done < JOB["items"]:
        if stop or (JOB.get("poll", True) and noticed()):
            if JOB.get("save", True):
                s3("PUT", "checkpoints/position", str(done).encode())
            emit("job.stopped", position=done, reason="notice")
            return 0
        time.sleep(JOB.get("seconds_per_item", 0.05))
        content = f"item {done}"
        if JOB.get("wrong_after_restart") and incarnation > 1:
            content += " (different)"
        s3("PUT", f"outputs/item-{done:03d}", content.encode())
        done += 1
        emit("job.item_done", position=done)
        if JOB.get("save_every_item"):
            s3("PUT", "checkpoints/position", str(done).encode())
    emit("job.completed", position=done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
