"""What both tiers do with an instance's fake metadata server: record what it answered, and
keep the metadata-service faults of the timeline on every instance that boots while they last."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fake_imds.model import MetadataPlane, ServedRequest
from harness.history import Event, History, Kind

#: History kind of a metadata request worth keeping (see :func:`record_imds_changes`).
IMDS_REQUEST = "imds.request"
#: History kind of a stretch in which an instance sent no metadata request at all.
IMDS_GAP = "imds.gap"
#: A stretch without metadata requests longer than this is recorded as an ``imds.gap``; polls
#: closer together are not (every poller of the library asks every few seconds).
RECORDED_GAP = 10.0
#: Status of a request that got no answer (a timeout fault held it, a reset dropped it).
NO_ANSWER = 0


def record_imds_changes(
    history: History, plane: MetadataPlane, instance_id: str, alive: Callable[[], bool]
) -> Callable[[], None]:
    """Record what ``plane`` answered, compactly (``imds.request``): a request when its path's
    status changes (the first 404, the notice's 200, a fault), and every request the protocol
    checks need: an expired IMDSv2 token presented, an Azure approval, a hanging GET left
    unanswered and the request after it. Every stretch of more than :data:`RECORDED_GAP` in
    which the instance asked nothing (no request arriving, none being answered) is recorded as
    an ``imds.gap``, up to the instance's end. Returns a function that forgets the statuses
    seen, so that the next answer on every path is recorded again."""
    recorder = _Recorder(history, plane, instance_id, alive)
    plane.on_request(recorder.served)
    recorder.unsubscribe = history.subscribe(recorder.watch)
    return recorder.last_status.clear


class _Recorder:
    def __init__(
        self, history: History, plane: MetadataPlane, instance_id: str, alive: Callable[[], bool]
    ) -> None:
        self.history = history
        self.plane = plane
        self.instance_id = instance_id
        self.alive = alive
        self.last_status: dict[str, int] = {}
        #: When the last answer went out (None before the first request).
        self.quiet_since: float | None = None
        self.after_unanswered = False
        self.unsubscribe: Callable[[], None] = lambda: None

    def served(self, served: ServedRequest) -> None:
        if not self.alive():
            return
        answered = self.plane.now()
        self._gap_until(served.t)
        self.quiet_since = max(answered, self.quiet_since or answered)
        if not self._worth_keeping(served):
            return
        self.last_status[served.path] = served.status
        self.after_unanswered = served.status == NO_ANSWER
        note = {"note": dict(served.note)} if served.note else {}
        self.history.record(
            "imds",
            IMDS_REQUEST,
            self.instance_id,
            method=served.method,
            path=served.path,
            status=served.status,
            dialect=served.dialect,
            fault=served.fault,
            requested_at=served.t,
            **note,
        )

    def _worth_keeping(self, served: ServedRequest) -> bool:
        note = served.note or {}
        return (
            self.last_status.get(served.path) != served.status
            or self.after_unanswered
            or served.status == NO_ANSWER
            or "token_expired_for" in note
            or "approved" in note
        )

    def _gap_until(self, arrived: float, *, end: bool = False) -> None:
        """Record the quiet stretch before a request that arrived at ``arrived`` (or before an
        earlier one still being answered: a held hanging GET counts as asking); with ``end``,
        ``arrived`` is the instance's end (``ended: true`` when the stretch lasted to it)."""
        if self.quiet_since is None:
            return
        held = self.plane.earliest_in_flight()
        until = arrived if held is None else min(arrived, held)
        if until - self.quiet_since > RECORDED_GAP:
            ended = {"ended": True} if end and held is None else {}
            self.history.record(
                "imds", IMDS_GAP, self.instance_id, since=self.quiet_since, until=until, **ended
            )
            self.quiet_since = until

    def watch(self, event: Event) -> None:
        """At the instance's end, the quiet stretch it ended in, if any."""
        if event.instance != self.instance_id or event.kind not in _ENDS:
            return
        self.unsubscribe()
        self._gap_until(event.t, end=True)


_ENDS = frozenset({Kind.INSTANCE_KILLED, Kind.INSTANCE_EXITED})


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
