from __future__ import annotations

from typing import Any

import yaml

from harness.history import Event
from harness.scenario import load_text
from harness.sim.runner import RunResult, run_scenario

PROBE = "tests.sim.probe:probe_target"


def scenario_text(timeline: list[dict[str, Any]] | None = None, **fields: Any) -> str:
    document: dict[str, Any] = {
        "description": "probe",
        "seed": 3,
        "target": {"python": PROBE},
        "job": {"items": 12, "step": 10},
        "env": {
            # Instant storage, so that event times in these tests are round numbers.
            "s3": {"latency": 0},
            "redis": {"latency": 0},
            "disk": {"latency": 0, "fsync": 0},
            "replacement": {"delay": "30s"},
        },
        "timeline": timeline or [],
        "expect": [{"completes": {"within": "2h"}}],
    }
    for key, value in fields.items():
        if value is None:  # leave the field out: the scenario's default applies
            document.pop(key, None)
        elif isinstance(value, dict) and isinstance(document.get(key), dict):
            document[key] = {**document[key], **value}
        else:
            document[key] = value
    return yaml.safe_dump(document, sort_keys=False)


def run(timeline: list[dict[str, Any]] | None = None, **fields: Any) -> RunResult:
    scenario = load_text(scenario_text(timeline, **fields))[0].scenario
    result = run_scenario(scenario)
    assert result.error is None or "a check crashed" in result.error, result.error
    return result


def kinds(result: RunResult, *wanted: str) -> list[Event]:
    return [e for e in result.history if e.kind in wanted]
