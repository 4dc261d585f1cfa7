"""The job the example handlers run: a toy training loop whose every state and output is a pure
function of the job's parameters, so an uninterrupted run of any handler is its golden.

This is the user's own code, not the harness's runtime: a step turns the weights into
``sha256(weights || step)``; a state is a small JSON document that carries its own checksum (a
torn or corrupted file is told from a good one); every ``output_every`` steps a result document
is written under ``outputs/`` with ``If-None-Match: *``, so a step redone after a resume never
writes it twice.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from harness.target import InstanceContext
from harness.units import parse_duration

STATE_FORMAT = "example-trainer/1"
#: S3 error codes of a write refused because the object already exists.
ALREADY_THERE = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
#: How many output documents a job writes when ``output_every`` is not given.
OUTPUT_DOCUMENTS = 20


def sha256(data: bytes) -> str:
    """The digest form the harness reads: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Job:
    """The parameters the handlers read from ``ctx.job`` (other keys are ignored)."""

    name: str
    seed: int
    items: int
    seconds_per_item: float
    checkpoint_every: float
    output_every: int

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Job:
        items = int(raw.get("items", 1000))
        return cls(
            name=str(raw.get("name", "job")),
            seed=int(raw.get("seed", 0)),
            items=items,
            seconds_per_item=parse_duration(raw.get("seconds_per_item", 0.5)),
            checkpoint_every=parse_duration(raw.get("checkpoint_every", 300)),
            output_every=int(raw.get("output_every", max(1, math.ceil(items / OUTPUT_DOCUMENTS)))),
        )

    def output_key(self, index: int) -> str:
        return f"outputs/{self.name}/part-{index:05d}.json"

    def output_closed_by(self, position: int) -> int | None:
        """The index of the output document whose last step is ``position``, if any."""
        if position % self.output_every == 0 or position == self.items:
            return (position - 1) // self.output_every
        return None

    def output_body(self, index: int) -> bytes:
        first = index * self.output_every + 1
        last = min(self.items, first + self.output_every - 1)
        results = {
            str(step): hashlib.sha256(f"{self.name}/{self.seed}/{step}".encode()).hexdigest()[:16]
            for step in range(first, last + 1)
        }
        document = {"job": self.name, "index": index, "first": first, "last": last, **results}
        return json.dumps(document, sort_keys=True).encode()


@dataclass(frozen=True)
class State:
    """The training state after ``position`` steps."""

    job: str
    seed: int
    position: int
    weights: str

    @classmethod
    def initial(cls, job: Job) -> State:
        weights = hashlib.sha256(f"{job.name}/{job.seed}".encode()).hexdigest()
        return cls(job=job.name, seed=job.seed, position=0, weights=weights)

    def advance(self) -> State:
        step = self.position + 1
        weights = hashlib.sha256(f"{self.weights}/{step}".encode()).hexdigest()
        return replace(self, position=step, weights=weights)

    def encode(self) -> bytes:
        body = {"format": STATE_FORMAT, **asdict(self)}
        text = json.dumps(body, sort_keys=True)
        check = hashlib.sha256(text.encode()).hexdigest()
        return json.dumps({"state": body, "check": check}, sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes, job: Job) -> State:
        """The state in ``data``; ``ValueError`` if it is torn, corrupted or another job's."""
        try:
            document = json.loads(data)
            body = document["state"]
            text = json.dumps(body, sort_keys=True)
            intact = hashlib.sha256(text.encode()).hexdigest() == document["check"]
            state = cls(
                job=body["job"],
                seed=body["seed"],
                position=int(body["position"]),
                weights=body["weights"],
            )
        except (ValueError, TypeError, KeyError) as error:
            raise ValueError(f"not a checkpoint: {error}") from None
        if not intact or body.get("format") != STATE_FORMAT:
            raise ValueError("checkpoint content does not match its checksum")
        if (state.job, state.seed) != (job.name, job.seed):
            raise ValueError(f"checkpoint of job {state.job!r}, not {job.name!r}")
        return state


class Outputs:
    """Writes output documents with ``If-None-Match: *``; a write that fails stays pending and
    is tried again by the next :meth:`flush`, so an S3 outage delays outputs but loses none."""

    def __init__(self, ctx: InstanceContext, job: Job) -> None:
        self.ctx = ctx
        self.job = job
        self.pending: list[int] = []

    def closed(self, position: int) -> None:
        index = self.job.output_closed_by(position)
        if index is not None:
            self.pending.append(index)

    def flush(self) -> None:
        """Try every pending output once; keep those that failed."""
        self.pending = [index for index in self.pending if not self._put(index)]

    def _put(self, index: int) -> bool:
        key, body = self.job.output_key(index), self.job.output_body(index)
        try:
            self.ctx.s3_client.put_object(
                Bucket=self.ctx.bucket, Key=key, Body=body, IfNoneMatch="*"
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ALREADY_THERE:
                self.ctx.emit("output.failed", key=key, error=str(error))
                return False
        except Exception as error:  # unreachable S3: keep it for the next flush
            self.ctx.emit("output.failed", key=key, error=f"{type(error).__name__}: {error}")
            return False
        first = index * self.job.output_every + 1
        last = min(self.job.items, first + self.job.output_every - 1)
        self.ctx.emit("output.committed", key=key, first=first, last=last, checksum=sha256(body))
        return True
