"""The simulation's S3 client tuning keeps moto's S3: conditional writes, checksums, metadata,
versions, timestamps as botocore parses them, and moto put back as it was after a run."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import botocore.utils
import moto.backend_index
import moto.core.request
import pytest
from botocore.exceptions import ClientError

from harness.sim.s3 import _parse_timestamp, simulated_bucket

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
BUCKET = "sim-client-test"


def sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_conditional_writes_checksums_and_metadata_are_moto_s() -> None:
    with simulated_bucket(BUCKET, now=lambda: EPOCH, seed=1) as client:
        first = client.put_object(
            Bucket=BUCKET,
            Key="k",
            Body=b"one",
            ChecksumSHA256=sha256(b"one"),
            IfNoneMatch="*",
            Metadata={"my_key": "v"},
        )
        with pytest.raises(ClientError, match="PreconditionFailed"):
            client.put_object(Bucket=BUCKET, Key="k", Body=b"two", IfNoneMatch="*")
        client.put_object(Bucket=BUCKET, Key="k", Body=b"two")  # no checksum: aws-chunked CRC
        got = client.get_object(Bucket=BUCKET, Key="k", VersionId=first["VersionId"])
        assert got["Body"].read() == b"one"
        assert got["Metadata"] == {"my_key": "v"}  # underscores kept, as S3 does
        assert got["LastModified"] == EPOCH
        latest = client.get_object(Bucket=BUCKET, Key="k")
        assert latest["Body"].read() == b"two"
        versions = client.list_object_versions(Bucket=BUCKET)["Versions"]
        assert [v["IsLatest"] for v in versions] == [True, False]


def test_moto_is_restored_after_the_run() -> None:
    patterns = moto.backend_index.backend_url_patterns
    header_iter = moto.core.request.EnvironHeaders.__iter__
    with simulated_bucket(BUCKET, now=lambda: EPOCH, seed=1):
        assert moto.backend_index.backend_url_patterns[0][0] == "s3"
    assert moto.backend_index.backend_url_patterns is patterns
    assert moto.core.request.EnvironHeaders.__iter__ is header_iter


def test_ids_stay_deterministic_per_seed() -> None:
    def version_ids(seed: int) -> list[str]:
        with simulated_bucket(BUCKET, now=lambda: EPOCH, seed=seed) as client:
            return [
                client.put_object(Bucket=BUCKET, Key="k", Body=b"x")["VersionId"] for _ in range(3)
            ]

    assert version_ids(5) == version_ids(5) != version_ids(6)


@pytest.mark.parametrize(
    "text",
    [
        "Thu, 01 Jan 2026 00:00:00 GMT",
        "2026-01-01T00:02:03.000Z",
        "2026-01-01T00:02:03Z",
        "2026-01-01T00:02:03.123456+00:00",
        "1700000000",
    ],
)
def test_timestamps_parse_to_what_botocore_parses(text: str) -> None:
    ours, theirs = _parse_timestamp(text), botocore.utils.parse_timestamp(text)
    assert ours == theirs and ours.utcoffset() == theirs.utcoffset()
