"""Real AWS clients against the fake, in real time (they block, so the server runs on its own
thread): botocore's IMDS fetchers, boto3's instance-metadata credential provider, the
``ec2-metadata`` package and ``requests``; including what each sees under every fault."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import botocore.session
import pytest
import requests
import urllib3
from botocore.exceptions import MetadataRetrievalError
from botocore.utils import (
    IMDSRegionProvider,
    InstanceMetadataFetcher,
    InstanceMetadataRegionFetcher,
)
from ec2_metadata import EC2Metadata

from fake_imds.aws import AwsOptions
from fake_imds.sync import SyncFakeImds

SPOT = "/latest/meta-data/spot/instance-action"
CREDENTIALS = "/latest/meta-data/iam/security-credentials/spot-harness-instance"
Factory = Callable[..., SyncFakeImds]


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """No credentials, config files or proxies from the machine: only the fake can answer."""
    for name in (
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EC2_METADATA_DISABLED",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
        "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost,::1")
    monkeypatch.setenv("AWS_EC2_METADATA_V1_DISABLED", "true")
    yield monkeypatch


def fetcher(imds: SyncFakeImds, attempts: int = 1, timeout: float = 1.0) -> InstanceMetadataFetcher:
    config = {"ec2_metadata_service_endpoint": imds.url + "/", "ec2_metadata_v1_disabled": True}
    # botocore-stubs declare the timeout an int; botocore hands it to urllib3, which takes
    # fractions of a second (one test waits 0.3 s).
    return InstanceMetadataFetcher(
        timeout=timeout,  # type: ignore[arg-type]
        num_attempts=attempts,
        config=config,
    )


def ec2_metadata_for(imds: SyncFakeImds) -> EC2Metadata:
    client = EC2Metadata(urllib3.PoolManager(retries=False))
    client.service_url = imds.url + "/latest/"
    client.dynamic_url = client.service_url + "dynamic/"
    client.metadata_url = client.service_url + "meta-data/"
    client.userdata_url = client.service_url + "user-data/"
    return client


# -- botocore and boto3 -------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["optional", "required"])
def test_botocore_fetches_role_credentials_with_imdsv2(
    aws_env: pytest.MonkeyPatch, fake_imds_factory: Factory, mode: str
) -> None:
    imds = fake_imds_factory(imdsv2=mode)
    credentials = fetcher(imds).retrieve_iam_role_credentials()
    assert credentials["role_name"] == "spot-harness-instance"
    assert credentials["access_key"].startswith("ASIA")
    assert credentials["secret_key"] and credentials["token"]
    assert credentials["expiry_time"] > dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    paths = [(r.method, r.path, r.status) for r in imds.requests()]
    assert paths == [
        ("PUT", "/latest/api/token", 200),
        ("GET", "/latest/meta-data/iam/security-credentials/", 200),
        ("GET", CREDENTIALS, 200),
    ]


def test_botocore_region_through_the_endpoint_variable(
    aws_env: pytest.MonkeyPatch, fake_imds_factory: Factory
) -> None:
    imds = fake_imds_factory(
        imdsv2="required", options={"aws": AwsOptions(availability_zone="eu-west-3c")}
    )
    aws_env.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url + "/")
    region = IMDSRegionProvider(botocore.session.Session()).provide()
    assert region == "eu-west-3"
    direct = InstanceMetadataRegionFetcher(
        config={"ec2_metadata_service_endpoint": imds.url + "/", "ec2_metadata_v1_disabled": True}
    )
    assert direct.retrieve_region() == "eu-west-3"
    assert {r.path for r in imds.requests()} >= {"/latest/meta-data/placement/availability-zone/"}


def test_boto3_instance_metadata_credential_provider(
    aws_env: pytest.MonkeyPatch, fake_imds_factory: Factory
) -> None:
    imds = fake_imds_factory(imdsv2="required")
    aws_env.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url + "/")
    credentials = boto3.Session(region_name="us-east-1").get_credentials()
    assert credentials is not None
    assert credentials.method == "iam-role"
    frozen = credentials.get_frozen_credentials()
    served = fetcher(imds).retrieve_iam_role_credentials()
    assert (frozen.access_key, frozen.secret_key) == (served["access_key"], served["secret_key"])


@pytest.mark.parametrize("status", [500, 503, 429])
def test_botocore_retries_then_gives_up_under_an_error_status(
    aws_env: pytest.MonkeyPatch, fake_imds_factory: Factory, status: int
) -> None:
    imds = fake_imds_factory()
    imds.fault(kind="status", status=status, path=CREDENTIALS)
    assert fetcher(imds, attempts=2).retrieve_iam_role_credentials() == {}
    failed = [r.status for r in imds.requests() if r.path == CREDENTIALS]
    assert failed == [status, status]


def test_botocore_with_imds_disabled_and_v1_forbidden_gets_nothing(
    aws_env: pytest.MonkeyPatch, fake_imds_factory: Factory
) -> None:
    imds = fake_imds_factory(imdsv2="disabled")
    # botocore reads the 403 on the token PUT as "no token", then refuses to fall back to v1
    with pytest.raises(MetadataRetrievalError, match="IMDSv1 has been disabled"):
        fetcher(imds).retrieve_iam_role_credentials()
    assert [(r.method, r.status) for r in imds.requests()] == [("PUT", 403)]


def test_botocore_under_timeout_and_reset_faults(
    aws_env: pytest.MonkeyPatch, fake_imds_factory: Factory
) -> None:
    imds = fake_imds_factory()
    fault = imds.fault(kind="timeout", path=CREDENTIALS)
    assert fetcher(imds, timeout=0.3).retrieve_iam_role_credentials() == {}
    imds.remove_fault(fault["id"])
    imds.fault(kind="reset", path=CREDENTIALS)
    assert fetcher(imds).retrieve_iam_role_credentials() == {}
    assert [r.status for r in imds.requests() if r.path == CREDENTIALS] == [0, 0]


# -- ec2-metadata ---------------------------------------------------------------------------------
def test_ec2_metadata_sees_no_notice_then_the_notice(fake_imds_factory: Factory) -> None:
    imds = fake_imds_factory(imdsv2="required")
    client = ec2_metadata_for(imds)
    assert client.instance_id == "i-0123456789abcdef0"
    assert client.instance_life_cycle == "spot"
    assert client.region == "us-east-1"
    assert client.spot_instance_action is None
    notice = imds.notice(action="stop", lead="2m")
    action = client.spot_instance_action
    assert action is not None
    assert action.action == "stop"
    deadline = dt.datetime.fromisoformat(notice["deadline"].replace("Z", "+00:00"))
    assert action.time == deadline
    assert client.autoscaling_target_lifecycle_state is None
    assert client.user_data is None
    assert client.instance_identity_document["instanceId"] == "i-0123456789abcdef0"
    assert client.iam_info is not None


def test_ec2_metadata_sees_an_error_status_as_an_error(fake_imds_factory: Factory) -> None:
    imds = fake_imds_factory()
    client = ec2_metadata_for(imds)
    imds.fault(kind="throttle", limit=1, path=SPOT)
    assert client.spot_instance_action is None
    with pytest.raises(urllib3.exceptions.HTTPError, match="HTTP 429"):
        _ = client.spot_instance_action


def test_ec2_metadata_tags(fake_imds_factory: Factory) -> None:
    imds = fake_imds_factory(options={"aws": AwsOptions(tags={"Name": "trainer"})})
    assert dict(ec2_metadata_for(imds).tags) == {"Name": "trainer"}


# -- plain HTTP clients -------------------------------------------------------------------------
def test_requests_sees_timeouts_and_resets(
    aws_env: pytest.MonkeyPatch, fake_imds: SyncFakeImds
) -> None:
    fault = fake_imds.fault(kind="timeout", path=SPOT)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(fake_imds.url + SPOT, timeout=0.3)
    fake_imds.remove_fault(fault["id"])
    fake_imds.fault(kind="reset", path=SPOT)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(fake_imds.url + SPOT, timeout=5)
    assert requests.get(fake_imds.url + "/latest/meta-data/mac", timeout=5).status_code == 200


def test_requests_sees_added_latency(aws_env: pytest.MonkeyPatch, fake_imds: SyncFakeImds) -> None:
    fake_imds.fault(kind="latency", latency="300ms", path=SPOT)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(fake_imds.url + SPOT, timeout=0.1)
    assert requests.get(fake_imds.url + SPOT, timeout=5).status_code == 404
