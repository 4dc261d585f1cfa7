"""`target: {command: ...}`: its fields, its located errors, and the real-time refusals."""

from __future__ import annotations

import textwrap

import pytest

from harness.process.plan import estimate, process_problems
from harness.scenario import ScenarioError, load_text
from harness.scenario.model import Scenario


def problems_of(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        load_text(textwrap.dedent(text), "s.yaml")
    return [str(p) for p in caught.value.problems]


def test_a_command_target_takes_its_process_fields() -> None:
    (loaded,) = load_text(
        textwrap.dedent(
            """
            description: x
            target:
              command: [python, job.py]
              cwd: ../examples
              env: {MODE: fast}
              ready: {log: "^ready", timeout: 5s}
              stop_signal: SIGINT
              supervisor: true
              python: /usr/bin/python3
            """
        )
    )
    target = loaded.scenario.target
    assert target.command == ("python", "job.py")
    assert (target.cwd, target.env, target.stop_signal) == (
        "../examples",
        {"MODE": "fast"},
        "SIGINT",
    )
    assert target.ready is not None and (target.ready.log, target.ready.timeout) == ("^ready", 5.0)
    assert target.supervisor and target.python == "/usr/bin/python3"


def test_a_wrong_stop_signal_is_located_with_a_hint() -> None:
    (problem,) = problems_of(
        """
        description: x
        target: {command: [sh, job.sh], stop_signal: SIGTREM}
        """
    )
    assert problem.startswith("s.yaml:3:"), problem
    assert "unknown stop_signal `SIGTREM`" in problem and "did you mean `SIGTERM`?" in problem


def test_process_fields_without_a_command_are_refused() -> None:
    (problem,) = problems_of(
        """
        description: x
        target: {python: "pkg.mod:target", cwd: somewhere}
        """
    )
    assert "`cwd` belongs to `command:` targets" in problem


def test_ready_takes_exactly_one_condition() -> None:
    (problem,) = problems_of(
        """
        description: x
        target: {command: [sh, job.sh], ready: {event: job.started, log: go}}
        """
    )
    assert "ready takes exactly one of `event`, `log`, `after` (got event, log)" in problem


def test_a_python_target_still_needs_module_and_attribute() -> None:
    (problem,) = problems_of('description: x\ntarget: {python: "/usr/bin/python3"}\n')
    assert 'must be "package.module:attribute"' in problem


def _scenario(text: str) -> Scenario:
    (loaded,) = load_text(textwrap.dedent(text))
    return loaded.scenario


def test_a_scenario_too_long_for_real_time_is_refused_with_the_estimate_and_a_hint() -> None:
    entries = "".join(
        f"  - on: {{event: instance.started, nth: {n}}}\n    notice: {{lead: 2m}}\n"
        for n in range(1, 21)
    )
    (loaded,) = load_text(
        "description: twenty two-minute notices\ntarget: {command: [sh, job.sh]}\n"
        "job: {items: 10, seconds_per_item: 1s}\ntimeline:\n" + entries
    )
    scenario = loaded.scenario
    cost = estimate(scenario)
    assert cost.seconds == pytest.approx(20 * 120 + 20 * 30 + 10)
    (problem,) = process_problems(scenario, max_real_time=300)
    assert "needs about 50m10s of real time" in problem
    assert "20 interruption(s): leads 40m" in problem
    assert "shorter leads (`lead: 5s`)" in problem and "--max-real-time" in problem


def test_actions_a_real_process_cannot_take_are_refused_by_entry() -> None:
    scenario = _scenario(
        """
        description: x
        target: {command: [sh, job.sh]}
        env: {replacement: {delay: 1s}, budget: 30s}
        timeline:
          - at: 1s
            disk: {full: true}
          - at: 1s
            crash: {at: local.rename}
          - at: 1s
            crash: {at: s3.put_object}
        """
    )
    problems = process_problems(scenario, max_real_time=300)
    assert len(problems) == 2
    assert problems[0].startswith("timeline[0] (disk): local disk faults need a hook")
    assert problems[1].startswith("timeline[1] (crash): `crash: {at: local.rename}`")


def test_a_short_scenario_passes_the_plan() -> None:
    scenario = _scenario(
        """
        description: x
        target: {command: [sh, job.sh]}
        job: {items: 10, seconds_per_item: 0.1}
        env: {replacement: {delay: 500ms}, budget: 60s}
        timeline:
          - at: 1s
            notice: {lead: 3s}
        """
    )
    assert process_problems(scenario, max_real_time=300) == []
    assert estimate(scenario).seconds == pytest.approx(1 + 3 + 0.5 + 1)
