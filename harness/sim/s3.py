"""The simulated S3: moto in-process, one boto3 client for the whole process, a bucket per run.

Creating a boto3 client costs tens of milliseconds, so one client is made lazily and reused by
every run in the process. moto intercepts botocore only while a run needs it, and other users'
moto state is left alone; each run creates its own versioned bucket and removes it at the end.

While a run is active moto runs with the patches of :mod:`harness.sim.moto_patches` (its
clock is the run's virtual calendar, its ids come from the run's seed, its S3 routing is
cached); nothing else here touches moto's internals.

The client is configured for simulation, where a call's cost is all Python: SigV4-shaped request
headers without the HMAC work (moto does not verify signatures), path-style addressing, and
response timestamps parsed without dateutil (the same values). What S3 does with each request
is moto's own, unchanged.
"""

from __future__ import annotations

import contextlib
import copy
import email.utils
import fnmatch
import gc
import io
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import boto3
import botocore.auth
import botocore.session
import botocore.utils
import moto.s3.models as moto_s3
from botocore.awsrequest import AWSRequest

from harness.history import FaultRecorder, record_fault
from harness.sim import moto_patches
from harness.sim.observe import begin_run, end_run, observe_s3_client
from harness.storage.s3 import client_config

if TYPE_CHECKING:
    from harness.scenario.model import S3Fault

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
#: Dummy credentials: the client must never look for real ones (that would reach for IMDS).
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

_client: Any = None

#: The tzinfo botocore puts on the timestamps it parses (dateutil's UTC).
_BOTOCORE_UTC = botocore.utils.parse_timestamp("1970-01-01T00:00:00Z").tzinfo

#: Signature version name of :class:`_SimulatedSigV4` in botocore's table of signers.
SIM_SIGNER = "spot-harness-sim-v4"


class _SimulatedSigV4(botocore.auth.SigV4Auth):
    """Headers shaped as SigV4 (credential scope included, which moto reads the account and
    region from) without hashing the request: moto does not verify signatures."""

    def add_auth(self, request: AWSRequest) -> None:
        stamp = moto_patches.moto_now().strftime("%Y%m%dT%H%M%SZ")  # the run's calendar, as moto's
        credentials = self.credentials
        assert credentials is not None
        region, service = getattr(self, "_region_name"), getattr(self, "_service_name")  # noqa: B009
        scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Content-SHA256"):
            del request.headers[name]
        request.headers["X-Amz-Date"] = stamp
        # A body sent aws-chunked with a checksum trailer must say so: moto decodes it then.
        algorithm = request.context.get("checksum", {}).get("request_algorithm")
        streaming = isinstance(algorithm, dict) and algorithm.get("in") == "trailer"
        request.headers["X-Amz-Content-SHA256"] = (
            botocore.auth.STREAMING_UNSIGNED_PAYLOAD_TRAILER
            if streaming
            else botocore.auth.UNSIGNED_PAYLOAD
        )
        request.headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
            "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=simulated"
        )


def _choose_simulated_signer(**_: Any) -> str:
    return SIM_SIGNER


def _parse_timestamp(value: Any) -> datetime:
    """botocore's ``parse_timestamp`` without dateutil's general parser for the two formats S3
    answers with (RFC 7231 headers, ISO 8601 bodies); the same aware datetimes."""
    if isinstance(value, str):
        try:
            if value.endswith("GMT"):
                return email.utils.parsedate_to_datetime(value).astimezone(_BOTOCORE_UTC)
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is not None:
                return parsed.astimezone(_BOTOCORE_UTC)
        except (TypeError, ValueError):
            pass
    parsed_any: datetime = botocore.utils.parse_timestamp(value)
    return parsed_any


def shared_client() -> Any:
    """The process-wide boto3 S3 client for simulation (created on first use)."""
    global _client
    if _client is None:
        botocore.auth.AUTH_TYPE_MAPS.setdefault(SIM_SIGNER, _SimulatedSigV4)
        session = botocore.session.get_session()
        session.get_component("response_parser_factory").set_parser_defaults(
            timestamp_parser=_parse_timestamp
        )
        session.register("choose-signer.s3", cast(Any, _choose_simulated_signer))
        _client = boto3.Session(botocore_session=session).client(
            "s3",
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=CREDENTIALS["aws_secret_access_key"],
            config=client_config(addressing_style="path"),
        )
        observe_s3_client(_client)
        moto_patches.register_shortcut(_client)  # after the observer: it must see every call
    return _client


_frozen = False


def _freeze_long_lived() -> None:
    """After the process's first simulated run, move every object alive then (botocore's and
    moto's models and backends, the URL and error tables, the imported modules: some 160,000
    objects) out of the cyclic garbage collector's reach, once.

    The collector's full passes otherwise walk them all again every few runs (about 90 ms each,
    9 ms a run on average for the standard scenario). Frozen objects are still freed when no
    longer referenced; only a reference cycle among them would stay in memory."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


@contextlib.contextmanager
def simulated_bucket(name: str, *, now: Callable[[], datetime], seed: int) -> Iterator[Any]:
    """moto active, a fresh versioned bucket ``name``, moto's clock and ids tied to the run.

    Yields the shared client. The bucket is deleted on exit, whatever happened.
    """
    client = shared_client()
    with moto_patches.patched(now, seed):
        try:
            begin_run()
            _drop_bucket(name)  # left over by a run that was interrupted hard
            backend = moto_s3.s3_backends[ACCOUNT_ID]["aws"]
            backend.create_bucket(name, REGION)
            backend.put_bucket_versioning(name, "Enabled")
            yield client
        finally:
            end_run()
            _drop_bucket(name)
            _freeze_long_lived()


def _drop_bucket(name: str) -> None:
    backend = moto_s3.s3_backends[ACCOUNT_ID]["aws"]
    bucket = backend.buckets.pop(name, None)
    moto_s3.s3_backends.bucket_accounts.pop(name, None)
    if bucket is not None:
        _dispose(bucket)


def _dispose(bucket: Any) -> None:
    """Free every body the bucket holds now. moto frees one in ``FakeKey.__del__``, which for
    keys caught in reference cycles waits for a full garbage collection; bodies are not counted
    towards one, so the real bytes of many runs piled up (gigabytes over an exploration of
    materialized states)."""
    for _key, versions in bucket.keys.lists():
        for version in versions:
            dispose = getattr(version, "dispose", None)  # delete markers hold no body
            if dispose is not None:
                dispose()
    for upload in list(bucket.multiparts.values()):
        upload.dispose()


def corrupt_newest(bucket: str, pattern: str) -> str | None:
    """Silently corrupt the newest object matching ``pattern``; returns its key or ``None``."""
    keys = corrupt_objects(bucket, pattern, "newest")
    return keys[0] if keys else None


def corrupt_and_record(world: FaultRecorder, index: int, bucket: str, fault: S3Fault) -> list[str]:
    """Play a ``corrupt:`` fault of timeline entry ``index`` on ``bucket`` and record it as
    ``fault.started`` (both tiers): which keys were damaged, and how."""
    assert fault.corrupt is not None
    which = fault.which or "newest"
    damage = fault.damage or "flip"
    keys = corrupt_objects(bucket, fault.corrupt, which, damage)
    params = {"pattern": fault.corrupt, "which": which, "key": keys[0] if keys else None}
    if damage != "flip":
        params["damage"] = damage
    record_fault(world, index, "s3.corrupt", {**params, "keys": keys}, 0.0)
    return keys


def corrupt_objects(
    bucket: str, pattern: str, which: str | int = "newest", damage: str = "flip"
) -> list[str]:
    """Silently corrupt objects matching ``pattern``; returns the keys corrupted.

    ``which`` chooses among the matching objects, newest written first: ``newest``,
    ``previous`` (the one before it), ``all``, or ``n`` (the n-th newest, 1 being the newest).
    Each chosen key's current version changes in place.

    ``flip`` (bit rot): the ETag stays and no stored checksum is left, as with media corruption
    under S3's own integrity checks. The damage keeps the content's shape (a digit of the
    longest hex run, the state digest of a checkpoint, turns into another digit), so only a
    reader that checks the digest notices it.

    ``rollback`` (a stale replica, a restore from an old backup): the oldest matching object's
    whole current version (body, ETag, user metadata, stored checksum) is put in place of each
    chosen newer one. The object is self-consistent, so only a digest recorded elsewhere (a
    manifest, a pointer) tells it apart; the oldest object itself, having nothing older, is left.
    """
    backend = moto_s3.s3_backends[ACCOUNT_ID]["aws"]
    found = backend.buckets.get(bucket)
    if found is None:
        return []
    candidates = [
        (versions[-1].last_modified, key, versions[-1])
        for key in found.keys
        if fnmatch.fnmatchcase(key, pattern)
        for versions in [found.keys.getlist(key)]
        if versions
        and not getattr(versions[-1], "is_delete_marker", False)
        and hasattr(versions[-1], "value")
    ]
    candidates.sort(key=lambda c: (c[0], c[1]), reverse=True)
    chosen = _choose(candidates, which)
    if damage == "rollback":
        oldest = candidates[-1][2] if candidates else None
        chosen = [c for c in chosen if c[2] is not oldest]
        for _, _, fake_key in chosen:
            _roll_back(fake_key, oldest)
        return [str(key) for _, key, _ in chosen]
    for _, _, fake_key in chosen:
        etag = fake_key.etag.strip('"')
        fake_key.value = damaged(fake_key.value)
        # Silent: the ETag stays, and no stored checksum is left that a reader could check.
        fake_key._etag = etag
        fake_key.checksum_value = None
        fake_key.checksum_algorithm = None
    return [str(key) for _, key, _ in chosen]


def _roll_back(fake_key: Any, source: Any) -> None:
    """``fake_key``'s current version becomes ``source``'s content, as a whole."""
    fake_key.value = source.value
    fake_key._etag = source.etag.strip('"')
    fake_key._metadata = copy.deepcopy(source._metadata)
    fake_key.checksum_value = source.checksum_value
    fake_key.checksum_algorithm = source.checksum_algorithm


def _choose(candidates: list[Any], which: str | int) -> list[Any]:
    if which == "all":
        return candidates
    index = {"newest": 1, "previous": 2}.get(str(which)) if isinstance(which, str) else which
    if index is None:
        raise ValueError(f"unknown choice {which!r}: newest, previous, all or a number from 1")
    return candidates[index - 1 : index]


#: Where to look for the digest to damage: a state's header line comes first.
_HEX_RUN = re.compile(rb"[0-9a-f]{16,}")
_SCAN = 64 * 1024


def damaged(data: bytes) -> bytes:
    """``data`` with one byte changed so that it still parses: a digit in the middle of the
    longest lowercase hex run near the start turns into another; without one, the middle
    byte is flipped. Empty content becomes one zero byte."""
    if not data:
        return b"\0"
    runs = list(_HEX_RUN.finditer(data[:_SCAN]))
    out = bytearray(data)
    if runs:
        run = max(runs, key=lambda m: (m.end() - m.start(), -m.start()))
        at = (run.start() + run.end()) // 2
        out[at] = ord("0") if out[at] != ord("0") else ord("1")
    else:
        out[len(out) // 2] ^= 0xFF
    return bytes(out)


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
