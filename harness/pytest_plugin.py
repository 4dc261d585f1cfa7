"""The pytest plugin (entry point ``pytest11``): collects scenario YAML files as tests.

Every ``*.yaml`` / ``*.yml`` file under a directory named ``scenarios`` is a scenario file; each
YAML document in it is one test, run in simulation (or, for a ``command:`` target, as real
processes in the process tier). A file that is not a valid scenario is a
collection error listing every problem with file:line:col. A failing scenario is reported as a
short timeline with the check that broke, the events that prove it and the ``harness run`` line
that replays it. Scenarios whose ``expect`` marks checks as known to fail (``fails:``) are
reported as xfail when exactly those fail, and fail when they unexpectedly pass.

The engine is imported only when a scenario file is collected, so the plugin costs nothing in
test runs without scenarios.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from fake_imds.pytest_fixtures import fake_imds, fake_imds_factory  # noqa: F401

if TYPE_CHECKING:
    from harness.scenario.loader import LoadedScenario
    from harness.sim.runner import RunResult

SCENARIO_DIR = "scenarios"
SUFFIXES = (".yaml", ".yml")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "spot-harness scenarios")
    group.addoption(
        "--scenario-seed",
        type=int,
        default=None,
        help="run every scenario with this seed instead of its own",
    )
    group.addoption(
        "--scenario-redis",
        choices=("fake", "real"),
        default="fake",
        help="command targets: fakeredis' TCP server (default) or a real redis-server",
    )
    group.addoption(
        "--scenario-time-scale",
        type=float,
        default=1.0,
        help="command targets: run the process's clock N times faster (libfaketime)",
    )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
    if file_path.suffix in SUFFIXES and SCENARIO_DIR in file_path.parts[:-1]:
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFailure(Exception):
    """A scenario run did not meet its expectations; carries the run for the report."""

    def __init__(self, result: RunResult, loaded: LoadedScenario) -> None:
        super().__init__(result.status)
        self.result = result
        self.loaded = loaded


class ScenarioFile(pytest.File):
    """One scenario file: one item per YAML document."""

    def collect(self) -> Iterator[ScenarioItem]:
        from harness.scenario.loader import ScenarioError, load_file

        try:
            loaded = load_file(self.path)
        except ScenarioError as error:
            raise self.CollectError(f"invalid scenario file:\n{error}") from None
        for item in loaded:
            yield ScenarioItem.from_parent(self, name=item.name, loaded=item)


class ScenarioItem(pytest.Item):
    """One scenario document, run in virtual time when the test runs."""

    def __init__(self, *, loaded: LoadedScenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.loaded = loaded
        for check in loaded.scenario.known_bad:
            self.add_marker(pytest.mark.known_bad(check.name))

    def runtest(self) -> None:
        from harness.process.dispatch import run_loaded
        from harness.process.runner import ProcessOptions

        seed = self.config.getoption("scenario_seed")
        options = ProcessOptions(
            redis=self.config.getoption("scenario_redis"),
            time_scale=self.config.getoption("scenario_time_scale"),
        )
        result = run_loaded(self.loaded, seed, options)
        if result.status == "xfailed":
            reasons = "; ".join(
                f"{c.spec.name}: {c.spec.fails}" for c in result.checks if c.expected_to_fail
            )
            pytest.xfail(f"known-bad target: {reasons}")
        if not result.ok:
            raise ScenarioFailure(result, self.loaded)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str | Any:
        if isinstance(excinfo.value, ScenarioFailure):
            from harness.report.render import render_failure

            return render_failure(excinfo.value.result, _relative(self.loaded.file))
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.loaded.line - 1, f"scenario: {self.loaded.scenario.description}"


def _relative(path: Path) -> Path:
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "known_bad(check): the scenario expects this check to fail (xfail)"
    )
