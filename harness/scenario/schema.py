"""The published JSON Schema of scenario files (``harness schema``), for editors and CI."""

from __future__ import annotations

import json
from typing import Any

from pydantic import AliasChoices
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from harness.scenario.model import Scenario

SCHEMA_ID = "https://spot-harness.dev/schema/scenario.json"


class _AllAliases(GenerateJsonSchema):
    """Pydantic names only the first of a field's alias choices; the loader accepts every one
    (``lead`` or ``grace``), so the schema lists each as a property of the same shape."""

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        generated = super().model_schema(schema)
        properties = generated.get("properties")
        if not isinstance(properties, dict):
            return generated
        for name, field in schema["cls"].model_fields.items():
            choices = field.validation_alias
            if isinstance(choices, AliasChoices):
                first, *others = [c for c in choices.choices if isinstance(c, str)]
                for other in others:
                    properties.setdefault(other, properties.get(first, properties.get(name)))
        return generated


def scenario_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of one scenario document, generated from the model."""
    schema = Scenario.model_json_schema(
        mode="validation", by_alias=True, schema_generator=_AllAliases
    )
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "spot-harness scenario"
    return schema


def schema_text() -> str:
    return json.dumps(scenario_schema(), indent=2, sort_keys=True) + "\n"
