"""A real redis-server when the run or the scenario asks for one."""

from __future__ import annotations

import pytest

from harness.process.runner import ProcessOptions, redis_kind
from harness.process.servers import RedisKind
from harness.scenario import load_text
from harness.scenario.loader import ScenarioError

COMMAND = """
description: a command target
target: {{command: ["true"]}}
env: {{redis: {{server: {server}}}}}
expect: [completes]
"""


@pytest.mark.parametrize(
    ("server", "flag", "chosen"),
    [("fake", "fake", "fake"), ("fake", "real", "real"), ("real", "fake", "real")],
)
def test_the_scenario_or_the_flag_asks_for_a_real_redis(
    server: str, flag: RedisKind, chosen: RedisKind
) -> None:
    (loaded,) = load_text(COMMAND.format(server=server))
    assert redis_kind(loaded.scenario, ProcessOptions(redis=flag)) == chosen


def test_a_real_redis_for_an_in_process_target_is_refused_with_its_position() -> None:
    text = COMMAND.format(server="real").replace('{command: ["true"]}', "reference")
    with pytest.raises(ScenarioError) as refused:
        load_text(text, "s.yaml")
    (problem,) = refused.value.problems
    assert problem.mark.line == 4 and "a real redis-server is for command targets" in str(problem)
