"""One vocabulary of notice kinds and actions: what a scenario may say, the timeline turns into
a control-API body that the fake metadata server accepts, for every cloud, kind and action."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from fake_imds import vocabulary
from fake_imds.control import Choice, notice_bodies, schedule_notice
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


def test_the_scenario_model_and_the_control_api_read_the_vocabulary() -> None:
    assert model.NOTICE_KINDS is vocabulary.NOTICE_KINDS
    assert model.CLOUDS is vocabulary.CLOUDS
    bodies = notice_bodies()
    assert tuple(bodies.options) == vocabulary.CLOUDS
    for cloud in vocabulary.CLOUDS:
        choice = bodies.options[cloud]
        if isinstance(choice, Choice):  # one model per kind, the default first
            assert tuple(choice.options) == vocabulary.control_kinds(cloud)
        else:  # one model; its default kind is the cloud's
            assert choice.model_fields["kind"].default == vocabulary.control_kinds(cloud)[0]
    assert vocabulary.control_kinds("aws")[-1] == "fis-spot-interruption"


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
