"""Retries on the S3 path resume where the failure struck, and leave nothing behind: an upload
whose abort failed is aborted once S3 answers, a retry never sends an object S3 already holds,
and a manifest write that lost its condition is re-read (fencing still holds)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from harness.clock import run_virtual
from harness.history import Kind
from harness.runtime import CheckpointRecord, Manifest, checkpoint_key, manifest_key
from harness.runtime.store import Fenced, ObjectConflict, S3Tier
from harness.storage import S3Store
from harness.target import no_io_hook
from tests.runtime.conftest import SMALL_JOB
from tests.runtime.world import Hook, World, fail_first

#: Multipart from 16 MiB: a 64 MiB state goes up as eight 8 MiB parts.
MULTIPART_JOB = {
    **SMALL_JOB,
    "state_size": "64MiB",
    "runtime": {"multipart_threshold": "16MiB", "part_size": "8MiB"},
}
S3_STEPS = (
    "s3.create_multipart",
    "s3.upload_part",
    "s3.complete_multipart",
    "s3.abort_multipart",
    "s3.list_uploads",
    "s3.put_object",
    "s3.get_object",
    "s3.head_object",
    "s3.list_objects",
    "s3.delete_object",
)


def service_unavailable(op: str) -> ClientError:
    return ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "Reduce"}}, op)


class LossyS3:
    """An S3 client whose chosen requests reach S3 but whose answers are lost (read timeout).

    ``lose(method, params)`` decides per request."""

    def __init__(self, client: Any, lose: Callable[[str, dict[str, Any]], bool]) -> None:
        self._client = client
        self._lose = lose

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not callable(method):
            return method

        def call(**params: Any) -> Any:
            result = method(**params)
            if self._lose(name, params):
                raise ReadTimeoutError(endpoint_url="https://s3.test")
            return result

        return call


def lose_first(method: str, accept: Callable[[dict[str, Any]], bool]) -> Any:
    """Lose the answer of the first ``method`` request whose params ``accept`` approves."""
    remaining = [1]

    def lose(name: str, params: dict[str, Any]) -> bool:
        if name != method or remaining[0] <= 0 or not accept(params):
            return False
        remaining[0] -= 1
        return True

    return lose


class Outage:
    """S3 unreachable (every S3 step raises as botocore does) for ``seconds``, starting at the
    ``nth`` call of ``start_op``."""

    def __init__(self, start_op: str, nth: int, seconds: float) -> None:
        self.start_op, self.nth, self.seconds = start_op, nth, seconds
        self.calls = 0
        self.on = False

    def hook(self) -> Hook:
        return Hook(fail={op: self._failure(op) for op in S3_STEPS})

    def _failure(self, op: str) -> Callable[..., BaseException | None]:
        def failure(key: str | None = None) -> BaseException | None:
            if op == self.start_op:
                self.calls += 1
                if self.calls == self.nth:
                    self.on = True
                    asyncio.get_running_loop().call_later(self.seconds, self._end)
            return EndpointConnectionError(endpoint_url="https://s3.test") if self.on else None

        return failure

    def _end(self) -> None:
        self.on = False


def events(world: World, *kinds: str) -> list[tuple[str, dict[str, Any]]]:
    return world.events(*kinds)


def s3_ops(hook: Hook, key: str) -> list[str]:
    """The S3 steps on ``key`` (and on it as a prefix: listing its uploads), in order."""
    return [op for op, k in hook.steps if op.startswith("s3.") and k == key]


def first_checkpoint_key(world: World) -> str:
    started = [d for k, d in events(world, Kind.CHECKPOINT_STARTED)]
    return checkpoint_key("job", started[0]["checkpoint_id"])


def test_an_upload_whose_abort_failed_in_an_outage_is_aborted_once_s3_answers(
    tmp_path: Path, s3_client: Any
) -> None:
    world = World(tmp_path, dict(MULTIPART_JOB), s3_client)
    outage = Outage("s3.upload_part", nth=3, seconds=5.0)
    hook = outage.hook()
    assert run_virtual(world.run_instance(hook)) == "completed"
    key = first_checkpoint_key(world)
    ops = s3_ops(hook, key)
    # the abort failed in the outage; after it the key is listed and its upload aborted,
    # before the retry creates a new upload under the same key
    first_abort = ops.index("s3.abort_multipart")
    completed = ops.index("s3.complete_multipart")
    assert first_abort < completed
    created = max(i for i in range(completed) if ops[i] == "s3.create_multipart")
    # then the retry asks whether the object landed after all (it did not) and starts over
    assert ops[created - 3 : created] == ["s3.list_uploads", "s3.abort_multipart", "s3.head_object"]
    story = [
        (kind, data.get("checkpoint_id") or data.get("key"))
        for kind, data in events(
            world, Kind.CHECKPOINT_FAILED, Kind.UPLOAD_ABORTED, Kind.CHECKPOINT_DURABLE
        )
        if data.get("tier") != "local"
    ]
    ident = key.rsplit("/", 1)[-1].removesuffix(".ckpt")
    aborted_at = story.index((Kind.UPLOAD_ABORTED, key))
    assert (Kind.CHECKPOINT_FAILED, ident) in story[:aborted_at]
    assert story[aborted_at + 1 :].index((Kind.CHECKPOINT_DURABLE, ident)) >= 0
    assert world.incomplete_uploads() == []
    assert world.object_versions(key) == {key: 1}


def test_an_upload_created_with_its_answer_lost_is_found_and_aborted(
    tmp_path: Path, s3_client: Any
) -> None:
    lossy = LossyS3(s3_client, lose_first("create_multipart_upload", lambda params: True))
    world = World(tmp_path, dict(MULTIPART_JOB), lossy)
    hook = Hook()
    assert run_virtual(world.run_instance(hook)) == "completed"
    key = first_checkpoint_key(world)
    ops = s3_ops(hook, key)
    assert ops[:5] == [
        "s3.create_multipart",  # landed, answer lost: the upload id was never known
        "s3.list_uploads",
        "s3.abort_multipart",
        "s3.head_object",
        "s3.create_multipart",
    ]
    assert (Kind.UPLOAD_ABORTED, key) in [
        (k, d["key"]) for k, d in events(world, Kind.UPLOAD_ABORTED)
    ]
    assert world.incomplete_uploads() == []


def test_a_retry_after_the_manifest_failed_does_not_send_the_object_again(
    world: World,
) -> None:
    state = {"object_stored": False, "failures": 3}

    def fail_manifest_after_object(key: str | None = None) -> BaseException | None:
        if key is not None and key.endswith(".ckpt"):
            state["object_stored"] = True
        elif state["object_stored"] and state["failures"] and str(key).endswith("manifest.json"):
            state["failures"] -= 1
            return service_unavailable("PutObject")
        return None

    hook = Hook(fail={"s3.put_object": fail_manifest_after_object})
    assert run_virtual(world.run_instance(hook)) == "completed"
    key = first_checkpoint_key(world)
    assert s3_ops(hook, key)[:1] == ["s3.put_object"]
    assert s3_ops(hook, key).count("s3.put_object") == 1  # later: rotation deletes it
    failed = [d for _, d in events(world, Kind.CHECKPOINT_FAILED)]
    assert len(failed) == 3 and all("ServiceUnavailable" in d["error"] for d in failed)
    durable = [d["key"] for _, d in events(world, Kind.CHECKPOINT_DURABLE) if d["tier"] == "s3"]
    assert durable[0] == key
    assert world.object_versions(key) == {key: 1}


def test_an_object_whose_answer_was_lost_is_found_by_head_and_not_sent_again(
    tmp_path: Path, s3_client: Any
) -> None:
    lossy = LossyS3(s3_client, lose_first("put_object", lambda p: p["Key"].endswith(".ckpt")))
    world = World(tmp_path, dict(SMALL_JOB), lossy)
    hook = Hook()
    assert run_virtual(world.run_instance(hook)) == "completed"
    key = first_checkpoint_key(world)
    ops = s3_ops(hook, key)
    assert ops[:2] == ["s3.put_object", "s3.head_object"]
    assert ops.count("s3.put_object") == 1
    failed = [d["error"] for _, d in events(world, Kind.CHECKPOINT_FAILED)]
    assert len(failed) == 1 and "ReadTimeoutError" in failed[0]
    durable = [d for _, d in events(world, Kind.CHECKPOINT_DURABLE) if d["tier"] == "s3"]
    assert durable[0]["key"] == key and durable[0]["version_id"]
    assert world.object_versions(key) == {key: 1}


def test_a_manifest_write_whose_answer_was_lost_is_retried_with_a_fresh_etag(
    tmp_path: Path, s3_client: Any
) -> None:
    lossy = LossyS3(s3_client, lose_first("put_object", lambda p: "IfMatch" in p))
    world = World(tmp_path, dict(SMALL_JOB), lossy)
    hook = Hook()
    assert run_virtual(world.run_instance(hook)) == "completed"
    key = first_checkpoint_key(world)
    manifest = manifest_key("job")
    after_object = hook.steps[hook.steps.index(("s3.put_object", key)) :]
    # lost answer; then the stale ETag fails its condition, the manifest is re-read and
    # written again; the object itself is not sent again
    assert [op for op, k in after_object if k == manifest][:4] == [
        "s3.put_object",
        "s3.put_object",
        "s3.get_object",
        "s3.put_object",
    ]
    assert ("s3.put_object", key) not in after_object[1:]
    final = Manifest.decode(world.read(manifest))
    assert len({r.id for r in final.checkpoints}) == len(final.checkpoints)
    durable = [d["key"] for _, d in events(world, Kind.CHECKPOINT_DURABLE) if d["tier"] == "s3"]
    assert durable[0] == key


# -- the S3 tier on its own ------------------------------------------------------------------------


def tier_over(s3_client: Any, hook: Any = no_io_hook) -> S3Tier:
    bucket = f"tier-{id(object())}"
    s3_client.create_bucket(Bucket=bucket)
    s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return S3Tier(S3Store(s3_client, bucket, hook), "job")


def record(position: int, data: bytes, epoch: int = 1) -> CheckpointRecord:
    ident = f"{position:010d}-e{epoch:06d}-0001"
    return CheckpointRecord(
        id=ident,
        position=position,
        epoch=epoch,
        checksum=hashlib.sha256(data).hexdigest(),
        size=len(data),
        nominal_size=len(data),
        key=checkpoint_key("job", ident),
    )


def test_a_412_on_its_own_object_is_verified_by_head_and_counts_as_stored(s3_client: Any) -> None:
    hook = Hook(latency=0.0)
    tier = tier_over(s3_client, hook)
    mine = record(10, b"my state\n")
    first = run_virtual(tier.upload(mine, b"my state\n"))
    again = run_virtual(tier.upload(mine, b"my state\n"))  # If-None-Match: 412, then HEAD
    assert first is not None and again == first
    assert [op for op, _ in hook.steps] == ["s3.put_object", "s3.put_object", "s3.head_object"]
    versions = s3_client.list_object_versions(Bucket=tier.store.bucket, Prefix=mine.key)
    assert len(versions["Versions"]) == 1


def test_a_412_on_a_key_holding_other_content_is_a_conflict_not_success(s3_client: Any) -> None:
    tier = tier_over(s3_client)
    mine = record(10, b"my state\n")
    tier.store.client.put_object(Bucket=tier.store.bucket, Key=mine.key, Body=b"another\n")
    with pytest.raises(ObjectConflict, match="already exists with other content"):
        run_virtual(tier.upload(mine, b"my state\n"))


def two_writers(s3_client: Any) -> tuple[S3Tier, S3Tier]:
    """An older instance's tier and a newer one's, over the same bucket."""
    older = tier_over(s3_client)
    return older, S3Tier(S3Store(s3_client, older.store.bucket, no_io_hook), "job")


async def commit(tier: S3Tier, position: int, epoch: int = 2) -> None:
    """Upload a checkpoint at ``position`` and name it in the manifest (conditionally)."""
    data = f"state {position}\n".encode()
    checkpoint = record(position, data, epoch=epoch)
    await tier.upload(checkpoint, data)
    await tier.commit_manifest(checkpoint, epoch)


def test_a_manifest_412_from_a_newer_epoch_still_fences(s3_client: Any) -> None:
    older, newer = two_writers(s3_client)

    async def story() -> None:
        await commit(older, 10)  # older now holds the manifest's ETag
        await newer.manifest()
        await newer.claim(3, [])
        await commit(older, 20)

    with pytest.raises(Fenced, match="epoch 3"):
        run_virtual(story())
    final = run_virtual(newer.manifest())
    assert final is not None and final.epoch == 3
    assert [r.position for r in final.checkpoints] == [10]


def test_a_claim_that_lost_its_condition_stamps_the_manifest_as_it_now_is(s3_client: Any) -> None:
    """The older instance commits between the newer one's read and its claim (Redis was down,
    nothing fenced it): the claim re-reads and stamps the manifest that names the newer entry,
    and the older instance's next commit is fenced at the manifest."""
    older, newer = two_writers(s3_client)

    async def story() -> None:
        await commit(older, 10)
        await newer.manifest()  # the newer instance reads it during recovery
        await commit(older, 20)  # moves it under the newer instance's feet
        await newer.claim(3, [])  # 412 on the stale ETag, read again, stamped
        await commit(older, 30)

    with pytest.raises(Fenced, match="epoch 3"):
        run_virtual(story())
    final = run_virtual(newer.manifest())
    assert final is not None and final.epoch == 3
    assert [r.position for r in final.checkpoints] == [20, 10]


def test_a_new_checkpoint_does_not_wait_for_the_clean_up_backoff(
    tmp_path: Path, s3_client: Any
) -> None:
    world = World(tmp_path, dict(MULTIPART_JOB), s3_client)
    hook = Hook(
        fail={
            "s3.upload_part": fail_first(1, lambda: service_unavailable("UploadPart")),
            "s3.abort_multipart": fail_first(1, lambda: service_unavailable("AbortMultipart")),
            # listing the leftover keeps failing: backoff 1, 2, 4, 8, 16 s while the job goes on
            "s3.list_uploads": fail_first(7, lambda: service_unavailable("ListMultipartUploads")),
        }
    )
    assert run_virtual(world.run_instance(hook)) == "completed"
    assert world.history is not None
    local_durable = {
        e.data["checkpoint_id"]: e.t
        for e in world.history.of_kind(Kind.CHECKPOINT_DURABLE)
        if e.data["tier"] == "local"
    }
    started = {
        e.data["checkpoint_id"]: e.t for e in world.history.of_kind(Kind.CHECKPOINT_UPLOAD_STARTED)
    }
    second = sorted(local_durable)[1]
    assert started[second] - local_durable[second] < 0.5  # not at the end of a 16 s backoff
    aborted = [d["key"] for _, d in events(world, Kind.UPLOAD_ABORTED)]
    assert aborted == [first_checkpoint_key(world)]
    assert world.incomplete_uploads() == []
