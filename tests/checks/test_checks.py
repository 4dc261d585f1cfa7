"""Each check passes on a good run and fails, citing the right events, on a run that breaks it."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Any

import pytest

from harness.checks import (
    CHECKS,
    CheckResult,
    CheckSpec,
    CheckSpecError,
    evaluate,
    parse_check_spec,
)
from harness.checks.golden import sha256_digest
from harness.history import Kind
from tests.checks.story import OUTPUT, STATE, Run, Story, good_run
from tests.checks.test_protocol import PROTOCOL_CHECKS

ALL: list[str | dict[str, Any]] = [
    "saved_before_deadline",
    "exactly_once",
    "resume_correct",
    "durable",
    {"lost_work": {"at_most": "5s"}},
    {"detects_notice": {"within": "5s"}},
    "no_leaked_uploads",
    "fenced",
    {"completes": {"within": "10m"}},
    "reference_layout",
]


def check(run: Run, spec: Any) -> CheckResult:
    (result,) = evaluate([spec], run.history, run.snapshot(), run.golden)
    return result


def kinds_cited(result: CheckResult) -> list[str]:
    return [ref.kind for v in result.violations for ref in v.events]


def test_good_run_passes_every_check_it_exercises_and_says_which_it_could_not() -> None:
    run = good_run()
    results = evaluate(ALL, run.history, run.snapshot(), run.golden)
    assert [r.name for r in results] == [parse_check_spec(s).name for s in ALL]
    assert [r.violations for r in results] == [()] * len(ALL)
    unverified = {r.name: r.reason for r in results if r.status != "passed"}
    assert unverified == {
        "fenced": "no instance was still running when a newer one took over",
        "reference_layout": "no manifest or Redis metadata of the reference layout in storage",
    }
    assert all(r.evidence for r in results), "every verdict names its evidence"
    durable = next(r for r in results if r.name == "durable")
    assert {"s3.ops", "storage.snapshot", "target.events"} <= set(durable.evidence)


def test_every_check_is_named_in_the_registry() -> None:
    named = [parse_check_spec(s).name for s in ALL] + PROTOCOL_CHECKS  # test_protocol.py
    assert sorted(CHECKS) == sorted(named)


# -- saved_before_deadline -------------------------------------------------------------------------


def no_emergency_save(s: Story) -> None:
    s.at(20).target(Kind.JOB_STOPPED, "i-1", position=12, reason="notice")


def test_saved_before_deadline_fails_without_an_emergency_save() -> None:
    run = good_run(emergency=no_emergency_save, resume_at=10)
    result = check(run, "saved_before_deadline")
    assert not result.passed
    (violation,) = result.violations
    assert (
        "it had done 12 items" in violation.message
        and "newest reported: position 10" in violation.message
    )
    assert kinds_cited(result) == [
        Kind.CHECKPOINT_DURABLE,
        Kind.ITEM_DONE,
        Kind.NOTICE_ISSUED,
        Kind.NOTICE_DEADLINE,
    ]


def test_saved_before_deadline_fails_when_the_save_lands_after_the_deadline() -> None:
    run = good_run(emergency=no_emergency_save, resume_at=10)
    run.story.checkpoint("i-2", 12, t=170)  # a save after the deadline does not count
    assert not check(run, "saved_before_deadline").passed


def test_saved_before_deadline_local_save_is_lost_on_terminate_but_kept_on_stop() -> None:
    def local_only(s: Story) -> None:
        s.checkpoint("i-1", 12, tier="local", t=16)

    terminate = good_run(emergency=local_only, resume_at=10)
    terminate.files = {"/l/1": {"ckpt-12.bin": STATE[12]}}
    result = check(terminate, "saved_before_deadline")
    assert (
        not result.passed
        and "on S3 between the notice and the deadline" in result.violations[0].message
    )

    stop = good_run(emergency=local_only, action="stop")
    stop.files = {"/l/1": {"ckpt-12.bin": STATE[12]}}
    assert check(stop, "saved_before_deadline").passed


def test_saved_before_deadline_refuses_a_save_storage_does_not_hold() -> None:
    run = good_run()
    run.versions = [v for v in run.versions if v[0] != "checkpoints/000012"]
    result = check(run, "saved_before_deadline")
    assert not result.passed


def stale_save(s: Story) -> None:
    s.checkpoint("i-1", 10, t=16)  # the last periodic state uploaded again, in time
    s.at(17).target(Kind.JOB_STOPPED, "i-1", position=12, reason="notice")


def test_saved_before_deadline_fails_when_the_save_after_the_notice_is_older_than_work() -> None:
    run = good_run(emergency=stale_save, resume_at=10)
    result = check(run, "saved_before_deadline")
    assert result.status == "failed"
    (violation,) = result.violations
    assert "it had done 12 items" in violation.message
    assert "after the notice holds position 10, older than that (position 12 needed)" in (
        violation.message
    )


def test_saved_before_deadline_asks_only_for_the_work_whose_outputs_could_be_written() -> None:
    """An output that failed to write when the notice came holds the save back: a checkpoint
    past it would make the resume skip that output. The work up to the last written output is
    what must be saved."""

    def output_failing(s: Story) -> None:
        s.at(11.5).target(Kind.OUTPUT_COMMITTED, "i-1", key="outputs/a", first=1, last=10)
        s.at(12.2).target(Kind.OUTPUT_FAILED, "i-1", key="outputs/b", error="SlowDown")

    allowed = good_run(before_notice=output_failing, emergency=stale_save, resume_at=10)
    assert check(allowed, "saved_before_deadline").status == "passed"

    def output_written_later(s: Story) -> None:
        output_failing(s)
        s.at(12.4).target(Kind.OUTPUT_COMMITTED, "i-1", key="outputs/b", first=11, last=12)

    retried = good_run(before_notice=output_written_later, emergency=stale_save, resume_at=10)
    assert check(retried, "saved_before_deadline").status == "failed"


# -- exactly_once ---------------------------------------------------------------------------------


def test_exactly_once_fails_on_a_duplicate_write() -> None:
    run = good_run()
    run.versions.append(("outputs/part-0000", OUTPUT))
    result = check(run, "exactly_once")
    assert not result.passed
    assert "written 2 times" in result.violations[0].message
    assert Kind.OUTPUT_COMMITTED in kinds_cited(result)


def test_exactly_once_fails_on_missing_wrong_and_unexpected_outputs() -> None:
    run = good_run()
    run.versions = [v for v in run.versions if not v[0].startswith("outputs/")]
    run.versions += [("outputs/part-0001", b"x")]
    messages = [v.message for v in check(run, "exactly_once").violations]
    assert messages == [
        "output outputs/part-0000 was never written",
        "unexpected output outputs/part-0001",
    ]
    run = good_run()
    run.versions[-1] = ("outputs/part-0000", b"garbage")
    (violation,) = check(run, "exactly_once").violations
    assert "differ from the golden content" in violation.message


# -- resume_correct -------------------------------------------------------------------------------


def test_resume_correct_fails_on_an_older_checkpoint() -> None:
    result = check(good_run(resume_at=10), "resume_correct")
    assert not result.passed
    assert "resumed at position 10, but a valid durable checkpoint at position 12" in (
        result.violations[0].message
    )
    assert kinds_cited(result)[:2] == [Kind.CHECKPOINT_DURABLE, Kind.RESUMED]


def test_resume_correct_fails_on_an_off_by_one_continuation() -> None:
    run = good_run()
    events = run.story.history._events  # rewrite i-2's first item as a repeat of item 12
    first = next(e for e in events if e.instance == "i-2" and e.kind == Kind.ITEM_DONE)
    events[first.seq] = type(first)(
        first.seq, first.t, first.source, first.kind, first.instance, {"position": 12}
    )
    result = check(run, "resume_correct")
    assert any(
        "next item done was position 12 (expected 13)" in v.message for v in result.violations
    )


def test_resume_correct_fails_beyond_the_newest_durable_checkpoint() -> None:
    run = good_run(emergency=no_emergency_save, resume_at=12)
    result = check(run, "resume_correct")
    assert not result.passed
    assert (
        "beyond the newest valid durable checkpoint (position 10)" in result.violations[0].message
    )


def test_resume_correct_fails_when_a_checkpoint_holds_a_wrong_state() -> None:
    def wrong_state(s: Story) -> None:
        s.checkpoint("i-1", 12, t=16, checksum=sha256_digest(STATE[11]))

    run = good_run(emergency=wrong_state)
    run.versions[1] = ("checkpoints/000012", STATE[11])
    messages = [v.message for v in check(run, "resume_correct").violations]
    assert any("golden state there is" in m for m in messages)


# -- durable --------------------------------------------------------------------------------------


def test_durable_fails_when_a_reported_checkpoint_is_missing_or_different() -> None:
    run = good_run()
    run.versions[1] = ("checkpoints/000012", b"torn")
    result = check(run, "durable")
    assert not result.passed
    assert "none of the 1 version(s) of checkpoints/000012" in result.violations[0].message


def test_durable_fails_when_reported_before_the_write() -> None:
    def report_first(s: Story) -> None:
        s.at(16).target(
            Kind.CHECKPOINT_DURABLE,
            "i-1",
            checkpoint_id="c12",
            tier="s3",
            position=12,
            key="checkpoints/000012",
            checksum=sha256_digest(STATE[12]),
        )
        s.at(16.2).target(Kind.METADATA_COMMITTED, "i-1", checkpoint_id="c12", position=12, epoch=1)
        s.at(17).op("i-1", "s3.complete_multipart", "checkpoints/000012")

    result = check(good_run(emergency=report_first), "durable")
    assert not result.passed
    assert "before any write of checkpoints/000012 completed" in result.violations[0].message
    assert kinds_cited(result) == [Kind.CHECKPOINT_DURABLE, Kind.STORAGE_OP]


def test_durable_fails_when_metadata_moves_before_the_checkpoint_is_durable() -> None:
    def pointer_first(s: Story) -> None:
        s.at(16).target(Kind.METADATA_COMMITTED, "i-1", checkpoint_id="c12", position=12, epoch=1)
        s.checkpoint("i-1", 12, t=17)

    result = check(good_run(emergency=pointer_first), "durable")
    assert not result.passed
    assert "metadata moved to checkpoint c12" in result.violations[0].message


def test_durable_fails_when_the_only_valid_checkpoint_is_overwritten_in_place() -> None:
    def torn(s: Story) -> None:
        s.checkpoint("i-1", 12, tier="local", t=16)
        s.at(17).op("i-1", "local.write", "ckpt-12.bin")  # rewrites the file in place

    run = good_run(emergency=torn, action="stop")
    run.versions = [v for v in run.versions if not v[0].startswith("checkpoints/0000")]
    run.versions.append(("checkpoints/000020", STATE[20]))
    run.files = {"/l/1": {"ckpt-12.bin": STATE[12]}}
    messages = [v.message for v in check(run, "durable").violations]
    assert any(
        "local.write of ckpt-12.bin by i-1" in m and "without a valid checkpoint" in m
        for m in messages
    )


def test_durable_rotation_after_a_newer_checkpoint_passes() -> None:
    def rotate(s: Story) -> None:
        s.checkpoint("i-1", 12, t=16)
        s.at(16.5).op("i-1", "s3.delete_object", "checkpoints/000010")

    assert check(good_run(emergency=rotate), "durable").passed

    def rotate_first(s: Story) -> None:
        s.at(15.5).op("i-1", "s3.delete_object", "checkpoints/000010")
        s.checkpoint("i-1", 12, t=16)

    assert not check(good_run(emergency=rotate_first), "durable").passed


# -- lost_work, detects_notice --------------------------------------------------------------------


def test_lost_work_fails_when_too_much_is_redone() -> None:
    run = good_run(emergency=no_emergency_save, resume_at=10)
    result = check(run, {"lost_work": {"at_most": "1s"}})
    assert not result.passed
    assert result.violations[0].message.startswith("2s of work done by i-1 was redone by i-2")
    assert check(run, {"lost_work": {"at_most": "2s"}}).passed


def test_detects_notice_fails_when_late_or_never_or_with_a_later_deadline() -> None:
    assert not check(good_run(), {"detects_notice": {"within": "2s"}}).passed

    blind = good_run()
    blind.story.history._events = [e for e in blind.history if e.kind != Kind.NOTICE_SEEN]
    result = check(blind, {"detects_notice": {"within": "5s"}})
    assert "never reported seeing notice n-1" in result.violations[0].message

    run = good_run()
    events = run.story.history._events
    seen = next(e for e in events if e.kind == Kind.NOTICE_SEEN)
    events[seen.seq] = type(seen)(
        seen.seq,
        seen.t,
        seen.source,
        seen.kind,
        seen.instance,
        {"action": "terminate", "deadline": 145.0},
    )
    result = check(run, {"detects_notice": {"within": "5s"}})
    assert "later than its real deadline" in result.violations[0].message


# -- no_leaked_uploads, fenced, completes ---------------------------------------------------------


def test_no_leaked_uploads_fails_on_an_upload_nobody_aborted() -> None:
    def started_upload(s: Story) -> None:
        s.at(12.2).op("i-1", "s3.create_multipart", "checkpoints/000012")

    run = good_run(before_notice=started_upload)
    run.uploads = [("checkpoints/000012", "u-1")]
    result = check(run, "no_leaked_uploads")
    assert not result.passed
    assert "upload of checkpoints/000012 was never completed" in result.violations[0].message
    assert kinds_cited(result) == [Kind.STORAGE_OP, Kind.INSTANCE_KILLED]


def overlap(run: Run) -> Run:
    """The same run, but i-1 was not killed at its deadline: it kept running beside i-2."""
    events = run.story.history._events
    run.story.history._events = [
        e for e in events if not (e.kind == Kind.INSTANCE_KILLED and e.instance == "i-1")
    ]
    return run


def test_fenced_fails_when_a_superseded_instance_keeps_writing() -> None:
    def zombie(s: Story) -> None:
        s.at(150).op("i-1", "s3.put_object", "outputs/part-0000")  # identical output: harmless
        s.target(Kind.METADATA_COMMITTED, "i-1", checkpoint_id="c12", position=12, epoch=1)
        s.op("i-2", "s3.put_object", "checkpoints/000019")
        s.op("i-1", "s3.put_object", "checkpoints/000019")
        s.op("i-1", "s3.delete_object", "checkpoints/000020")

    run = overlap(good_run(after_resume=zombie))
    run.versions += [("checkpoints/000019", STATE[19])] * 2
    result = check(run, "fenced")
    assert not result.passed
    messages = [v.message for v in result.violations]
    assert [m.split(" at ")[0] for m in messages] == [
        "i-1 moved the job metadata to c12",
        "i-1 overwrote checkpoints/000019 (s3.put_object), which a newer instance writes",
        "i-1 deleted checkpoints/000020, which a newer instance writes",
    ]
    assert kinds_cited(result)[0] == Kind.EPOCH


def test_fenced_accepts_a_conditional_write_that_storage_refused() -> None:
    def refused(s: Story) -> None:
        s.at(150).op("i-2", "s3.put_object", "checkpoints/000019")
        s.op("i-1", "s3.put_object", "checkpoints/000019")  # If-Match: refused, no version

    run = overlap(good_run(after_resume=refused))
    run.versions.append(("checkpoints/000019", STATE[19]))
    assert check(run, "fenced").passed
    run.versions.append(("checkpoints/000019", STATE[19]))
    assert not check(run, "fenced").passed


def test_completes_fails_when_unfinished_late_or_without_outputs() -> None:
    run = good_run()
    assert not check(run, {"completes": {"within": "1m"}}).passed
    run.versions = [v for v in run.versions if not v[0].startswith("outputs/")]
    result = check(run, {"completes": {"within": "1h"}})
    assert "1 output(s) are missing: outputs/part-0000" in result.violations[0].message
    run.story.history._events = [e for e in run.history if e.kind != Kind.JOB_COMPLETED]
    result = check(run, {"completes": {"within": "1h"}})
    assert result.violations[0].message.startswith("the job never completed")


# -- specs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("durabel", "unknown check `durabel`; did you mean `durable`?"),
        ({"lost_work": {"at_mots": "1s"}}, "unknown parameter `at_mots` of check `lost_work`"),
        ({"lost_work": {}}, "check `lost_work` needs at_most: 30s"),
        ({"completes": {"within": "soon"}}, "`completes.within`:"),
        ({"durable": {"x": 1}}, "it takes none"),
        (["durable"], "a check is a name"),
    ],
)
def test_bad_specs_are_refused_with_a_fix(raw: Any, message: str) -> None:
    with pytest.raises(CheckSpecError, match=message.replace("(", r"\(").replace("`", "`")):
        parse_check_spec(raw)


def test_spec_durations_are_parsed() -> None:
    assert parse_check_spec({"lost_work": {"at_most": "1m30s"}}).params == {"at_most": 90.0}


def test_lost_work_counts_the_work_in_progress_when_killed_without_stopping() -> None:
    def kept_working(s: Story) -> None:
        s.checkpoint("i-1", 10, t=13)  # an older state saved again; work goes on until the kill

    result = check(good_run(emergency=kept_working, resume_at=10), {"lost_work": {"at_most": "2m"}})
    assert not result.passed
    assert result.violations[0].message.startswith("2m2.5s of work done by i-1")


def test_saved_before_deadline_fails_when_the_instance_never_stops_working() -> None:
    def periodic_only(s: Story) -> None:
        s.checkpoint("i-1", 12, t=16)  # a periodic save after the notice, then more work
        s.items("i-1", 13, 15, start=100)

    result = check(good_run(emergency=periodic_only), "saved_before_deadline")
    assert not result.passed
    assert "i-1 kept working after notice n-1 (terminate)" in result.violations[0].message
    assert "items 13..15" in result.violations[0].message


def test_an_injected_corruption_moves_the_expected_resume_back() -> None:
    def corrupt(s: Story) -> None:
        s.at(133).harness(
            Kind.FAULT_STARTED,
            None,
            fault="s3.corrupt",
            params={"pattern": "checkpoints/*", "key": "checkpoints/000012"},
        )

    run = good_run(resume_at=10)
    assert not check(run, "resume_correct").passed  # 12 was readable: resuming at 10 is wrong

    events = good_run(resume_at=10).history._events
    killed = next(e for e in events if e.kind == Kind.INSTANCE_KILLED)
    story = Story()
    story.history._events = events[: killed.seq + 1]
    story.now = killed.t
    corrupt(story)
    for e in events[killed.seq + 1 :]:
        story.at(e.t).record(e.source, e.kind, e.instance, dict(e.data))
    fixed = Run(story=story)
    fixed.versions = good_run().versions
    fixed.versions[1] = ("checkpoints/000012", b"bit rot")  # corrupted in place
    assert check(fixed, "resume_correct").passed
    assert check(fixed, "durable").passed


def test_a_local_checkpoint_is_lost_when_the_machine_is_killed_after_a_clean_exit() -> None:
    def local_then_exit(s: Story) -> None:
        s.checkpoint("i-1", 12, tier="local", t=16)
        s.at(17).target(Kind.JOB_STOPPED, "i-1", position=12, reason="notice")
        s.harness(Kind.INSTANCE_EXITED, "i-1", clean=True, error=None)

    run = good_run(emergency=local_then_exit)  # terminate: the kill at the deadline wipes /l/1
    for e in run.history:
        if e.kind == Kind.INSTANCE_KILLED:
            run.story.history._events[e.seq] = type(e)(
                e.seq,
                e.t,
                e.source,
                e.kind,
                e.instance,
                {"reason": "deadline", "local_wiped": True},
            )
    result = check(run, "resume_correct")
    assert (
        "beyond the newest valid durable checkpoint (position 10)" in result.violations[0].message
    )
    assert check(run, "durable").passed  # the file is gone with the disk: not a lie


def test_completes_without_a_limit_only_needs_completion() -> None:
    assert parse_check_spec("completes").params == {}  # the default applies when it runs
    assert check(good_run(), "completes").passed


def test_the_scenario_schema_offers_every_check_and_its_parameters() -> None:
    from harness.scenario.schema import scenario_schema

    schema = scenario_schema()
    forms = schema["$defs"]["CheckSpec"]["anyOf"]
    assert forms[0] == {"enum": list(CHECKS)}
    one_key = forms[1]["properties"]
    assert set(one_key) == set(CHECKS)
    for name, info in CHECKS.items():
        assert set(one_key[name]["properties"]) == {*info.params, "fails"}, name


def test_the_scenario_model_and_evaluate_share_one_check_spec() -> None:
    from harness.scenario.model import Scenario

    scenario = Scenario.model_validate(
        {"description": "d", "expect": ["durable", {"lost_work": {"at_most": "1m", "fails": True}}]}
    )
    assert all(type(spec) is CheckSpec for spec in scenario.expect)
    assert scenario.expect[1] == parse_check_spec({"lost_work": {"at_most": 60, "fails": True}})
    assert scenario.expect[1].fails == "known-bad target"


# -- evidence and unverified ----------------------------------------------------------------------


def test_a_redis_value_naming_an_s3_object_before_its_write_completed_breaks_durable() -> None:
    """Any layout: the harness saw the Redis write's values and the S3 writes."""

    def pointer_first(s: Story) -> None:
        s.at(15.5).record(
            "storage",
            Kind.STORAGE_OP,
            "i-1",
            {
                "op": "redis.write",
                "key": "trainer:meta",
                "ok": True,
                "command": "HSET",
                "values": ["trainer:meta", "latest", "checkpoints/000012"],
            },
        )

    result = check(good_run(before_notice=pointer_first), "durable")
    assert result.status == "failed"
    (violation,) = result.violations
    assert violation.message == (
        "redis HSET of trainer:meta by i-1 at t=15.5s names s3 object checkpoints/000012 "
        "before any write of it completed"
    )
    assert kinds_cited(result) == [Kind.STORAGE_OP, Kind.STORAGE_OP]


def test_a_redis_value_naming_an_object_already_written_is_fine() -> None:
    def pointer_after(s: Story) -> None:
        s.at(16.2).record(
            "storage",
            Kind.STORAGE_OP,
            "i-1",
            {"op": "redis.write", "key": "m", "ok": True, "values": ["checkpoints/000012"]},
        )

    assert check(good_run(emergency=None, after_resume=None, before_notice=None), "durable").passed
    assert check(good_run(after_resume=pointer_after), "durable").passed


def test_durable_is_unverified_when_the_harness_saw_no_write() -> None:
    run = good_run()
    silent = Story()
    for event in run.history:
        if event.kind != Kind.STORAGE_OP:
            silent.at(event.t).record(event.source, event.kind, event.instance, dict(event.data))
    run.story = silent
    result = check(run, "durable")
    assert result.status == "unverified" and not result.passed
    assert result.reason == (
        "no write to S3, Redis or the local disk was seen (yet checkpoints were reported durable)"
    )


def test_fenced_is_unverified_without_an_instance_outliving_its_replacement() -> None:
    result = check(good_run(), "fenced")
    assert (result.status, result.violations) == ("unverified", ())


def test_reference_layout_fails_on_a_manifest_naming_a_checkpoint_storage_never_held() -> None:
    run = good_run()
    manifest = (
        b'{"format": "spot-harness-manifest/1", "job": "j", "epoch": 1, "checkpoints": [{"id": '
        b'"c30", "position": 30, "epoch": 1, "checksum": "sha256:' + b"0" * 64 + b'", "size": 1, '
        b'"nominal_size": 1, "key": "checkpoints/j/c30.ckpt"}]}'
    )
    run.versions.append(("checkpoints/j/manifest.json", manifest))
    result = check(run, "reference_layout")
    assert result.status == "failed"
    assert "names checkpoints/j/c30.ckpt, which S3 never held intact" in (
        result.violations[0].message
    )


def test_fenced_judges_a_replacement_that_took_the_same_epoch() -> None:
    """Two live writers under one epoch cannot fence each other: the older one's metadata
    writes after the takeover are a fencing failure, not a case left unjudged."""

    def zombie(s: Story) -> None:
        s.at(150).target(Kind.METADATA_COMMITTED, "i-1", checkpoint_id="c12", position=12, epoch=1)

    def same_epoch(run: Run) -> Run:
        events = run.story.history._events
        for index, event in enumerate(events):
            if event.kind == Kind.EPOCH and event.instance == "i-2":
                events[index] = replace(event, data=MappingProxyType({"epoch": 1}))
        return run

    run = same_epoch(overlap(good_run(after_resume=zombie)))
    result = check(run, "fenced")
    assert result.status == "failed"
    (violation,) = result.violations
    assert violation.message.startswith("i-1 moved the job metadata to c12 at t=2m30s")
    assert "after i-2 took over at t=2m20s under the same epoch 1" in violation.message
    assert kinds_cited(result) == [Kind.EPOCH, Kind.METADATA_COMMITTED]
    # The same run without the zombie's write is judged and passes.
    quiet = same_epoch(overlap(good_run()))
    assert check(quiet, "fenced").status == "passed"


def resumed_after_a_zombie_checkpoint(resume_at: int) -> Run:
    """i-1 keeps running beside i-2 and makes checkpoint 14 durable after i-2 started but
    before i-2 resumed (its recovery was waiting out an outage); i-2 resumes at ``resume_at``."""
    run = overlap(good_run(resume_at=resume_at))
    events = run.story.history._events
    resumed = next(e for e in events if e.kind == Kind.RESUMED and e.instance == "i-2")
    late = Story()
    late.checkpoint("i-1", 14, t=resumed.t)
    ordered = [e for e in events if e is not resumed]
    at = ordered.index(resumed_epoch(ordered)) + 1
    ordered[at:at] = [*late.history, resumed]
    run.story.history._events = [replace(e, seq=n) for n, e in enumerate(ordered)]
    run.versions.append(("checkpoints/000014", STATE[14]))
    return run


def resumed_epoch(events: list[Any]) -> Any:
    return next(e for e in events if e.kind == Kind.EPOCH and e.instance == "i-2")


def test_resume_correct_accepts_a_checkpoint_made_durable_while_recovery_waited() -> None:
    assert check(resumed_after_a_zombie_checkpoint(14), "resume_correct").status == "passed"
    beyond = check(resumed_after_a_zombie_checkpoint(16), "resume_correct")
    assert beyond.status == "failed"
    assert beyond.violations[0].message.startswith(
        "i-2 resumed at position 16, beyond the newest valid durable checkpoint (position 12)"
    )
