"""``pytest --harness-report PATH``: the HTML report of the scenario tests of a pytest run.

Each scenario item attaches its journal record to its test report (``user_properties``), which
pytest-xdist carries from the workers to the controller; the controller (or a plain pytest
process) collects them as reports arrive and writes the page once, at the end of the session.
Only then are records attached, so that junit XML and the like stay lean otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.report.html import ReportError, check_report_path, render_report, write_report
from harness.report.journal import journal_document

if TYPE_CHECKING:
    from harness.sim.runner import RunResult

OPTION = "harness_report"
#: The ``user_properties`` name of a scenario's journal record.
PROPERTY = "harness_run"


def add_option(group: Any) -> None:
    group.addoption(
        "--harness-report",
        dest=OPTION,
        metavar="PATH",
        default=None,
        help="write an HTML report of the scenario tests to PATH (an earlier report there is "
        "replaced; any other file is refused)",
    )


def configure(config: pytest.Config) -> None:
    """Register the collector when a report was asked for (on the controller only)."""
    path = config.getoption(OPTION, None)
    if path is None or hasattr(config, "workerinput"):
        return
    try:
        check_report_path(Path(path))
    except ReportError as error:
        raise pytest.UsageError(f"--harness-report: {error}") from None
    config.pluginmanager.register(ReportCollector(Path(path)), "harness-report")


def attach(item: pytest.Item, result: RunResult, file: Path, name: str) -> None:
    """Attach the run's record to the item's report, when a report was asked for."""
    if item.config.getoption(OPTION, None) is None:
        return
    from harness.report.render import result_json

    item.user_properties.append((PROPERTY, json.dumps(result_json(result, file, name))))


class ReportCollector:
    """Gathers the records the scenario items attach, and writes the page at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[str, dict[str, Any]] = {}
        self.message = ""

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == PROPERTY and isinstance(value, str) and report.nodeid not in self.records:
                self.records[report.nodeid] = json.loads(value)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        runs = [self.records[node] for node in sorted(self.records)]
        document = journal_document(runs, [], {"command": "pytest"}, finished=True)
        try:
            replaced = write_report(self.path, render_report(document))
        except ReportError as error:
            self.message = f"harness report not written: {error}"
            return
        again = " (replaced the earlier report)" if replaced else ""
        self.message = f"harness report: {self.path}{again}, {len(runs)} scenario run(s)"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.message:
            terminalreporter.write_line(self.message)
