"""Azure: approving a scheduled event (StartRequests) starts it at once in the simulated world,
the history records the approval, and detects_notice judges the Azure notice for real."""

from __future__ import annotations

from pathlib import Path

from harness.history import Kind
from harness.scenario.loader import load_file, load_text
from harness.scenario.model import Scenario, TargetSpec
from harness.sim.runner import RunResult, run_scenario
from harness.sim.timeline import NOTICE_APPROVED

PREEMPT = Path(__file__).resolve().parents[2] / "scenarios" / "azure" / "preempt.yaml"
NOT_BEFORE = 270.0  # the notice at 4m with 30 s of lead


def preempt(target: TargetSpec | None = None) -> RunResult:
    (loaded,) = load_file(PREEMPT)
    scenario: Scenario = loaded.scenario
    if target is not None:
        scenario = scenario.model_copy(update={"target": target})
    return run_scenario(scenario)


def first_instance_events(result: RunResult) -> list[tuple[str, float]]:
    first = next(e.instance for e in result.history if e.kind == Kind.INSTANCE_STARTED)
    wanted = {
        Kind.NOTICE_ISSUED,
        Kind.NOTICE_SEEN,
        NOTICE_APPROVED,
        Kind.NOTICE_DEADLINE,
        Kind.INSTANCE_KILLED,
    }
    return [
        (e.kind, e.t)
        for e in result.history
        if e.instance == first
        and (
            e.kind in wanted
            or (e.kind == Kind.CHECKPOINT_DURABLE and e.data.get("tier") == "s3" and e.t > 240)
        )
    ]


def test_an_approved_preempt_starts_at_once_and_the_history_says_so() -> None:
    result = preempt()
    assert result.status == "passed"
    events = first_instance_events(result)
    assert [kind for kind, _ in events] == [
        Kind.NOTICE_ISSUED,
        Kind.NOTICE_SEEN,
        Kind.CHECKPOINT_DURABLE,  # the emergency save lands first ...
        NOTICE_APPROVED,  # ... then the event is approved ...
        Kind.NOTICE_DEADLINE,  # ... and starts then, not at NotBefore
        Kind.INSTANCE_KILLED,
    ]
    times = dict(events)
    assert times[NOTICE_APPROVED] == times[Kind.INSTANCE_KILLED] < NOT_BEFORE
    approved = next(e for e in result.history if e.kind == NOTICE_APPROVED)
    assert approved.source == "harness" and approved.data["notice_id"] == "notice-0001"
    replacement = [e for e in result.history if e.kind == Kind.INSTANCE_STARTED][1]
    assert replacement.t < NOT_BEFORE + 30.0  # the platform went on early: so did the fleet


def test_detects_notice_judges_the_azure_notice_it_saw() -> None:
    result = preempt()
    (detects,) = [c.result for c in result.checks if c.spec.name == "detects_notice"]
    assert detects.status == "passed" and detects.summary == "1 notice(s) seen"


def test_a_handler_blind_to_azure_event_types_fails_detects_notice_and_approves_nothing() -> None:
    result = preempt(TargetSpec(python="harness.examples.broken:azure_lowercase_types"))
    (detects,) = [c.result for c in result.checks if c.spec.name == "detects_notice"]
    assert detects.status == "failed"
    (violation,) = detects.violations
    assert "never reported seeing notice notice-0001 (terminate) issued at t=4m" in (
        violation.message
    )
    events = first_instance_events(result)
    assert [kind for kind, _ in events] == [
        Kind.NOTICE_ISSUED,
        Kind.NOTICE_DEADLINE,
        Kind.INSTANCE_KILLED,
    ]
    assert dict(events)[Kind.INSTANCE_KILLED] == NOT_BEFORE


def test_the_reference_approves_nothing_when_its_save_does_not_make_it() -> None:
    """Found by explore: 1 GiB over a 20 MB/s link does not fit a 30 s Preempt. Approving
    anyway would start the event with the work unsaved; the runtime lets the deadline come."""
    text = """\
description: a save that cannot fit an Azure Preempt's lead
seed: 0
target: reference
job: {items: 480, seconds_per_item: 1s, checkpoint_every: 90s, state_size: 1GiB}
env: {cloud: azure, s3: {upload: 20MB/s}}
timeline:
  - at: 1s
    notice: {kind: preempt, lead: 30s}
expect: [approved_after_save, resume_correct]
"""
    result = run_scenario(load_text(text, "slow_preempt.yaml")[0].scenario)
    events = first_instance_events(result)
    assert [kind for kind, _ in events] == [
        Kind.NOTICE_ISSUED,
        Kind.NOTICE_SEEN,
        Kind.NOTICE_DEADLINE,  # no approval: the event starts at NotBefore
        Kind.INSTANCE_KILLED,
    ]
    verdicts = {c.spec.name: c.result.status for c in result.checks}
    assert verdicts == {"approved_after_save": "unverified", "resume_correct": "passed"}
