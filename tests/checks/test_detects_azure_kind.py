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
