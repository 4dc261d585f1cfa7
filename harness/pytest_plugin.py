"""The pytest plugin (entry point ``pytest11``): collects scenario YAML files as tests.

It takes only what is meant for it. A ``*.yaml`` / ``*.yml`` file is a scenario file when

- it lies under a folder listed in the ini option ``harness_scenarios`` (paths relative to the
  ini file, e.g. ``harness_scenarios = ["scenarios"]`` under ``[tool.pytest.ini_options]``), or
- it is named on the command line (``pytest my_scenario.yaml``).

Any other YAML (a ``locust.yaml``, CI configs, a folder that merely happens to be called
``scenarios``) is never read. Each YAML document of a scenario file is one test, run in
simulation (or, for a ``command:`` target, as real processes in the process tier). A scenario
file that is not a valid scenario is a collection error listing every problem with
file:line:col. A failing scenario is reported as a short timeline with the check that broke,
the events that prove it and the ``harness run`` line that replays it. Scenarios whose
``expect`` marks checks as known to fail (``fails:``) are reported as xfail when exactly those
fail, and fail when they unexpectedly pass.

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

SUFFIXES = (".yaml", ".yml")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "harness_scenarios",
        type="paths",
        default=[],
        help="folders whose *.yaml / *.yml files are spot-harness scenarios (relative to the "
        "ini file); a scenario file named on the command line is collected anyway",
    )
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
    from harness.report.pytest_report import add_option

    add_option(group)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
    if file_path.suffix in SUFFIXES and is_scenario_file(file_path, parent.config):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


def is_scenario_file(path: Path, config: pytest.Config) -> bool:
    """The collection rule: under a ``harness_scenarios`` folder, or named on the command line."""
    folders: list[Path] = config.getini("harness_scenarios")
    if any(path.is_relative_to(folder.resolve()) for folder in folders):
        return True
    here = config.invocation_params.dir
    named = (here / arg.split("::")[0] for arg in config.invocation_params.args)
    return any(path == candidate.resolve() for candidate in named)


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
        try:
            from harness.process.dispatch import run_loaded
            from harness.process.runner import ProcessOptions
        except ImportError as error:  # pytest is here, the simulator's packages are not
            from harness.cli import EXTRAS

            extra = EXTRAS.get((error.name or "").partition(".")[0], "sim")
            pytest.fail(
                f"running scenarios needs the [{extra}] extra ({error.name} is not installed): "
                f"pip install 'spot-harness[{extra}]'",
                pytrace=False,
            )

        seed = self.config.getoption("scenario_seed")
        options = ProcessOptions(
            redis=self.config.getoption("scenario_redis"),
            time_scale=self.config.getoption("scenario_time_scale"),
        )
        result = run_loaded(self.loaded, seed, options)
        from harness.report.pytest_report import attach

        attach(self, result, _relative(self.loaded.file), self.nodeid)
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
    from harness.report.pytest_report import configure

    configure(config)
    config.addinivalue_line(
        "markers", "known_bad(check): the scenario expects this check to fail (xfail)"
    )
