"""`pytest --harness-report`: the same page from a pytest run, with and without xdist."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
# The small probe target of the engine tests keeps these pytest sessions short.
FAST = """\
description: {description}
seed: 3
target: {{python: 'tests.sim.probe:probe_target'}}
job: {{items: 6, step: 10}}
env: {{s3: {{latency: 0}}, redis: {{latency: 0}}, disk: {{latency: 0, fsync: 0}}}}
timeline: [{{at: 25s, kill: {{}}}}]
expect: [{{completes: {{within: {within}}}}}]
"""


@pytest.fixture
def scenarios(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    pytester.makeini("[pytest]\nharness_scenarios = scenarios\n")  # the plugin's collection rule
    folder = Path(pytester.path) / "scenarios"
    folder.mkdir()
    (folder / "good.yaml").write_text(FAST.format(description="in time", within="1h"))
    (folder / "broken.yaml").write_text(FAST.format(description="too slow", within="30s"))
    return folder


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_every_scenario_reaches_the_report(
    pytester: pytest.Pytester, scenarios: Path, workers: list[str]
) -> None:
    out = Path(pytester.path) / "report.html"
    # xdist needs its own process; a plain session runs in this one, which is quicker
    run = pytester.runpytest_subprocess if workers else pytester.runpytest
    result = run("scenarios", *workers, "-p", "no:cacheprovider", "--harness-report", str(out))
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"harness report: {out}, 2 scenario run(s)"])
    page = out.read_text()
    assert re.findall(r'<section class="run (\w+)"', page) == ["failed", "passed"]
    assert "scenarios/broken.yaml::broken" in page
    assert "replay: <code>harness run scenarios/broken.yaml --seed 3</code>" in page


def test_a_foreign_report_path_is_a_usage_error(pytester: pytest.Pytester, scenarios: Path) -> None:
    mine = Path(pytester.path) / "mine.html"
    mine.write_text("keep me")
    result = pytester.runpytest(
        "scenarios", "-p", "no:cacheprovider", "--harness-report", str(mine)
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert "--harness-report:" in output and "is not a harness report; refusing" in output
    assert mine.read_text() == "keep me"


def test_without_the_option_nothing_is_attached(pytester: pytest.Pytester, scenarios: Path) -> None:
    result = pytester.runpytest("scenarios", "-p", "no:cacheprovider", "--junitxml", "out.xml")
    result.assert_outcomes(passed=1, failed=1)
    assert "harness_run" not in (Path(pytester.path) / "out.xml").read_text()
