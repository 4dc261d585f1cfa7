"""One vocabulary of notice kinds and actions: what a scenario may say, the timeline turns into
a control-API body that the fake metadata server accepts, for every cloud, kind and action."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from fake_imds import aws, vocabulary
from fake_imds.control import schedule_notice
from fake_imds.model import MetadataPlane, Notice
from harness.clock import clock_for_running_loop, run_virtual
from harness.scenario import model
from harness.sim.timeline import _notice_body

COMBINATIONS = [
    (cloud, kind, action)
    for cloud, kinds in vocabulary.NOTICE_KINDS.items()
    for kind in kinds
    for action in vocabulary.NOTICE_ACTIONS[cloud]
]


def test_the_scenario_model_and_the_aws_dialect_read_the_vocabulary() -> None:
    assert model.NOTICE_KINDS is vocabulary.NOTICE_KINDS
    assert model.CLOUDS is vocabulary.CLOUDS
    assert set(aws.NOTICE_KINDS) == {*vocabulary.NOTICE_KINDS["aws"], "fis-spot-interruption"}


@pytest.mark.parametrize(("cloud", "kind", "action"), COMBINATIONS)
def test_every_scenario_notice_is_a_body_the_control_api_accepts(
    cloud: vocabulary.Cloud, kind: str, action: Any
) -> None:
    notice = model.Notice(cloud=cloud, kind=kind, action=action)
    instance = SimpleNamespace(cloud=cloud, webhook_url="http://127.0.0.1:9/hook")
    body = _notice_body(notice, instance)  # type: ignore[arg-type]

    async def schedule() -> Notice:
        plane = MetadataPlane(clock_for_running_loop())
        return schedule_notice(plane, body)[0]

    scheduled = run_virtual(schedule)
    assert (scheduled.cloud, scheduled.kind) == (cloud, kind)
    if vocabulary.takes_action(cloud, kind):
        assert scheduled.action == action
