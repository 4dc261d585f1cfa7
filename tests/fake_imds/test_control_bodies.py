"""``POST /_harness/v1/notices`` bodies are pydantic models, one per cloud and kind: a refused
body is a 400 naming the field, what is wrong and what it takes, and leaves nothing stored; the
published JSON Schema (``harness schema control``) is generated from the same models, so it
accepts what the server accepts and refuses what the server refuses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_args

import jsonschema
import pytest

from fake_imds import aws, azure, gcp, signals, vocabulary, webhook
from fake_imds.schema import control_schema
from tests.fake_imds.imds_client import TRANSPORTS, Imds, runner_for

V1 = "/_harness/v1"
AWS_KINDS = "spot-interruption, rebalance, scheduled-event, asg-termination, fis-spot-interruption"
DURATION = "a duration such as 250ms, 90s, 2m, 1h30m or PT2M (a bare number is seconds)"


@pytest.fixture(params=sorted(TRANSPORTS))
def run(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return runner_for(request.param)


REFUSALS = [
    # an unknown field, with the fields of that cloud and kind
    (
        {"kind": "rebalance", "lead": "2m"},
        "lead",
        "unknown field 'lead'; allowed here: at, cloud, kind",
    ),
    (
        {"cloud": "gcp", "grace": "5s"},
        "grace",
        "unknown field 'grace'; allowed here: action, at, cloud, kind, lead, shutdown",
    ),
    # a value of the wrong type
    ({"lead": True}, "lead", f"'lead': expected {DURATION}, got True"),
    (
        {"cloud": "azure", "kind": "freeze", "duration": "5"},
        "duration",
        "'duration': input should be a valid integer, got '5'",
    ),
    (
        {"cloud": "webhook", "url": 42},
        "url",
        "'url': input should be a valid string, got 42",
    ),
    ({"kind": 7}, "kind", f"'kind' must be one of {AWS_KINDS}, got 7"),
    # out of range: the field, the value as written and the range
    ({"lead": "25h"}, "lead", "lead = 25h is out of range: expected 0s to 1d"),
    (
        {"kind": "scheduled-event", "lead": "32d"},
        "lead",
        "lead = 32d is out of range: expected 0s to 31d",
    ),
    (
        {"cloud": "kubernetes", "grace": 86401},
        "grace",
        "grace = 1d1s is out of range: expected 0s to 1d",
    ),
    (
        {"cloud": "azure", "kind": "freeze", "duration": 3601},
        "duration",
        "'duration' must be between 0 and 3600, got 3601",
    ),
    # an unknown cloud, kind or action: the choices, and the nearest one
    (
        {"kind": "rebalanse"},
        "kind",
        f"'kind' must be one of {AWS_KINDS}, got 'rebalanse'; did you mean `rebalance`?",
    ),
    (
        {"cloud": "gcp", "kind": "preemptoin"},
        "kind",
        "'kind' must be one of preemption, maintenance, got 'preemptoin'; "
        "did you mean `preemption`?",
    ),
    (
        {"cloud": "azrue"},
        "cloud",
        "'cloud' must be one of aws, gcp, azure, webhook, kubernetes, got 'azrue'; "
        "did you mean `azure`?",
    ),
    (
        {"action": "stpo"},
        "action",
        "'action' must be one of terminate, stop, hibernate, got 'stpo'; did you mean `stop`?",
    ),
    ({"cloud": "webhook"}, "url", "'url' is required"),
]


@pytest.mark.parametrize(("body", "field", "message"), REFUSALS, ids=lambda v: str(v)[:40])
def test_a_refused_notice_body_is_400_naming_the_field_and_nothing_is_stored(
    run: Callable[..., Any], body: dict[str, Any], field: str, message: str
) -> None:
    async def test(imds: Imds) -> None:
        await imds.request("POST", V1 + "/notices", json={"kind": "rebalance"})
        before = [n.to_json(imds.plane) for n in imds.plane.notices()]
        reply = await imds.request("POST", V1 + "/notices", json=body)
        assert (reply.status, reply.json()) == (400, {"error": message, "field": field})
        assert [n.to_json(imds.plane) for n in imds.plane.notices()] == before

    run(test)


# -- the JSON Schema ----------------------------------------------------------------------------
SCHEMA = control_schema()


def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"$ref": f"#/$defs/{name}", "$defs": SCHEMA["$defs"]})


def test_the_schema_defines_every_control_body_and_each_notice_model() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    definitions = SCHEMA["$defs"]
    assert {"NoticeBody", "FaultBody", "AwsIdentityBody"} <= set(definitions)
    models = [m for cloud in (aws, gcp, azure, webhook, signals) for m in cloud.NOTICE_BODIES]
    assert len(models) == 14  # aws 5, gcp 2, azure 5, webhook 1, kubernetes 1
    for model in models:
        assert definitions[model.__name__]["additionalProperties"] is False
    scheduled = definitions["AwsScheduledEventBody"]["properties"]
    assert scheduled["kind"]["const"] == "scheduled-event"
    assert scheduled["action"]["enum"] == list(get_args(vocabulary.ScheduledCode))
    assert definitions["GcpPreemptionBody"]["properties"]["lead"]["default"] == 30.0


ACCEPTED = [
    {},
    {"lead": "90s", "at": "+30s"},
    {"cloud": "aws", "kind": "rebalance"},
    {"kind": "scheduled-event", "action": "instance-stop", "window": "1h"},
    {"kind": "fis-spot-interruption", "lead": "5m"},
    {"cloud": "gcp"},
    {"cloud": "gcp", "kind": "maintenance", "action": "terminate"},
    {"cloud": "azure", "kind": "freeze", "duration": 9},
    {"cloud": "webhook", "url": "http://127.0.0.1:9/hook", "kind": "custom"},
    {"cloud": "kubernetes", "grace": 10},
]


@pytest.mark.parametrize("body", ACCEPTED, ids=str)
def test_the_schema_accepts_what_the_server_accepts(
    run: Callable[..., Any], body: dict[str, Any]
) -> None:
    assert list(validator("NoticeBody").iter_errors(body)) == []

    async def test(imds: Imds) -> None:
        reply = await imds.request("POST", V1 + "/notices", json=body)
        assert reply.status == 201, reply.text

    run(test)


@pytest.mark.parametrize(
    "body",
    [
        # every refusal above that JSON Schema can express (not a duration's range)
        *(body for body, _, message in REFUSALS if " = " not in message),
        {"kind": "preemption"},  # a GCP kind, but without cloud: gcp
        {"cloud": "azure", "kind": "reboot", "action": "terminate"},
    ],
    ids=str,
)
def test_the_schema_refuses_what_the_server_refuses(body: dict[str, Any]) -> None:
    assert not validator("NoticeBody").is_valid(body)


def test_the_fault_and_identity_bodies_are_in_the_schema_too() -> None:
    assert validator("FaultBody").is_valid({"kind": "status", "status": 503, "for": "30s"})
    assert not validator("FaultBody").is_valid({"kind": "status", "status": 200})
    assert validator("AwsIdentityBody").is_valid({"instance_type": "m5.large"})
    assert not validator("AwsIdentityBody").is_valid({"instance_typ": "m5.large"})
