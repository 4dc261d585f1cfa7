"""`pytest scenarios`: collection, failure reports, xfail, positions, xdist."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
PROBE = "{python: 'tests.sim.probe:probe_target'}"
FAST_ENV = "{s3: {latency: 0}, redis: {latency: 0}, disk: {latency: 0, fsync: 0}}"


def scenario(description: str, expect: str, timeline: str = "[]") -> str:
    return textwrap.dedent(
        f"""\
        description: {description}
        seed: 5
        target: {PROBE}
        job: {{items: 6, step: 10}}
        env: {FAST_ENV}
        timeline: {timeline}
        expect: {expect}
        """
    )


@pytest.fixture
def scenarios(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.syspath_prepend(str(REPO))
    pytester.makeini("[pytest]\nharness_scenarios = scenarios\n")
    folder = pytester.mkdir("scenarios")
    return Path(folder)


def test_one_test_per_file_and_per_document(pytester: pytest.Pytester, scenarios: Path) -> None:
    (scenarios / "single.yaml").write_text(scenario("one", "[{completes: {within: 1h}}]"))
    multi = scenario("a", "[durable]") + "---\n" + scenario("b", "[durable]")
    (scenarios / "nested").mkdir()
    (scenarios / "nested" / "multi.yml").write_text(multi)
    (scenarios / "README.txt").write_text("not collected")
    result = pytester.runpytest("scenarios", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "scenarios/nested/multi.yml::multi[[]1[]]",
            "scenarios/nested/multi.yml::multi[[]2[]]",
            "scenarios/single.yaml::single",
        ]
    )


def test_yaml_outside_a_scenarios_folder_is_not_collected(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", config="description: not a test\n")
    result = pytester.runpytest("--collect-only", "-q")
    assert "config.yaml" not in result.stdout.str()


def test_a_project_with_unrelated_yaml_is_left_alone(pytester: pytest.Pytester) -> None:
    """No `harness_scenarios` option: a folder called `scenarios` holding a load-test config (not
    a scenario at all) and a CI file are never read, and the project's own tests still run."""
    pytester.mkdir("scenarios")
    Path(pytester.path, "scenarios", "locust.yaml").write_text("users: 10\nspawn-rate: [1, 2\n")
    pytester.makefile(".yml", ci="on: push\njobs: {}\n")
    pytester.makepyfile(test_app="def test_app():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest("-q")
    result.assert_outcomes(passed=1)
    assert "locust.yaml" not in result.stdout.str()
    result = pytester.runpytest("scenarios", "-q")  # even when the folder is named
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert "error" not in result.stdout.str().lower()


def test_a_scenario_file_named_on_the_command_line_is_collected(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.syspath_prepend(str(REPO))
    Path(pytester.path, "my_scenario.yaml").write_text(
        scenario("mine", "[{completes: {within: 1h}}]")
    )
    Path(pytester.path, "other.yaml").write_text("not: [a scenario\n")
    # In a subprocess: the simulator is imported once per process, as in real use.
    result = pytester.runpytest_subprocess("my_scenario.yaml", "-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "other.yaml" not in result.stdout.str()
    result = pytester.runpytest("my_scenario.yaml::my_scenario", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["my_scenario.yaml::my_scenario"])


def test_only_the_listed_folders_hold_scenarios(pytester: pytest.Pytester, scenarios: Path) -> None:
    (scenarios / "ok.yaml").write_text(scenario("fine", "[{completes: {within: 1h}}]"))
    pytester.mkdir("deploy")
    Path(pytester.path, "deploy", "scenarios.yaml").write_text("description: [broken\n")
    result = pytester.runpytest("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["scenarios/ok.yaml::ok", "1 test collected*"])


def test_bad_file_is_a_collection_error_with_every_problem(
    pytester: pytest.Pytester, scenarios: Path
) -> None:
    (scenarios / "bad.yaml").write_text("descripton: x\nenv: {cloud: asw}\n")
    result = pytester.runpytest("scenarios")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting scenarios/bad.yaml*",
            "invalid scenario file:",
            "*bad.yaml:1:1: the scenario needs `description`",
            "*bad.yaml:1:1: unknown key `descripton` in the scenario; did you mean `description`?",
            "*bad.yaml:2:14: `cloud` cannot be `asw`*did you mean `aws`?",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_outcomes_pass_fail_xfail_xpass_in_one_session(
    pytester: pytest.Pytester, scenarios: Path
) -> None:
    (scenarios / "ok.yaml").write_text(scenario("fine", "[{completes: {within: 1h}}]"))
    (scenarios / "slow.yaml").write_text(
        scenario("too slow", "[{completes: {within: 30s}}]", "[{at: 25s, kill: {}}]")
    )
    (scenarios / "known_bad.yaml").write_text(
        scenario("bad on purpose", '[{completes: {within: 10s, fails: "takes a minute"}}]')
    )
    (scenarios / "not_bad.yaml").write_text(
        scenario("claims badness", '[{completes: {within: 1h, fails: "it does not"}}]')
    )
    result = pytester.runpytest("scenarios", "-rxX", "--scenario-seed", "77")
    result.assert_outcomes(passed=1, failed=2, xfailed=1)
    # A failure is a short timeline: the broken check, what happened when, the replay line.
    result.stdout.fnmatch_lines(
        [
            "*scenario: too slow*",
            "FAILED: too slow (seed 77)",
            "check completes(within=30s) broke*",
            "timeline (ended: completed*",
            "*0:00:25.000  #1   instance.killed*reason=hard_kill*",
            "*0:00:55.000  #2   instance.started*",
            "replay: harness run scenarios/slow.yaml --seed 77",
        ]
    )
    result.stdout.fnmatch_lines(["*passed, but the scenario says it fails: it does not*"])
    result.stdout.fnmatch_lines(["*XFAIL*known_bad*known-bad target: completes: takes a minute*"])


def test_reportinfo_points_at_the_document(pytester: pytest.Pytester, scenarios: Path) -> None:
    text = scenario("a", "[durable]") + "---\n" + scenario("b", "[durable]")
    (scenarios / "two.yaml").write_text(text)
    items, _ = pytester.inline_genitems("scenarios")
    assert [item.location[1] for item in items] == [0, 8]
    assert items[1].location[2] == "scenario: b"


def test_works_with_xdist(pytester: pytest.Pytester, scenarios: Path) -> None:
    for index in range(2):
        (scenarios / f"s{index}.yaml").write_text(
            scenario(f"n{index}", "[{completes: {within: 1h}}]")
        )
    result = pytester.runpytest_subprocess("scenarios", "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_without_the_simulator_s_packages_a_scenario_names_the_extra_to_install(
    pytester: pytest.Pytester, scenarios: Path
) -> None:
    """pytest alone (a [test]-less install): the item fails with the fix, not an import error."""
    (scenarios / "one.yaml").write_text(scenario("one", "[completes]"))
    pytester.makeconftest(
        textwrap.dedent(
            """\
            import sys

            class NoMoto:
                def find_spec(self, name, path=None, target=None):
                    if name.partition(".")[0] == "moto":
                        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

            for loaded in list(sys.modules):
                if loaded.startswith(("moto", "harness.sim", "harness.process")):
                    del sys.modules[loaded]
            sys.meta_path.insert(0, NoMoto())
            """
        )
    )
    result = pytester.runpytest_subprocess("scenarios", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*running scenarios needs the [[]sim[]] extra (moto is not installed): "
            "pip install 'spot-harness[[]sim[]]'*"
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
