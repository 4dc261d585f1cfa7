"""The simulated S3: moto in-process, one boto3 client for the whole process, a bucket per run.

Creating a boto3 client costs tens of milliseconds, so one client is made lazily and reused by
every run in the process. moto intercepts botocore only while a run needs it, and other users'
moto state is left alone; each run creates its own versioned bucket and removes it at the end.

moto stamps objects with the wall clock (``LastModified``) and orders versions by it. In
simulation that would make the order of two versions written within the same wall millisecond
arbitrary, so while a run is active moto's clock is the run's virtual calendar clock.
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import boto3
import moto.s3.models as moto_s3
from moto.core.models import botocore_stubber
from moto.core.utils import utcnow as _wall_utcnow
from moto.moto_api._internal import mock_random

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
#: Dummy credentials: the client must never look for real ones (that would reach for IMDS).
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

_client: Any = None
_virtual_now: Callable[[], datetime] | None = None

#: moto rebuilds S3's URL table on every request (it reloads ``moto.s3.urls`` in case the
#: environment changed). Nothing changes it during a run, so runs use a table built once: this
#: takes a third of the cost of each simulated S3 call.
_ORIGINAL_URLS = moto_s3.S3Backend.urls
_url_table: dict[str, Any] = {}


def _cached_urls(backend: Any) -> Any:
    if not _url_table:
        _url_table.update(_ORIGINAL_URLS.fget(backend))  # type: ignore[attr-defined]
    return _url_table


def _moto_utcnow() -> datetime:
    """moto's clock: the active run's virtual calendar time (naive UTC, as moto expects)."""
    if _virtual_now is not None:
        return _virtual_now().replace(tzinfo=None)
    return _wall_utcnow()


def shared_client() -> Any:
    """The process-wide boto3 S3 client (created on first use)."""
    global _client
    if _client is None:
        _client = boto3.client(
            "s3",
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=CREDENTIALS["aws_secret_access_key"],
        )
    return _client


@contextlib.contextmanager
def simulated_bucket(name: str, *, now: Callable[[], datetime], seed: int) -> Iterator[Any]:
    """moto active, a fresh versioned bucket ``name``, moto's clock and ids tied to the run.

    Yields the shared client. The bucket is deleted on exit, whatever happened.
    """
    global _virtual_now
    # mock_aws().start() re-registers a thousand ``requests`` interceptors each time, half of a
    # run's fixed cost; botocore clients only need moto's before-send stubber switched on. The
    # previous state is restored, so a mock_aws the caller has active stays active.
    was_enabled = botocore_stubber.enabled
    botocore_stubber.enabled = True
    previous_now, _virtual_now = _virtual_now, now
    moto_s3.utcnow = _moto_utcnow  # type: ignore[attr-defined]
    moto_s3.S3Backend.urls = property(_cached_urls)  # type: ignore[method-assign,assignment]
    mock_random.seed(seed)  # version and upload ids, deterministic per run
    client = shared_client()
    try:
        _drop_bucket(name)  # left over by a run that was interrupted hard
        backend = moto_s3.s3_backends[ACCOUNT_ID]["aws"]
        backend.create_bucket(name, REGION)
        backend.put_bucket_versioning(name, "Enabled")
        yield client
    finally:
        _drop_bucket(name)
        _virtual_now = previous_now
        moto_s3.S3Backend.urls = _ORIGINAL_URLS  # type: ignore[method-assign]
        botocore_stubber.enabled = was_enabled


def _drop_bucket(name: str) -> None:
    backend = moto_s3.s3_backends[ACCOUNT_ID]["aws"]
    backend.buckets.pop(name, None)
    moto_s3.s3_backends.bucket_accounts.pop(name, None)


def corrupt_newest(bucket: str, pattern: str) -> str | None:
    """Silently corrupt the newest version of the newest key matching ``pattern`` (bit rot).

    The stored bytes change; the ETag and stored checksums do not, as with media corruption
    under S3's own integrity checks. Returns the key corrupted, or ``None`` if nothing matched.
    """

    backend = moto_s3.s3_backends[ACCOUNT_ID]["aws"]
    found = backend.buckets.get(bucket)
    if found is None:
        return None
    candidates = [
        (versions[-1].last_modified, key, versions[-1])
        for key in found.keys
        if fnmatch.fnmatchcase(key, pattern)
        for versions in [found.keys.getlist(key)]
        if versions
        and not getattr(versions[-1], "is_delete_marker", False)
        and hasattr(versions[-1], "value")
    ]
    if not candidates:
        return None
    _, key, fake_key = max(candidates, key=lambda c: (c[0], c[1]))
    etag = fake_key.etag.strip('"')
    data = bytearray(fake_key.value)
    if data:
        middle = len(data) // 2
        data[middle] ^= 0xFF
    else:
        data = bytearray(b"\0")
    fake_key.value = bytes(data)
    # Silent: the ETag stays, and no stored checksum is left that a reader could check.
    fake_key._etag = etag
    fake_key.checksum_value = None
    fake_key.checksum_algorithm = None
    return str(key)


class BackendReader:
    """Reads a simulated bucket straight from moto's model, for the end-of-run snapshot.

    It offers the few client calls :func:`harness.checks.take_snapshot` makes
    (``list_object_versions`` and ``list_multipart_uploads`` pages, ``get_object`` of a version)
    without a round trip through botocore, which would cost a millisecond per object. Versions are
    listed newest first per key in the order they were written, as S3 does.
    """

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def _bucket(self) -> Any:
        return moto_s3.s3_backends[ACCOUNT_ID]["aws"].buckets[self.bucket]

    def get_paginator(self, operation: str) -> _Pages:
        if operation == "list_object_versions":
            return _Pages(self._versions_page)
        if operation == "list_multipart_uploads":
            return _Pages(self._uploads_page)
        raise NotImplementedError(f"BackendReader does not offer {operation}")

    def _versions_page(self) -> dict[str, Any]:
        versions: list[dict[str, Any]] = []
        markers: list[dict[str, Any]] = []
        store = self._bucket().keys
        for key in sorted(store.keys()):
            entries = list(store.getlist(key))
            for position, entry in enumerate(reversed(entries)):
                listed = {"Key": key, "VersionId": entry.version_id, "IsLatest": position == 0}
                if isinstance(entry, moto_s3.FakeDeleteMarker):
                    markers.append(listed)
                else:
                    versions.append(listed)
        return {"Versions": versions, "DeleteMarkers": markers}

    def _uploads_page(self) -> dict[str, Any]:
        uploads = [
            {"Key": upload.key_name, "UploadId": upload.id}
            for upload in self._bucket().multiparts.values()
        ]
        return {"Uploads": uploads}

    def get_object(self, *, Bucket: str, Key: str, VersionId: str, **_: Any) -> dict[str, Any]:
        for entry in self._bucket().keys.getlist(Key):
            if entry.version_id == VersionId and not isinstance(entry, moto_s3.FakeDeleteMarker):
                response: dict[str, Any] = {"Body": io.BytesIO(entry.value), "ETag": entry.etag}
                if entry.checksum_algorithm and entry.checksum_value:
                    response[f"Checksum{entry.checksum_algorithm.upper()}"] = entry.checksum_value
                return response
        raise KeyError(f"{Key} version {VersionId}")


class _Pages:
    def __init__(self, page: Callable[[], dict[str, Any]]) -> None:
        self._page = page

    def paginate(self, **_: Any) -> list[dict[str, Any]]:
        return [self._page()]
