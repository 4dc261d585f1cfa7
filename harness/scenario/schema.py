"""The published JSON Schema of scenario files (``harness schema``), for editors and CI."""

from __future__ import annotations

import json
from typing import Any

from harness.scenario.model import Scenario

SCHEMA_ID = "https://spot-harness.dev/schema/scenario.json"


def scenario_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of one scenario document."""
    schema = Scenario.model_json_schema(mode="validation", by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "spot-harness scenario"
    return schema


def schema_text() -> str:
    return json.dumps(scenario_schema(), indent=2, sort_keys=True) + "\n"
