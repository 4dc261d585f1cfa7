"""``harness inject`` end to end through ``harness.cli.main`` with moto and a fake timekeeper."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest

from harness.cli import main
from harness.commands import inject as command
from harness.inject.preflight import AwsClients
from tests.inject.conftest import (
    ROLE_ARN,
    SECRET_KEY,
    FakeTime,
    experiments,
    run_on_demand,
    run_spot,
    templates,
)


@pytest.fixture
def runtime(
    monkeypatch: pytest.MonkeyPatch, aws_env: None, fake_time: FakeTime, output: io.StringIO
) -> command.Runtime:
    runtime = command.Runtime(
        timekeeper=fake_time.timekeeper(),
        new_token=lambda: "cli-token-1",
        out=output,
        interactive=lambda: False,
    )
    monkeypatch.setattr(command, "make_runtime", lambda: runtime)
    return runtime


def inject(*args: str) -> int:
    return main(["inject", *args])


def test_help_shows_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inject", "--help"]) == 0
    text = capsys.readouterr().out
    assert "Examples:" in text
    assert "harness inject --target i-0abc12345678def01 --dry-run" in text
    assert "--via agent --target http://" in text
    assert "Exit codes:" in text


def test_dry_run_prints_plan_and_template_and_changes_nothing(
    runtime: command.Runtime, clients: AwsClients, output: io.StringIO
) -> None:
    [instance_id] = run_spot(clients)
    assert inject("--target", instance_id, "--role-arn", ROLE_ARN, "--dry-run", "--lead", "3m") == 0
    text = output.getvalue()
    assert "Spot interruption of 1 spot instance via AWS FIS" in text
    assert "account  123456789012   region us-east-1" in text
    body = json.loads(text.split("arguments):\n", 1)[1].rsplit("dry run:", 1)[0])
    assert body["clientToken"] == "cli-token-1"
    assert body["actions"]["interrupt"]["parameters"] == {"durationBeforeInterruption": "PT3M"}
    assert text.rstrip().endswith("dry run: nothing was changed")
    assert templates(clients) == []
    assert experiments(clients) == []


def test_without_yes_and_without_a_terminal_nothing_changes(
    runtime: command.Runtime,
    clients: AwsClients,
    output: io.StringIO,
    capsys: pytest.CaptureFixture[str],
) -> None:
    [instance_id] = run_spot(clients)
    assert inject("--target", instance_id, "--role-arn", ROLE_ARN) == 2
    assert "rerun with --yes" in capsys.readouterr().err
    assert "target   " + instance_id in output.getvalue()  # the blast radius was shown
    assert templates(clients) == []


def test_declining_the_confirmation_changes_nothing(
    runtime: command.Runtime, clients: AwsClients, output: io.StringIO
) -> None:
    [instance_id] = run_spot(clients)
    asked: list[str] = []
    runtime.interactive = lambda: True

    def decline(text: str) -> bool:
        asked.append(text)
        return False

    runtime.confirm = decline
    assert inject("--target", instance_id, "--role-arn", ROLE_ARN) == 1
    assert asked == ["Really interrupt these instances?"]
    assert output.getvalue().endswith("Nothing changed.\n")
    assert experiments(clients) == []


def test_yes_runs_the_experiment_to_the_end_and_cleans_up(
    runtime: command.Runtime, clients: AwsClients, output: io.StringIO, fake_time: FakeTime
) -> None:
    [instance_id] = run_spot(clients)

    def terminate_at_the_second_poll(polls: int) -> None:
        if polls == 2:
            clients.ec2.terminate_instances(InstanceIds=[instance_id])

    fake_time.hooks.append(terminate_at_the_second_poll)
    assert inject("--target", instance_id, "--role-arn", ROLE_ARN, "--yes") == 0
    text = output.getvalue()
    assert f"  {instance_id}: terminated" in text
    assert "interrupted 1/1" in text
    assert templates(clients) == []
    assert SECRET_KEY not in text


def test_role_from_the_environment(
    runtime: command.Runtime,
    clients: AwsClients,
    monkeypatch: pytest.MonkeyPatch,
    output: io.StringIO,
) -> None:
    [instance_id] = run_spot(clients)
    monkeypatch.setenv("HARNESS_FIS_ROLE_ARN", ROLE_ARN)
    assert inject("--target", instance_id, "--dry-run") == 0
    assert f'"roleArn": "{ROLE_ARN}"' in output.getvalue()


def test_non_spot_instance_is_refused_with_exit_2(
    runtime: command.Runtime, clients: AwsClients, capsys: pytest.CaptureFixture[str]
) -> None:
    instance_id = run_on_demand(clients)
    assert inject("--target", instance_id, "--role-arn", ROLE_ARN, "--yes") == 2
    assert "not spot instances" in capsys.readouterr().err
    assert templates(clients) == []


def test_checkpoint_in_time_after_the_experiment(
    runtime: command.Runtime, clients: AwsClients, output: io.StringIO, fake_time: FakeTime
) -> None:
    [instance_id] = run_spot(clients)
    clients.s3.create_bucket(Bucket="ckpts")

    def job_saves_and_dies(polls: int) -> None:
        if polls == 1:
            clients.s3.put_object(Bucket="ckpts", Key="run/ckpt-7", Body=b"state")
        if polls == 2:
            clients.ec2.terminate_instances(InstanceIds=[instance_id])

    fake_time.hooks.append(job_saves_and_dies)
    code = inject(
        "--target", instance_id, "--role-arn", ROLE_ARN, "--yes",
        "--expect-checkpoint", "s3://ckpts/run/",
    )  # fmt: skip
    assert "checkpoint landed in time: s3://ckpts/run/ckpt-7" in output.getvalue()
    assert code == 0


def test_checkpoint_missing_fails_with_exit_1(
    runtime: command.Runtime, clients: AwsClients, output: io.StringIO
) -> None:
    [instance_id] = run_spot(clients)
    clients.s3.create_bucket(Bucket="ckpts")
    code = inject(
        "--target", instance_id, "--role-arn", ROLE_ARN, "--yes",
        "--expect-checkpoint", "s3://ckpts/run/",
    )  # fmt: skip
    assert code == 1
    assert "no checkpoint under s3://ckpts/run/ was written after the notice" in output.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "pid:12", "--count", "2"], "only apply to --via fis"),
        (["--target", "i-zz"], "is not an EC2 instance id"),
        (["--target", "pid:12", "--pid", "3"], "only apply to --via ssm"),
        (["--via", "agent", "--target", "ftp://x"], "the agent is addressed as http://host:port"),
        (["--target", "pid:12", "--signal", "NOPE"], "is not a signal here"),
        (["--target", "pid:1", "--yes"], "refusing to signal pid 1"),
        (["--target", "http://127.0.0.1:9", "--expect-checkpoint", "bucket/x"], "s3://bucket"),
        ([], "name what to interrupt"),
    ],
)
def test_bad_input_is_refused_with_exit_2(
    runtime: command.Runtime, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert inject(*args) == 2
    assert message in capsys.readouterr().err


def test_agent_dry_run_never_shows_the_token(
    runtime: command.Runtime, output: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_AGENT_TOKEN", "tok-very-secret-123")
    assert inject("--target", "http://10.0.0.12:1338", "--dry-run") == 0
    text = output.getvalue()
    assert "POST http://10.0.0.12:1338/_harness/v1/notices" in text
    assert "token    given (not shown)" in text
    assert "tok-very-secret-123" not in text


def test_ssm_dry_run_shows_the_command(
    runtime: command.Runtime, clients: AwsClients, output: io.StringIO
) -> None:
    [instance_id] = run_spot(clients)
    args: list[Any] = ["--via", "ssm", "--target", instance_id, "--process", "python train.py"]
    assert inject(*args, "--dry-run") == 0
    text = output.getvalue()
    assert "SSM Run Command (AWS-RunShellScript): a signal to a process on 1 instance(s)" in text
    assert "pgrep -o -f -- 'python train.py'" in text


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, output: io.StringIO) -> command.Runtime:
    """No credentials, no region, no metadata service; any AWS client is a test failure."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "HARNESS_FIS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    def no_client(*args: object, **kwargs: object) -> None:
        raise AssertionError("an offline dry run created an AWS client")

    monkeypatch.setattr(boto3.Session, "client", no_client)
    runtime = command.Runtime(new_token=lambda: "offline-1", out=output)
    monkeypatch.setattr(command, "make_runtime", lambda: runtime)
    return runtime


def test_offline_dry_run_prints_plan_and_template_without_credentials(
    no_aws: command.Runtime, output: io.StringIO
) -> None:
    assert inject("--target", "i-0abc12345678def01", "--dry-run", "--offline", "--lead", "5m") == 0
    text = output.getvalue()
    lines = text.splitlines()
    assert lines[0] == "Spot interruption of 1 spot instance via AWS FIS"
    assert "account  000000000000   region us-east-1" in text
    assert "warning  OFFLINE (--offline; no region set, us-east-1 stands in)" in text
    assert "warning  no --role-arn: the template shows PASS-ROLE-ARN" in text
    body = json.loads(text.split("arguments):\n", 1)[1].rsplit("dry run:", 1)[0])
    assert body["roleArn"] == "arn:aws:iam::000000000000:role/PASS-ROLE-ARN"
    assert body["targets"]["spot-instances"]["resourceArns"] == [
        "arn:aws:ec2:us-east-1:000000000000:instance/i-0abc12345678def01"
    ]
    assert body["actions"]["interrupt"]["parameters"] == {"durationBeforeInterruption": "PT5M"}
    assert lines[-1] == "dry run: nothing was changed"


def test_offline_plan_takes_the_account_from_the_role_and_the_region_as_given(
    no_aws: command.Runtime, output: io.StringIO
) -> None:
    args = ["--target", "i-0abc12345678def01", "--role-arn", ROLE_ARN, "--region", "eu-west-1"]
    assert inject(*args, "--dry-run", "--offline") == 0
    text = output.getvalue()
    assert "account  123456789012   region eu-west-1" in text
    assert "stands in" not in text
    assert f'"roleArn": "{ROLE_ARN}"' in text


def test_dry_run_without_credentials_falls_back_to_an_offline_plan_and_says_why(
    no_aws: command.Runtime, output: io.StringIO
) -> None:
    args = ["--via", "ssm", "--target", "i-0abc12345678def01", "--process", "train.py"]
    assert inject(*args, "--region", "us-west-2", "--dry-run") == 0
    text = output.getvalue()
    assert "warning  OFFLINE (no AWS credentials found): nothing was asked of AWS" in text
    assert "kill -s TERM" in text
    assert text.endswith("dry run: nothing was changed\n")


def test_offline_without_dry_run_is_refused(
    no_aws: command.Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    assert inject("--target", "i-0abc12345678def01", "--offline", "--yes") == 2
    assert "--offline only applies to --dry-run" in capsys.readouterr().err
