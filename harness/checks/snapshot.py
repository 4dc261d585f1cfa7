"""The final storage state, read by the harness itself: what the checks verify reports against.

:func:`take_snapshot` reads every S3 object version (bytes, ETag, checksums, order), every
in-progress multipart upload, every Redis key and every file of each instance's local dir. It is
read-only, and it never trusts a stored checksum: digests are recomputed from the bytes.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

#: Bytes kept verbatim per blob (manifests, pointers, small outputs); larger blobs keep digests.
KEEP_BYTES = 1 << 20

_S3_CHECKSUM_FIELDS = (
    "ChecksumCRC32",
    "ChecksumCRC32C",
    "ChecksumCRC64NVME",
    "ChecksumSHA1",
    "ChecksumSHA256",
)


@dataclass(frozen=True, slots=True)
class Blob:
    """Content seen in storage, by its digests (and its bytes when small)."""

    size: int
    sha256: str
    md5: str
    data: bytes | None = None

    @classmethod
    def of(cls, data: bytes, keep: int = KEEP_BYTES) -> Blob:
        sha256, md5 = digests(data)
        return cls(size=len(data), sha256=sha256, md5=md5, data=data if len(data) <= keep else None)


#: The digests :class:`DigestMemo` computes, by name.
_HASHES: dict[str, Callable[[bytes], Any]] = {
    "sha256": hashlib.sha256,
    "md5": functools.partial(hashlib.md5, usedforsecurity=False),
}


class DigestMemo:
    """Digests of contents seen lately, keyed by the content itself (so never stale). A run
    hashes the same large contents several times: the simulated S3 takes an object's MD5 for
    its ETag and each part's SHA-256 again at a completion, the harness a local file's SHA-256
    at each kill or exit, and every snapshot both digests of every version and file again; the
    states of an exploration recur from run to run. A content is looked up by its length and a
    few slices of it, then compared in full with the one held: a comparison costs about a
    twentieth of MD5, an eighth of SHA-256 and a third of Python's own hash of the content.
    Each digest is computed the first time it is asked for. Holds at most ``limit`` bytes of
    content; the least recently used go first."""

    #: Smaller contents are cheaper to hash again than to keep.
    SMALLEST = 64 << 10
    #: Bytes of each slice looked at to find a content.
    SLICE = 4 << 10

    def __init__(self, limit: int = 192 << 20) -> None:
        self.limit = limit
        self.held = 0
        #: Where a content is looked up -> (the content, its digests computed so far).
        self.known: dict[tuple[int, int], tuple[bytes, dict[str, str]]] = {}

    def __call__(self, data: bytes | bytearray | memoryview) -> tuple[str, str]:
        """(SHA-256, MD5) of ``data``, in hex."""
        data = bytes(data)  # a bytearray or memoryview is not a key
        found = self._entry(data)
        return _digest(data, found, "sha256"), _digest(data, found, "md5")

    def digest(self, data: bytes | bytearray | memoryview, algorithm: str) -> str:
        """The ``algorithm`` (``sha256`` or ``md5``) digest of ``data``, in hex."""
        data = bytes(data)
        return _digest(data, self._entry(data), algorithm)

    def contents(self) -> list[bytes]:
        """The contents held, the least recently used first."""
        return [content for content, _ in self.known.values()]

    def _entry(self, data: bytes) -> dict[str, str]:
        if len(data) < self.SMALLEST:
            return {}
        where = self._where(data)
        entry = self.known.pop(where, None)
        if entry is None or entry[0] != data:  # new, or another content looked up there
            if entry is not None:
                self.held -= len(entry[0])
            entry = (data, {})
            self.held += len(data)
            while self.held > self.limit and self.known:
                self.held -= len(self.known.pop(next(iter(self.known)))[0])
        self.known[where] = entry  # last: the most recently used
        return entry[1]

    def _where(self, data: bytes) -> tuple[int, int]:
        middle = len(data) // 2
        cut = self.SLICE
        return len(data), hash((data[:cut], data[middle : middle + cut], data[-cut:]))


def _digest(data: bytes, known: dict[str, str], algorithm: str) -> str:
    value = known.get(algorithm)
    if value is None:
        value = known[algorithm] = _HASHES[algorithm](data).hexdigest()
    return value


#: The digests of large contents the harness hashed lately, for the whole process.
digests = DigestMemo()


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    """One version of one S3 key. ``index`` orders a key's versions, oldest first."""

    key: str
    version_id: str
    index: int
    is_latest: bool
    delete_marker: bool = False
    etag: str = ""
    blob: Blob | None = None
    #: Checksums S3 stored with the object (``ChecksumSHA256`` ...), as S3 reported them.
    s3_checksums: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MultipartUpload:
    """An upload that was created and neither completed nor aborted."""

    key: str
    upload_id: str
    initiated: str = ""


@dataclass(frozen=True, slots=True)
class RedisEntry:
    """One Redis key: its type and its value in plain Python (UTF-8 bytes decoded)."""

    type: str
    value: Any


@dataclass(frozen=True)
class StorageSnapshot:
    """Everything in storage at one instant."""

    bucket: str = ""
    versions: tuple[ObjectVersion, ...] = ()
    uploads: tuple[MultipartUpload, ...] = ()
    redis: Mapping[str, RedisEntry] = field(default_factory=dict)
    #: Local dir (as ``str(path)``, the ``local_dir`` of ``instance.started``) -> relative
    #: POSIX path -> content.
    files: Mapping[str, Mapping[str, Blob]] = field(default_factory=dict)

    def versions_of(self, key: str, *, include_deletes: bool = False) -> list[ObjectVersion]:
        """Versions of ``key``, oldest first."""
        found = [v for v in self.versions if v.key == key]
        if not include_deletes:
            found = [v for v in found if not v.delete_marker]
        return sorted(found, key=lambda v: v.index)

    def current(self, key: str) -> ObjectVersion | None:
        """The version a plain GET returns, or ``None`` when absent or deleted."""
        versions = self.versions_of(key, include_deletes=True)
        if not versions or versions[-1].delete_marker:
            return None
        return versions[-1]

    def keys(self, prefix: str = "") -> list[str]:
        """Keys that ever had a version, sorted."""
        return sorted({v.key for v in self.versions if v.key.startswith(prefix)})

    def file(self, local_dir: str, relpath: str) -> Blob | None:
        return self.files.get(local_dir, {}).get(relpath)

    def to_json(self) -> dict[str, Any]:
        """A summary without bytes, for journals."""

        def blob_json(blob: Blob | None) -> dict[str, Any] | None:
            return None if blob is None else {"size": blob.size, "sha256": blob.sha256}

        return {
            "bucket": self.bucket,
            "versions": [
                {
                    "key": v.key,
                    "version_id": v.version_id,
                    "index": v.index,
                    "latest": v.is_latest,
                    "delete_marker": v.delete_marker,
                    "blob": blob_json(v.blob),
                }
                for v in self.versions
            ],
            "uploads": [{"key": u.key, "upload_id": u.upload_id} for u in self.uploads],
            "redis": {k: {"type": e.type, "value": repr(e.value)} for k, e in self.redis.items()},
            "files": {
                d: {p: blob_json(b) for p, b in sorted(files.items())}
                for d, files in sorted(self.files.items())
            },
        }


async def take_snapshot(
    s3_client: Any,
    bucket: str,
    redis: Any | None,
    local_dirs: Mapping[str, Path] | Iterable[Path],
) -> StorageSnapshot:
    """Read the whole world's storage.

    ``s3_client`` is a boto3 S3 client (its calls are made inline: in simulation the bucket is
    in-process moto); ``redis`` a ``redis.asyncio.Redis`` or ``None``; ``local_dirs`` the dirs of
    every instance incarnation, as ``{name: path}`` where ``name`` is the ``local_dir`` that
    ``instance.started`` recorded (a plain list of paths is keyed by ``str(path)``); a missing
    dir (wiped on terminate) is recorded as empty.
    """
    named = dict(local_dirs) if isinstance(local_dirs, Mapping) else {str(d): d for d in local_dirs}
    versions = _read_versions(s3_client, bucket)
    uploads = _read_uploads(s3_client, bucket)
    redis_state = await _read_redis(redis) if redis is not None else {}
    files = {name: _read_dir(path) for name, path in sorted(named.items())}
    return StorageSnapshot(
        bucket=bucket,
        versions=tuple(versions),
        uploads=tuple(uploads),
        redis=MappingProxyType(redis_state),
        files=MappingProxyType({d: MappingProxyType(f) for d, f in files.items()}),
    )


def _read_versions(s3: Any, bucket: str) -> list[ObjectVersion]:
    listed: dict[str, list[dict[str, Any]]] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for raw in page.get("Versions", []):
            listed.setdefault(raw["Key"], []).append(raw)
        for raw in page.get("DeleteMarkers", []):
            listed.setdefault(raw["Key"], []).append({**raw, "_delete": True})
    result: list[ObjectVersion] = []
    for key in sorted(listed):
        for index, raw in enumerate(_oldest_first(listed[key])):
            result.append(_read_version(s3, bucket, raw, index=index))
    return result


def _oldest_first(raws: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Versions and delete markers of one key, oldest first.

    S3 lists each kind newest first in its own list; the two are merged by ``LastModified``,
    ties put a delete marker after a version, and the version S3 flags ``IsLatest`` is always last.
    """
    ranked = sorted(
        enumerate(raws),
        key=lambda pair: (
            bool(pair[1].get("IsLatest")),
            pair[1].get("LastModified") or 0,
            bool(pair[1].get("_delete")),
            -pair[0],
        ),
    )
    return [raw for _, raw in ranked]


def _read_version(s3: Any, bucket: str, raw: Mapping[str, Any], index: int) -> ObjectVersion:
    key = str(raw["Key"])
    version_id = str(raw.get("VersionId") or "null")
    if raw.get("_delete"):
        return ObjectVersion(
            key=key,
            version_id=version_id,
            index=index,
            is_latest=bool(raw.get("IsLatest")),
            delete_marker=True,
        )
    response = s3.get_object(Bucket=bucket, Key=key, VersionId=version_id, ChecksumMode="ENABLED")
    data = response["Body"].read()
    return ObjectVersion(
        key=key,
        version_id=version_id,
        index=index,
        is_latest=bool(raw.get("IsLatest")),
        etag=str(response.get("ETag", "")).strip('"'),
        blob=Blob.of(data),
        s3_checksums={f: str(response[f]) for f in _S3_CHECKSUM_FIELDS if response.get(f)},
    )


def _read_uploads(s3: Any, bucket: str) -> list[MultipartUpload]:
    uploads: list[MultipartUpload] = []
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for raw in page.get("Uploads", []):
            uploads.append(
                MultipartUpload(
                    key=str(raw["Key"]),
                    upload_id=str(raw["UploadId"]),
                    initiated=str(raw.get("Initiated", "")),
                )
            )
    return sorted(uploads, key=lambda u: (u.key, u.upload_id))


async def _read_redis(redis: Any) -> dict[str, RedisEntry]:
    entries: dict[str, RedisEntry] = {}
    async for raw_key in redis.scan_iter(count=1000):
        key = _text(raw_key)
        kind = _text(await redis.type(raw_key))
        entries[key] = RedisEntry(type=kind, value=await _read_redis_value(redis, raw_key, kind))
    return dict(sorted(entries.items()))


async def _read_redis_value(redis: Any, key: Any, kind: str) -> Any:
    if kind == "string":
        return _text(await redis.get(key))
    if kind == "hash":
        raw = await redis.hgetall(key)
        return {_text(k): _text(v) for k, v in sorted(raw.items())}
    if kind == "list":
        return [_text(v) for v in await redis.lrange(key, 0, -1)]
    if kind == "set":
        return sorted(_text(v) for v in await redis.smembers(key))
    if kind == "zset":
        return [(_text(m), s) for m, s in await redis.zrange(key, 0, -1, withscores=True)]
    return None


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value
    return value


def _read_dir(root: Path) -> dict[str, Blob]:
    if not root.is_dir():
        return {}
    return {
        path.relative_to(root).as_posix(): Blob.of(path.read_bytes())
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
