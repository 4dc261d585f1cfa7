"""Subscribing to the requests a metadata plane serves (how the simulator records them)."""

from __future__ import annotations

from fake_imds.model import ServedRequest
from tests.fake_imds.imds_client import META, Imds, runner_for


def test_listeners_see_each_request_in_order_until_they_unsubscribe() -> None:
    async def test(imds: Imds) -> list[tuple[str, int]]:
        seen: list[ServedRequest] = []
        unsubscribe = imds.plane.on_request(seen.append)
        await imds.get(META + "instance-id", {})
        await imds.get(META + "spot/instance-action", {})
        unsubscribe()
        await imds.get(META + "mac", {})
        assert len(imds.plane.requests) == 3  # the log keeps everything regardless
        return [(served.path, served.status) for served in seen]

    assert runner_for("test-client")(test) == [
        (META + "instance-id", 200),
        (META + "spot/instance-action", 404),
    ]
