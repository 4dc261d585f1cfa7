"""One entry point for ``harness run`` and the pytest plugin: a scenario runs in simulation, or
in the process tier when its target is a command."""

from __future__ import annotations

from harness.process.runner import ProcessOptions, run_process_scenario
from harness.scenario.loader import LoadedScenario
from harness.sim.runner import RunResult, run_scenario


def is_process(item: LoadedScenario) -> bool:
    return item.scenario.target.command is not None


def run_loaded(
    item: LoadedScenario, seed: int | None, options: ProcessOptions | None = None
) -> RunResult:
    """Run a loaded scenario in its tier (a command target's paths are relative to its file)."""
    if is_process(item):
        return run_process_scenario(
            item.scenario, seed=seed, base_dir=item.file.parent, options=options
        )
    return run_scenario(item.scenario, seed=seed)
