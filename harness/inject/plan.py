"""What an injection will do, as plain data: parsed from the command line, printed by
``--dry-run``, confirmed by the user, and only then applied by one of the injectors.

Nothing here performs I/O. Facts about the account (which instances exist, are they spot) come
from :mod:`harness.inject.preflight` and are passed in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from harness.errors import InputError
from harness.inject.template import (
    INSTANCE_ARN,
    INSTANCE_ID,
    TemplateError,
    instance_arn,
    lead_to_iso,
    selection_mode,
    spot_template,
    validate_template,
)
from harness.units import UnitError, format_duration, parse_duration

Via = Literal["fis", "agent", "ssm", "signal"]
VIAS: tuple[Via, ...] = ("fis", "agent", "ssm", "signal")
Action = Literal["terminate", "stop", "hibernate"]
ACTIONS: tuple[Action, ...] = ("terminate", "stop", "hibernate")
SsmMode = Literal["signal", "agent"]

_PID = re.compile(r"pid:(\d+)")
_S3_URL = re.compile(r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>.*))?")
#: How long the FIS notice comes before the interruption: the last two minutes of the lead.
NOTICE_BEFORE_DEADLINE = 120.0
#: Kinds the on-host agent schedules through ``POST /_harness/v1/notices``.
AGENT_KINDS = ("spot-interruption", "rebalance", "fis-spot-interruption")
#: Where ``--via ssm --ssm-run agent`` reaches the agent and its token, as seen on the host.
DEFAULT_AGENT_URL = "http://127.0.0.1:1338"
DEFAULT_AGENT_TOKEN_FILE = "/etc/spot-harness/agent-token"


class PlanError(InputError):
    """Input that cannot make a plan."""


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        match = _S3_URL.fullmatch(url.strip())
        if not match:
            raise PlanError(
                f"--expect-checkpoint {url!r} is not an S3 location; write s3://bucket/prefix"
            )
        return cls(match["bucket"], match["prefix"] or "")

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass(frozen=True)
class InjectRequest:
    """The command line, parsed but not yet checked against the world."""

    targets: tuple[str, ...] = ()
    via: Via | None = None
    action: Action | None = None  # None: terminate, or for FIS the instances' own behaviour
    lead: str = "2m"
    region: str | None = None
    role_arn: str | None = None
    stop_alarms: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    count: int | None = None
    percent: int | None = None
    preview: bool = False
    keep_template: bool = False
    force: bool = False
    wait: bool = True
    expect_checkpoint: str | None = None
    kind: str = "spot-interruption"
    signal: str = "TERM"
    pid: int | None = None
    process: str | None = None
    ssm_mode: SsmMode | None = None
    agent_url: str = DEFAULT_AGENT_URL
    agent_token_file: str = DEFAULT_AGENT_TOKEN_FILE


def resolve_via(request: InjectRequest) -> Via:
    """The injector for a request: explicit ``--via`` or guessed from the target's form."""
    if request.via is not None:
        return request.via
    if request.tags:
        return "fis"
    if not request.targets:
        raise PlanError("name what to interrupt: --target i-..., --target URL, --target pid:N")
    first = request.targets[0]
    if first.startswith(("http://", "https://")):
        return "agent"
    if _PID.fullmatch(first):
        return "signal"
    return "fis"


def parse_tags(pairs: Sequence[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise PlanError(f"--tag {pair!r} must be KEY=VALUE, for example --tag team=ml")
        tags[key] = value
    return tags


def parse_instance_ids(targets: Sequence[str]) -> tuple[str, ...]:
    """Instance ids from ``i-...`` or instance ARNs, comma-separated or repeated."""
    ids: list[str] = []
    for raw in targets:
        for item in filter(None, (part.strip() for part in raw.split(","))):
            match = INSTANCE_ARN.fullmatch(item)
            instance_id = match.group(1) if match else item
            if not INSTANCE_ID.fullmatch(instance_id):
                raise PlanError(
                    f"--target {item!r} is not an EC2 instance id (i-0123456789abcdef0) or "
                    "instance ARN"
                )
            if instance_id not in ids:
                ids.append(instance_id)
    return tuple(ids)


def parse_lead(lead: str) -> float:
    try:
        return parse_duration(lead)
    except UnitError as error:
        raise PlanError(f"--lead: {error}") from None


# -- facts gathered by the preflight ------------------------------------------------------------


@dataclass(frozen=True)
class InstanceFacts:
    instance_id: str
    state: str
    lifecycle: str  # "spot", "scheduled", "capacity-block" or "on-demand"
    instance_type: str = ""
    zone: str = ""
    name: str = ""
    #: The spot request's InstanceInterruptionBehavior (terminate, stop, hibernate), if known.
    interruption_behavior: str = ""

    def line(self) -> str:
        name = f" ({self.name})" if self.name else ""
        behaviour = (
            f"  on interruption: {self.interruption_behavior}" if self.interruption_behavior else ""
        )
        return (
            f"{self.instance_id}{name}  {self.instance_type or '?'}  {self.zone or '?'}  "
            f"{self.lifecycle}  {self.state}{behaviour}"
        )


@dataclass(frozen=True)
class AwsFacts:
    """The read-only answers the preflight got from AWS."""

    region: str
    account: str
    partition: str
    caller_arn: str
    instances: tuple[InstanceFacts, ...] = ()
    tag_matches: tuple[InstanceFacts, ...] = ()
    warnings: tuple[str, ...] = ()


#: Stands in for the account in an offline plan (an ARN needs one); no real account has it.
OFFLINE_ACCOUNT = "000000000000"


def offline_facts(request: InjectRequest, region: str, partition: str, why: str) -> AwsFacts:
    """Facts for a plan made without asking AWS (``--dry-run --offline``, or no credentials):
    the instances are taken as named, the account comes from ``--role-arn`` when it names one,
    and the plan says what was not checked."""
    role = _ROLE_ACCOUNT.match(request.role_arn or "")
    account = role.group(1) if role else OFFLINE_ACCOUNT
    instances = tuple(
        InstanceFacts(instance_id, state="not checked", lifecycle="not checked")
        for instance_id in parse_instance_ids(request.targets)
    )
    warnings = [
        f"OFFLINE ({why}): nothing was asked of AWS; the instances' state and lifecycle, the "
        "caller's permissions and FIS in this region are not checked",
    ]
    if not role:
        warnings.append(f"account {OFFLINE_ACCOUNT} stands in for yours (no --role-arn)")
    if request.tags:
        warnings.append("the tags are not resolved offline: FIS chooses among their matches")
    return AwsFacts(
        region=region,
        account=account,
        partition=partition,
        caller_arn="(not checked offline)",
        instances=instances,
        warnings=tuple(warnings),
    )


_ROLE_ACCOUNT = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):role/")


# -- plans ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FisPlan:
    region: str
    account: str
    caller_arn: str
    lead_seconds: float
    client_token: str
    template: Mapping[str, Any]
    instances: tuple[InstanceFacts, ...]
    tags: Mapping[str, str]
    selection: str
    preview: bool
    keep_template: bool
    wait: bool
    expect_checkpoint: S3Location | None
    warnings: tuple[str, ...] = ()
    via: Via = field(default="fis", init=False)

    def lines(self) -> list[str]:
        verb = "PREVIEW (actions skipped) of" if self.preview else "Spot interruption of"
        out = [
            f"{verb} {self._what()} via AWS FIS",
            f"  account  {self.account}   region {self.region}",
            f"  caller   {self.caller_arn}",
            f"  lead     {format_duration(self.lead_seconds)} (durationBeforeInterruption "
            f"{_lead_iso(self.template)}); rebalance recommendation at start, interruption "
            f"notice {format_duration(min(self.lead_seconds, NOTICE_BEFORE_DEADLINE))} before "
            "the instances are interrupted",
            f"  stop     {_stop_text(self.template)}",
            "  template deleted afterwards: "
            + ("no (--keep-template)" if self.keep_template else "yes"),
        ]
        out.extend(f"  target   {line.line()}" for line in self.instances)
        if self.tags:
            out.append(f"  selects  {self.selection} of instances tagged {_tag_text(self.tags)}")
        if self.expect_checkpoint:
            out.append(f"  verify   a checkpoint lands under {self.expect_checkpoint} in time")
        out.extend(f"  warning  {warning}" for warning in self.warnings)
        return out

    def _what(self) -> str:
        if self.tags:
            return f"{self.selection} of {len(self.instances)} running spot instances by tag"
        return f"{len(self.instances)} spot instance{'s' if len(self.instances) != 1 else ''}"

    def template_json(self) -> str:
        body = {"clientToken": self.client_token, **self.template}
        return json.dumps(body, indent=2, sort_keys=False)


def _lead_iso(template: Mapping[str, Any]) -> str:
    for action in template.get("actions", {}).values():
        return str(action["parameters"]["durationBeforeInterruption"])
    return "?"


def _stop_text(template: Mapping[str, Any]) -> str:
    alarms = [c["value"] for c in template.get("stopConditions", []) if c.get("value")]
    return "when alarm " + ", ".join(alarms) + " fires" if alarms else "no stop condition"


def _tag_text(tags: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(tags.items()))


def check_fis_request(request: InjectRequest, *, role_needed: bool = True) -> dict[str, str]:
    """What a FIS request gets wrong without asking AWS (tags, role, lead); returns the tags.

    Run before the preflight, so a typo is refused before any AWS call is made. A dry run may
    go without a role (``role_needed=False``): its template shows a placeholder."""
    tags = parse_tags(request.tags)
    if tags and request.targets:
        raise PlanError(
            "--target and --tag exclude each other (FIS targets name resources by ARN or by "
            "tag, never both); run two injections instead"
        )
    if not request.role_arn and role_needed:
        raise PlanError(
            "--role-arn is required for FIS: the IAM role FIS assumes to interrupt the "
            "instances (see docs/inject.md for its trust policy and permissions), or set "
            "HARNESS_FIS_ROLE_ARN"
        )
    try:
        lead_to_iso(request.lead)
        selection = selection_mode(request.count, request.percent)
    except TemplateError as error:
        raise PlanError("; ".join(error.problems)) from None
    if selection != "ALL" and not tags:
        raise PlanError(
            "--count and --percent choose among the instances --tag matches; add --tag KEY=VALUE "
            "(or name the instances with --target and drop them)"
        )
    return tags


def plan_fis(
    request: InjectRequest, facts: AwsFacts, client_token: str, *, role_needed: bool = True
) -> FisPlan:
    """Build and validate the FIS plan for a request against the preflight's facts.

    With ``role_needed=False`` (a dry run) a missing ``--role-arn`` becomes a placeholder and a
    warning instead of an error."""
    tags = check_fis_request(request, role_needed=role_needed)
    role_arn = request.role_arn or f"arn:{facts.partition}:iam::{facts.account}:role/{NO_ROLE}"
    targeted = facts.tag_matches if tags else facts.instances
    _check_action_for_fis(request.action, targeted)
    try:
        lead_iso = lead_to_iso(request.lead)
        selection = selection_mode(request.count, request.percent)
        arns = [
            instance_arn(facts.partition, facts.region, facts.account, i.instance_id)
            for i in facts.instances
        ]
        template = spot_template(
            description=_description(request, facts),
            role_arn=role_arn,
            lead_iso=lead_iso,
            instance_arns=arns,
            tags=tags or None,
            selection=selection,
            stop_alarm_arns=request.stop_alarms,
            template_tags={"created-by": "spot-harness", "harness:client-token": client_token},
        )
        validate_template(template)
    except TemplateError as error:
        raise PlanError(
            "the experiment template would be refused:\n  - " + "\n  - ".join(error.problems)
        ) from None
    return FisPlan(
        region=facts.region,
        account=facts.account,
        caller_arn=facts.caller_arn,
        lead_seconds=parse_lead(request.lead),
        client_token=client_token,
        template=template,
        instances=targeted,
        tags=tags,
        selection=selection,
        preview=request.preview,
        keep_template=request.keep_template,
        wait=request.wait,
        expect_checkpoint=expected_checkpoint(request),
        warnings=facts.warnings + ((NO_ROLE_WARNING,) if not request.role_arn else ()),
    )


#: The role name a dry run without ``--role-arn`` shows in its template.
NO_ROLE = "PASS-ROLE-ARN"
NO_ROLE_WARNING = f"no --role-arn: the template shows {NO_ROLE}; a real run needs the role"


def _description(request: InjectRequest, facts: AwsFacts) -> str:
    what = (
        "instances tagged " + ", ".join(request.tags)
        if request.tags
        else ", ".join(i.instance_id for i in facts.instances)
    )
    return f"spot-harness: spot interruption ({request.lead} lead) of {what}"


def expected_checkpoint(request: InjectRequest) -> S3Location | None:
    """Where ``--expect-checkpoint`` says a checkpoint must land, if it was given."""
    return S3Location.parse(request.expect_checkpoint) if request.expect_checkpoint else None


def _check_action_for_fis(action: Action | None, instances: Sequence[InstanceFacts]) -> None:
    """FIS cannot choose the action: the instance's interruption behaviour decides it."""
    if action is None:
        return
    for instance in instances:
        behaviour = instance.interruption_behavior
        if behaviour and behaviour != action:
            raise PlanError(
                f"--action {action}: {instance.instance_id} will {behaviour} when interrupted "
                "(its spot request's interruption behaviour decides, FIS cannot change it); "
                "omit --action, or rehearse other actions with --via agent"
            )


# -- agent, SSM and signal plans ------------------------------------------------------------------


@dataclass(frozen=True)
class AgentPlan:
    url: str
    kind: str
    action: Action
    lead_seconds: float
    wait: bool
    expect_checkpoint: S3Location | None
    has_token: bool
    via: Via = field(default="agent", init=False)

    def body(self) -> dict[str, Any]:
        """The ``POST /_harness/v1/notices`` body (a rebalance has no action and no lead)."""
        if self.kind == "rebalance":
            return {"kind": self.kind}
        return {
            "kind": self.kind,
            "action": self.action,
            "lead": format_duration(self.lead_seconds),
        }

    def lines(self) -> list[str]:
        return [
            f"Notice through the on-host agent at {self.url}",
            f"  notice   {self.kind}, action {self.action}, "
            f"lead {format_duration(self.lead_seconds)}",
            f"  request  POST {self.url.rstrip('/')}/_harness/v1/notices {json.dumps(self.body())}",
            f"  token    {'given (not shown)' if self.has_token else 'none'}",
            *(
                [f"  verify   a checkpoint lands under {self.expect_checkpoint} in time"]
                if self.expect_checkpoint
                else []
            ),
        ]


def plan_agent(request: InjectRequest, *, has_token: bool) -> AgentPlan:
    if len(request.targets) != 1:
        raise PlanError("--via agent takes exactly one --target http://host:port")
    url = request.targets[0].rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PlanError(f"--target {url!r}: the agent is addressed as http://host:port")
    check_agent_kind(request.kind)
    return AgentPlan(
        url=url,
        kind=request.kind,
        action=request.action or "terminate",
        lead_seconds=parse_lead(request.lead),
        wait=request.wait,
        expect_checkpoint=expected_checkpoint(request),
        has_token=has_token,
    )


def check_agent_kind(kind: str) -> None:
    if kind not in AGENT_KINDS:
        raise PlanError(f"--kind {kind!r}: the agent schedules {', '.join(AGENT_KINDS)}")


@dataclass(frozen=True)
class SignalPlan:
    pid: int
    signal: str
    action: Action
    lead_seconds: float
    wait: bool
    expect_checkpoint: S3Location | None
    via: Via = field(default="signal", init=False)

    def lines(self) -> list[str]:
        ending = {
            "terminate": f"SIGKILL after {format_duration(self.lead_seconds)} if still alive",
            "stop": f"SIGKILL after {format_duration(self.lead_seconds)} if still alive",
            "hibernate": "SIGSTOP at once (resume it with kill -CONT)",
        }[self.action]
        return [
            f"Signal to local process {self.pid}",
            f"  notice   SIG{self.signal} now",
            # hibernate freezes at once whether or not we wait; only the deadline kill waits
            f"  then     {ending}"
            if self.wait or self.action == "hibernate"
            else "  then     nothing (--no-wait)",
        ]


def plan_signal(request: InjectRequest, signal_names: Sequence[str]) -> SignalPlan:
    if len(request.targets) != 1 or not _PID.fullmatch(request.targets[0]):
        raise PlanError("--via signal takes exactly one --target pid:N, for example pid:4242")
    pid = int(request.targets[0].removeprefix("pid:"))
    return SignalPlan(
        pid=pid,
        signal=normalise_signal(request.signal, signal_names),
        action=request.action or "terminate",
        lead_seconds=parse_lead(request.lead),
        wait=request.wait,
        expect_checkpoint=expected_checkpoint(request),
    )


def normalise_signal(name: str, known: Sequence[str]) -> str:
    bare = name.upper().removeprefix("SIG")
    if bare not in known:
        raise PlanError(f"--signal {name!r} is not a signal here; use TERM, INT, USR1, ...")
    return bare


@dataclass(frozen=True)
class SsmPlan:
    region: str
    account: str
    caller_arn: str
    instances: tuple[InstanceFacts, ...]
    mode: SsmMode
    commands: tuple[str, ...]
    lead_seconds: float
    wait: bool
    expect_checkpoint: S3Location | None
    warnings: tuple[str, ...] = ()
    via: Via = field(default="ssm", init=False)

    def lines(self) -> list[str]:
        what = "a signal to a process" if self.mode == "signal" else "a notice via the local agent"
        out = [
            f"SSM Run Command (AWS-RunShellScript): {what} on {len(self.instances)} instance(s)",
            f"  account  {self.account}   region {self.region}",
            f"  caller   {self.caller_arn}",
        ]
        out.extend(f"  target   {i.line()}" for i in self.instances)
        out.extend(f"  command  {command}" for command in self.commands)
        out.extend(f"  warning  {warning}" for warning in self.warnings)
        return out


Plan = FisPlan | AgentPlan | SignalPlan | SsmPlan
