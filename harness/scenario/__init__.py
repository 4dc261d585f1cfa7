"""Scenarios: the typed model, the YAML loader with source positions, the JSON Schema."""

from harness.checks import CheckSpec
from harness.scenario.loader import (
    LoadedScenario,
    Mark,
    Problem,
    ScenarioError,
    load_file,
    load_paths,
    load_text,
    scenario_files,
)
from harness.scenario.model import Env, Scenario, TimelineEntry

__all__ = [
    "CheckSpec",
    "Env",
    "LoadedScenario",
    "Mark",
    "Problem",
    "Scenario",
    "ScenarioError",
    "TimelineEntry",
    "load_file",
    "load_paths",
    "load_text",
    "scenario_files",
]
