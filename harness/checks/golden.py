"""What a correct run must leave behind, from the job's pure functions or an uninterrupted run.

Digests are written ``"sha256:<hex>"`` (a bare 64-hex string is read as SHA-256 and a bare
32-hex string as MD5, so S3 ETags of single-part uploads compare too).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.checks.snapshot import Blob, StorageSnapshot, digests
from harness.history import History, Kind


@dataclass(frozen=True)
class Golden:
    """The expected outcome of one job spec.

    ``outputs``: every output key the job must commit, with its digest. ``states``: the digest of
    the checkpointed state after each position (items done), as far as known; ``final_state`` the
    one after the last item. ``items``: the position at which the job is complete.
    """

    items: int | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)
    states: Mapping[int, str] = field(default_factory=dict)
    final_state: str | None = None
    #: Keys under this prefix are outputs; anything there that ``outputs`` lacks is unexpected.
    output_prefix: str = "outputs/"
    #: Computes the state digest at a position on demand (a job's pure function), when
    #: ``states`` does not list it.
    state_of: Callable[[int], str | None] | None = field(default=None, compare=False)

    def state_at(self, position: int) -> str | None:
        if self.items is not None and position == self.items and self.final_state is not None:
            return self.final_state
        if position in self.states:
            return self.states[position]
        return self.state_of(position) if self.state_of is not None else None

    def to_json(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "outputs": dict(sorted(self.outputs.items())),
            "states": {str(k): v for k, v in sorted(self.states.items())},
            "final_state": self.final_state,
            "output_prefix": self.output_prefix,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Golden:
        return cls(
            items=raw.get("items"),
            outputs=dict(raw.get("outputs") or {}),
            states={int(k): str(v) for k, v in (raw.get("states") or {}).items()},
            final_state=raw.get("final_state"),
            output_prefix=str(raw.get("output_prefix", "outputs/")),
        )


def sha256_digest(data: bytes) -> str:
    """The canonical digest form used in goldens and by the checks."""
    return "sha256:" + digests.digest(data, "sha256")


def digest_matches(expected: str, blob: Blob) -> bool:
    """Whether ``blob`` has the digest ``expected`` (``sha256:<hex>``, ``md5:<hex>``, bare hex)."""
    algorithm, _, value = expected.strip().rpartition(":")
    value = value.strip('"').lower()
    if not algorithm:
        algorithm = {64: "sha256", 32: "md5"}.get(len(value), "")
    if algorithm.lower() in ("sha256", "sha-256"):
        return value == blob.sha256
    if algorithm.lower() == "md5":
        return value == blob.md5
    return False


def same_digest(a: str, b: str) -> bool:
    """Whether two digests in any accepted form are equal (same algorithm assumed if bare)."""

    def split(text: str) -> tuple[str, str]:
        algorithm, _, value = text.strip().rpartition(":")
        value = value.strip('"').lower()
        return (algorithm.lower() or {64: "sha256", 32: "md5"}.get(len(value), "")), value

    return split(a) == split(b)


def golden_from_run(
    history: History, snapshot: StorageSnapshot, *, output_prefix: str = "outputs/"
) -> Golden:
    """The golden outcome of an uninterrupted run of any target: its outputs as stored, the
    states of the checkpoints it reported durable that storage really held (S3 versions or local
    files with that digest), and the position it completed at."""
    completed = history.of_kind(Kind.JOB_COMPLETED)
    held = _digests_held(snapshot)
    states = {
        int(e.data["position"]): str(e.data["checksum"])
        for e in history.of_kind(Kind.CHECKPOINT_DURABLE)
        if e.data.get("checksum")
        and e.data.get("position") is not None
        and _bare(str(e.data["checksum"])) in held
    }
    outputs = {}
    for key in snapshot.keys(output_prefix):
        current = snapshot.current(key)
        if current is not None and current.blob is not None:
            outputs[key] = "sha256:" + current.blob.sha256
    return Golden(
        items=int(completed[0].data.get("position", 0)) if completed else None,
        outputs=outputs,
        states=states,
        output_prefix=output_prefix,
    )


def _digests_held(snapshot: StorageSnapshot) -> set[str]:
    blobs = [v.blob for v in snapshot.versions if v.blob is not None]
    blobs += [blob for files in snapshot.files.values() for blob in files.values()]
    return {digest for blob in blobs for digest in (blob.sha256, blob.md5)}


def _bare(digest: str) -> str:
    return digest.strip().rpartition(":")[2].strip('"').lower()
