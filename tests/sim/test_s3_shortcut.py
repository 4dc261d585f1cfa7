"""The in-process PutObject shortcut (harness/sim/moto_patches.py) against moto's HTTP layer.

The shortcut must answer exactly as moto does (the same parsed response, the same error, the
same stored versions), must run after the harness's observer (faults, modelled time, crash
points), and must change no run: the whole scenario library gives the same history, event for
event, both ways. A run that breaks a check is confirmed on the full stack before it is
reported."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import io
import random
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import moto.s3.models as moto_s3
import moto.s3.responses as moto_s3_responses
import pytest
from botocore.exceptions import ClientError, ParamValidationError

from harness.explore.search import explore
from harness.history import History
from harness.report.margin import knob_for
from harness.report.margin import search as margin_search
from harness.scenario import load_paths, load_text
from harness.sim import moto_patches, runner
from harness.sim.golden import cached_golden, golden_for
from harness.sim.runner import RunResult, run_scenario
from harness.sim.s3 import ACCOUNT_ID, shared_client, simulated_bucket
from harness.sim.targets import resolve_target

REPO = Path(__file__).resolve().parents[2]
WHEN = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
BUCKET = "shortcut-check"
MIN_PART = 5 * 2**20  # S3's smallest part but the last


def sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def etag(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'  # S3's ETag of a plain put


#: PutObject calls in order: answered by the shortcut, refused by a precondition (moto answers),
#: or outside what the shortcut knows (moto answers).
PUTS: list[dict[str, Any]] = [
    {"Key": "a/b", "Body": b"one", "ChecksumSHA256": sha256(b"one"), "IfNoneMatch": "*"},
    {"Key": "a/b", "Body": b"one", "ChecksumSHA256": sha256(b"one"), "IfNoneMatch": "*"},
    {"Key": "a/b", "Body": b"two", "ChecksumSHA256": sha256(b"two"), "Metadata": {"Pos": "7"}},
    {"Key": "a/b", "Body": b"3", "ChecksumSHA256": sha256(b"3"), "IfMatch": etag(b"two")},
    {"Key": "a/b", "Body": b"4", "ChecksumSHA256": sha256(b"4"), "IfMatch": etag(b"two")},
    {"Key": "a/none", "Body": b"5", "ChecksumSHA256": sha256(b"5"), "IfMatch": etag(b"3")},
    {"Key": "a/b", "Body": b"", "ChecksumSHA256": sha256(b""), "Metadata": {"k": "v", "x": "y"}},
    {"Key": "plain", "Body": b"no checksum given: a streamed CRC32 trailer"},
    {"Key": "typed", "Body": b"t", "ChecksumSHA256": sha256(b"t"), "ContentType": "text/plain"},
    {"Key": "odd key+name", "Body": b"o", "ChecksumSHA256": sha256(b"o")},
    {
        "Key": "md5",
        "Body": b"m",
        "ChecksumSHA256": sha256(b"m"),
        "ContentMD5": "3ozGzVT4U+o3FFgH0b6fDQ==",
    },
]
#: The first seven: four writes and moto's three refusals (If-None-Match on an existing key,
#: If-Match with another ETag, If-Match on a missing key); the rest are moto's to answer.
ANSWERED_BY_SHORTCUT = 7


#: A botocore response: a plain dict from the client, a TypedDict from a ClientError.
ResponseT = TypeVar("ResponseT", bound=Mapping[str, Any])


def _answer(response: ResponseT) -> ResponseT:
    """A response as compared both ways (its ``date`` included: the run's calendar, not the
    wall clock)."""
    return response


@contextlib.contextmanager
def _error_bodies(client: Any, seen: list[Any]) -> Iterator[None]:
    """Append the raw body of every error answer to ``seen`` (what an ``after-call`` handler
    sees, beyond the fields botocore's parser keeps)."""

    def record(http_response: Any, **_: Any) -> None:
        if http_response.status_code >= 300:
            seen.append(("raw", http_response.status_code, http_response.content))

    client.meta.events.register("after-call.s3", record)
    try:
        yield
    finally:
        client.meta.events.unregister("after-call.s3", record)


def _puts_and_state() -> list[Any]:
    seen: list[Any] = []
    with (
        simulated_bucket(BUCKET, now=lambda: WHEN, seed=5) as client,
        _error_bodies(client, seen),
    ):
        for call in PUTS:
            try:
                seen.append(_answer(client.put_object(Bucket=BUCKET, **call)))
            except ClientError as error:
                seen.append(("error", _answer(error.response)))
            got = (
                client.get_object(Bucket=BUCKET, Key=call["Key"]) if call["Key"] != "a/none" else {}
            )
            if got:
                got["Body"] = got["Body"].read()
                seen.append(_answer(got))
        bucket = moto_s3.s3_backends[ACCOUNT_ID]["aws"].buckets[BUCKET]
        seen.append(
            [
                (key, v.version_id, v.etag, v.value, dict(v.metadata), v.checksum_algorithm)
                for key in bucket.keys
                for v in bucket.keys.getlist(key)
            ]
        )
    return seen


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """``(operation, key)`` of the calls the shortcut answered."""
    keys: list[tuple[str, str]] = []
    original = moto_patches._parsed

    def spy(client: Any, model: Any, params: dict[str, Any], *rest: Any) -> Any:
        keys.append((model.name, params["url"].rsplit("/", 1)[-1].split("?")[0]))
        return original(client, model, params, *rest)

    monkeypatch.setattr(moto_patches, "_parsed", spy)
    yield keys


@pytest.fixture
def stacks(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each simulated run, in order: whether it ran with the S3 shortcut."""
    seen: list[bool] = []
    original = runner.run_scenario_async

    async def spy(*args: Any, **kwargs: Any) -> RunResult:
        seen.append(moto_patches.shortcut_active(during_run=False))
        return await original(*args, **kwargs)

    monkeypatch.setattr(runner, "run_scenario_async", spy)
    return seen


def test_put_object_answers_as_moto_does_call_for_call(answered: list[tuple[str, str]]) -> None:
    with moto_patches.full_stack():
        through_moto = _puts_and_state()
    assert answered == []
    shortcut = _puts_and_state()
    assert len([call for call in answered if call[0] == "PutObject"]) == ANSWERED_BY_SHORTCUT
    assert shortcut == through_moto
    tagged = [entry for entry in shortcut if isinstance(entry, tuple)]
    errors = [entry[1]["Error"] for entry in tagged if entry[0] == "error"]
    raw = [entry for entry in tagged if entry[0] == "raw"]
    assert [(status, b"<HostId>" in body) for _, status, body in raw] == [
        (412, True),
        (412, True),
        (404, True),
    ]
    assert [(e["Code"], e.get("Condition")) for e in errors] == [
        ("PreconditionFailed", "If-None-Match"),
        ("PreconditionFailed", "If-Match"),
        ("NoSuchKey", None),
    ]
    assert "Key" not in errors[2]  # moto names no key when If-Match finds none


def _multipart() -> list[Any]:
    seen: list[Any] = []
    with simulated_bucket(BUCKET, now=lambda: WHEN, seed=6) as client:
        created = client.create_multipart_upload(
            Bucket=BUCKET, Key="big", ChecksumAlgorithm="SHA256", Metadata={"tier": "s3"}
        )
        seen.append(_answer(created))
        upload = created["UploadId"]
        parts: list[dict[str, Any]] = []
        for number, data, upload_id in [
            (1, b"p" * MIN_PART, upload),
            (1, b"q" * MIN_PART, upload),  # the same part again: the newer one counts
            (2, b"tail", upload),
            (1, b"lost", "no-such-upload"),
        ]:
            call = {"Key": "big", "UploadId": upload_id, "PartNumber": number}
            try:
                answer = client.upload_part(
                    Bucket=BUCKET, Body=data, ChecksumSHA256=sha256(data), **call
                )
            except KeyError as error:  # moto's own answer to an unknown upload id
                seen.append(("error", repr(error)))
                continue
            seen.append(_answer(answer))
            parts = [p for p in parts if p["PartNumber"] != number]
            parts.append(
                {"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": sha256(data)}
            )
        for listed in (parts[::-1], [{**parts[0], "ETag": '"0"'}], parts, parts):
            # out of order, a wrong ETag (moto refuses both), then the completion and its
            # repetition (moto answers it again from the object, if nothing else was written)
            try:
                done = client.complete_multipart_upload(
                    Bucket=BUCKET, Key="big", UploadId=upload, MultipartUpload={"Parts": listed}
                )
                seen.append(_answer(done))
            except ClientError as error:
                seen.append(("error", _answer(error.response)))
        got = client.get_object(Bucket=BUCKET, Key="big", ChecksumMode="ENABLED")
        checksum = (got.get("ChecksumSHA256"), got.get("ChecksumType"))  # moto's, of the parts'
        seen.append((got["Body"].read(), got["ETag"], got["VersionId"], got["Metadata"], checksum))
        seen.append(_answer(client.list_multipart_uploads(Bucket=BUCKET)))
    # moto draws upload ids from os.urandom, with or without the shortcut: compare the rest
    return [_masked(entry, upload) for entry in seen]


def _masked(value: Any, secret: str) -> Any:
    """``value`` with ``secret`` replaced wherever it appears in a string."""
    if isinstance(value, str):
        return value.replace(secret, "<upload id>")
    if isinstance(value, dict):
        return {key: _masked(item, secret) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_masked(item, secret) for item in value)
    return value


def test_multipart_uploads_answer_as_moto_does_call_for_call(
    answered: list[tuple[str, str]],
) -> None:
    with moto_patches.full_stack():
        through_moto = _multipart()
    shortcut = _multipart()
    # the create, three parts, the completion and the read of the object; then the listing
    assert [key for _, key in answered] == ["big"] * 6 + [BUCKET]
    assert shortcut == through_moto
    assert shortcut[4] == ("error", "KeyError('no-such-upload')")
    errors = [entry[1]["Error"]["Code"] for entry in shortcut[5:7]]
    assert errors == ["EntityTooSmall", "InvalidPart"]  # moto's answers, through moto
    assert shortcut[-2][0] == b"q" * MIN_PART + b"tail"
    composite = hashlib.sha256(
        hashlib.sha256(b"q" * MIN_PART).digest() + hashlib.sha256(b"tail").digest()
    ).digest()
    assert shortcut[-2][4] == (f"{base64.b64encode(composite).decode()}-2", "COMPOSITE")


def test_the_environment_switch_turns_the_shortcut_off(
    answered: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(moto_patches.FULL_STACK_ENV, "1")
    _puts_and_state()
    assert answered == []


def test_an_injected_put_error_reaches_the_target_before_the_shortcut_could_answer(
    answered: list[tuple[str, str]],
) -> None:
    (loaded,) = load_text(
        "description: three refused puts, then the rest\n"
        "seed: 2\n"
        "target: reference\n"
        "job: {items: 30, seconds_per_item: 1s, checkpoint_every: 10s, state_size: 1MiB}\n"
        "timeline:\n"
        "  - at: 0s\n"
        "    s3: {error: SlowDown, ops: [s3.put_object], count: 3}\n"
        "expect: [exactly_once]\n"
    )
    result = run_scenario(loaded.scenario)
    puts = [
        (e.data["ok"], e.data.get("error"))
        for e in result.history
        if e.kind == "storage.op" and e.data["op"] == "s3.put_object"
    ]
    assert puts[:3] == [(False, "SlowDown")] * 3
    assert all(ok for ok, _ in puts[3:])
    answered_puts = [key for operation, key in answered if operation == "PutObject"]
    assert len(answered_puts) == len(puts) - 3  # every later put went through the shortcut
    assert result.status == "passed"


def _library() -> list[Any]:
    loaded, problems = load_paths([REPO / "scenarios"])
    assert problems == []
    return [item for item in loaded if item.scenario.target.command is None]


@pytest.mark.parametrize("item", _library(), ids=lambda item: item.file.stem)
def test_every_library_scenario_gives_the_same_history_both_ways(item: Any) -> None:
    scenario = item.scenario
    target = resolve_target(scenario.target)
    golden = cached_golden(scenario, target) or runner._on_fresh_loop(
        golden_for(scenario, target, runner._uninterrupted)
    )
    with moto_patches.full_stack():
        full = runner._on_fresh_loop(
            runner.run_scenario_async(scenario, target=target, golden=golden)
        )
    fast = runner._on_fresh_loop(runner.run_scenario_async(scenario, target=target, golden=golden))
    assert fast.history.to_jsonl() == full.history.to_jsonl()
    assert fast.status == full.status


def _known_bad() -> Any:
    (item,) = [i for i in _library() if i.file.stem == "duplicate_outputs"]
    return item.scenario


def test_a_run_that_breaks_a_check_is_reported_from_the_full_stack(stacks: list[bool]) -> None:
    result = run_scenario(_known_bad())
    assert result.status == "xfailed"
    assert stacks == [True, False]  # the shortcut's run, then the full stack's, reported


def test_a_shortcut_that_disagrees_with_moto_makes_the_run_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = runner.run_scenario_async

    async def diverging(*args: Any, **kwargs: Any) -> RunResult:
        result = await original(*args, **kwargs)
        if moto_patches.shortcut_active(during_run=False):
            history: History = result.history
            history.record("harness", "run.note", None, note="only with the shortcut")
        return result

    monkeypatch.setattr(runner, "run_scenario_async", diverging)
    result = run_scenario(_known_bad())
    assert result.status == "error"
    assert result.error is not None
    assert "S3 shortcut and moto disagree" in result.error
    assert moto_patches.FULL_STACK_ENV in result.error


def test_explore_searches_with_the_shortcut_and_reports_a_failure_from_the_full_stack(
    stacks: list[bool], tmp_path: Path
) -> None:
    target = {"python": "harness.examples.broken:off_by_one_resume"}
    report = explore(examples=6, seed=3, target=target, out=tmp_path)
    assert report.failure is not None and report.failure.broken == ("resume_correct",)
    # every schedule of the search and of the shrinking ran with the shortcut; then the one
    # reported ran once more, on the full stack
    assert stacks[-1] is False
    assert all(stacks[:-1]) and len(stacks) > 2


def test_a_margin_search_runs_every_probe_on_the_full_stack(stacks: list[bool]) -> None:
    (story,) = [i.scenario for i in _library() if i.file.stem == "preemption"]
    knob = dataclasses.replace(knob_for("lead", story), high=40.0, tolerance=8.0)
    result = margin_search(story, knob, [0])
    assert any(not probe.held for probe in result.probes)  # some probes failed
    assert stacks and not any(stacks)  # and none, failing or not, ran with the shortcut
    assert moto_patches.shortcut_active(during_run=False)  # on again afterwards


def _deletes() -> list[Any]:
    seen: list[Any] = []
    with simulated_bucket(BUCKET, now=lambda: WHEN, seed=8) as client:
        client.put_object(Bucket=BUCKET, Key="old", Body=b"o", ChecksumSHA256=sha256(b"o"))
        for key in ("old", "old", "never-written"):
            seen.append(_answer(client.delete_object(Bucket=BUCKET, Key=key)))
        try:
            client.get_object(Bucket=BUCKET, Key="old")
        except ClientError as error:
            seen.append(("error", _answer(error.response)))
        versions = client.list_object_versions(Bucket=BUCKET)
        seen.append(
            [
                (v["Key"], v["VersionId"], v["IsLatest"])
                for v in versions.get("Versions", []) + versions.get("DeleteMarkers", [])
            ]
        )
    return seen


def test_delete_object_answers_as_moto_does_call_for_call(answered: list[tuple[str, str]]) -> None:
    with moto_patches.full_stack():
        through_moto = _deletes()
    shortcut = _deletes()
    assert answered == [
        ("PutObject", "old"),
        ("DeleteObject", "old"),
        ("DeleteObject", "old"),
        ("DeleteObject", "never-written"),
        ("GetObject", "old"),  # its latest version is a delete marker: NoSuchKey
    ]
    assert shortcut == through_moto
    # a delete marker each time the key exists; moto answers a bare 204 for a key never written
    assert [entry.get("DeleteMarker") for entry in shortcut[:3]] == [True, True, None]
    assert shortcut[3][1]["Error"]["Code"] == "NoSuchKey"


def _gets() -> list[Any]:
    seen: list[Any] = []
    with simulated_bucket(BUCKET, now=lambda: WHEN, seed=9) as client, _error_bodies(client, seen):
        first = client.put_object(Bucket=BUCKET, Key="k", Body=b"v1", ChecksumSHA256=sha256(b"v1"))
        client.put_object(Bucket=BUCKET, Key="k", Body=b"v2", Metadata={"pos": "2"})
        client.put_object(Bucket=BUCKET, Key="typed", Body=b"t", ContentType="text/plain")
        client.put_object(Bucket=BUCKET, Key="empty", Body=b"")
        calls: list[dict[str, Any]] = [
            {"Key": "k"},
            {"Key": "k", "VersionId": first["VersionId"]},  # an older version
            {"Key": "k", "VersionId": first["VersionId"], "ChecksumMode": "ENABLED"},
            {"Key": "typed"},
            {"Key": "empty"},
            {"Key": "k", "VersionId": "no-such-version"},  # moto's error
            {"Key": "missing"},  # moto's error
            {"Key": "k", "Range": "bytes=0-0"},  # moto's range
            {"Key": "k", "IfMatch": '"0"'},  # moto's precondition
        ]
        for call in calls:
            try:
                got = client.get_object(Bucket=BUCKET, **call)
                got["Body"] = got["Body"].read()
                seen.append(_answer(got))
            except ClientError as error:
                seen.append(("error", _answer(error.response)))
    return seen


def test_get_object_answers_as_moto_does_call_for_call(answered: list[tuple[str, str]]) -> None:
    with moto_patches.full_stack():
        through_moto = _gets()
    shortcut = _gets()
    gets = [key for operation, key in answered if operation == "GetObject"]
    assert gets == ["k", "k", "k", "typed", "empty", "missing"]  # whole objects, a missing key
    assert shortcut == through_moto  # the raw bodies of the errors included
    raw = [entry for entry in shortcut if isinstance(entry, tuple) and entry[0] == "raw"]
    assert [status for _, status, _ in raw] == [404, 404, 412]
    shortcut = [entry for entry in shortcut if not (isinstance(entry, tuple) and entry[0] == "raw")]
    assert [entry["Body"] for entry in shortcut[:5]] == [b"v2", b"v1", b"v1", b"t", b""]
    assert [entry[1]["Error"]["Code"] for entry in shortcut[5:7]] == ["NoSuchVersion", "NoSuchKey"]
    assert shortcut[6][1]["Error"]["Key"] == "missing"
    assert shortcut[7]["Body"] == b"v"
    assert shortcut[8][1]["Error"]["Code"] == "PreconditionFailed"


def _listings() -> list[Any]:
    seen: list[Any] = []
    with simulated_bucket(BUCKET, now=lambda: WHEN, seed=10) as client:
        ids = []
        seen.append(_answer(client.list_multipart_uploads(Bucket=BUCKET)))  # none yet
        uploads: list[tuple[str, dict[str, Any]]] = [
            ("ckpt/a", {"ChecksumAlgorithm": "SHA256", "Metadata": {"m": "1"}}),
            ("ckpt/b&<c>", {}),  # a key the XML must escape
            ("other/a", {"ChecksumAlgorithm": "CRC32"}),
        ]
        for key, options in uploads:
            created = client.create_multipart_upload(Bucket=BUCKET, Key=key, **options)
            ids.append(created["UploadId"])
        calls: list[dict[str, Any]] = [
            {},
            {"Prefix": "ckpt/"},
            {"Prefix": ""},
            {"Prefix": "nothing/"},
            {"Prefix": "ckpt/", "EncodingType": "url"},  # moto's to answer
            {"Prefix": "ckpt/", "MaxUploads": 1},  # moto's to answer
        ]
        for call in calls:
            seen.append(_answer(client.list_multipart_uploads(Bucket=BUCKET, **call)))
        client.abort_multipart_upload(Bucket=BUCKET, Key="ckpt/a", UploadId=ids[0])
        seen.append(_answer(client.list_multipart_uploads(Bucket=BUCKET)))
        try:
            client.list_multipart_uploads(Bucket="no-such-bucket")  # moto's error
        except ClientError as error:
            seen.append(("error", _answer(error.response)))
    # moto draws upload ids from os.urandom, with or without the shortcut: compare the rest
    for upload_id in ids:
        seen = [_masked(entry, upload_id) for entry in seen]
    return seen


def test_list_multipart_uploads_answers_as_moto_does_call_for_call(
    answered: list[tuple[str, str]],
) -> None:
    with moto_patches.full_stack():
        through_moto = _listings()
    shortcut = _listings()
    listed = [key for operation, key in answered if operation == "ListMultipartUploads"]
    assert listed == [BUCKET] * 6  # all but the options moto answers itself and the bad bucket
    assert shortcut == through_moto
    assert "Uploads" not in shortcut[0]
    assert [u["Key"] for u in shortcut[1]["Uploads"]] == ["ckpt/a", "ckpt/b&<c>", "other/a"]
    assert [u["Key"] for u in shortcut[2]["Uploads"]] == ["ckpt/a", "ckpt/b&<c>"]
    assert [u.get("ChecksumAlgorithm") for u in shortcut[1]["Uploads"]] == ["SHA256", None, "CRC32"]
    assert "Uploads" not in shortcut[4]
    assert [u["Key"] for u in shortcut[7]["Uploads"]] == ["ckpt/b&<c>", "other/a"]
    assert shortcut[8][1]["Error"]["Code"] == "NoSuchBucket"


def test_endpoints_are_resolved_once_per_operation_and_bucket_until_a_handler_is_added() -> None:
    """The simulation's client remembers botocore's endpoint for an operation and a bucket; a
    handler registered on the client afterwards is called as botocore would call it."""
    seen: list[str] = []

    def count(model: Any, **_: Any) -> None:
        seen.append(model.name)

    def another(**_: Any) -> None:
        pass

    event = "before-endpoint-resolution.s3"
    with simulated_bucket(BUCKET, now=lambda: WHEN, seed=11) as client:
        client.meta.events.register(event, count)
        try:
            for key in ("a", "b", "c"):
                client.put_object(Bucket=BUCKET, Key=key, Body=b"x")
            client.get_object(Bucket=BUCKET, Key="a")
            assert seen == ["PutObject", "GetObject"]  # once each: the key is not part of it
            with pytest.raises(ClientError, match="NoSuchBucket"):
                client.put_object(Bucket="other-bucket", Key="a", Body=b"x")
            assert seen[-1] == "PutObject"  # another bucket: resolved anew

            seen.clear()
            client.meta.events.register(event, another)
            client.put_object(Bucket=BUCKET, Key="d", Body=b"x")
            assert seen == ["PutObject"]  # a handler was added: resolved anew, handlers called
            with moto_patches.full_stack():
                client.put_object(Bucket=BUCKET, Key="e", Body=b"x")
                client.put_object(Bucket=BUCKET, Key="f", Body=b"x")
            assert seen == ["PutObject"] * 3  # the full stack resolves every call, as botocore
        finally:
            client.meta.events.unregister(event, count)
            client.meta.events.unregister(event, another)


@pytest.fixture
def parse_checked(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Check every answer the shortcut parses against botocore's own ``parser.parse`` of the
    same response: the same values, members in the same order, the same response metadata.
    Yields the operations checked."""
    checked: list[str] = []
    fast = moto_patches._parse

    def both(parser: Any, response: dict[str, Any], shape: Any) -> dict[str, Any]:
        expected = parser.parse(dict(response), shape)
        got = fast(parser, response, shape)
        assert got == expected
        assert list(got) == list(expected)
        assert list(got["ResponseMetadata"]) == list(expected["ResponseMetadata"])
        checked.append(shape.name if shape is not None else "")
        return got

    monkeypatch.setattr(moto_patches, "_parse", both)
    yield checked


def test_every_shortcut_answer_parses_as_botocores_parser_parses_it(
    parse_checked: list[str],
) -> None:
    _puts_and_state()
    _multipart()
    _deletes()
    _gets()
    _listings()
    assert set(parse_checked) >= {
        "PutObjectOutput",
        "CreateMultipartUploadOutput",
        "UploadPartOutput",
        "CompleteMultipartUploadOutput",
        "DeleteObjectOutput",
        "GetObjectOutput",
        "ListMultipartUploadsOutput",
    }


def _moto_reads(body: bytes) -> list[tuple[int, str]] | None:
    """The part list moto reads from a completion body, None where its parser refuses it."""
    read = moto_s3_responses.S3Response._complete_multipart_body
    try:
        # The parser reads nothing of its instance: no S3Response is built for it.
        return list(read(None, body))  # type: ignore[arg-type]
    except Exception:
        return None


def _completion_body(parts: list[dict[str, Any]]) -> bytes:
    """The body botocore's serializer writes for a completion listing ``parts``."""
    s3 = shared_client()
    model = s3._service_model.operation_model("CompleteMultipartUpload")
    params = {"Bucket": "b", "Key": "k", "UploadId": "u", "MultipartUpload": {"Parts": parts}}
    body: bytes = s3._serializer.serialize_to_request(params, model)["body"]
    return body


@pytest.mark.parametrize(
    "parts",
    [
        [],
        [{"PartNumber": 1, "ETag": '"abc"'}],
        [{"ETag": '"a"', "PartNumber": 2}, {"PartNumber": 1, "ETag": '"b"'}],
        [
            {"PartNumber": 1, "ETag": '"a"', "ChecksumSHA256": "x+/="},
            {"PartNumber": 3, "ETag": "b"},
        ],
        [{"PartNumber": 0, "ETag": '"a"'}],
        [{"PartNumber": 1, "ETag": "a&b<c>"}],
        [{"PartNumber": 1, "ETag": "caf\u00e9"}],
        [{"PartNumber": 1, "ETag": "a]]>b"}],
        [{"PartNumber": 1, "ETag": ""}],
        [{"PartNumber": 1}],
    ],
)
def test_a_completion_body_reads_as_moto_reads_it(parts: list[dict[str, Any]]) -> None:
    body = _completion_body(parts)
    assert moto_patches._listed_parts(body) == _moto_reads(body)


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0" encoding="utf-8"?>\n<CompleteMultipartUpload>'
        b"<Part><PartNumber>1</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber> 1</PartNumber><ETag>e</ETag></Part>"
        b"</CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><PartNumber>2</PartNumber>"
        b"<ETag>e</ETag></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>e\r\nf</ETag></Part>"
        b"</CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><!-- c --><ETag>e</ETag>"
        b"</Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>e</ETag></Part>",
        b"not xml",
    ],
)
def test_a_hand_written_completion_body_reads_as_moto_reads_it(body: bytes) -> None:
    assert moto_patches._listed_parts(body) == _moto_reads(body)


@pytest.mark.parametrize(
    "upload",
    [
        {"Parts": [{"PartNumber": 1, "ETag": '"abc"'}, {"ETag": "b", "PartNumber": 2}]},
        {
            "Parts": [
                {"ETag": '"a"', "ChecksumSHA256": "x+/=", "ChecksumCRC32": "c", "PartNumber": 3}
            ]
        },
        {"Parts": []},
        {},
        {"Parts": [{}]},
        {"Parts": [{"PartNumber": 1, "ETag": ""}]},
        {"Parts": [{"PartNumber": 1, "ETag": "a&b<c>d\"e'f\r\n\tg]]>"}]},
        {"Parts": [{"PartNumber": 1, "ETag": "caf\u00e9 \U0001f600"}]},
        {"Parts": [{"PartNumber": 1, "ETag": "lone \ud800"}]},
        {"Parts": [{"PartNumber": 1, "ETag": None}, {"PartNumber": 2, "ETag": "b"}]},
        {"Parts": [{"PartNumber": -5, "ETag": "n"}]},
    ],
)
def test_a_completion_request_body_is_written_as_botocore_writes_it(
    upload: dict[str, Any],
) -> None:
    s3 = shared_client()
    serializer = s3._serializer._serializer
    shape = s3._service_model.operation_model("CompleteMultipartUpload").input_shape
    member = shape.members["MultipartUpload"]
    direct = serializer._serialize_body_params
    assert isinstance(direct, moto_patches._PlainXmlBody)
    with simulated_bucket(BUCKET, now=lambda: WHEN, seed=12):
        assert moto_patches.shortcut_active()
        written = direct(upload, member)
    assert written == type(serializer)._serialize_body_params(serializer, upload, member)
    # written directly, but for a None member (botocore's way of stopping there is its own)
    text = moto_patches._xml_element(member, upload, "CompleteMultipartUpload")
    assert (text is None) == any(p.get("ETag", "") is None for p in upload.get("Parts", []))


#: (operation, parameters): valid ones of every kind the check knows, and botocore's refusals.
VALIDATED: list[tuple[str, dict[str, Any]]] = [
    ("PutObject", {"Bucket": "b", "Key": "k", "Body": b"x", "ChecksumSHA256": "c"}),
    ("PutObject", {"Bucket": "b", "Key": "k", "Body": io.BytesIO(b"x"), "Metadata": {"a": "1"}}),
    ("PutObject", {"Bucket": "b", "Key": "k", "Body": "text", "ContentLength": True}),
    ("PutObject", {"Bucket": "b", "Key": "", "Body": b"x"}),  # under Key's minimum length
    ("PutObject", {"Bucket": "b", "Key": "k", "Body": 5}),
    ("PutObject", {"Bucket": "b", "Key": "k", "Metadata": {"a": 1}}),
    ("PutObject", {"Bucket": "b", "Key": "k", "IfMatch": None}),
    ("PutObject", {"Bucket": "b", "Key": "k", "Unknown": "x"}),
    ("PutObject", {"Key": "k"}),  # no bucket
    ("PutObject", {"Bucket": "b", "Key": "k", "Expires": datetime(2026, 1, 1)}),
    ("UploadPart", {"Bucket": "b", "Key": "k", "UploadId": "u", "PartNumber": 1, "Body": b""}),
    ("UploadPart", {"Bucket": "b", "Key": "k", "UploadId": "u", "PartNumber": "1"}),
    ("GetObject", {"Bucket": "b", "Key": "k", "VersionId": "v", "ChecksumMode": "ENABLED"}),
    ("ListMultipartUploads", {"Bucket": "b", "Prefix": "p", "MaxUploads": 10}),
    ("ListMultipartUploads", {"Bucket": "b", "MaxUploads": 1.5}),
    (
        "CompleteMultipartUpload",
        {
            "Bucket": "b",
            "Key": "k",
            "UploadId": "u",
            "MultipartUpload": {"Parts": [{"PartNumber": 1, "ETag": "e"}, {"ETag": "f"}]},
        },
    ),
    (
        "CompleteMultipartUpload",
        {"Bucket": "b", "Key": "k", "UploadId": "u", "MultipartUpload": {"Parts": ({},)}},
    ),
    (
        "CompleteMultipartUpload",
        {"Bucket": "b", "Key": "k", "UploadId": "u", "MultipartUpload": {"Parts": "no"}},
    ),
    ("DeleteObjects", {"Bucket": "b", "Delete": {"Objects": [{"Key": "k"}], "Quiet": "yes"}}),
]


#: Whether each of VALIDATED is one the check finds valid itself (else botocore checks it).
PLAIN = [True, True, True, False, False, False, False, False, False, False]
PLAIN += [True, False, True, True, False, True, True, False, False]


@pytest.mark.parametrize("case", VALIDATED, ids=lambda case: case[0])
def test_parameters_are_found_valid_only_where_botocore_finds_them_valid(
    case: tuple[str, dict[str, Any]],
) -> None:
    operation, params = case
    s3 = shared_client()
    shape = s3._service_model.operation_model(operation).input_shape
    validator = s3._serializer._param_validator
    assert isinstance(validator.validate, moto_patches._PlainValidation)
    botocore_report = type(validator).validate(validator, params, shape)
    with simulated_bucket(BUCKET, now=lambda: WHEN, seed=13):
        report = validator.validate(params, shape)
    # the same verdict, and the same report where there is anything to report
    assert report.generate_report() == botocore_report.generate_report()
    plain = moto_patches._surely_valid(params, shape)
    assert not (plain and botocore_report.has_errors())
    assert plain == PLAIN[VALIDATED.index(case)]


def test_a_refused_parameter_is_refused_with_botocores_message() -> None:
    with (
        simulated_bucket(BUCKET, now=lambda: WHEN, seed=14) as client,
        pytest.raises(ParamValidationError, match="Invalid length for parameter Key"),
    ):
        client.put_object(Bucket=BUCKET, Key="", Body=b"x")


def _drawn(rng: random.Random, shape: Any, depth: int = 0) -> Any:
    """A value for ``shape``: mostly of its type (short strings, small numbers, files), at
    times None or another type, structures missing members or with an unknown one."""
    roll = rng.random()
    if roll < 0.05:
        return None
    if roll < 0.12:
        return rng.choice([1, True, "s", b"b", 1.5, [], {}, datetime(2026, 1, 1), Decimal("1")])
    kind = shape.type_name
    scalars: dict[str, list[Any]] = {
        "string": ["", "a", "abc"],
        "integer": [0, 1, -1, True],
        "long": [0, 1, -1],
        "boolean": [True, False],
        "blob": [b"", b"x", io.BytesIO(b"x"), "s", bytearray(b"x")],
        "double": [1.5],
        "float": [1.5],
        "timestamp": [datetime(2026, 1, 1)],
    }
    if kind in scalars:
        return rng.choice(scalars[kind])
    if depth >= 4:
        return {} if kind != "list" else []
    if kind == "list":
        return [_drawn(rng, shape.member, depth + 1) for _ in range(rng.randint(0, 2))]
    if kind == "map":
        keys = [rng.choice(["", "k", "key"]) for _ in range(rng.randint(0, 2))]
        return {key: _drawn(rng, shape.value, depth + 1) for key in keys}
    required = shape.metadata.get("required", [])
    drawn = {
        name: _drawn(rng, member, depth + 1)
        for name, member in shape.members.items()
        if (name in required and rng.random() < 0.95) or rng.random() < 0.3
    }
    if rng.random() < 0.05:
        drawn["Unknown"] = "x"
    return drawn


def test_drawn_parameters_of_every_s3_operation_are_found_valid_only_where_botocore_does() -> None:
    """3,000 parameter sets drawn over every S3 operation's input: whatever the direct check
    finds valid, botocore's validator finds valid too (the rest is botocore's to judge)."""
    s3 = shared_client()
    validator = s3._serializer._param_validator
    rng = random.Random(7)
    names = s3._service_model.operation_names
    found_valid = 0
    for _ in range(3000):
        shape = s3._service_model.operation_model(rng.choice(names)).input_shape
        if shape is None:
            continue
        params = _drawn(rng, shape)
        if moto_patches._surely_valid(params, shape):
            found_valid += 1
            report = type(validator).validate(validator, params, shape)
            assert not report.has_errors(), report.generate_report()
    assert found_valid > 1000  # the check does find most plain parameters valid itself


def test_the_full_stack_takes_none_of_the_direct_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the shortcut off, validation, request bodies and parsing are botocore's own, and
    moto computes every ETag and checksum itself (none is taken from the remembered digests)."""

    def refuse(*_: Any) -> Any:
        raise AssertionError("a direct route was taken on the full stack")

    for name in ("_surely_valid", "_xml_element", "_parse", "_plain_parts"):
        monkeypatch.setattr(moto_patches, name, refuse)
    monkeypatch.setattr(moto_patches, "digests", None)  # any use of it fails
    with moto_patches.full_stack():
        seen = _multipart()
    assert seen[-2][0] == b"q" * MIN_PART + b"tail"  # the object completed through moto
