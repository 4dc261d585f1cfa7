"""What both tiers do with an instance's fake metadata server: record what it answered, and
keep the metadata-service faults of the timeline on every instance that boots while they last."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fake_imds.model import MetadataPlane, ServedRequest
from harness.history import History

#: History kind of a metadata request whose answer changed (see :func:`record_imds_changes`).
IMDS_REQUEST = "imds.request"


def record_imds_changes(
    history: History, plane: MetadataPlane, instance_id: str, alive: Callable[[], bool]
) -> Callable[[], None]:
    """Record what ``plane`` answered, compactly: a request when its path's status changes (the
    first 404, the notice's 200, a fault). Returns a function that forgets the statuses seen,
    so that the next answer on every path is recorded again."""
    last_status: dict[str, int] = {}

    def record(served: ServedRequest) -> None:
        if not alive() or last_status.get(served.path) == served.status:
            return
        last_status[served.path] = served.status
        history.record(
            "imds",
            IMDS_REQUEST,
            instance_id,
            method=served.method,
            path=served.path,
            status=served.status,
            dialect=served.dialect,
            fault=served.fault,
            requested_at=served.t,
        )

    plane.on_request(record)
    return last_status.clear


class ImdsFaults:
    """The timeline's metadata-service faults: on every running instance's server, and on each
    instance that boots while one lasts (for what is left of it)."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._faults: list[tuple[float | None, dict[str, Any]]] = []

    def add(
        self, duration: float | None, params: dict[str, Any], running: Iterable[MetadataPlane]
    ) -> None:
        self._faults.append((None if duration is None else self._now() + duration, params))
        for plane in running:
            plane.add_fault(duration=duration, **params)

    def apply(self, plane: MetadataPlane) -> None:
        now = self._now()
        for end, params in self._faults:
            if end is None or end > now:
                plane.add_fault(duration=None if end is None else end - now, **params)
