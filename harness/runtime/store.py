"""The tiered checkpoint store: local disk, then S3, then the Redis pointer.

* Local ("NVMe"): the checkpoint file is replaced crash-safely, then the local manifest naming it
  (written last). Older files are deleted only after the newer one was read back and verified.
* S3: one object per checkpoint, multipart for large states, a SHA-256 per object and per part,
  ``If-None-Match: *`` on the object and ``If-Match`` on the manifest so an older writer can
  never overwrite a newer commit; incomplete uploads are aborted on failure. Manifest last.
* Redis: moved by fenced compare-and-set, only to a checkpoint durable in S3.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError

from harness.runtime.job import checksum, decode_state
from harness.runtime.layout import (
    CHECKPOINT_SUFFIX,
    CheckpointRecord,
    Manifest,
    checkpoint_folder,
    manifest_key,
)
from harness.storage.local import LocalDisk
from harness.storage.s3 import S3Store, Upload, is_precondition_failed

MANIFEST_RETRIES = 3


class Fenced(Exception):
    """A newer instance owns the job: this one must stop writing."""


class ObjectConflict(RuntimeError):
    """A checkpoint key is taken by an object that is not the one this instance wrote."""


class CorruptCheckpoint(ValueError):
    """Stored content does not match its record (checksum, header, size)."""


def verify(
    record: CheckpointRecord, data: bytes, *, job: str, seed: int, digest: str | None = None
) -> dict[str, Any]:
    """Check content against its record; returns the state header or raises CorruptCheckpoint.

    ``digest``: the content's SHA-256 if already computed (in a worker thread, in real mode)."""
    if len(data) != record.size:
        raise CorruptCheckpoint(f"{record.id}: {len(data)} bytes stored, {record.size} expected")
    if (digest or checksum(data)) != record.checksum:
        raise CorruptCheckpoint(f"{record.id}: checksum mismatch")
    try:
        header = decode_state(data)
    except ValueError as error:
        raise CorruptCheckpoint(f"{record.id}: {error}") from None
    if (header.get("position"), header.get("job"), header.get("seed")) != (
        record.position,
        job,
        seed,
    ):
        raise CorruptCheckpoint(f"{record.id}: header does not match the job or position")
    return header


@dataclass
class LocalTier:
    disk: LocalDisk
    job: str
    seed: int
    keep: int = 2
    #: The manifest as this instance last wrote it (the disk is its own): saves and rotation
    #: use it instead of reading back what was just written.
    _written: Manifest | None = None

    @property
    def folder(self) -> str:
        return checkpoint_folder(self.job)

    async def manifest(self) -> Manifest:
        """The local manifest; an empty one if missing or unreadable (then files are listed)."""
        data = await self.disk.read(manifest_key(self.job))
        if data is not None:
            try:
                return Manifest.decode(data)
            except ValueError:
                pass
        return Manifest(job=self.job, epoch=0, checkpoints=())

    async def save(self, record: CheckpointRecord, data: bytes, epoch: int) -> CheckpointRecord:
        """Write the checkpoint, then the manifest naming it (last); returns the record with
        its checksum, computed while the file is written (in a thread in real mode)."""
        write = self.disk.write_atomic(record.key, data, nominal=record.nominal_size)
        if record.checksum:
            await write
        else:
            digest, _ = await asyncio.gather(self.disk.call(checksum, data), write)
            record = replace(record, checksum=digest)
        previous = self._written or await self.manifest()
        updated = previous.with_newest(record, epoch, self.keep)
        await self.disk.write_atomic(manifest_key(self.job), updated.encode())
        self._written = updated
        return record

    async def read(self, record: CheckpointRecord) -> bytes | None:
        return await self.disk.read(record.key, nominal=record.nominal_size)

    async def verify(self, record: CheckpointRecord, data: bytes) -> dict[str, Any]:
        """:func:`verify` for this job, hashing off the event loop in real mode."""
        digest = await self.disk.call(checksum, data)
        return verify(record, data, job=self.job, seed=self.seed, digest=digest)

    async def rotate(self, newest: CheckpointRecord) -> list[str]:
        """Delete checkpoint files the manifest no longer names, once ``newest`` verifies."""
        data = await self.read(newest)
        if data is None:
            return []
        await self.verify(newest, data)
        listed = {r.key for r in (self._written or await self.manifest()).checkpoints}
        stale = [n for n in self.disk.names(self.folder, CHECKPOINT_SUFFIX) if n not in listed]
        for name in stale:
            await self.disk.delete(name)
        return stale


@dataclass
class S3Tier:
    store: S3Store
    job: str
    keep: int = 3
    multipart_threshold: int = 64 * 2**20
    part_size: int = 16 * 2**20
    manifest_etag: str | None = None
    _cached: Manifest | None = None
    #: Keys of this instance's checkpoints that may have an incomplete multipart upload left.
    unfinished: set[str] = field(default_factory=set)

    @property
    def folder(self) -> str:
        return checkpoint_folder(self.job)

    async def manifest(self) -> Manifest | None:
        """The S3 manifest (remembering its ETag); ``None`` if absent.

        Raises ``ValueError`` if the object exists but is not a valid manifest.
        """
        found = await self.store.get(manifest_key(self.job))
        if found is None:
            self.manifest_etag = None
            self._cached = Manifest(job=self.job, epoch=0, checkpoints=())
            return None
        data, etag = found
        self.manifest_etag = etag
        self._cached = None
        manifest = Manifest.decode(data)
        self._cached = manifest
        return manifest

    async def upload(
        self,
        record: CheckpointRecord,
        data: bytes,
        on_upload: Callable[[Upload | None], None] = lambda upload: None,
    ) -> str | None:
        """Store the checkpoint object; returns its version id. Never overwrites an object.

        A conditional write that finds the key taken (412) is this instance's own earlier
        attempt whose answer was lost (checkpoint keys are unique to their writer): if the
        stored object's metadata names this checksum, position and size, the step is done.
        """
        metadata = {"sha256": record.checksum, "position": str(record.position)}
        try:
            if record.nominal_size < self.multipart_threshold:
                result = await self.store.put(
                    record.key,
                    data,
                    nominal=record.nominal_size,
                    if_none_match=True,
                    metadata=metadata,
                    sha256_hex=record.checksum,  # computed once, at the save
                )
            else:
                result = await self._upload_multipart(record, data, metadata, on_upload)
        except Exception as error:
            if not is_precondition_failed(error):
                raise
            return await self._already_stored(record, error)
        return _optional(result["version_id"])

    async def _upload_multipart(
        self,
        record: CheckpointRecord,
        data: bytes,
        metadata: dict[str, str],
        on_upload: Callable[[Upload | None], None],
    ) -> dict[str, Any]:
        try:
            upload = await self.store.create_multipart(record.key, metadata)
        except Exception as error:
            if not _surely_not_sent(error):
                self.unfinished.add(record.key)  # the upload may exist with its answer lost
            raise
        on_upload(upload)
        try:
            parts = await self._upload_parts(upload, record, data)
            result = await self.store.complete_multipart(upload, parts)
        except Exception:
            await self.abort_or_remember(upload)
            on_upload(None)
            raise
        # Cancelled or crashed: the upload stays tracked; the caller aborts it when it may still
        # do I/O, otherwise the next recovery sweeps it.
        on_upload(None)
        return result

    async def _already_stored(self, record: CheckpointRecord, conflict: Exception) -> str | None:
        found, version_id = await self.stored(record)
        if not found:
            raise conflict  # the condition failed on an object that is gone again: retry
        return version_id

    async def stored(self, record: CheckpointRecord) -> tuple[bool, str | None]:
        """Whether S3 already holds ``record``'s object (its metadata names this checksum,
        position and size), and its version id. Raises :class:`ObjectConflict` if the key
        holds something else."""
        head = await self.store.head(record.key)
        if head is None:
            return False, None
        meta = head.get("Metadata", {})
        stored = (meta.get("sha256"), meta.get("position"), head.get("ContentLength"))
        if stored != (record.checksum, str(record.position), record.size):
            raise ObjectConflict(
                f"{record.key} already exists with other content "
                f"(sha256 {meta.get('sha256')!r}, {head.get('ContentLength')} bytes)"
            )
        return True, _optional(head.get("VersionId"))

    async def _upload_parts(
        self, upload: Upload, record: CheckpointRecord, data: bytes
    ) -> list[dict[str, Any]]:
        # The io_hook sees every nominal part. Compact (simulation) content has fewer physical
        # parts than nominal ones: the last physical part goes up with the last nominal part.
        physical = _split(data, self.part_size)
        count = max(len(physical), _part_count(record.nominal_size, self.part_size))
        nominal_part = math.ceil(max(record.nominal_size, len(data)) / count)
        parts: list[dict[str, Any]] = []
        for index in range(count):
            if index < len(physical) - 1:
                chunk: bytes | None = physical[index]
            elif index == count - 1:
                chunk = physical[-1]
            else:
                chunk = None
            if chunk is None:
                await self.store.model_part(upload, nbytes=nominal_part)
                continue
            number = len(parts) + 1
            parts.append(await self.store.upload_part(upload, number, chunk, nominal=nominal_part))
        return parts

    async def abort_or_remember(self, upload: Upload) -> bool:
        """Abort ``upload``; if that fails too, remember its key for :meth:`abort_unfinished`.
        True when it is gone."""
        try:
            await self.store.abort_multipart(upload)
        except Exception:
            self.unfinished.add(upload.key)
            return False
        return True

    async def abort_unfinished(self, on_aborted: Callable[[str], None]) -> None:
        """Abort the incomplete uploads this instance may have left under its own checkpoint
        keys (an abort that failed, a create whose answer was lost), calling ``on_aborted``
        with the key of each. Call only while no upload is in flight: a key is listed as a
        prefix. Raises on S3 errors; keys not yet cleaned stay remembered."""
        for key in sorted(self.unfinished):
            for upload in await self.store.list_uploads(key):
                if upload.key == key:
                    await self.store.abort_multipart(upload)
                    on_aborted(key)
            self.unfinished.discard(key)

    async def commit_manifest(self, record: CheckpointRecord, epoch: int) -> list[CheckpointRecord]:
        """Name ``record`` in the manifest (conditional write); returns entries it dropped.

        Raises :class:`Fenced` when the manifest belongs to a newer epoch.
        """
        for _ in range(MANIFEST_RETRIES):
            current = await self._current_manifest()
            if current.epoch > epoch:
                raise Fenced(
                    f"manifest epoch {current.epoch} is newer than this instance's {epoch}"
                )
            updated = current.with_newest(record, epoch, self.keep)
            if await self._replace_manifest(updated):
                return current.dropped_by(updated)
        raise Fenced("the manifest kept changing under this instance")

    async def claim(self, epoch: int, found: list[CheckpointRecord]) -> int | None:
        """Write the manifest unchanged but for ``epoch`` (conditionally). If it was lost or
        unreadable, the checkpoints ``found`` by listing take its place. A manifest changed since
        it was read (an older instance still committing) is read again and stamped as it is.
        Returns the manifest's epoch if it already names ``epoch`` or a newer one."""
        for _ in range(MANIFEST_RETRIES):
            current = await self._current_manifest()
            if current.epoch >= epoch:
                return current.epoch
            entries = current.checkpoints
            if not entries and found:
                ordered = sorted(found, key=lambda r: (r.position, r.epoch, r.id), reverse=True)
                entries = tuple(ordered[: self.keep])
            if await self._replace_manifest(Manifest(self.job, epoch, entries)):
                return None
        raise Fenced("the manifest kept changing while this instance claimed it")

    async def _replace_manifest(self, manifest: Manifest) -> bool:
        """:meth:`_put_manifest`; False when its condition failed (the manifest changed since
        it was read: the next read fetches it again)."""
        try:
            await self._put_manifest(manifest)
        except Exception as error:
            if not is_precondition_failed(error):
                raise
            self.manifest_etag = None
            self._cached = None
            return False
        return True

    async def _put_manifest(self, manifest: Manifest) -> None:
        """Replace the manifest only if it is still the one last read or written (its ETag;
        none: only if there is none)."""
        result = await self.store.put(
            manifest_key(self.job),
            manifest.encode(),
            if_match=self.manifest_etag,
            if_none_match=self.manifest_etag is None,
        )
        self.manifest_etag = str(result["etag"])
        self._cached = manifest

    async def _current_manifest(self) -> Manifest:
        if self._cached is not None:
            return self._cached  # as last read or written; a stale one fails its If-Match
        try:
            found = await self.manifest()
        except ValueError:
            found = None  # unreadable: replace it (its ETag is known from the read)
        self._cached = found or Manifest(job=self.job, epoch=0, checkpoints=())
        return self._cached

    async def read(self, record: CheckpointRecord) -> bytes | None:
        found = await self.store.get(record.key, nominal=record.nominal_size)
        return None if found is None else found[0]

    async def listed_records(self) -> list[CheckpointRecord]:
        """Checkpoints found by listing (when the manifest is lost), from object metadata."""
        records = []
        for item in await self.store.list_objects(self.folder + "/"):
            key = str(item["Key"])
            if not key.endswith(CHECKPOINT_SUFFIX):
                continue
            head = await self.store.head(key)
            if head is None:
                continue
            meta = head.get("Metadata", {})
            name = key.rsplit("/", 1)[-1].removesuffix(CHECKPOINT_SUFFIX)
            try:
                epoch = int(name.split("-e")[1].split("-")[0])
                records.append(
                    CheckpointRecord(
                        id=name,
                        position=int(meta["position"]),
                        epoch=epoch,
                        checksum=str(meta["sha256"]),
                        size=int(head["ContentLength"]),
                        nominal_size=0,
                        key=key,
                    )
                )
            except (KeyError, IndexError, ValueError):
                continue
        return records

    async def sweep_uploads(self) -> list[str]:
        """Abort incomplete multipart uploads left by earlier instances; returns their keys."""
        swept = []
        for upload in await self.store.list_uploads(self.folder + "/"):
            await self.store.abort_multipart(upload)
            swept.append(upload.key)
        return swept

    async def delete(self, records: list[CheckpointRecord]) -> None:
        for record in records:
            await self.store.delete(record.key)


def _surely_not_sent(error: BaseException) -> bool:
    """Whether a failed request certainly created nothing: S3 answered with an error, or no
    connection was ever made. A timeout or a dropped connection may have lost S3's answer."""
    return isinstance(error, ClientError | EndpointConnectionError)


def _part_count(nominal: int, part_size: int) -> int:
    return max(1, min(10_000, math.ceil(nominal / part_size)))


def _split(data: bytes, part_size: int) -> list[bytes]:
    if len(data) <= part_size:
        return [data]
    return [data[i : i + part_size] for i in range(0, len(data), part_size)]


def _optional(value: Any) -> str | None:
    return None if value is None else str(value)
