"""The harness's own validation of FIS templates (moto validates none of this)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.inject.template import (
    SPOT_ACTION_ID,
    TemplateError,
    instance_arn,
    lead_to_iso,
    selection_mode,
    spot_template,
    validate_template,
)

ROLE = "arn:aws:iam::123456789012:role/fis"
ALARM = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:errors"


def arns(n: int) -> list[str]:
    return [instance_arn("aws", "us-east-1", "123456789012", f"i-{k:017x}") for k in range(n)]


def good(**changes: Any) -> dict[str, Any]:
    template = spot_template(description="d", role_arn=ROLE, lead_iso="PT2M", instance_arns=arns(1))
    template.update(changes)
    return template


def problems(template: dict[str, Any]) -> list[str]:
    with pytest.raises(TemplateError) as caught:
        validate_template(template)
    return caught.value.problems


@pytest.mark.parametrize(
    ("lead", "iso"), [("2m", "PT2M"), ("PT5M", "PT5M"), ("150s", "PT2M30S"), ("15m", "PT15M")]
)
def test_lead_becomes_iso_duration_in_range(lead: str, iso: str) -> None:
    assert lead_to_iso(lead) == iso


@pytest.mark.parametrize("lead", ["90s", "1m59s", "15m1s", "1h", "PT1M"])
def test_lead_outside_pt2m_to_pt15m_is_refused_with_the_range(lead: str) -> None:
    with pytest.raises(TemplateError, match="PT2M to PT15M"):
        lead_to_iso(lead)


def test_unparseable_lead_names_the_grammar() -> None:
    with pytest.raises(TemplateError, match="--lead: expected a duration"):
        lead_to_iso("two minutes")


def test_a_built_template_is_valid_and_shaped_like_fis_wants() -> None:
    template = spot_template(
        description="d",
        role_arn=ROLE,
        lead_iso="PT3M",
        instance_arns=arns(2),
        stop_alarm_arns=[ALARM],
    )
    validate_template(template)
    assert template["targets"] == {
        "spot-instances": {
            "resourceType": "aws:ec2:spot-instance",
            "resourceArns": arns(2),
            "selectionMode": "ALL",
        }
    }
    action = template["actions"]["interrupt"]
    assert action["actionId"] == SPOT_ACTION_ID
    assert action["parameters"] == {"durationBeforeInterruption": "PT3M"}
    assert action["targets"] == {"SpotInstances": "spot-instances"}
    assert template["stopConditions"] == [{"source": "aws:cloudwatch:alarm", "value": ALARM}]


def test_more_than_five_instances_are_split_into_targets_of_five() -> None:
    template = spot_template(description="d", role_arn=ROLE, lead_iso="PT2M", instance_arns=arns(7))
    validate_template(template)
    sizes = [len(t["resourceArns"]) for t in template["targets"].values()]
    assert sizes == [5, 2]
    assert sorted(a["targets"]["SpotInstances"] for a in template["actions"].values()) == sorted(
        template["targets"]
    )


def test_tag_targets_carry_selection_mode_and_running_filter() -> None:
    template = spot_template(
        description="d", role_arn=ROLE, lead_iso="PT2M", tags={"team": "ml"}, selection="COUNT(2)"
    )
    validate_template(template)
    target = template["targets"]["spot-by-tag"]
    assert target["resourceTags"] == {"team": "ml"}
    assert target["selectionMode"] == "COUNT(2)"
    assert target["filters"] == [{"path": "State.Name", "values": ["running"]}]
    assert template["stopConditions"] == [{"source": "none"}]


def test_unknown_action_id_is_refused() -> None:
    template = good()
    template["actions"]["interrupt"]["actionId"] = "aws:ec2:send-spot-interruptions"
    assert problems(template) == [
        "actions.interrupt: unknown actionId 'aws:ec2:send-spot-interruptions'; the spot action "
        f"is {SPOT_ACTION_ID}"
    ]


@pytest.mark.parametrize("duration", ["PT1M", "PT16M", "PT1H", "PT2M0.5S"])
def test_duration_before_interruption_outside_the_range_is_refused(duration: str) -> None:
    template = good()
    template["actions"]["interrupt"]["parameters"]["durationBeforeInterruption"] = duration
    [problem] = problems(template)
    assert problem.startswith("actions.interrupt: durationBeforeInterruption")


def test_duration_that_is_not_iso_is_refused() -> None:
    template = good()
    template["actions"]["interrupt"]["parameters"]["durationBeforeInterruption"] = "2m"
    assert problems(template) == [
        "actions.interrupt: durationBeforeInterruption '2m' must be ISO-8601 such as PT2M"
    ]


def test_more_than_five_arns_in_one_target_is_refused() -> None:
    template = good()
    template["targets"]["spot-instances"]["resourceArns"] = arns(6)
    assert problems(template) == [
        "targets.spot-instances: 6 resourceArns, FIS allows at most 5 per target; split them "
        "over several targets"
    ]


def test_arns_and_tags_together_are_refused() -> None:
    template = good()
    template["targets"]["spot-instances"]["resourceTags"] = {"team": "ml"}
    assert problems(template) == [
        "targets.spot-instances: resourceArns and resourceTags exclude each other; use one"
    ]


@pytest.mark.parametrize("mode", ["SOME", "COUNT(0)", "PERCENT(0)", "PERCENT(101)", "count(2)"])
def test_bad_selection_modes_are_refused(mode: str) -> None:
    template = good()
    template["targets"]["spot-instances"]["selectionMode"] = mode
    [problem] = problems(template)
    assert problem.startswith("targets.spot-instances: selectionMode")


def test_action_pointing_at_a_missing_or_wrong_target_is_refused() -> None:
    template = good()
    template["actions"]["interrupt"]["targets"] = {"SpotInstances": "nope"}
    assert problems(template) == ["actions.interrupt.targets.SpotInstances: no target named 'nope'"]
    template = good()
    template["targets"]["spot-instances"]["resourceType"] = "aws:ec2:instance"
    assert "needs resourceType aws:ec2:spot-instance" in problems(template)[0]


def test_every_problem_is_reported_at_once() -> None:
    template = good(roleArn="not-a-role", stopConditions=[{"source": "aws:sns", "value": "x"}])
    template["targets"]["spot-instances"]["resourceArns"] = ["arn:aws:ec2:::volume/v-1"]
    found = problems(template)
    assert len(found) == 3
    assert found[0].startswith("roleArn 'not-a-role' is not an IAM role ARN")
    assert "is not an EC2 instance ARN" in found[1]
    assert "source 'aws:sns'" in found[2]


def test_bad_alarm_arn_and_none_mixed_with_alarms_are_refused() -> None:
    conditions = [{"source": "none"}, {"source": "aws:cloudwatch:alarm", "value": "alarm:x"}]
    found = problems(good(stopConditions=conditions))
    assert found == [
        "stopConditions: 'none' cannot be combined with alarms",
        "stopConditions[1]: 'alarm:x' is not a CloudWatch alarm ARN "
        "(arn:aws:cloudwatch:<region>:<account>:alarm:<name>)",
    ]


@pytest.mark.parametrize(
    ("count", "percent", "mode"),
    [(None, None, "ALL"), (3, None, "COUNT(3)"), (None, 25, "PERCENT(25)")],
)
def test_selection_mode_from_count_or_percent(
    count: int | None, percent: int | None, mode: str
) -> None:
    assert selection_mode(count, percent) == mode


@pytest.mark.parametrize(
    ("count", "percent", "message"),
    [(1, 10, "exclude each other"), (0, None, "at least 1"), (None, 0, "between 1 and 100")],
)
def test_selection_mode_refuses_bad_counts(
    count: int | None, percent: int | None, message: str
) -> None:
    with pytest.raises(TemplateError, match=message):
        selection_mode(count, percent)
