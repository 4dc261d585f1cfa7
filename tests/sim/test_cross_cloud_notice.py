"""A scenario notice that lands on a replacement of another cloud takes that cloud's nearest
action (found by explore: an AWS hibernation reaching a GCP replacement was refused)."""

from __future__ import annotations

from fake_imds.vocabulary import nearest_action
from harness.scenario.loader import load_text
from harness.sim.runner import run_scenario

HIBERNATE_ON_GCP = """
description: an AWS instance is interrupted; its replacement on GCP gets a hibernation notice
seed: 0
job: {items: 480, seconds_per_item: 1s, checkpoint_every: 90s, state_size: 64MiB, output_every: 40}
env: {cloud: aws, imdsv2: required, replacement: {delay: 5s, cloud: gcp}}
timeline:
  - at: 0s
    notice: {action: terminate, lead: 120s}
  - at: 126s
    notice: {action: hibernate, lead: 0s}
expect: [exactly_once, resume_correct, durable, {completes: {within: 6h}}]
"""


def test_a_hibernation_reaching_a_gcp_replacement_is_a_stop() -> None:
    (loaded,) = load_text(HIBERNATE_ON_GCP, file="<test>")
    result = run_scenario(loaded.scenario)
    assert result.error is None, result.error
    issued = [
        (e.data.get("cloud"), e.data.get("action")) for e in result.history.of_kind("notice.issued")
    ]
    assert issued == [("aws", "terminate"), ("gcp", "stop")]
    assert result.status == "passed"


def test_nearest_action_keeps_what_a_cloud_offers() -> None:
    assert nearest_action("aws", "hibernate") == "hibernate"
    assert nearest_action("gcp", "hibernate") == "stop"
    assert nearest_action("azure", "stop") == "terminate"


def test_a_notice_reaching_an_azure_replacement_gets_azures_shortest_lead() -> None:
    on_azure = HIBERNATE_ON_GCP.replace("cloud: gcp}", "cloud: azure}")
    (loaded,) = load_text(on_azure, file="<test>")
    result = run_scenario(loaded.scenario)
    assert result.error is None, result.error
    second = result.history.of_kind("notice.issued")[1]
    assert (second.data.get("cloud"), second.data.get("lead")) == ("azure", 30.0)
