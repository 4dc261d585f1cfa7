"""The protocol checks on hand-written histories: each passes on a correct handler's record,
fails (citing the events that prove it) on a broken one, and says when it had nothing to judge."""

from __future__ import annotations

from typing import Any

from harness.checks import CheckResult, evaluate
from harness.history import Kind
from tests.checks.story import Run, Story, good_run

PROTOCOL_CHECKS = [
    "works_through_advisory",
    "token_renewed",
    "approved_after_save",
    "client_timeout",
    "polls_within_lead",
    "true_deadline",
]
SPOT = "/latest/meta-data/spot/instance-action"
PREEMPTED = "/computeMetadata/v1/instance/preempted"


def check(run: Run, name: str) -> CheckResult:
    (result,) = evaluate([name], run.history, run.snapshot(), run.golden)
    return result


def cited(result: CheckResult) -> list[str]:
    return [ref.kind for v in result.violations for ref in v.events]


def request(s: Story, instance: str, at: float, status: int = 404, **data: Any) -> None:
    """An ``imds.request`` the recorder kept, recorded at ``at``."""
    s.at(at).record(
        "imds",
        "imds.request",
        instance,
        {
            "method": data.pop("method", "GET"),
            "path": data.pop("path", SPOT),
            "status": status,
            "requested_at": at,
            **data,
        },
    )


def gap(s: Story, instance: str, since: float, until: float, **data: Any) -> None:
    s.at(until).record("imds", "imds.gap", instance, {"since": since, "until": until, **data})


def test_a_good_run_without_metadata_evidence_leaves_each_unverified_with_its_reason() -> None:
    run = good_run()
    results = evaluate(PROTOCOL_CHECKS, run.history, run.snapshot(), run.golden)
    reasons = {r.name: (r.status, r.reason) for r in results}
    assert reasons == {
        "works_through_advisory": (
            "unverified",
            "no advisory signal reached an instance with work left",
        ),
        "token_renewed": ("unverified", "no IMDSv2 token outlived its TTL while its instance ran"),
        "approved_after_save": ("unverified", "no interrupting Azure event was approved"),
        "client_timeout": (
            "unverified",
            "no metadata request went unanswered while its instance ran",
        ),
        "polls_within_lead": (
            "unverified",
            "no instance of a polled cloud watched a notice path",
        ),
        "true_deadline": ("passed", ""),  # the good run reports the real deadline
    }
    assert all(r.evidence for r in results)


# -- works_through_advisory -----------------------------------------------------------------------


def advisory(s: Story, at: float = 5.5) -> None:
    s.at(at).harness(
        Kind.NOTICE_ISSUED, "i-1", notice_id="r-1", cloud="aws", notice_kind="rebalance",
        action=None, deadline=None,
    )  # fmt: skip


def one_instance(cloud: str = "aws") -> Story:
    s = Story()
    s.at(0).harness(Kind.RUN_STARTED, scenario="advisory", seed=1)
    s.harness(Kind.INSTANCE_STARTED, "i-1", incarnation=1, cloud=cloud, local_dir="/l/1")
    return s


def test_works_through_advisory_passes_when_work_goes_on_to_the_end() -> None:
    s = one_instance()
    s.items("i-1", 1, 5, start=1)
    advisory(s)
    s.checkpoint("i-1", 10, t=6)  # "checkpoint soon" is the right answer
    s.items("i-1", 6, 20, start=7)
    s.at(21).target(Kind.JOB_COMPLETED, "i-1", position=20)
    s.harness(Kind.INSTANCE_EXITED, "i-1", clean=True, error=None)
    result = check(Run(story=s), "works_through_advisory")
    assert (result.status, result.violations) == ("passed", ())


def test_works_through_advisory_fails_when_the_job_stops_and_exits_for_a_rebalance() -> None:
    s = one_instance()
    s.items("i-1", 1, 5, start=1)
    advisory(s)
    s.at(7).target(Kind.JOB_STOPPED, "i-1", position=5, reason="notice")
    s.harness(Kind.INSTANCE_EXITED, "i-1", clean=True, error=None)
    result = check(Run(story=s), "works_through_advisory")
    assert result.status == "failed"
    assert cited(result) == [Kind.NOTICE_ISSUED, Kind.JOB_STOPPED]
    assert "stopped its job at t=7s after the rebalance signal r-1" in result.violations[0].message


def test_works_through_advisory_fails_when_the_instance_stalls_without_saying_so() -> None:
    s = one_instance()
    s.items("i-1", 1, 5, start=1)
    advisory(s)
    s.at(400).harness(Kind.INSTANCE_KILLED, "i-1", reason="budget")
    result = check(Run(story=s), "works_through_advisory")
    assert result.status == "failed"
    assert "did no item from t=5.5s to t=6m40s" in result.violations[0].message


def batched(s: Story, quiet: float) -> None:
    """Items 1-5 one a second, then a report of 150 items ``quiet`` seconds after the 5th, then
    more at one a second: a target that reports its items in batches (at outputs, checkpoints)."""
    s.items("i-1", 1, 5, start=1)
    advisory(s)
    s.at(5 + quiet).target(Kind.ITEM_DONE, "i-1", position=155)
    s.items("i-1", 156, 160, start=6 + quiet)
    s.at(11 + quiet).target(Kind.JOB_COMPLETED, "i-1", position=160)
    s.harness(Kind.INSTANCE_EXITED, "i-1", clean=True, error=None)


def test_works_through_advisory_takes_a_batch_report_at_the_usual_pace_for_work() -> None:
    """Found by explore: the reference runtime reports its items at each output or checkpoint,
    so two reports can be more than STALL apart while it works on at its usual pace."""
    s = one_instance()
    batched(s, quiet=150)
    result = check(Run(story=s), "works_through_advisory")
    assert (result.status, result.violations) == ("passed", ())


def test_works_through_advisory_fails_when_a_batch_report_is_too_small_for_its_wait() -> None:
    s = one_instance()
    batched(s, quiet=600)  # 150 items in 600 s, at one a second elsewhere: it stalled
    result = check(Run(story=s), "works_through_advisory")
    assert result.status == "failed"
    assert "did no item from t=5.5s to t=10m5s" in result.violations[0].message


def test_works_through_advisory_does_not_take_waiting_out_storage_trouble_for_a_stall() -> None:
    """Found by explore: S3 throttling for 74 s beside a GCP maintenance event held the reference
    in its output's retries; the quiet stretch was the throttling's, not the signal's."""

    def throttled(s: Story, fault: bool, failed_write: bool) -> None:
        s.items("i-1", 1, 5, start=1)
        advisory(s)
        if fault:
            s.at(5.5).harness(
                Kind.FAULT_STARTED, "i-1", fault="s3.error", entry=1, target="s3",
                params={"code": "SlowDown"}, duration=74.0,
            )  # fmt: skip
        if failed_write:
            s.at(6).op("i-1", "s3.put_object", "outputs/part-0000", ok=False)
        s.items("i-1", 6, 10, start=200)
        s.at(206).target(Kind.JOB_COMPLETED, "i-1", position=10)
        s.harness(Kind.INSTANCE_EXITED, "i-1", clean=True, error=None)

    for fault, failed_write in ((True, False), (False, True)):
        s = one_instance()
        throttled(s, fault, failed_write)
        result = check(Run(story=s), "works_through_advisory")
        assert (result.status, result.violations) == ("passed", ()), (fault, failed_write)
    s = one_instance()
    throttled(s, fault=False, failed_write=False)
    assert check(Run(story=s), "works_through_advisory").status == "failed"


def test_works_through_advisory_ignores_an_advisory_on_top_of_a_pending_interruption() -> None:
    """A terminate notice and a rebalance at the same instant (found by explore): stopping is
    the answer to the notice, not to the rebalance."""
    s = one_instance()
    s.items("i-1", 1, 5, start=1)
    s.at(5.5).harness(
        Kind.NOTICE_ISSUED, "i-1", notice_id="n-1", cloud="aws", notice_kind="spot",
        action="terminate", deadline=125.5,
    )  # fmt: skip
    advisory(s, at=5.5)
    s.at(7).target(Kind.JOB_STOPPED, "i-1", position=5, reason="notice")
    s.harness(Kind.INSTANCE_EXITED, "i-1", clean=True, error=None)
    result = check(Run(story=s), "works_through_advisory")
    assert result.status == "unverified", result.violations


def test_works_through_advisory_ignores_what_follows_a_real_interruption() -> None:
    def stop_at_the_notice(s: Story) -> None:
        advisory(s, at=12.2)  # the rebalance a FIS interruption sends first

    result = check(good_run(before_notice=stop_at_the_notice), "works_through_advisory")
    assert (result.status, result.violations) == ("passed", ())


# -- token_renewed --------------------------------------------------------------------------------


def token(s: Story, at: float, serial: int, *, put: bool = False, expired: float = -1) -> None:
    note: dict[str, Any] = {"token": serial, "token_ttl": 60}
    if expired >= 0:
        note["token_expired_for"] = expired
    method, path = ("PUT", "/latest/api/token") if put else ("GET", SPOT)
    request(s, "i-1", at, status=401 if expired >= 0 else 200, method=method, path=path, note=note)


def test_token_renewed_passes_when_an_expired_token_is_replaced_after_its_first_401() -> None:
    s = one_instance()
    token(s, 1.0, 1, put=True)
    token(s, 62.0, 1, expired=1.0)
    token(s, 62.1, 2, put=True)
    s.at(130).harness(Kind.INSTANCE_EXITED, "i-1", clean=True, error=None)
    result = check(Run(story=s), "token_renewed")
    assert (result.status, result.violations) == ("passed", ())
    assert result.summary == "1 instance(s) ran past an IMDSv2 token's TTL"


def test_token_renewed_fails_when_a_refused_token_is_presented_again() -> None:
    s = one_instance()
    token(s, 1.0, 1, put=True)
    token(s, 62.0, 1, expired=1.0)
    token(s, 67.0, 1, expired=6.0)
    s.at(130).harness(Kind.INSTANCE_EXITED, "i-1", clean=True, error=None)
    result = check(Run(story=s), "token_renewed")
    assert result.status == "failed"
    assert cited(result) == ["imds.request", "imds.request"]
    assert "token #1 (TTL 1m) again at t=1m7s" in result.violations[0].message


# -- approved_after_save --------------------------------------------------------------------------


def approval(s: Story, at: float) -> None:
    note = {"approved": ["EVENT-1"], "notices": ["n-1"]}
    request(s, "i-1", at, status=200, method="POST", path="/metadata/scheduledevents", note=note)


def test_approved_after_save_passes_when_the_event_is_approved_once_saved() -> None:
    def save_then_approve(s: Story) -> None:
        s.checkpoint("i-1", 12, t=16)
        s.at(16.5).target(Kind.JOB_STOPPED, "i-1", position=12, reason="notice")
        approval(s, 17.0)

    result = check(good_run(emergency=save_then_approve), "approved_after_save")
    assert (result.status, result.violations) == ("passed", ())


def test_approved_after_save_fails_when_the_event_is_approved_before_the_save() -> None:
    def approve_then_save(s: Story) -> None:
        approval(s, 15.5)
        s.checkpoint("i-1", 12, t=16)
        s.at(16.5).target(Kind.JOB_STOPPED, "i-1", position=12, reason="notice")

    result = check(good_run(emergency=approve_then_save), "approved_after_save")
    assert result.status == "failed"
    assert cited(result) == [Kind.ITEM_DONE, Kind.NOTICE_ISSUED, "imds.request"]
    assert "approved event n-1 (spot) at t=15.5s with 12 items done" in (
        result.violations[0].message
    )


def test_approved_after_save_asks_only_for_the_work_whose_outputs_could_be_written() -> None:
    """As saved_before_deadline: an output that failed to write before the approval holds the
    save back (a checkpoint past it would make the resume skip that output)."""

    def output_failing(s: Story) -> None:
        s.at(11.5).target(Kind.OUTPUT_COMMITTED, "i-1", key="outputs/a", first=1, last=10)
        s.at(12.2).target(Kind.OUTPUT_FAILED, "i-1", key="outputs/b", error="SlowDown")

    def save_written_then_approve(s: Story) -> None:
        s.checkpoint("i-1", 10, t=16)
        s.at(16.5).target(Kind.JOB_STOPPED, "i-1", position=12, reason="notice")
        approval(s, 17.0)

    allowed = good_run(
        before_notice=output_failing, emergency=save_written_then_approve, resume_at=10
    )
    assert check(allowed, "approved_after_save").status == "passed"

    def output_written_later(s: Story) -> None:
        output_failing(s)
        s.at(12.4).target(Kind.OUTPUT_COMMITTED, "i-1", key="outputs/b", first=11, last=12)

    retried = good_run(
        before_notice=output_written_later, emergency=save_written_then_approve, resume_at=10
    )
    result = check(retried, "approved_after_save")
    assert result.status == "failed"
    assert "with 12 items done and no checkpoint of position 12 or later" in (
        result.violations[0].message
    )


def test_approved_after_save_fails_when_work_goes_on_after_the_approval() -> None:
    def approve_and_work_on(s: Story) -> None:
        s.checkpoint("i-1", 12, t=16)
        approval(s, 17.0)
        s.items("i-1", 13, 14, start=18)

    result = check(good_run(emergency=approve_and_work_on), "approved_after_save")
    assert result.status == "failed"
    assert "then went on working (item 14 at t=19s)" in result.violations[0].message


# -- client_timeout -------------------------------------------------------------------------------


def gcp_run(*events: Any) -> Run:
    """One GCP instance working from 0 to 300 s, with the metadata events given."""
    s = one_instance("gcp")
    request(s, "i-1", 0.5, status=200, path=PREEMPTED)
    for event in events:
        event(s)
    s.items("i-1", 1, 20, start=15, step=14)
    s.at(300).target(Kind.JOB_COMPLETED, "i-1", position=20)
    s.harness(Kind.INSTANCE_EXITED, "i-1", clean=True, error=None)
    return Run(story=s)


def unanswered(at: float, timeout_sec: float | None = None) -> Any:
    note = {"wait_for_change": True, "timeout_sec": timeout_sec}
    return lambda s: request(s, "i-1", at, status=0, path=PREEMPTED, fault="f-1", note=note)


def test_client_timeout_passes_when_the_client_gives_up_and_asks_again() -> None:
    again = lambda s: request(s, "i-1", 32.0, status=200, path=PREEMPTED)  # noqa: E731
    result = check(gcp_run(unanswered(10.0), again), "client_timeout")
    assert (result.status, result.violations) == ("passed", ())
    late_but_allowed = lambda s: gap(s, "i-1", 10.0, 55.0)  # noqa: E731
    result = check(gcp_run(unanswered(10.0, timeout_sec=20.0), late_but_allowed), "client_timeout")
    assert (result.status, result.violations) == ("passed", ())


def test_client_timeout_fails_when_an_unanswered_hanging_get_is_never_given_up() -> None:
    result = check(gcp_run(unanswered(10.0)), "client_timeout")
    assert result.status == "failed"
    assert cited(result) == ["imds.request", Kind.INSTANCE_EXITED]
    assert (
        "GET /computeMetadata/v1/instance/preempted at t=10s, timeout_sec none got no answer, "
        "and it never asked again: it had to give up by t=40s" in result.violations[0].message
    )


def test_client_timeout_fails_when_it_asks_again_only_after_the_notice_could_pass() -> None:
    late = lambda s: gap(s, "i-1", 10.0, 100.0)  # noqa: E731
    result = check(gcp_run(unanswered(10.0, timeout_sec=20.0), late), "client_timeout")
    assert result.status == "failed"
    assert "asked again only at t=1m40s" in result.violations[0].message


def test_client_timeout_does_not_judge_a_wait_cut_short_by_the_instance_end() -> None:
    s = one_instance("gcp")
    request(s, "i-1", 0.5, status=200, path=PREEMPTED)
    unanswered(10.0)(s)
    s.at(20).harness(Kind.INSTANCE_KILLED, "i-1", reason="hard_kill")
    result = check(Run(story=s), "client_timeout")
    assert result.status == "unverified"


# -- polls_within_lead ----------------------------------------------------------------------------


def test_polls_within_lead_passes_with_gaps_shorter_than_the_notice() -> None:
    short = lambda s: gap(s, "i-1", 20.0, 45.0)  # noqa: E731
    result = check(gcp_run(short), "polls_within_lead")
    assert (result.status, result.violations) == ("passed", ())


def test_polls_within_lead_fails_on_a_gap_longer_than_the_clouds_notice() -> None:
    long = lambda s: gap(s, "i-1", 20.0, 80.0)  # noqa: E731
    result = check(gcp_run(long), "polls_within_lead")
    assert result.status == "failed"
    assert cited(result) == ["imds.gap"]
    assert "nothing for 1m from t=20s, longer than gcp's 30s notice" in result.violations[0].message


def test_polls_within_lead_fails_when_the_monitor_stops_for_good() -> None:
    trailing = lambda s: gap(s, "i-1", 20.0, 300.0, ended=True)  # noqa: E731
    result = check(gcp_run(trailing), "polls_within_lead")
    assert result.status == "failed"
    assert "nothing for 4m40s from t=20s" in result.violations[0].message


def test_polls_within_lead_ignores_quiet_once_the_instance_is_done_watching() -> None:
    s = one_instance("gcp")
    request(s, "i-1", 0.5, status=200, path=PREEMPTED)
    s.items("i-1", 1, 5, start=1)
    s.at(10).target(Kind.JOB_STOPPED, "i-1", position=5, reason="notice")
    gap(s, "i-1", 9.0, 200.0, ended=True)  # stopped: nothing left to watch for
    s.at(200).harness(Kind.INSTANCE_KILLED, "i-1", reason="deadline")
    result = check(Run(story=s), "polls_within_lead")
    assert (result.status, result.violations) == ("passed", ())


def test_polls_within_lead_ignores_an_instance_that_watches_no_notice_path() -> None:
    s = one_instance("aws")
    request(s, "i-1", 1.0, status=200, path="/latest/meta-data/instance-id")  # a one-off read
    gap(s, "i-1", 1.0, 300.0, ended=True)
    s.at(300).harness(Kind.INSTANCE_EXITED, "i-1", clean=True, error=None)
    result = check(Run(story=s), "polls_within_lead")
    assert result.status == "unverified"


def test_polls_within_lead_measures_from_the_first_request_on_a_notice_path() -> None:
    s = one_instance("azure")
    request(s, "i-1", 0.5, status=200, path="/metadata/instance")
    gap(s, "i-1", 0.5, 55.0)  # booting: not yet watching
    request(s, "i-1", 55.0, status=200, path="/metadata/scheduledevents")
    s.at(200).harness(Kind.INSTANCE_EXITED, "i-1", clean=True, error=None)
    result = check(Run(story=s), "polls_within_lead")
    assert (result.status, result.violations) == ("passed", ())


# -- true_deadline --------------------------------------------------------------------------------


def seen_with(deadline: float, at: float = 15.0) -> Any:
    def emergency(s: Story) -> None:
        s.at(at).target(
            Kind.NOTICE_SEEN, "i-1", source="aws", action="terminate", deadline=deadline
        )
        s.checkpoint("i-1", 12, t=at + 1)
        s.at(at + 2).target(Kind.JOB_STOPPED, "i-1", position=12, reason="notice")

    return emergency


def test_true_deadline_fails_when_counted_from_when_the_notice_was_seen() -> None:
    run = good_run(emergency=seen_with(deadline=160.0, at=40.0))
    result = check(run, "true_deadline")
    assert result.status == "failed"
    assert cited(result) == [Kind.NOTICE_ISSUED, Kind.NOTICE_SEEN]
    assert (
        "believed notice n-1 (spot) ends at t=2m40s, 27.5s after its real deadline t=2m12.5s: "
        "counted from when it was seen" in result.violations[0].message
    )


def test_true_deadline_fails_on_a_skewed_clock_unless_bounded_by_the_lead() -> None:
    def skew(s: Story) -> None:
        s.at(0.5).harness(Kind.FAULT_STARTED, None, fault="clock.skew", params={"skew": -90.0})

    trusting = good_run(before_notice=skew, emergency=seen_with(deadline=222.5))
    result = check(trusting, "true_deadline")
    assert result.status == "failed"
    assert "taken from its own calendar clock, 1m30s off" in result.violations[0].message
    bounded = good_run(before_notice=skew, emergency=seen_with(deadline=135.0))
    result = check(bounded, "true_deadline")
    assert (result.status, result.violations) == ("passed", ())


def test_true_deadline_lets_an_untimed_notice_count_from_when_it_was_seen() -> None:
    s = one_instance("gcp")
    s.items("i-1", 1, 5, start=1)
    s.at(6).harness(
        Kind.NOTICE_ISSUED, "i-1", notice_id="n-1", cloud="gcp", notice_kind="preemption",
        action="terminate", deadline=36.0, lead=30.0,
    )  # fmt: skip
    s.at(9).target(Kind.NOTICE_SEEN, "i-1", source="gcp", effect="terminate", deadline=39.0)
    s.at(36).harness(Kind.INSTANCE_KILLED, "i-1", reason="deadline")
    assert check(Run(story=s), "true_deadline").status == "passed"
    s.at(9.5).target(Kind.NOTICE_SEEN, "i-1", source="gcp", effect="terminate", deadline=45.0)
    assert check(Run(story=s), "true_deadline").status == "failed"  # later than seen + 30 s


def test_true_deadline_lets_gcp_count_its_documented_30s_whatever_lead_the_story_gives() -> None:
    s = one_instance("gcp")
    s.items("i-1", 1, 5, start=1)
    s.at(6).harness(
        Kind.NOTICE_ISSUED, "i-1", notice_id="n-1", cloud="gcp", notice_kind="preemption",
        action="terminate", deadline=10.0, lead=4.0,
    )  # fmt: skip
    s.at(6.2).target(Kind.NOTICE_SEEN, "i-1", source="gcp", effect="terminate", deadline=36.2)
    s.at(10).harness(Kind.INSTANCE_KILLED, "i-1", reason="deadline")
    assert check(Run(story=s), "true_deadline").status == "passed"
