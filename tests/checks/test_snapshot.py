"""take_snapshot reads S3 versions, open uploads, Redis and local files itself."""

from __future__ import annotations

from pathlib import Path

import boto3
import fakeredis
from moto import mock_aws

from harness.checks import Blob, take_snapshot
from harness.clock import run_virtual


def test_snapshot_reads_every_version_upload_key_and_file(tmp_path: Path) -> None:
    local = tmp_path / "i-1"
    (local / "ckpt").mkdir(parents=True)
    (local / "ckpt" / "state.bin").write_bytes(b"local state")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="bucket-1")
        s3.put_bucket_versioning(Bucket="bucket-1", VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket="bucket-1", Key="outputs/0", Body=b"first")
        s3.put_object(Bucket="bucket-1", Key="outputs/0", Body=b"second")
        s3.put_object(Bucket="bucket-1", Key="gone", Body=b"x")
        s3.delete_object(Bucket="bucket-1", Key="gone")
        s3.create_multipart_upload(Bucket="bucket-1", Key="big")
        redis = fakeredis.FakeAsyncRedis()

        async def main() -> None:
            await redis.hset("job", mapping={"position": "12", "epoch": "2"})
            await redis.set("latest", b"\xff\x00")
            snapshot = await take_snapshot(s3, "bucket-1", redis, [local, tmp_path / "wiped"])
            versions = snapshot.versions_of("outputs/0")
            assert [v.blob.data for v in versions if v.blob] == [b"first", b"second"]
            assert snapshot.current("outputs/0") == versions[-1]
            assert snapshot.current("gone") is None
            assert len(snapshot.versions_of("gone", include_deletes=True)) == 2
            assert [u.key for u in snapshot.uploads] == ["big"]
            assert snapshot.redis["job"].value == {"epoch": "2", "position": "12"}
            assert snapshot.redis["latest"].value == b"\xff\x00"
            assert snapshot.file(str(local), "ckpt/state.bin") == Blob.of(b"local state")
            assert snapshot.files[str(tmp_path / "wiped")] == {}
            assert snapshot.to_json()["uploads"][0]["key"] == "big"

        run_virtual(main)


def test_a_blob_digests_its_bytes_whether_seen_before_or_not() -> None:
    """The harness remembers the digests of large contents it hashed, keyed by the content: the
    same bytes give the same digests, changed bytes (one bit) new ones, each digest is computed
    when first asked for, and the memory held is bounded (the least recently used go first)."""
    import hashlib

    from harness.checks import snapshot

    memo = snapshot.DigestMemo(limit=3 * snapshot.DigestMemo.SMALLEST)
    big = bytes(range(256)) * (snapshot.DigestMemo.SMALLEST // 256 + 1)
    flipped = bytearray(big)
    flipped[len(big) // 2] ^= 1
    assert memo.digest(big, "md5") == hashlib.md5(big).hexdigest()
    assert [digests for _, digests in memo.known.values()] == [
        {"md5": hashlib.md5(big).hexdigest()}  # SHA-256 not yet asked for
    ]
    for data in (big, bytes(big), bytearray(big), flipped, big, bytes(flipped), b"small"):
        assert memo(data) == (
            hashlib.sha256(data).hexdigest(),
            hashlib.md5(data, usedforsecurity=False).hexdigest(),
        )
        assert memo.digest(data, "sha256") == hashlib.sha256(data).hexdigest()
    assert memo.contents() == [big, flipped] and memo.held == 2 * len(big)
    memo(big)  # used again: the most recent
    memo(big + b"x")  # past the limit: the least recently used is dropped first
    assert memo.contents() == [big, big + b"x"] and memo.held == 2 * len(big) + 1
    assert Blob.of(big).sha256 == hashlib.sha256(big).hexdigest()


def test_a_content_looked_up_where_another_is_held_is_compared_in_full() -> None:
    """Contents are looked up by their length and a few slices; two that differ only outside
    those slices are looked up at the same place, and the one held is never taken for the
    other: each gets its own digests, and the newer takes the place."""
    import hashlib

    from harness.checks import snapshot

    memo = snapshot.DigestMemo()
    big = bytes(range(256)) * (snapshot.DigestMemo.SMALLEST // 256 + 1)
    changed = bytearray(big)
    changed[snapshot.DigestMemo.SLICE + 1] ^= 1  # between the first slice and the middle one
    other = bytes(changed)
    assert memo._where(big) == memo._where(other)
    for data in (big, other, big, other):
        assert memo(data) == (hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest())
        assert memo.contents() == [data] and memo.held == len(data)
