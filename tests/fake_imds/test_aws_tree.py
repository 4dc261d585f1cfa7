"""The AWS metadata tree answers every path a standard EC2 instance lists under
``latest/meta-data/`` (issue 12, item 7), and its identity is settable through the control API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fake_imds.aws import AwsOptions
from tests.fake_imds.imds_client import TRANSPORTS, Imds, runner_for

V1 = "/_harness/v1"


@pytest.fixture(params=sorted(TRANSPORTS))
def run(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return runner_for(request.param)


@pytest.mark.parametrize(
    ("leaf", "expected"),
    [
        ("public-ipv4", "198.51.100.12"),
        ("public-hostname", "ec2-198-51-100-12.compute-1.amazonaws.com"),
        ("block-device-mapping/", "ami\nephemeral0\nroot"),
        ("block-device-mapping/root", "/dev/xvda"),
        ("public-keys/", "0=spot-harness"),
        ("public-keys/0/", "openssh-key"),
        ("product-codes", "5k2tq8w1xv3n9b7m0c6y4hjzr"),
        ("kernel-id", "aki-0f1e2d3c4b5a69788"),
        ("ramdisk-id", "ari-0f1e2d3c4b5a69788"),
    ],
)
def test_the_default_instance_answers_every_standard_path(
    run: Callable[..., Any], leaf: str, expected: str
) -> None:
    async def test(imds: Imds) -> None:
        reply = await imds.meta(leaf)
        assert (reply.status, reply.text) == (200, expected)
        listing = (await imds.meta("")).text.splitlines()
        assert leaf.split("/")[0] + ("/" if "/" in leaf else "") in listing

    run(test)


def test_the_public_key_is_an_openssh_key(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        reply = await imds.meta("public-keys/0/openssh-key")
        assert reply.status == 200 and reply.text.startswith("ssh-ed25519 ")

    run(test)


def test_tags_answer_only_when_instance_tags_are_enabled(run: Callable[..., Any]) -> None:
    async def without(imds: Imds) -> None:
        assert (await imds.meta("tags/instance/")).status == 404
        assert "tags/" not in (await imds.meta("")).text.splitlines()

    async def with_tags(imds: Imds) -> None:
        assert (await imds.meta("tags/instance/")).text == "Name"
        assert (await imds.meta("tags/instance/Name")).text == "trainer"
        assert "tags/" in (await imds.meta("")).text.splitlines()

    run(without)
    run(with_tags, aws=AwsOptions(tags={"Name": "trainer"}))


def test_the_identity_is_settable_through_the_control_api(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        body = {"public_ipv4": "203.0.113.7", "tags": {"team": "ml"}, "kernel_id": "aki-1"}
        reply = await imds.request("PATCH", V1 + "/identity/aws", json=body)
        assert reply.status == 200, reply.text
        assert reply.json()["public_ipv4"] == "203.0.113.7"
        assert (await imds.meta("public-ipv4")).text == "203.0.113.7"
        assert (await imds.meta("kernel-id")).text == "aki-1"
        assert (await imds.meta("tags/instance/team")).text == "ml"
        shown = (await imds.request("GET", V1 + "/identity/aws")).json()
        assert shown["tags"] == {"team": "ml"} and shown["instance_id"] == "i-0123456789abcdef0"

    run(test)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"public_ipv4": "999.1.1.1"}, "public_ipv4"),
        ({"instance_id": "not-an-id"}, "instance_id"),
        ({"tags": {"k": "v" * 300}}, "tags"),
        ({"tags": {f"k{i}": "v" for i in range(51)}}, "tags"),
        ({"colour": "blue"}, "colour"),
        ({"product_codes": "x"}, "product_codes"),
    ],
)
def test_a_bad_identity_is_400_naming_the_field_and_changes_nothing(
    run: Callable[..., Any], body: dict[str, Any], field: str
) -> None:
    async def test(imds: Imds) -> None:
        before = (await imds.request("GET", V1 + "/identity/aws")).json()
        reply = await imds.request("PATCH", V1 + "/identity/aws", json=body)
        assert (reply.status, reply.json()["field"]) == (400, field)
        assert (await imds.request("GET", V1 + "/identity/aws")).json() == before
        assert (await imds.meta("public-ipv4")).text == "198.51.100.12"

    run(test)


def test_only_served_identities_can_be_set(run: Callable[..., Any]) -> None:
    async def test(imds: Imds) -> None:
        reply = await imds.request("PATCH", V1 + "/identity/ibm", json={})
        assert (reply.status, reply.json()["field"]) == (404, "cloud")

    run(test)
