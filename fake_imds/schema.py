"""The JSON Schema of the control API's bodies (``harness schema control``), generated from the
very models that validate them, so the two cannot disagree."""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter

from fake_imds.aws import AwsIdentityBody
from fake_imds.control import PREFIX, FaultBody, notice_bodies

SCHEMA_ID = "https://spot-harness.dev/schema/control.json"


def control_bodies() -> dict[str, tuple[str, TypeAdapter[Any]]]:
    """Name in ``$defs`` -> (the call that takes the body, its validator)."""
    return {
        "NoticeBody": (f"POST {PREFIX}/notices", TypeAdapter(notice_bodies().annotation())),
        "FaultBody": (f"POST {PREFIX}/faults", TypeAdapter(FaultBody)),
        "AwsIdentityBody": (f"PATCH {PREFIX}/identity/aws", TypeAdapter(AwsIdentityBody)),
    }


def control_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) whose ``$defs`` hold each control-API body: ``NoticeBody``
    (one model per cloud and kind), ``FaultBody`` and ``AwsIdentityBody``."""
    bodies = control_bodies()
    generated, schema = TypeAdapter.json_schemas(
        [(name, "validation", adapter) for name, (_, adapter) in bodies.items()], by_alias=True
    )
    definitions: dict[str, Any] = schema.setdefault("$defs", {})
    for name, (call, _) in bodies.items():
        body = generated[(name, "validation")]
        if body.get("$ref") != f"#/$defs/{name}":  # a union of models: name it too
            definitions[name] = {"description": f"the body of {call}", **body}
    calls = "; ".join(f"{call}: #/$defs/{name}" for name, (call, _) in bodies.items())
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "spot-harness control API bodies",
        "description": f"The bodies of the fake metadata server's control API. {calls}",
        "$defs": definitions,
    }


def control_schema_text() -> str:
    return json.dumps(control_schema(), indent=2, sort_keys=True) + "\n"
