"""Knowledge of the reference runtime's storage layout, in one place (``docs/runtime.md``).

The checks are generic: they read events and storage. What only makes sense for the reference
layout lives here: the storage-level invariants of its manifests and Redis metadata (its golden
outcome is ``harness.sim.golden.reference_golden``). Targets that do not use the layout simply
have none of these objects, and the functions here find nothing to judge.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from harness.checks.golden import digest_matches
from harness.checks.snapshot import Blob, ObjectVersion, StorageSnapshot
from harness.runtime.layout import Manifest

MANIFEST_NAME = "manifest.json"
REDIS_META_SUFFIX = ":meta"
REDIS_EPOCH_SUFFIX = ":epoch"


@dataclass(frozen=True)
class Problem:
    """A broken storage invariant, naming the key (S3) or file it concerns."""

    message: str
    key: str
    #: The object the metadata points to, when the problem is about one.
    target: str = ""


def is_manifest(key: str) -> bool:
    return key.startswith("checkpoints/") and key.endswith("/" + MANIFEST_NAME)


def _manifest_versions(snapshot: StorageSnapshot) -> Iterator[tuple[ObjectVersion, Manifest | str]]:
    for key in snapshot.keys("checkpoints/"):
        if not is_manifest(key):
            continue
        for version in snapshot.versions_of(key):
            yield version, _decode(version.blob)


def _decode(blob: Blob | None) -> Manifest | str:
    if blob is None or blob.data is None:
        return "too large to be a manifest"
    try:
        return Manifest.decode(blob.data)
    except ValueError as error:
        return str(error)


def metadata_problems(
    snapshot: StorageSnapshot, corrupted: frozenset[str] | set[str] = frozenset()
) -> list[Problem]:
    """Manifests (every S3 version, every local dir) and Redis metadata that name a checkpoint
    storage does not hold intact, or that are not readable metadata at all. Keys in
    ``corrupted`` were damaged by the harness on purpose and are not held against the target."""
    problems: list[Problem] = []
    for version, manifest in _manifest_versions(snapshot):
        where = f"s3 manifest {version.key} (version {version.index + 1})"
        if isinstance(manifest, str):
            problems.append(Problem(f"{where} is unreadable: {manifest}", version.key))
            continue
        for record in manifest.checkpoints:
            if record.key not in corrupted and not any(
                v.blob is not None and digest_matches(record.checksum, v.blob)
                for v in snapshot.versions_of(record.key)
            ):
                problems.append(
                    Problem(f"{where} names {record.key}, which S3 never held intact", version.key)
                )
    for local_dir, files in sorted(snapshot.files.items()):
        problems.extend(_local_manifest_problems(local_dir, files))
    problems.extend(p for p in _redis_problems(snapshot) if p.target not in corrupted)
    return problems


def _local_manifest_problems(local_dir: str, files: Mapping[str, Blob]) -> list[Problem]:
    problems = []
    for name, blob in sorted(files.items()):
        if not is_manifest(name):
            continue
        manifest = _decode(blob)
        where = f"local manifest {name} in {local_dir}"
        if isinstance(manifest, str):
            problems.append(Problem(f"{where} is unreadable: {manifest}", name))
            continue
        for record in manifest.checkpoints:
            held = files.get(record.key)
            if held is None or not digest_matches(record.checksum, held):
                state = "missing" if held is None else "different"
                problems.append(Problem(f"{where} names {record.key}, which is {state}", name))
    return problems


def _redis_problems(snapshot: StorageSnapshot) -> list[Problem]:
    problems = []
    for key, entry in snapshot.redis.items():
        if not key.endswith(REDIS_META_SUFFIX) or not isinstance(entry.value, dict):
            continue
        meta = entry.value
        target, digest = meta.get("key"), meta.get("checksum")
        if not target or not digest:
            problems.append(Problem(f"redis {key} names no checkpoint key and checksum", key))
            continue
        if not any(
            v.blob is not None and digest_matches(str(digest), v.blob)
            for v in snapshot.versions_of(str(target))
        ):
            problems.append(
                Problem(
                    f"redis {key} points to {target}, which S3 never held intact",
                    key,
                    str(target),
                )
            )
    return problems


def count_metadata(snapshot: StorageSnapshot) -> int:
    """Manifest versions (S3 and local) and Redis metadata hashes of the reference layout."""
    s3 = sum(1 for _ in _manifest_versions(snapshot))
    local = sum(1 for files in snapshot.files.values() for name in files if is_manifest(name))
    redis = sum(1 for key in snapshot.redis if key.endswith(REDIS_META_SUFFIX))
    return s3 + local + redis


def fencing_problems(snapshot: StorageSnapshot) -> list[Problem]:
    """Storage proof of an unfenced writer: a manifest version written by an older epoch after
    a newer epoch's, or Redis metadata from an epoch older than one already claimed."""
    problems = []
    newest: dict[str, tuple[int, int]] = {}
    for version, manifest in _manifest_versions(snapshot):
        if isinstance(manifest, str):
            continue
        seen = newest.get(version.key)
        if seen is not None and manifest.epoch < seen[0]:
            problems.append(
                Problem(
                    f"s3 manifest {version.key} version {version.index + 1} was written by epoch "
                    f"{manifest.epoch} after version {seen[1] + 1} of epoch {seen[0]}",
                    version.key,
                )
            )
        if seen is None or manifest.epoch >= seen[0]:
            newest[version.key] = (manifest.epoch, version.index)
    for key, entry in snapshot.redis.items():
        if not key.endswith(REDIS_META_SUFFIX) or not isinstance(entry.value, dict):
            continue
        claimed = snapshot.redis.get(key[: -len(REDIS_META_SUFFIX)] + REDIS_EPOCH_SUFFIX)
        try:
            meta_epoch = int(entry.value.get("epoch", 0))
            claimed_epoch = int(claimed.value) if claimed is not None else meta_epoch
        except (TypeError, ValueError):
            continue
        if meta_epoch > claimed_epoch:
            problems.append(
                Problem(
                    f"redis {key} holds epoch {meta_epoch}, newer than any claimed "
                    f"({claimed_epoch})",
                    key,
                )
            )
    return problems
