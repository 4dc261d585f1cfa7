"""Figures of one run, read from its history: lost work, notice detection, the margin left
before each deadline, recovery time and the time checkpoints took.

The summary table of the HTML report and ``harness cost`` both read them here. They are
measurements, not verdicts: the checks decide whether a run passed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.checks.view import HistoryView, Instance
from harness.history import Event, History, Kind
from harness.report.render import record_events

#: Tiers a checkpoint must reach to survive each action (the rule of ``saved_before_deadline``).
SURVIVING_TIERS: Mapping[str, frozenset[str]] = {
    "terminate": frozenset({"s3"}),
    "stop": frozenset({"s3", "local"}),
    "hibernate": frozenset({"s3", "local"}),
}


class _Recorded(History):
    """A history read back from a journal: its events as they were, seq numbers and times."""

    def __init__(self, events: Iterable[Event]) -> None:
        super().__init__(lambda: 0.0)
        self._events.extend(events)


@dataclass(frozen=True)
class Margin:
    """How long before a notice's deadline the state was saved on a tier that survives it."""

    notice_id: str
    instance: str
    deadline: float
    #: When the last surviving save between notice and deadline was durable; None: no save.
    saved_at: float | None

    @property
    def seconds(self) -> float | None:
        return None if self.saved_at is None else self.deadline - self.saved_at


@dataclass(frozen=True)
class RunFigures:
    instances: int
    #: Instances that were killed (by a deadline, a crash, a host failure), not exits.
    interruptions: int
    #: Seconds of work redone after each restart.
    lost_work: tuple[float, ...]
    #: Seconds from each notice to the instance reporting it.
    detection: tuple[float, ...]
    margins: tuple[Margin, ...]
    #: Seconds from a replacement's boot to its resume (the first instance is not a recovery).
    recovery: tuple[float, ...]
    #: Seconds from each checkpoint's start to its first durable copy, summed.
    checkpoint_seconds: float
    checkpoints: int
    #: Seconds instances ran, summed (what a cloud bills).
    instance_seconds: float

    @property
    def worst_margin(self) -> Margin | None:
        """The tightest deadline: a missed one (no save) first, else the smallest margin."""
        if not self.margins:
            return None
        missed = [m for m in self.margins if m.seconds is None]
        if missed:
            return missed[0]
        return min(self.margins, key=lambda m: m.seconds or 0.0)


def run_figures(record: Mapping[str, Any]) -> RunFigures:
    """The figures of one journal record."""
    view = recorded_view(record)
    instances = view.instances
    return RunFigures(
        instances=len(instances),
        interruptions=sum(1 for i in instances if _interrupted(i)),
        lost_work=tuple(_lost_work(view, instances)),
        detection=tuple(_detection(view)),
        margins=tuple(_margins(view)),
        recovery=tuple(
            resumed.t - i.start for i in instances[1:] if (resumed := view.resumed(i)) is not None
        ),
        checkpoint_seconds=sum(_checkpoint_durations(view)),
        checkpoints=len(view.of_kind(Kind.CHECKPOINT_STARTED)),
        instance_seconds=sum(
            (i.end if i.ended is not None else view.run_end) - i.start for i in instances
        ),
    )


def _interrupted(instance: Instance) -> bool:
    return instance.killed is not None or (
        instance.ended is not None and instance.ended.kind == Kind.INSTANCE_KILLED
    )


def _detection(view: HistoryView) -> Iterable[float]:
    for notice in view.notices:
        for instance in view.notice_targets(notice):
            seen = [e for e in view.by(instance.id, Kind.NOTICE_SEEN) if e.t >= notice.issued.t]
            if seen:
                yield seen[0].t - notice.issued.t


def _margins(view: HistoryView) -> Iterable[Margin]:
    for notice in view.notices:
        if notice.advisory:
            continue
        tiers = SURVIVING_TIERS.get(notice.action, SURVIVING_TIERS["terminate"])
        for instance in view.notice_targets(notice):
            if instance.end < notice.issued.t:
                continue
            saves = [
                e.t
                for e in view.by(instance.id, Kind.CHECKPOINT_DURABLE)
                if notice.issued.t <= e.t <= notice.deadline and e.data.get("tier") in tiers
            ]
            yield Margin(notice.id, instance.id, notice.deadline, saves[-1] if saves else None)


def _checkpoint_durations(view: HistoryView) -> Iterable[float]:
    durable: dict[str, float] = {}
    for event in view.of_kind(Kind.CHECKPOINT_DURABLE):
        durable.setdefault(str(event.data.get("checkpoint_id")), event.t)
    for started in view.of_kind(Kind.CHECKPOINT_STARTED):
        done = durable.get(str(started.data.get("checkpoint_id")))
        if done is not None and done >= started.t:
            yield done - started.t


def _lost_work(view: HistoryView, instances: Sequence[Instance]) -> Iterable[float]:
    """For each instance that resumed: the seconds its predecessor worked past the resume point.

    Work ends at the predecessor's last item when it stopped on its own (a notice, the end of
    the job), else at its end: the batch in progress was lost too.
    """
    for previous, following in itertools.pairwise(instances):
        resumed = view.resumed(following)
        items = view.positions(previous.id)
        if resumed is None or not items:
            continue
        restart = int(resumed.data.get("position") or 0)
        origin = view.resumed(previous)
        points = [(int(origin.data.get("position") or 0) if origin else 0, previous.start)]
        points += [(int(e.data.get("position", 0)), e.t) for e in items]
        reached = _time_reached(points, restart)
        if reached is None:
            continue
        stopped = view.by(previous.id, Kind.JOB_STOPPED, Kind.JOB_COMPLETED)
        end = points[-1][1] if stopped or previous.ended is None else previous.end
        yield max(0.0, end - reached)


def _time_reached(points: list[tuple[int, float]], position: int) -> float | None:
    """When ``position`` was reached, interpolated between the items around it."""
    if position <= points[0][0]:
        return points[0][1]
    for (p0, t0), (p1, t1) in itertools.pairwise(points):
        if p1 >= position:
            return t1 if p1 == p0 else t0 + (t1 - t0) * (position - p0) / (p1 - p0)
    return None


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def recorded_view(record: Mapping[str, Any]) -> HistoryView:
    """A :class:`HistoryView` of a journal record's history."""
    return HistoryView(_Recorded(record_events(record)))
