"""Which conditional checks a generated schedule is judged by: only those its run left room for,
and those judged can fail."""

from __future__ import annotations

from typing import Any

from harness.explore import INVARIANTS, JOB, to_scenario
from harness.explore.fairness import candidates
from harness.explore.search import judge

NOTICE = {"at": "60s", "notice": {"action": "terminate", "lead": "120s"}}


#: The careful handler with its save deferred to 30 s before the deadline.
_LATE = {"python": "harness.examples.yardstick:careful_acts_30s_before"}


def _judged(
    timeline: list[dict[str, Any]],
    target: Any = "reference",
    cloud: str = "aws",
    job: dict[str, Any] | None = None,
) -> tuple[list[str], Any]:
    data = {
        "description": "fairness",
        "seed": 1,
        "target": target,
        "job": dict(job or JOB),
        "env": {"cloud": cloud, "replacement": {"delay": "5s"}}
        | ({"imdsv2": "required"} if cloud == "aws" else {}),
        "timeline": timeline,
        "expect": list(INVARIANTS),
    }
    judged, result = judge(data, to_scenario(data))
    extra = [
        raw if isinstance(raw, str) else next(iter(raw))
        for raw in judged["expect"][len(INVARIANTS) :]
    ]
    assert [c.spec.name for c in result.checks][
        len(INVARIANTS) :
    ] == extra  # the verdict judged those only
    return extra, result


def test_a_roomy_notice_is_judged_by_every_conditional_check() -> None:
    judged, result = _judged([NOTICE])
    assert judged == ["saved_before_deadline", "detects_notice", "lost_work"]
    assert result.broken_checks == [] and result.error is None


def test_a_fault_in_the_notice_window_leaves_saving_unjudged() -> None:
    judged, _ = _judged([NOTICE, {"at": "70s", "s3": {"outage": True, "for": "60s"}}])
    assert "saved_before_deadline" not in judged  # it began before a prompt saver was done


def test_storage_trouble_once_a_prompt_saver_is_done_is_judged() -> None:
    """Notice at 60 s: a saver that acts at once is done by about 85 s; an outage from 100 s
    holds back only one that waited, so saving is judged, and the reference keeps it."""
    judged, result = _judged([NOTICE, {"at": "100s", "s3": {"outage": True, "for": "60s"}}])
    assert "saved_before_deadline" in judged
    assert result.broken_checks == [] and result.error is None


def test_a_late_saver_fails_under_trouble_a_prompt_one_outlives() -> None:
    slow = {"at": "100s", "s3": {"error": "SlowDown", "for": "5m"}}
    job = {**JOB, "checkpoint_every": "4m"}  # no periodic save falls in the lead
    judged, result = _judged([NOTICE, slow], target=_LATE, job=job)
    assert "saved_before_deadline" in judged
    assert [c.spec.name for c in result.broken_checks] == ["saved_before_deadline"]


def test_a_slow_link_is_counted_not_excused() -> None:
    """At 20 MB/s a 1 GiB state takes 54 s: a 180 s lead still holds two uploads, so saving is
    judged; at 5 MB/s it would not, and is left unjudged."""
    notice = {"at": "60s", "notice": {"action": "terminate", "lead": "180s"}}
    big = {**JOB, "state_size": "1GiB"}
    slow = {"at": "50s", "s3": {"bandwidth": "20MB/s", "for": "10m"}}
    judged, result = _judged([notice, slow], job=big)
    assert "saved_before_deadline" in judged and result.broken_checks == []
    slower = {**slow, "s3": {"bandwidth": "5MB/s", "for": "10m"}}
    judged, _ = _judged([notice, slower], job=big)
    assert "saved_before_deadline" not in judged


def test_a_fault_long_before_the_notice_changes_nothing() -> None:
    late = {"at": "300s", "notice": {"action": "terminate", "lead": "120s"}}
    judged, _ = _judged([{"at": "10s", "s3": {"outage": True, "for": "30s"}}, late])
    assert judged == ["saved_before_deadline", "detects_notice", "lost_work"]


def test_a_short_lead_leaves_saving_and_noticing_unjudged() -> None:
    judged, _ = _judged([{"at": "60s", "notice": {"action": "terminate", "lead": "5s"}}])
    assert judged == ["lost_work"]


def test_a_zombie_instance_leaves_lost_work_unjudged() -> None:
    judged, _ = _judged([{"at": "5s", "overlap": {"for": "60s"}}, NOTICE])
    assert "lost_work" not in judged


def test_the_bounds_follow_the_environment() -> None:
    slow = {
        "description": "x",
        "job": {**JOB, "state_size": "1GiB", "runtime": {"poll_interval": "10s"}},
        "env": {"s3": {"upload": "20MB/s"}},
        "timeline": [{"at": "1s", "notice": {"kind": "asg-termination", "lead": "120s"}}],
    }
    _, detects, lost = candidates(to_scenario(slow))
    # ASG lifecycle polled every 2m (+4s); 90s checkpoints, two saves of 1 GiB at 20 MB/s, slack.
    assert detects == {"detects_notice": {"within": "2m14s"}}
    assert lost == {"lost_work": {"at_most": "4m36s"}}


def test_a_target_blind_to_notices_fails_the_conditional_checks() -> None:
    judged, result = _judged([NOTICE], {"python": "harness.examples.broken:blind_on_401"})
    assert judged == ["saved_before_deadline", "detects_notice", "lost_work"]
    broken = {c.spec.name for c in result.broken_checks}
    assert {"saved_before_deadline", "detects_notice"} <= broken


def test_two_notices_at_once_leave_detection_unjudged() -> None:
    """A sighting names no notice: which one it answers is ambiguous, so detection is left out."""
    twice = [
        {"at": "101s", "notice": {"kind": "preempt", "lead": "280s"}},
        {"at": "102s", "notice": {"kind": "preempt", "lead": "30s"}},
    ]
    judged, result = _judged(twice, cloud="azure")
    assert len(result.history.of_kind("notice.seen")) == 2, "both reached the instance"
    assert "detects_notice" not in judged and "lost_work" in judged
