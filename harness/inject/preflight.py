"""Read-only checks against the account before anything changes: who we are, whether the region
offers FIS, whether the instances exist, run and are spot, whether the stop alarms exist.

Every AWS client is injected (:class:`AwsClients`), so tests hand in moto-backed ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

from harness.errors import EnvironmentProblem, HarnessError, InputError
from harness.inject.plan import AwsFacts, InjectRequest, InstanceFacts, parse_tags

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_fis import FISClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_sts import STSClient


@dataclass(frozen=True)
class AwsClients:
    """The AWS clients an injection may use, all for one region."""

    region: str
    ec2: EC2Client
    sts: STSClient
    fis: FISClient
    ssm: SSMClient
    s3: S3Client
    cloudwatch: CloudWatchClient

    @classmethod
    def from_session(cls, session: boto3.Session) -> AwsClients:
        region = session.region_name
        if not region:
            raise InputError(
                "no AWS region: pass --region, or set AWS_REGION / a profile's region",
            )
        return cls(
            region=region,
            ec2=session.client("ec2"),
            sts=session.client("sts"),
            fis=session.client("fis"),
            ssm=session.client("ssm"),
            s3=session.client("s3"),
            cloudwatch=session.client("cloudwatch"),
        )


def aws_errors(what: str) -> Callable[[Exception], HarnessError]:
    """Turn a boto error into an actionable message; never includes credentials."""

    def convert(error: Exception) -> HarnessError:
        if isinstance(error, NoCredentialsError):
            return EnvironmentProblem(
                f"{what}: no AWS credentials found; configure a profile (--profile) or the "
                "usual AWS_* environment variables",
            )
        if isinstance(error, NoRegionError):
            return InputError(f"{what}: no AWS region; pass --region")
        if isinstance(error, ClientError):
            info = error.response.get("Error", {})
            return EnvironmentProblem(
                f"{what}: {info.get('Code', 'error')}: {info.get('Message', '')}".rstrip(": "),
            )
        return EnvironmentProblem(f"{what}: {error}")

    return convert


def call(what: str, function: Callable[..., Any], **kwargs: Any) -> Any:
    """Call an AWS API, mapping its failures to :class:`HarnessError` naming ``what``."""
    try:
        return function(**kwargs)
    except (ClientError, BotoCoreError) as error:
        raise aws_errors(what)(error) from None


def partition_of(region: str) -> str:
    return boto3.Session().get_partition_for_region(region)


def preflight_aws(
    clients: AwsClients, request: InjectRequest, *, need_fis: bool, instance_ids: Sequence[str]
) -> AwsFacts:
    """Identity, region, instances (or tag matches) and alarms, read-only."""
    partition = partition_of(clients.region)
    identity = call(
        "checking the caller identity (sts:GetCallerIdentity)", clients.sts.get_caller_identity
    )
    warnings: list[str] = []
    instances: tuple[InstanceFacts, ...] = ()
    matches: tuple[InstanceFacts, ...] = ()
    if instance_ids:
        instances = describe(clients.ec2, instance_ids)
        _check_instances(instances, force=request.force)
    tags = parse_tags(request.tags)
    if tags:
        matches = _tag_matches(clients.ec2, tags)
        warnings.extend(_selection_warnings(request, matches))
    _check_alarms(clients.cloudwatch, request.stop_alarms)
    if need_fis:
        _check_fis_offered(clients)
    return AwsFacts(
        region=clients.region,
        account=identity["Account"],
        partition=partition,
        caller_arn=identity["Arn"],
        instances=instances,
        tag_matches=matches,
        warnings=tuple(warnings),
    )


def describe(ec2: EC2Client, instance_ids: Sequence[str]) -> tuple[InstanceFacts, ...]:
    """Facts about each instance, in the order asked; unknown ids are an error."""
    try:
        reply = ec2.describe_instances(InstanceIds=list(instance_ids))
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code.startswith("InvalidInstanceID"):
            message = error.response.get("Error", {}).get("Message", "")
            raise InputError(
                f"no such instance in this account and region: {message} "
                "(check --region and the id)",
            ) from None
        raise aws_errors("describing the instances (ec2:DescribeInstances)")(error) from None
    except BotoCoreError as error:
        raise aws_errors("describing the instances (ec2:DescribeInstances)")(error) from None
    found = {fact.instance_id: fact for fact in _facts(ec2, _instances(reply))}
    missing = [i for i in instance_ids if i not in found]
    if missing:
        raise InputError(f"no such instance: {', '.join(missing)}")
    return tuple(found[i] for i in instance_ids)


def _instances(reply: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    for reservation in reply.get("Reservations", []):
        yield from reservation.get("Instances", [])


def _facts(ec2: EC2Client, raw: Iterable[Mapping[str, Any]]) -> list[InstanceFacts]:
    raw = list(raw)
    behaviours = _interruption_behaviours(
        ec2, [r["SpotInstanceRequestId"] for r in raw if r.get("SpotInstanceRequestId")]
    )
    return [
        InstanceFacts(
            instance_id=r["InstanceId"],
            state=r.get("State", {}).get("Name", "unknown"),
            lifecycle=r.get("InstanceLifecycle", "on-demand"),
            instance_type=r.get("InstanceType", ""),
            zone=r.get("Placement", {}).get("AvailabilityZone", ""),
            name=next((t["Value"] for t in r.get("Tags", []) if t.get("Key") == "Name"), ""),
            interruption_behavior=behaviours.get(r.get("SpotInstanceRequestId", ""), ""),
        )
        for r in raw
    ]


def _interruption_behaviours(ec2: EC2Client, request_ids: list[str]) -> dict[str, str]:
    if not request_ids:
        return {}
    try:
        reply = ec2.describe_spot_instance_requests(SpotInstanceRequestIds=request_ids)
    except (ClientError, BotoCoreError):
        return {}  # informational only: FIS still works without it
    return {
        r["SpotInstanceRequestId"]: r.get("InstanceInterruptionBehavior", "terminate")
        for r in reply.get("SpotInstanceRequests", [])
    }


def _check_instances(instances: Sequence[InstanceFacts], *, force: bool) -> None:
    not_running = [i for i in instances if i.state != "running"]
    if not_running:
        raise InputError(
            "only running instances can be interrupted: "
            + ", ".join(f"{i.instance_id} is {i.state}" for i in not_running),
        )
    not_spot = [i for i in instances if i.lifecycle != "spot"]
    if not_spot and not force:
        raise InputError(
            "refusing to inject into instances that are not spot instances: "
            + ", ".join(f"{i.instance_id} ({i.lifecycle})" for i in not_spot)
            + "; pass --force if you really mean it",
        )


def _tag_matches(ec2: EC2Client, tags: Mapping[str, str]) -> tuple[InstanceFacts, ...]:
    filters: list[Any] = [{"Name": f"tag:{key}", "Values": [value]} for key, value in tags.items()]
    filters.append({"Name": "instance-state-name", "Values": ["running"]})
    reply = call(
        "finding instances by tag (ec2:DescribeInstances)",
        ec2.describe_instances,
        Filters=filters,
    )
    # FIS's aws:ec2:spot-instance targets only spot instances; filter here, not in the call,
    # so the answer is the same whichever EC2 filters an endpoint implements.
    spot = [i for i in _instances(reply) if i.get("InstanceLifecycle") == "spot"]
    matches = tuple(sorted(_facts(ec2, spot), key=lambda f: f.instance_id))
    if not matches:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))
        raise InputError(
            f"no running spot instance is tagged {shown} in this region; check --tag and --region",
        )
    return matches


def _selection_warnings(request: InjectRequest, matches: Sequence[InstanceFacts]) -> list[str]:
    if request.count is not None and request.count > len(matches):
        return [
            f"--count {request.count} asks for more than the {len(matches)} matching instances; "
            "FIS will interrupt all of them"
        ]
    return []


def _check_fis_offered(clients: AwsClients) -> None:
    """A read-only FIS call: proves the region has an FIS endpoint and we may read it."""
    try:
        clients.fis.list_experiment_templates(maxResults=1)
    except EndpointConnectionError:
        raise EnvironmentProblem(
            f"AWS FIS is not reachable in {clients.region} (no endpoint answered); pick a region "
            "where FIS is offered, or use --via agent / --via ssm",
        ) from None
    except (ClientError, BotoCoreError) as error:
        raise aws_errors("checking FIS (fis:ListExperimentTemplates)")(error) from None


def _check_alarms(cloudwatch: CloudWatchClient, alarm_arns: Sequence[str]) -> None:
    for arn in alarm_arns:
        name = arn.split(":alarm:", 1)[-1]
        reply = call(
            "checking the stop alarm (cloudwatch:DescribeAlarms)",
            cloudwatch.describe_alarms,
            AlarmNames=[name],
        )
        found = [a.get("AlarmArn") for a in reply.get("MetricAlarms", [])]
        found += [a.get("AlarmArn") for a in reply.get("CompositeAlarms", [])]
        if arn not in found:
            raise InputError(
                f"--stop-alarm {arn}: no such CloudWatch alarm in this account and region",
            )
