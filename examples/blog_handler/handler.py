"""A spot-interruption handler as blog posts write it, shipped to show what the harness finds.

It polls the metadata service with ``requests`` the IMDSv1 way (no token), keeps its progress in
a local JSON file rewritten in place, writes one output object per item, and on a notice uploads
the progress file with ``boto3 upload_file`` and exits. At start it downloads the last uploaded
progress file, if any. Everything comes from the environment the harness sets (the same names a
real machine would use): ``AWS_EC2_METADATA_SERVICE_ENDPOINT``, ``AWS_ENDPOINT_URL_S3``,
``HARNESS_BUCKET``, ``HARNESS_LOCAL_DIR``, ``HARNESS_JOB``.

What goes wrong (see scenarios/process/blog_*.yaml):

- under ``imdsv2: required`` the token-less GET gets 401, which it reads as "no notice": it works
  on until SIGKILL, nothing is saved, and the next machine redoes (and rewrites) every output
  since the last upload;
- the emergency save is one ``upload_file`` with the SDK's default retries: S3 throttling during
  those seconds makes it fail, the exception ends the process, and nothing is saved.
"""

from __future__ import annotations

import json
import os
import sys
import time

import boto3
import requests

IMDS = os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://169.254.169.254/")
BUCKET = os.environ["HARNESS_BUCKET"]
LOCAL = os.environ.get("HARNESS_LOCAL_DIR", "/tmp")
JOB = json.loads(os.environ.get("HARNESS_JOB", "{}"))
ITEMS = int(JOB.get("items", 20))
SECONDS_PER_ITEM = float(JOB.get("seconds_per_item", 0.2))
UPLOAD_EVERY = int(JOB.get("upload_every", 10))
STATE = os.path.join(LOCAL, "progress.json")
STATE_KEY = "checkpoints/progress.json"

s3 = boto3.client("s3")


def interrupted() -> bool:
    """The blog version: a 200 on instance-action means a notice; anything else means none."""
    try:
        answer = requests.get(IMDS + "latest/meta-data/spot/instance-action", timeout=1)
    except requests.RequestException:
        return False
    return answer.status_code == 200


def load_progress() -> int:
    try:
        s3.download_file(BUCKET, STATE_KEY, STATE)
    except Exception:
        pass  # first run: nothing uploaded yet
    try:
        with open(STATE) as f:
            return int(json.load(f)["done"])
    except (OSError, ValueError, KeyError):
        return 0


def save_progress(done: int) -> None:
    with open(STATE, "w") as f:  # rewritten in place
        f.write(json.dumps({"done": done}))


def main() -> int:
    done = load_progress()
    print(f"starting at item {done}", flush=True)
    while done < ITEMS:
        if interrupted():
            print("notice! uploading progress", flush=True)
            s3.upload_file(STATE, BUCKET, STATE_KEY)
            return 0
        time.sleep(SECONDS_PER_ITEM)  # the work
        s3.put_object(Bucket=BUCKET, Key=f"outputs/item-{done:04d}", Body=f"result {done}\n")
        done += 1
        save_progress(done)
        if done % UPLOAD_EVERY == 0:
            s3.upload_file(STATE, BUCKET, STATE_KEY)
    print("all items done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
