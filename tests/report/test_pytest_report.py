"""`pytest --harness-report`: the same page from a pytest run, with and without xdist."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.report.conftest import write_scenarios

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def scenarios(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    folder = Path(pytester.path) / "scenarios"
    write_scenarios(folder)
    return folder


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_every_scenario_reaches_the_report(
    pytester: pytest.Pytester, scenarios: Path, workers: list[str]
) -> None:
    out = Path(pytester.path) / "report.html"
    result = pytester.runpytest_subprocess(
        "scenarios", *workers, "-p", "no:cacheprovider", "--harness-report", str(out)
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"harness report: {out}, 2 scenario run(s)"])
    page = out.read_text()
    assert re.findall(r'<section class="run (\w+)"', page) == ["failed", "passed"]
    assert "scenarios/broken.yaml::broken" in page
    assert "replay: <code>harness run scenarios/broken.yaml --seed 3</code>" in page


def test_a_foreign_report_path_is_a_usage_error(pytester: pytest.Pytester, scenarios: Path) -> None:
    mine = Path(pytester.path) / "mine.html"
    mine.write_text("keep me")
    result = pytester.runpytest_subprocess(
        "scenarios", "-p", "no:cacheprovider", "--harness-report", str(mine)
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--harness-report:*is not a harness report; refusing*"])
    assert mine.read_text() == "keep me"


def test_without_the_option_nothing_is_attached(pytester: pytest.Pytester, scenarios: Path) -> None:
    result = pytester.runpytest_subprocess(
        "scenarios", "-p", "no:cacheprovider", "--junitxml", "out.xml"
    )
    result.assert_outcomes(passed=1, failed=1)
    assert "harness_run" not in (Path(pytester.path) / "out.xml").read_text()
