"""The published JSON Schema is generated from the models: it must accept what the loader
accepts (every scenario of the library) and refuse what the loader refuses."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from harness.scenario.loader import _Builder, _documents, scenario_files
from harness.scenario.schema import scenario_schema

LIBRARY = Path(__file__).parents[2] / "scenarios"
VALIDATOR = jsonschema.Draft202012Validator(scenario_schema())


def documents() -> list[tuple[str, object]]:
    """Each library document as the loader reads it (YAML 1.2 keys: `on` is a string, as in
    editors), before the model sees it."""
    found = []
    for path in scenario_files([LIBRARY]):
        for index, node in enumerate(_documents(path.read_text(), str(path))):
            found.append(
                (f"{path.relative_to(LIBRARY)}[{index}]", _Builder(str(path)).build(node, ()))
            )
    return found


@pytest.mark.parametrize(("name", "document"), documents(), ids=lambda v: str(v)[:60])
def test_every_library_scenario_satisfies_the_schema(name: str, document: object) -> None:
    errors = [error.message for error in VALIDATOR.iter_errors(document)]
    assert errors == [], name


@pytest.mark.parametrize(
    "document",
    [
        {"description": "d", "target": "refrence"},
        {"description": "d", "expect": ["durabel"]},
        {"description": "d", "expect": [{"lost_work": {"at_mots": "1s"}}]},
        {"description": "d", "timeline": [{"at": "1s", "crash": {"at": "s3.nope"}}]},
        {"description": "d", "sed": 1},
    ],
)
def test_the_schema_refuses_what_the_loader_refuses(document: object) -> None:
    assert not VALIDATOR.is_valid(document)
