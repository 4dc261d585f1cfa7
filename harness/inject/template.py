"""FIS experiment templates for spot interruptions: built and validated here, with no I/O.

AWS FIS validates templates server side, but moto validates nothing, so the harness checks every
template it builds against the rules FIS enforces for this action before anything is sent: known
action ids, ``durationBeforeInterruption`` within PT2M..PT15M, at most 5 ARNs per target, ARNs
or tags (never both), and ``ALL`` / ``COUNT(n)`` / ``PERCENT(n)`` selection modes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from harness.errors import InputError
from harness.units import UnitError, iso_duration, parse_duration

SPOT_ACTION_ID = "aws:ec2:send-spot-instance-interruptions"
SPOT_RESOURCE_TYPE = "aws:ec2:spot-instance"
#: The target key the spot-interruption action uses for its instances.
SPOT_TARGET_KEY = "SpotInstances"
MIN_LEAD_SECONDS = 120.0
MAX_LEAD_SECONDS = 900.0
MAX_ARNS_PER_TARGET = 5
MAX_DESCRIPTION_CHARS = 512

#: FIS action ids for EC2 and FIS itself, with the resource type each one targets (None: no
#: target). A template naming anything else is refused before it reaches AWS.
KNOWN_ACTIONS: Mapping[str, str | None] = {
    SPOT_ACTION_ID: SPOT_RESOURCE_TYPE,
    "aws:ec2:stop-instances": "aws:ec2:instance",
    "aws:ec2:reboot-instances": "aws:ec2:instance",
    "aws:ec2:terminate-instances": "aws:ec2:instance",
    "aws:ec2:api-insufficient-instance-capacity-error": "aws:iam:role",
    "aws:ec2:asg-insufficient-instance-capacity-error": "aws:ec2:autoscaling-group",
    "aws:fis:wait": None,
    "aws:fis:inject-api-internal-error": "aws:iam:role",
    "aws:fis:inject-api-throttle-error": "aws:iam:role",
    "aws:fis:inject-api-unavailable-error": "aws:iam:role",
}

_SELECTION = re.compile(r"ALL|COUNT\((?P<count>\d+)\)|PERCENT\((?P<percent>\d+)\)")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
_ALARM_ARN = re.compile(r"arn:aws[a-z-]*:cloudwatch:[a-z0-9-]+:\d{12}:alarm:.+")
#: An EC2 instance id, and an instance ARN whose group 1 is the id.
INSTANCE_ID = re.compile(r"i-[0-9a-f]{8,17}")
INSTANCE_ARN = re.compile(
    r"arn:aws[a-z-]*:ec2:[a-z0-9-]+:\d{12}:instance/(" + INSTANCE_ID.pattern + ")"
)


class TemplateError(InputError):
    """A template FIS would refuse; ``problems`` lists every reason, each naming its field."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def lead_to_iso(lead: str | float) -> str:
    """``durationBeforeInterruption`` for a lead such as ``2m`` or ``PT5M``, range-checked."""
    try:
        seconds = parse_duration(lead)
    except UnitError as error:
        raise TemplateError([f"--lead: {error}"]) from None
    problem = _lead_problem(seconds, f"{lead!r}")
    if problem:
        raise TemplateError([f"--lead: {problem}"])
    return iso_duration(seconds)


def _lead_problem(seconds: float, shown: str) -> str | None:
    if not MIN_LEAD_SECONDS <= seconds <= MAX_LEAD_SECONDS:
        return (
            f"{shown} is outside the range FIS accepts for durationBeforeInterruption "
            "(PT2M to PT15M); use a lead between 2m and 15m"
        )
    if seconds != round(seconds):
        return f"{shown} is not a whole number of seconds"
    return None


def selection_mode(count: int | None = None, percent: int | None = None) -> str:
    """``ALL``, ``COUNT(n)`` or ``PERCENT(p)``; count and percent exclude each other."""
    if count is not None and percent is not None:
        raise TemplateError(["--count and --percent exclude each other; pick one"])
    if count is not None:
        if count < 1:
            raise TemplateError([f"--count must be at least 1, got {count}"])
        return f"COUNT({count})"
    if percent is not None:
        if not 1 <= percent <= 100:
            raise TemplateError([f"--percent must be between 1 and 100, got {percent}"])
        return f"PERCENT({percent})"
    return "ALL"


def instance_arn(partition: str, region: str, account: str, instance_id: str) -> str:
    return f"arn:{partition}:ec2:{region}:{account}:instance/{instance_id}"


def spot_template(
    *,
    description: str,
    role_arn: str,
    lead_iso: str,
    instance_arns: Sequence[str] = (),
    tags: Mapping[str, str] | None = None,
    selection: str = "ALL",
    stop_alarm_arns: Sequence[str] = (),
    template_tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``create_experiment_template`` arguments (without ``clientToken``).

    Instances named by ARN are split into targets of at most 5, each with its own action (FIS
    allows 5 ARNs per target); tag targeting uses one target with the selection mode and a
    filter for running instances.
    """
    targets: dict[str, Any] = {}
    if tags:
        targets["spot-by-tag"] = {
            "resourceType": SPOT_RESOURCE_TYPE,
            "resourceTags": dict(tags),
            "filters": [{"path": "State.Name", "values": ["running"]}],
            "selectionMode": selection,
        }
    chunks = [
        list(instance_arns[i : i + MAX_ARNS_PER_TARGET])
        for i in range(0, len(instance_arns), MAX_ARNS_PER_TARGET)
    ]
    for number, chunk in enumerate(chunks, start=1):
        name = "spot-instances" if len(chunks) == 1 else f"spot-instances-{number}"
        targets[name] = {
            "resourceType": SPOT_RESOURCE_TYPE,
            "resourceArns": chunk,
            "selectionMode": selection,
        }
    actions = {
        _action_name(name, len(targets)): {
            "actionId": SPOT_ACTION_ID,
            "description": f"spot interruption, {lead_iso} before the instances are interrupted",
            "parameters": {"durationBeforeInterruption": lead_iso},
            "targets": {SPOT_TARGET_KEY: name},
        }
        for name in targets
    }
    stop_conditions = [
        {"source": "aws:cloudwatch:alarm", "value": arn} for arn in stop_alarm_arns
    ] or [{"source": "none"}]
    return {
        "description": description[:MAX_DESCRIPTION_CHARS],
        "roleArn": role_arn,
        "targets": targets,
        "actions": actions,
        "stopConditions": stop_conditions,
        "tags": dict(template_tags or {}),
    }


def _action_name(target_name: str, target_count: int) -> str:
    if target_count == 1:
        return "interrupt"
    return "interrupt-" + target_name.removeprefix("spot-instances-").removeprefix("spot-")


def validate_template(template: Mapping[str, Any]) -> None:
    """Raise :class:`TemplateError` listing every rule the template breaks."""
    problems: list[str] = []
    role = template.get("roleArn")
    if not isinstance(role, str) or not _ROLE_ARN.fullmatch(role):
        problems.append(
            f"roleArn {role!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>); "
            "pass --role-arn"
        )
    description = template.get("description", "")
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION_CHARS:
        problems.append(f"description must be text of at most {MAX_DESCRIPTION_CHARS} chars")
    targets = template.get("targets") or {}
    for name, target in targets.items():
        problems.extend(_target_problems(name, target))
    actions = template.get("actions") or {}
    if not actions:
        problems.append("actions: a template needs at least one action")
    for name, action in actions.items():
        problems.extend(_action_problems(name, action, targets))
    problems.extend(_stop_condition_problems(template.get("stopConditions") or []))
    if problems:
        raise TemplateError(problems)


def _target_problems(name: str, target: Mapping[str, Any]) -> list[str]:
    where = f"targets.{name}"
    problems: list[str] = []
    arns = target.get("resourceArns") or []
    tags = target.get("resourceTags") or {}
    if arns and tags:
        problems.append(f"{where}: resourceArns and resourceTags exclude each other; use one")
    if not arns and not tags and not target.get("filters"):
        problems.append(f"{where}: name instances by resourceArns, resourceTags or filters")
    if len(arns) > MAX_ARNS_PER_TARGET:
        problems.append(
            f"{where}: {len(arns)} resourceArns, FIS allows at most {MAX_ARNS_PER_TARGET} per "
            "target; split them over several targets"
        )
    if target.get("resourceType") == SPOT_RESOURCE_TYPE:
        problems.extend(
            f"{where}: {arn!r} is not an EC2 instance ARN"
            for arn in arns
            if not INSTANCE_ARN.fullmatch(str(arn))
        )
    mode = str(target.get("selectionMode", ""))
    match = _SELECTION.fullmatch(mode)
    if not match:
        problems.append(f"{where}: selectionMode {mode!r} must be ALL, COUNT(n) or PERCENT(n)")
    elif match["count"] is not None and int(match["count"]) < 1:
        problems.append(f"{where}: selectionMode {mode} must select at least one instance")
    elif match["percent"] is not None and not 1 <= int(match["percent"]) <= 100:
        problems.append(f"{where}: selectionMode {mode} needs a percentage from 1 to 100")
    return problems


def _action_problems(name: str, action: Mapping[str, Any], targets: Mapping[str, Any]) -> list[str]:
    where = f"actions.{name}"
    action_id = str(action.get("actionId"))
    if action_id not in KNOWN_ACTIONS:
        return [f"{where}: unknown actionId {action_id!r}; the spot action is {SPOT_ACTION_ID}"]
    problems: list[str] = []
    wanted_type = KNOWN_ACTIONS[action_id]
    for key, target_name in (action.get("targets") or {}).items():
        target = targets.get(target_name)
        if target is None:
            problems.append(f"{where}.targets.{key}: no target named {target_name!r}")
        elif wanted_type is not None and target.get("resourceType") != wanted_type:
            problems.append(
                f"{where}.targets.{key}: {action_id} needs resourceType {wanted_type}, "
                f"target {target_name!r} has {target.get('resourceType')!r}"
            )
    if action_id == SPOT_ACTION_ID:
        problems.extend(_spot_parameter_problems(where, action.get("parameters") or {}))
    return problems


def _spot_parameter_problems(where: str, parameters: Mapping[str, Any]) -> list[str]:
    value = parameters.get("durationBeforeInterruption")
    if value is None:
        return [f"{where}: parameters.durationBeforeInterruption is required"]
    if not isinstance(value, str) or not value.upper().startswith("PT"):
        return [f"{where}: durationBeforeInterruption {value!r} must be ISO-8601 such as PT2M"]
    try:
        seconds = parse_duration(value)
    except UnitError:
        return [f"{where}: durationBeforeInterruption {value!r} is not an ISO-8601 duration"]
    problem = _lead_problem(seconds, f"durationBeforeInterruption {value}")
    return [f"{where}: {problem}"] if problem else []


def _stop_condition_problems(conditions: Sequence[Mapping[str, Any]]) -> list[str]:
    problems: list[str] = []
    for index, condition in enumerate(conditions):
        source = condition.get("source")
        value = condition.get("value")
        if source == "none":
            if len(conditions) > 1:
                problems.append("stopConditions: 'none' cannot be combined with alarms")
        elif source == "aws:cloudwatch:alarm":
            if not isinstance(value, str) or not _ALARM_ARN.fullmatch(value):
                problems.append(
                    f"stopConditions[{index}]: {value!r} is not a CloudWatch alarm ARN "
                    "(arn:aws:cloudwatch:<region>:<account>:alarm:<name>)"
                )
        else:
            problems.append(
                f"stopConditions[{index}]: source {source!r} must be 'none' or "
                "'aws:cloudwatch:alarm'"
            )
    return problems
