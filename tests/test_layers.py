"""Layering: only the CLI (``harness.cli``, ``harness.commands``) knows click and exit codes;
every library module imports without it and raises :mod:`harness.errors` instead."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from harness.cli import EXIT_ENVIRONMENT, EXIT_USAGE, exit_code
from harness.errors import EnvironmentProblem, HarnessError, InputError
from harness.inject.plan import PlanError
from harness.runtime.config import ConfigError
from harness.scenario.loader import ScenarioError
from harness.units import UnitError

IMPORT_ALL_WITHOUT_CLICK = textwrap.dedent(
    """
    import importlib, pkgutil, sys

    class NoClick:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] == "click":
                raise ImportError(f"click imported by library code: {name}")

    sys.meta_path.insert(0, NoClick())
    import harness
    for module in pkgutil.walk_packages(harness.__path__, "harness."):
        if not module.name.startswith(("harness.cli", "harness.commands")):
            importlib.import_module(module.name)
    print("imported", len(sys.modules))
    """
)


def test_no_library_module_imports_click() -> None:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL_WITHOUT_CLICK], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("imported")


def test_library_errors_are_one_hierarchy_mapped_to_exit_codes_by_the_cli() -> None:
    for error in (PlanError("x"), ConfigError("x"), UnitError("x"), ScenarioError([])):
        assert isinstance(error, InputError)
        assert isinstance(error, ValueError)  # still caught where a ValueError is expected
        assert exit_code(error) == EXIT_USAGE
    assert exit_code(EnvironmentProblem("x")) == EXIT_ENVIRONMENT
    assert exit_code(HarnessError("x")) == EXIT_ENVIRONMENT
