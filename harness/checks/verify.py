"""Checking a target's reports against storage: does a checkpoint it called durable exist, with
the content it claimed, and was it still there at a given instant?"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Literal

from harness.checks.golden import digest_matches, same_digest
from harness.checks.snapshot import StorageSnapshot
from harness.checks.view import (
    LOCAL_DELETE_OPS,
    LOCAL_WRITE_OPS,
    S3_DELETE_OPS,
    S3_WRITE_OPS,
    Checkpoint,
    HistoryView,
)
from harness.history import Event

Status = Literal["verified", "unchecked", "unverifiable", "missing", "mismatch"]
#: Statuses that contradict the target's report.
CONTRADICTED: frozenset[Status] = frozenset({"missing", "mismatch"})

_REPLACING_OPS = S3_WRITE_OPS | S3_DELETE_OPS | LOCAL_WRITE_OPS | LOCAL_DELETE_OPS
#: Operations that leave no complete checkpoint behind at the path they touch (``local.write``
#: only when it writes in place, see :meth:`Verifier.in_place`).
GAP_OPS = S3_DELETE_OPS | LOCAL_DELETE_OPS | frozenset({"local.write"})


@dataclass(frozen=True)
class Verdict:
    status: Status
    detail: str

    @property
    def contradicted(self) -> bool:
        return self.status in CONTRADICTED


class Verifier:
    """Verifies checkpoints of one history against one snapshot (results cached per seq)."""

    def __init__(self, view: HistoryView, snapshot: StorageSnapshot) -> None:
        self.view = view
        self.snapshot = snapshot
        self._verdicts: dict[int, Verdict] = {}
        self._in_place = _in_place_writes(view)
        self._writes = [
            e
            for e in view.storage_ops()
            if e.data.get("op") in _REPLACING_OPS
            and (e.data.get("op") != "local.write" or e.seq in self._in_place)
        ]
        self._writes_at: dict[tuple[str, str], list[Event]] = {}
        for op in self._writes:
            self._writes_at.setdefault((view.store_of(op), view.op_path(op)), []).append(op)
        self._removals: dict[int, Event | None] = {}

    def in_place(self, op: Event) -> bool:
        """Whether a ``local.write`` rewrote its file in place (no rename of it followed)."""
        return op.seq in self._in_place

    def verdict(self, checkpoint: Checkpoint) -> Verdict:
        seq = checkpoint.event.seq
        if seq not in self._verdicts:
            self._verdicts[seq] = self._verify(checkpoint)
        return self._verdicts[seq]

    def _verify(self, cp: Checkpoint) -> Verdict:
        if cp.tier == "local":
            return self._verify_local(cp)
        versions = self.snapshot.versions_of(cp.key)
        if not versions:
            return Verdict("missing", f"no version of s3://{self.snapshot.bucket}/{cp.key} exists")
        if cp.checksum is None:
            return Verdict("unchecked", "reported without a checksum")
        if any(v.blob is not None and digest_matches(cp.checksum, v.blob) for v in versions):
            return Verdict("verified", f"a version of {cp.key} has checksum {cp.checksum}")
        if any(_fault_hits(f, cp) for f in self.view.corruptions() if f.seq > cp.event.seq):
            return Verdict("unverifiable", f"{cp.key} was corrupted by an injected fault")
        return Verdict(
            "mismatch",
            f"none of the {len(versions)} version(s) of {cp.key} has checksum {cp.checksum}",
        )

    def _verify_local(self, cp: Checkpoint) -> Verdict:
        """Judged on what the harness read of the dir when that incarnation ended (a kill or an
        exit), else at the end of the run: a later rotation or wipe proves nothing against it."""
        at_end = self.view.local_files_after(cp.local_dir, cp.event.seq)
        if at_end is not None:
            digest = at_end.get(cp.path)
            if digest is not None and cp.checksum is None:
                return Verdict("unchecked", "reported without a checksum")
            if digest is not None and cp.checksum is not None and same_digest(cp.checksum, digest):
                return Verdict("verified", f"{cp.path} in {cp.local_dir} had {cp.checksum}")
            ended = self.view.local_snapshot_after(cp.local_dir, cp.event.seq)
            if ended is not None and self.removal_before(cp, ended.seq) is not None:
                return Verdict("unverifiable", f"{cp.path} was replaced or removed later")
            what: Status = "missing" if digest is None else "mismatch"
            return Verdict(what, f"{cp.path} in {cp.local_dir} was {what} when the instance ended")
        blob = self.snapshot.file(cp.local_dir, cp.path)
        if blob is not None and cp.checksum is None:
            return Verdict("unchecked", "reported without a checksum")
        if blob is not None and cp.checksum is not None and digest_matches(cp.checksum, blob):
            return Verdict("verified", f"{cp.path} in {cp.local_dir} has checksum {cp.checksum}")
        if self.removal_before(cp, len(self.view.events)) is not None:
            return Verdict("unverifiable", f"{cp.path} was replaced or wiped later")
        if blob is None:
            return Verdict("missing", f"{cp.path} is not in {cp.local_dir}")
        return Verdict("mismatch", f"{cp.path} in {cp.local_dir} does not have {cp.checksum}")

    def corrupted_keys(self) -> set[str]:
        """S3 keys the harness itself corrupted (their content proves nothing about the target)."""
        return {key for fault in self.view.corruptions() for key in _fault_keys(fault) or ()}

    def writes_of(self, cp: Checkpoint) -> list[Event]:
        """Every successful write of the checkpoint's object the harness saw, in order."""
        return [
            op
            for op in self._writes_at.get((cp.store, cp.path), [])
            if op.data.get("op") in S3_WRITE_OPS | LOCAL_WRITE_OPS
        ]

    def written_before(self, cp: Checkpoint) -> Event | None:
        """The successful storage op that wrote the checkpoint's object before it was reported."""
        for op in self._writes_at.get((cp.store, cp.path), []):
            if op.seq > cp.event.seq:
                break
            if op.data.get("op") in S3_WRITE_OPS | LOCAL_WRITE_OPS:
                return op
        return None

    def removal_before(self, cp: Checkpoint, until_seq: int) -> Event | None:
        """The first event after the report and before history position ``until_seq`` that made
        the checkpoint unreadable: a delete or overwrite of its path, a wipe of its local dir, an
        injected corruption."""
        first = self._first_removal(cp)
        return first if first is not None and first.seq < until_seq else None

    def _first_removal(self, cp: Checkpoint) -> Event | None:
        seq = cp.event.seq
        if seq in self._removals:
            return self._removals[seq]
        found: list[Event] = []
        ops = self._writes_at.get((cp.store, cp.path), [])
        after = bisect.bisect_right([op.seq for op in ops], seq)
        found += ops[after : after + 1]
        if cp.tier == "local":
            wiped = self.view.wiped_between(cp.local_dir, seq, len(self.view.events))
            found += [wiped] if wiped is not None else []
        found += [f for f in self.view.corruptions() if f.seq > seq and _fault_hits(f, cp)][:1]
        first = min(found, key=lambda e: e.seq, default=None)
        self._removals[seq] = first
        return first

    def available_before(self, cp: Checkpoint, until_seq: int) -> bool:
        """Reported before ``until_seq``, not contradicted by storage, and still readable then."""
        return (
            cp.event.seq < until_seq
            and not self.verdict(cp).contradicted
            and self.removal_before(cp, until_seq) is None
        )


def _in_place_writes(view: HistoryView) -> set[int]:
    """Seqs of ``local.write`` steps not followed by a ``local.rename`` of the same name by the
    same instance: the file itself was being rewritten (a crash there leaves it torn). A write
    to a temp file followed by a rename over the target replaces it atomically."""
    pending: dict[tuple[str | None, str], int] = {}
    in_place: set[int] = set()
    for op in view.storage_ops():
        name = (op.instance, str(op.data.get("key") or ""))
        if op.data.get("op") == "local.write":
            if name in pending:
                in_place.add(pending[name])
            pending[name] = op.seq
        elif op.data.get("op") == "local.rename":
            pending.pop(name, None)
    in_place.update(pending.values())
    return in_place


def _fault_hits(fault: Event, cp: Checkpoint) -> bool:
    """Whether an injected corruption touched the checkpoint (S3 faults hit S3 checkpoints,
    disk faults local ones; a fault naming a key or ``prefix*`` hits only those)."""
    name = str(fault.data.get("fault", ""))
    on_disk = name.startswith(("disk", "local"))
    if on_disk != (cp.tier == "local"):
        return False
    targets = _fault_keys(fault)
    if targets is None:
        return True
    path = cp.path if on_disk else cp.key
    return any(
        path == target or (target.endswith("*") and path.startswith(target[:-1]))
        for target in targets
    )


def _fault_keys(fault: Event) -> list[str] | None:
    """The keys (or ``prefix*``) an injected corruption names: a list ``keys`` (empty when it
    matched nothing), else one ``key``; ``None`` when it names none (it may have hit any)."""
    params = fault.data.get("params") or {}
    named = params.get("keys")
    if isinstance(named, list):
        return [str(k) for k in named if k]
    key = fault.data.get("key") or params.get("key")
    return [key] if isinstance(key, str) and key else None
