"""Where the runtime keeps things: the storage layout the checks read (see docs/runtime.md).

Every name is a function of the job name, so several jobs can share a bucket and a Redis.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

MANIFEST_FORMAT = "spot-harness-manifest/1"
CHECKPOINT_SUFFIX = ".ckpt"


def checkpoint_folder(job: str) -> str:
    """Folder of checkpoint objects, the same relative path in S3 and under the local dir."""
    return f"checkpoints/{job}"


def checkpoint_key(job: str, checkpoint_id: str) -> str:
    return f"{checkpoint_folder(job)}/{checkpoint_id}{CHECKPOINT_SUFFIX}"


def manifest_key(job: str) -> str:
    return f"{checkpoint_folder(job)}/manifest.json"


def redis_prefix(job: str) -> str:
    return f"spot-harness:{job}:"


def checkpoint_id(position: int, epoch: int, serial: int) -> str:
    """Sorts by position, then epoch, then the instance's own counter."""
    return f"{position:010d}-e{epoch:06d}-{serial:04d}"


@dataclass(frozen=True)
class CheckpointRecord:
    """One checkpoint as listed in a manifest and in Redis."""

    id: str
    position: int
    epoch: int
    checksum: str  # lowercase hex SHA-256 of the content
    size: int  # bytes actually stored
    nominal_size: int  # the job's state size (drives modelled I/O time)
    key: str  # S3 key, or path relative to the local dir

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Any) -> CheckpointRecord:
        if not isinstance(raw, dict):
            raise ValueError("checkpoint entry is not an object")
        try:
            return cls(
                id=str(raw["id"]),
                position=int(raw["position"]),
                epoch=int(raw["epoch"]),
                checksum=str(raw["checksum"]),
                size=int(raw["size"]),
                nominal_size=int(raw["nominal_size"]),
                key=str(raw["key"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"bad checkpoint entry: {error}") from None

    def redis_fields(self, tier: str) -> dict[str, str | int]:
        return {**self.to_json(), "checkpoint_id": self.id, "tier": tier}

    @classmethod
    def from_redis(cls, fields: dict[str, str]) -> CheckpointRecord | None:
        try:
            return cls.from_json(dict(fields))
        except ValueError:
            return None


@dataclass(frozen=True)
class Manifest:
    """The list of a tier's checkpoints, newest first, written after the objects it names."""

    job: str
    epoch: int
    checkpoints: tuple[CheckpointRecord, ...]

    def encode(self) -> bytes:
        body = {
            "format": MANIFEST_FORMAT,
            "job": self.job,
            "epoch": self.epoch,
            "checkpoints": [record.to_json() for record in self.checkpoints],
        }
        return json.dumps(body, sort_keys=True, indent=1).encode() + b"\n"

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        """Raises ``ValueError`` for anything but a well-formed manifest."""
        try:
            raw = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"manifest is not JSON: {error}") from None
        if not isinstance(raw, dict) or raw.get("format") != MANIFEST_FORMAT:
            raise ValueError("manifest has a missing or unknown format")
        entries = raw.get("checkpoints")
        if not isinstance(entries, list):
            raise ValueError("manifest has no checkpoint list")
        return cls(
            job=str(raw.get("job")),
            epoch=int(raw.get("epoch", 0)),
            checkpoints=tuple(CheckpointRecord.from_json(entry) for entry in entries),
        )

    def with_newest(self, record: CheckpointRecord, epoch: int, keep: int) -> Manifest:
        """This manifest with ``record`` first (newest written), at most ``keep`` entries."""
        others = [r for r in self.checkpoints if r.id != record.id]
        kept = (record, *others[: max(0, keep - 1)])
        return Manifest(job=self.job, epoch=max(epoch, self.epoch), checkpoints=kept)

    def dropped_by(self, newer: Manifest) -> list[CheckpointRecord]:
        """Entries of this manifest that ``newer`` no longer lists."""
        kept = {r.id for r in newer.checkpoints}
        return [r for r in self.checkpoints if r.id not in kept]
