"""`--time-scale N`: the process's clock and the harness's run N times faster, together."""

from __future__ import annotations

from harness.process.runner import ProcessOptions, run_process_scenario
from harness.process.timescale import faketime_library
from tests.process.conftest import HERE, check, first, scenario

TEN_TIMES = ProcessOptions(time_scale=10)


def test_a_scaled_run_keeps_the_story_in_faked_seconds() -> None:
    assert faketime_library() is not None, "libfaketime is missing: run tests/system_deps.py"
    story = scenario(
        """
        description: twenty seconds of a job and a ten-second notice, at ten times the speed
        target: {command: [python, targets/worker.py], ready: {log: working from}}
        job: {items: 40, seconds_per_item: 0.5, report: false}
        env: {cloud: aws, imdsv2: required, replacement: {delay: 3s}, budget: 120s}
        timeline:
          - at: 3s
            notice: {lead: 10s}
        expect: [saved_before_deadline, detects_notice: {within: 2s}, exactly_once, completes]
        """
    )
    result = run_process_scenario(story, base_dir=HERE, options=TEN_TIMES)
    assert result.status == "passed", result.error or [c.result for c in result.checks]
    history = result.history
    issued = first(history, "notice.issued")
    deadline = first(history, "notice.deadline")
    # Ten seconds of the run's (faked) clock, less float rounding of the scaled times ...
    assert deadline.t - issued.t >= 10.0 - 1e-3
    assert result.wall_seconds < result.sim_seconds / 3  # ... in far less real time
    # The worker polls once per faked half second: it read the notice within a faked second.
    assert check(result, "detects_notice").passed


def test_a_scale_below_one_is_refused() -> None:
    story = scenario("description: x\ntarget: {command: [sh, -c, 'exit 0']}\nexpect: [durable]\n")
    result = run_process_scenario(story, base_dir=HERE, options=ProcessOptions(time_scale=0.5))
    assert result.status == "error"
    assert result.error is not None and "--time-scale must be at least 1" in result.error
