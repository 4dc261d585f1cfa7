"""moto-backed AWS for the injector tests, and a fake timekeeper that never really sleeps."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from harness.inject.preflight import AwsClients
from harness.inject.status import StatusLine, Timekeeper

if TYPE_CHECKING:
    from mypy_boto3_fis.type_defs import ExperimentSummaryTypeDef

REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/spot-harness-fis"
#: A recognisable secret: no output may ever contain it.
SECRET_KEY = "SECRETxSECRETxSECRETxDoNotPrintThis"


class FakeTime:
    """Calendar time that leaps ahead when slept, never really sleeping; ``hooks`` act between
    polls.

    It runs ahead of the wall clock by what was slept, and is never behind it: moto stamps
    experiments and S3 objects with the wall clock, and a busy machine may take seconds between
    two calls of a test, which a clock frozen at the fixture's creation would fall behind.
    """

    def __init__(self) -> None:
        self.ahead = timedelta()
        self.slept: list[float] = []
        self.hooks: list[Callable[[int], None]] = []

    def now(self) -> datetime:
        return datetime.now(UTC) + self.ahead

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.ahead += timedelta(seconds=seconds)
        for hook in list(self.hooks):
            hook(len(self.slept))

    def timekeeper(self) -> Timekeeper:
        return Timekeeper(sleep=self.sleep, now=self.now)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAHARNESSTESTKEY00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("HARNESS_FIS_ROLE_ARN", raising=False)
    monkeypatch.delenv("HARNESS_AGENT_TOKEN", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def clients(aws_env: None) -> AwsClients:
    return AwsClients.from_session(boto3.Session(region_name=REGION))


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def output() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def status(output: io.StringIO) -> StatusLine:
    return StatusLine(output, live=False)


def run_spot(clients: AwsClients, count: int = 1, **extra: Any) -> list[str]:
    """Launch spot instances (InstanceLifecycle ``spot``) and return their ids."""
    reply = clients.ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=count,
        MaxCount=count,
        InstanceType="g5.xlarge",
        InstanceMarketOptions={"MarketType": "spot"},
        **extra,
    )
    return [i["InstanceId"] for i in reply["Instances"]]


def run_on_demand(clients: AwsClients) -> str:
    reply = clients.ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)
    return reply["Instances"][0]["InstanceId"]


def templates(clients: AwsClients) -> list[str]:
    return [t["id"] for t in clients.fis.list_experiment_templates()["experimentTemplates"]]


def experiments(clients: AwsClients) -> list[ExperimentSummaryTypeDef]:
    return list(clients.fis.list_experiments()["experiments"])
