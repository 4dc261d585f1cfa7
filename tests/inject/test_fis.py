"""Preflight, plan and apply through FIS against moto (EC2, FIS, CloudWatch, STS)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from harness.cli import EXIT_USAGE, exit_code
from harness.errors import HarnessError
from harness.inject.fis import FisInjector, Progress, status_text, summary
from harness.inject.plan import AwsFacts, InjectRequest, InstanceFacts, PlanError, plan_fis
from harness.inject.preflight import AwsClients, preflight_aws
from harness.inject.status import StatusLine
from tests.inject.conftest import (
    REGION,
    ROLE_ARN,
    FakeTime,
    experiments,
    run_on_demand,
    run_spot,
    templates,
)

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import TagSpecificationTypeDef


def fis_plan(clients: AwsClients, ids: list[str], **options: Any) -> Any:
    request = InjectRequest(targets=tuple(ids), role_arn=ROLE_ARN, **options)
    facts = preflight_aws(clients, request, need_fis=True, instance_ids=ids)
    return plan_fis(request, facts, client_token="token-0001")


def injector(clients: AwsClients, status: StatusLine, fake_time: FakeTime) -> FisInjector:
    return FisInjector(clients, status, fake_time.timekeeper(), poll_every=5.0, stop_polls=5)


# -- preflight ---------------------------------------------------------------------------------


def test_preflight_reports_identity_and_spot_instances(clients: AwsClients) -> None:
    [instance_id] = run_spot(clients)
    request = InjectRequest(targets=(instance_id,))
    facts = preflight_aws(clients, request, need_fis=True, instance_ids=[instance_id])
    assert facts.account == "123456789012"
    assert facts.region == REGION
    assert facts.partition == "aws"
    [instance] = facts.instances
    assert (instance.instance_id, instance.lifecycle, instance.state) == (
        instance_id,
        "spot",
        "running",
    )
    assert instance.instance_type == "g5.xlarge"


def test_preflight_refuses_on_demand_instances_unless_forced(clients: AwsClients) -> None:
    instance_id = run_on_demand(clients)
    request = InjectRequest(targets=(instance_id,))
    with pytest.raises(HarnessError, match=r"not spot instances.*--force") as caught:
        preflight_aws(clients, request, need_fis=True, instance_ids=[instance_id])
    assert exit_code(caught.value) == EXIT_USAGE
    forced = InjectRequest(targets=(instance_id,), force=True)
    facts = preflight_aws(clients, forced, need_fis=True, instance_ids=[instance_id])
    assert facts.instances[0].lifecycle == "on-demand"


def test_preflight_refuses_stopped_and_unknown_instances(clients: AwsClients) -> None:
    [instance_id] = run_spot(clients)
    clients.ec2.stop_instances(InstanceIds=[instance_id])
    with pytest.raises(HarnessError, match=f"{instance_id} is stopp"):
        preflight_aws(clients, InjectRequest(), need_fis=True, instance_ids=[instance_id])
    with pytest.raises(HarnessError, match="no such instance"):
        preflight_aws(clients, InjectRequest(), need_fis=True, instance_ids=["i-0000000000000dead"])


def test_preflight_refuses_a_region_without_fis(clients: AwsClients) -> None:
    def no_endpoint(**kwargs: Any) -> Any:
        raise EndpointConnectionError(endpoint_url="https://fis.xx-nowhere-1.amazonaws.com/")

    clients.fis.list_experiment_templates = no_endpoint  # type: ignore[method-assign]
    with pytest.raises(HarnessError, match="AWS FIS is not reachable in us-east-1"):
        preflight_aws(clients, InjectRequest(), need_fis=True, instance_ids=[])
    facts = preflight_aws(clients, InjectRequest(), need_fis=False, instance_ids=[])
    assert facts.account == "123456789012"


def test_preflight_finds_tagged_spot_instances_only(clients: AwsClients) -> None:
    tagged: TagSpecificationTypeDef = {
        "ResourceType": "instance",
        "Tags": [{"Key": "team", "Value": "ml"}],
    }
    spot = run_spot(clients, 2, TagSpecifications=[tagged])
    clients.ec2.run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, TagSpecifications=[tagged]
    )
    request = InjectRequest(tags=("team=ml",), count=3)
    facts = preflight_aws(clients, request, need_fis=True, instance_ids=[])
    assert [i.instance_id for i in facts.tag_matches] == sorted(spot)
    assert facts.warnings == (
        "--count 3 asks for more than the 2 matching instances; FIS will interrupt all of them",
    )
    with pytest.raises(HarnessError, match="no running spot instance is tagged team=web"):
        preflight_aws(clients, InjectRequest(tags=("team=web",)), need_fis=True, instance_ids=[])


def test_preflight_checks_that_stop_alarms_exist(clients: AwsClients) -> None:
    clients.cloudwatch.put_metric_alarm(
        AlarmName="job-errors",
        MetricName="Errors",
        Namespace="Job",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )
    arn = f"arn:aws:cloudwatch:{REGION}:123456789012:alarm:job-errors"
    preflight_aws(clients, InjectRequest(stop_alarms=(arn,)), need_fis=True, instance_ids=[])
    missing = arn.replace("job-errors", "nope")
    with pytest.raises(HarnessError, match=r"--stop-alarm .*nope: no such CloudWatch alarm"):
        preflight_aws(
            clients, InjectRequest(stop_alarms=(missing,)), need_fis=True, instance_ids=[]
        )


# -- plan (pure) -------------------------------------------------------------------------------


FACTS = AwsFacts(
    region="eu-west-1",
    account="210987654321",
    partition="aws",
    caller_arn="arn:aws:iam::210987654321:user/alice",
    instances=(InstanceFacts("i-0abc12345678def01", "running", "spot", "g5.xlarge", "eu-west-1b"),),
)


def test_plan_holds_the_template_and_the_blast_radius() -> None:
    request = InjectRequest(targets=("i-0abc12345678def01",), role_arn=ROLE_ARN, lead="5m")
    plan = plan_fis(request, FACTS, "tok")
    arn = "arn:aws:ec2:eu-west-1:210987654321:instance/i-0abc12345678def01"
    assert plan.template["targets"]["spot-instances"]["resourceArns"] == [arn]
    assert plan.template["tags"] == {"created-by": "spot-harness", "harness:client-token": "tok"}
    text = "\n".join(plan.lines())
    assert "account  210987654321   region eu-west-1" in text
    assert "caller   arn:aws:iam::210987654321:user/alice" in text
    assert "target   i-0abc12345678def01  g5.xlarge  eu-west-1b  spot  running" in text
    assert "lead     5m (durationBeforeInterruption PT5M)" in text
    assert "interruption notice 2m before" in text
    assert '"clientToken": "tok"' in plan.template_json()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"role_arn": None}, "--role-arn is required"),
        ({"lead": "1m"}, "outside the range FIS accepts"),
        ({"tags": ("team=ml",)}, "--target and --tag exclude each other"),
        ({"count": 2, "percent": 5}, "exclude each other"),
        ({"stop_alarms": ("arn:aws:sns:x",)}, "is not a CloudWatch alarm ARN"),
    ],
)
def test_plan_refuses_bad_requests(options: dict[str, Any], message: str) -> None:
    request = InjectRequest(targets=("i-0abc12345678def01",), **{"role_arn": ROLE_ARN, **options})
    with pytest.raises(PlanError, match=message) as caught:
        plan_fis(request, FACTS, "tok")
    assert exit_code(caught.value) == EXIT_USAGE


def test_plan_refuses_an_action_the_instance_will_not_take() -> None:
    hibernating = InstanceFacts(
        "i-0abc12345678def01", "running", "spot", interruption_behavior="hibernate"
    )
    facts = AwsFacts(**{**FACTS.__dict__, "instances": (hibernating,)})
    request = InjectRequest(targets=("i-0abc12345678def01",), role_arn=ROLE_ARN, action="stop")
    with pytest.raises(PlanError, match="will hibernate when interrupted"):
        plan_fis(request, facts, "tok")
    same = InjectRequest(targets=("i-0abc12345678def01",), role_arn=ROLE_ARN, action="hibernate")
    assert plan_fis(same, facts, "tok").instances == (hibernating,)


# -- apply -------------------------------------------------------------------------------------


def test_apply_runs_the_experiment_watches_and_deletes_the_template(
    clients: AwsClients, status: StatusLine, output: io.StringIO, fake_time: FakeTime
) -> None:
    [instance_id] = run_spot(clients)
    plan = fis_plan(clients, [instance_id])

    def interrupt(polls: int) -> None:  # what FIS does to the instance at the deadline
        if polls == 2:
            clients.ec2.terminate_instances(InstanceIds=[instance_id])

    fake_time.hooks.append(interrupt)
    progress = injector(clients, status, fake_time).apply(plan)

    assert progress.state == "completed"
    assert progress.instance_states == {instance_id: "terminated"}
    assert progress.template_deleted
    assert templates(clients) == []
    [experiment] = experiments(clients)
    assert experiment["experimentOptions"].get("actionsMode", "run-all") == "run-all"
    lines = output.getvalue().splitlines()
    assert lines[0].startswith("created experiment template ")
    assert lines[1] == f"started experiment {progress.experiment_id}"
    watch = [line.split("] ", 1)[1] for line in lines if line.startswith("[")]
    assert watch[0] == "experiment initiating"
    assert watch[1].startswith("experiment running | rebalance sent ")
    assert "| notice sent " in watch[1]  # a 2-minute lead: the notice comes with the start
    assert watch[-1].startswith("experiment completed | rebalance sent ")
    assert watch[-1].endswith("| interrupted 1/1")
    assert lines[-1] == f"deleted experiment template {progress.template_id}"
    assert summary(plan, progress)[0] == f"experiment {progress.experiment_id}: completed " + (
        "(Experiment completed)"
    )


def test_longer_lead_shows_the_notice_due_two_minutes_before_the_deadline(
    clients: AwsClients, fake_time: FakeTime
) -> None:
    plan = fis_plan(clients, run_spot(clients), lead="5m")
    progress = Progress(state="running", action_state="running", started_at=fake_time.now())
    text = status_text(plan, progress, fake_time.now())
    assert "notice due" in text
    fake_time.sleep(180)
    assert "notice sent" in status_text(plan, progress, fake_time.now())
    notice = progress.notice_at(plan.lead_seconds)
    deadline = progress.deadline(plan.lead_seconds)
    assert notice is not None and deadline is not None
    assert (deadline - notice).total_seconds() == 120


def test_preview_starts_with_skip_all(
    clients: AwsClients, status: StatusLine, output: io.StringIO, fake_time: FakeTime
) -> None:
    plan = fis_plan(clients, run_spot(clients), preview=True)
    progress = injector(clients, status, fake_time).apply(plan)
    [experiment] = experiments(clients)
    assert experiment["experimentOptions"]["actionsMode"] == "skip-all"
    assert "(preview: actions skipped)" in output.getvalue()
    assert "preview: no signal sent" in output.getvalue()
    assert progress.state == "completed"
    assert templates(clients) == []


def test_ctrl_c_while_watching_stops_the_experiment_and_deletes_the_template(
    clients: AwsClients, status: StatusLine, output: io.StringIO, fake_time: FakeTime
) -> None:
    plan = fis_plan(clients, run_spot(clients))

    def ctrl_c(polls: int) -> None:
        if polls == 1:
            raise KeyboardInterrupt

    fake_time.hooks.append(ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        injector(clients, status, fake_time).apply(plan)
    [experiment] = experiments(clients)
    assert experiment["state"]["status"] in ("stopping", "stopped")
    assert templates(clients) == []
    text = output.getvalue()
    assert text.index("interrupted: stopping the experiment") < text.index("deleted experiment")


def test_ctrl_c_during_template_creation_still_deletes_it(
    clients: AwsClients, status: StatusLine, fake_time: FakeTime
) -> None:
    plan = fis_plan(clients, run_spot(clients))
    real_create = clients.fis.create_experiment_template
    calls: list[str] = []

    def create_then_ctrl_c(**kwargs: Any) -> Any:
        reply = real_create(**kwargs)  # the request reached FIS, then Ctrl-C arrives
        calls.append(kwargs["clientToken"])
        if len(calls) == 1:
            raise KeyboardInterrupt
        return reply

    clients.fis.create_experiment_template = create_then_ctrl_c  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        injector(clients, status, fake_time).apply(plan)
    assert calls == ["token-0001", "token-0001"]  # the same token: idempotent, no second template
    assert templates(clients) == []
    assert experiments(clients) == []


def test_a_failed_start_still_deletes_the_template(
    clients: AwsClients, status: StatusLine, fake_time: FakeTime
) -> None:
    plan = fis_plan(clients, run_spot(clients))

    def refuse(**kwargs: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "ValidationException", "Message": "role cannot be assumed"}},
            "StartExperiment",
        )

    clients.fis.start_experiment = refuse  # type: ignore[method-assign]
    with pytest.raises(HarnessError, match="ValidationException: role cannot be assumed"):
        injector(clients, status, fake_time).apply(plan)
    assert templates(clients) == []


def test_keep_template_keeps_it_and_says_so(
    clients: AwsClients, status: StatusLine, output: io.StringIO, fake_time: FakeTime
) -> None:
    plan = fis_plan(clients, run_spot(clients), keep_template=True)
    progress = injector(clients, status, fake_time).apply(plan)
    assert templates(clients) == [progress.template_id]
    assert f"kept experiment template {progress.template_id} (--keep-template)" in output.getvalue()


def test_no_wait_starts_and_returns_with_a_follow_up_command(
    clients: AwsClients, status: StatusLine, output: io.StringIO, fake_time: FakeTime
) -> None:
    plan = fis_plan(clients, run_spot(clients), wait=False)
    progress = injector(clients, status, fake_time).apply(plan)
    assert fake_time.slept == []
    assert f"aws fis get-experiment --id {progress.experiment_id}" in output.getvalue()
    assert templates(clients) == []


def test_the_created_template_is_the_planned_one(
    clients: AwsClients, status: StatusLine, fake_time: FakeTime
) -> None:
    ids = run_spot(clients, 6)
    plan = fis_plan(clients, ids, keep_template=True, lead="4m")
    progress = injector(clients, status, fake_time).apply(plan)
    stored = clients.fis.get_experiment_template(id=progress.template_id)["experimentTemplate"]
    assert stored["targets"] == plan.template["targets"]
    assert [len(t["resourceArns"]) for t in stored["targets"].values()] == [5, 1]
    assert {a["parameters"]["durationBeforeInterruption"] for a in stored["actions"].values()} == {
        "PT4M"
    }
    assert stored["roleArn"] == ROLE_ARN
