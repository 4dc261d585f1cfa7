"""detects_notice: a sighting in the cloud's own word for the notice's kind (Azure's ``reboot``)
names that notice, as it does for true_deadline (found by explore against the reference)."""

from __future__ import annotations

from harness.scenario.loader import load_text
from harness.sim.runner import run_scenario

AZURE_REBOOT = """
description: an Azure Reboot event, seen at once and reported as `reboot`
seed: 0
target: reference
job: {items: 480, seconds_per_item: 1s, checkpoint_every: 90s, state_size: 1GiB, output_every: 40}
env: {cloud: azure, replacement: {delay: 5s}, disk: {write: 100MB/s}}
timeline:
  - {at: 0s, notice: {kind: reboot, lead: 30s}}
expect:
  - detects_notice: {within: 19s}
"""


def test_a_reboot_reported_as_reboot_counts_as_seen() -> None:
    (loaded,) = load_text(AZURE_REBOOT, file="<test>")
    result = run_scenario(loaded.scenario)
    (seen,) = result.history.of_kind("notice.seen")
    (issued,) = result.history.of_kind("notice.issued")
    assert (seen.data["action"], issued.data["action"]) == ("reboot", "stop")
    (detects,) = result.checks
    assert detects.result.status == "passed", detects.result.violations


GCP_STOPPING_PREEMPTION = """
description: a GCP preemption of a VM whose termination action is STOP, seen at once
seed: 0
target: reference
job: {items: 480, seconds_per_item: 1s, checkpoint_every: 90s, state_size: 1GiB, output_every: 40}
env: {cloud: gcp, replacement: {delay: 5s}, s3: {upload: 20MB/s, download: 200MB/s}}
timeline:
  - {at: 0s, notice: {kind: preemption, action: stop}}
expect:
  - detects_notice: {within: 19s}
  - true_deadline
"""


def test_a_notice_whose_signal_names_no_action_is_named_by_any_interrupting_word() -> None:
    """Found by explore against the reference: GCP's preempted flag and soft off do not say
    whether the VM is stopped or deleted, so the reference reports `terminate`; detects_notice
    took that for another notice, and true_deadline judged nothing."""
    (loaded,) = load_text(GCP_STOPPING_PREEMPTION, file="<test>")
    result = run_scenario(loaded.scenario)
    said = {e.data.get("effect") for e in result.history.of_kind("notice.seen")}
    (issued,) = result.history.of_kind("notice.issued")
    assert (said, issued.data["action"]) == ({"terminate"}, "stop")
    verdicts = {c.spec.name: (c.result.status, c.result.unverified) for c in result.checks}
    assert verdicts == {"detects_notice": ("passed", False), "true_deadline": ("passed", False)}


def test_an_aws_notice_is_still_named_by_its_own_action_only() -> None:
    """The AWS instance-action names its action: a stop reported as a termination is not it."""
    from harness.checks.oracles import names_notice
    from harness.checks.view import Notice
    from harness.history import Event

    def event(kind: str, **data: object) -> Event:
        return Event(seq=1, t=0.0, source="harness", kind=kind, instance="i-1", data=data)

    aws_stop = Notice(
        event("notice.issued", cloud="aws", notice_kind="spot-interruption", action="stop"), None
    )
    gcp_stop = Notice(
        event("notice.issued", cloud="gcp", notice_kind="preemption", action="stop"), None
    )
    terminate = event("notice.seen", effect="terminate")
    assert not names_notice(terminate, aws_stop)
    assert names_notice(terminate, gcp_stop)
    assert names_notice(event("notice.seen", effect="stop"), aws_stop)
