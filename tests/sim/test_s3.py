"""The simulated bucket: virtual timestamps, deterministic ids, the fast snapshot reader."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from harness.checks import take_snapshot
from harness.runtime.job import JobSpec, checksum, decode_state, state_after
from harness.sim.s3 import BackendReader, corrupt_newest, corrupt_objects, damaged, simulated_bucket

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def test_backend_reader_snapshot_equals_the_client_snapshot() -> None:
    # moto lists versions by timestamp, so give every write its own second for the comparison.
    clock = [EPOCH]

    def tick() -> None:
        clock[0] += timedelta(seconds=1)

    with simulated_bucket("sim-test", now=lambda: clock[0], seed=1) as client:
        for body in (b"one", b"two", b"three"):
            tick()
            client.put_object(Bucket="sim-test", Key="a/state", Body=body)
        tick()
        client.put_object(Bucket="sim-test", Key="b/gone", Body=b"x")
        tick()
        client.delete_object(Bucket="sim-test", Key="b/gone")
        client.create_multipart_upload(Bucket="sim-test", Key="c/big")
        via_client = asyncio.run(take_snapshot(client, "sim-test", None, []))
        direct = asyncio.run(take_snapshot(BackendReader("sim-test"), "sim-test", None, []))
    assert direct.versions == via_client.versions
    assert [(u.key, u.upload_id) for u in direct.uploads] == [
        (u.key, u.upload_id) for u in via_client.uploads
    ]
    assert [v.blob.data for v in direct.versions_of("a/state") if v.blob] == [
        b"one",
        b"two",
        b"three",
    ]
    assert direct.current("b/gone") is None


def test_backend_reader_keeps_write_order_when_timestamps_tie() -> None:
    with simulated_bucket("sim-test", now=lambda: EPOCH, seed=1) as client:
        for body in (b"one", b"two", b"three"):
            client.put_object(Bucket="sim-test", Key="a/state", Body=body)
        direct = asyncio.run(take_snapshot(BackendReader("sim-test"), "sim-test", None, []))
    versions = direct.versions_of("a/state")
    assert [v.blob.data for v in versions if v.blob] == [b"one", b"two", b"three"]
    assert versions[-1].is_latest


def test_timestamps_come_from_the_run_clock_and_ids_from_the_seed() -> None:
    now = [EPOCH]
    seen = []
    for _ in range(2):
        with simulated_bucket("sim-test", now=lambda: now[0], seed=7) as client:
            now[0] = EPOCH + timedelta(hours=3)
            client.put_object(Bucket="sim-test", Key="k", Body=b"v")
            head = client.head_object(Bucket="sim-test", Key="k")
            seen.append((head["LastModified"], head["VersionId"]))
    assert seen[0] == seen[1]
    assert seen[0][0] == EPOCH + timedelta(hours=3)


def test_bucket_is_gone_after_the_run() -> None:
    with simulated_bucket("sim-test", now=lambda: EPOCH, seed=1) as client:
        client.put_object(Bucket="sim-test", Key="k", Body=b"v")
    with simulated_bucket("sim-test", now=lambda: EPOCH, seed=1) as client:
        assert client.list_objects_v2(Bucket="sim-test").get("KeyCount") == 0


def test_corruption_changes_bytes_but_not_the_etag() -> None:
    with simulated_bucket("sim-test", now=lambda: EPOCH, seed=1) as client:
        put = client.put_object(Bucket="sim-test", Key="ckpt/1", Body=b"abcdef")
        assert corrupt_newest("sim-test", "ckpt/*") == "ckpt/1"
        assert corrupt_newest("sim-test", "nothing/*") is None
        got = client.get_object(Bucket="sim-test", Key="ckpt/1")
        assert got["Body"].read() == b"abc\x9bef"
        assert got["ETag"] == put["ETag"]


def test_corruption_chooses_the_newest_the_previous_the_nth_or_all() -> None:
    clock = [EPOCH]
    with simulated_bucket("sim-test", now=lambda: clock[0], seed=1) as client:
        for minute, key in enumerate(["ckpt/b", "ckpt/a", "ckpt/c"]):  # written in this order
            clock[0] = EPOCH + timedelta(minutes=minute)
            client.put_object(Bucket="sim-test", Key=key, Body=b"x" * 8)
        assert corrupt_objects("sim-test", "ckpt/*", "newest") == ["ckpt/c"]
        assert corrupt_objects("sim-test", "ckpt/*", "previous") == ["ckpt/a"]
        assert corrupt_objects("sim-test", "ckpt/*", 3) == ["ckpt/b"]
        assert corrupt_objects("sim-test", "ckpt/*", 4) == []
        assert corrupt_objects("sim-test", "ckpt/*", "all") == ["ckpt/c", "ckpt/a", "ckpt/b"]


def test_a_corrupted_state_still_parses_but_its_digest_no_longer_matches() -> None:
    """The damage a reader can only find by hashing: the header decodes to the same job and
    position, only the state digest differs (the XOR of a byte would break the JSON)."""
    spec = JobSpec.from_mapping({"items": 100, "name": "job"})
    state = state_after(spec, 40)
    rotten = damaged(state)
    assert len(rotten) == len(state) and checksum(rotten) != checksum(state)
    good, bad = decode_state(state), decode_state(rotten)
    assert {k: v for k, v in bad.items() if k != "state"} == {
        k: v for k, v in good.items() if k != "state"
    }
    assert bad["state"] != good["state"] and len(bad["state"]) == len(good["state"])


def test_a_dropped_bucket_frees_every_body_at_once() -> None:
    """Each version's body, an upload's parts included, is closed when the run's bucket goes,
    not when a full garbage collection finds the key: an exploration of materialized states
    held gigabytes of earlier runs' bodies before."""
    from moto.s3.models import s3_backends

    from harness.sim.s3 import ACCOUNT_ID

    with simulated_bucket("sim-test", now=lambda: EPOCH, seed=1) as client:
        for body in (b"one", b"two"):
            client.put_object(Bucket="sim-test", Key="a/state", Body=body)
        upload = client.create_multipart_upload(Bucket="sim-test", Key="c/big")
        client.upload_part(
            Bucket="sim-test", Key="c/big", UploadId=upload["UploadId"], PartNumber=1, Body=b"p"
        )
        bucket = s3_backends[ACCOUNT_ID]["aws"].buckets["sim-test"]
        versions = bucket.keys.getlist("a/state")
        parts = list(bucket.multiparts[upload["UploadId"]].parts.values())
        assert not any(v.disposed for v in [*versions, *parts])
    assert [v.disposed for v in versions] == [True, True]
    assert all(p.disposed and p._value_buffer.closed for p in parts)


def test_remembered_digests_follow_the_bytes_through_corruption() -> None:
    """The harness remembers the digests of large contents by the content itself (moto's ETag
    MD5 at a put, the part checksums of a completion, every snapshot's digests): a body damaged
    in place by a corruption fault, or rolled back to an older one, is hashed afresh by the
    next snapshot, and the same damaged bytes put again get their own ETag."""
    import hashlib

    from harness.checks.snapshot import DigestMemo

    size = 2 * DigestMemo.SMALLEST
    state = b"digest " + hashlib.sha256(b"s").hexdigest().encode() + b"\n" + b"s" * size
    older = b"older " + b"o" * size

    def snapshot() -> dict[str, tuple[str, str, str]]:
        taken = asyncio.run(take_snapshot(BackendReader("sim-test"), "sim-test", None, []))
        return {
            v.key: (v.etag, v.blob.sha256, v.blob.md5)
            for v in taken.versions
            if v.is_latest and v.blob is not None
        }

    def digests(data: bytes) -> tuple[str, str]:
        return hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()

    clock = [EPOCH]
    with simulated_bucket("sim-test", now=lambda: clock[0], seed=1) as client:
        for minute, (key, body) in enumerate([("ckpt/1", older), ("ckpt/2", state)]):
            clock[0] = EPOCH + timedelta(minutes=minute)
            client.put_object(Bucket="sim-test", Key=key, Body=body)
        etag = hashlib.md5(state).hexdigest()
        assert snapshot()["ckpt/2"] == (etag, *digests(state))
        assert corrupt_newest("sim-test", "ckpt/*") == "ckpt/2"
        rotten = damaged(state)
        assert snapshot()["ckpt/2"] == (etag, *digests(rotten))  # the ETag stays: silent rot
        put = client.put_object(Bucket="sim-test", Key="again", Body=rotten)
        assert put["ETag"] == f'"{hashlib.md5(rotten).hexdigest()}"'
        assert corrupt_objects("sim-test", "ckpt/*", "newest", "rollback") == ["ckpt/2"]
        assert snapshot()["ckpt/2"] == (hashlib.md5(older).hexdigest(), *digests(older))
