"""The history: a typed, append-only record of what the harness did and saw and what the target
reported, in every tier. Checks are pure functions of a history plus the final storage state.

Every event carries the clock time it happened at (virtual in simulation), who recorded it
(``source``), which instance it concerns, a dotted ``kind`` and a JSON-able ``data`` mapping.
Event kinds shared between the runtime, the runner and the checks are the constants in
:class:`Kind`; targets may record kinds of their own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Protocol

Source = Literal["harness", "target", "imds", "storage"]


class Kind:
    """Event kinds with a meaning fixed across the project (``data`` keys in comments)."""

    # -- recorded by the harness -------------------------------------------------------------
    RUN_STARTED = "run.started"  # scenario, seed
    RUN_FINISHED = "run.finished"  # reason: completed | budget | error
    INSTANCE_STARTED = "instance.started"  # incarnation, cloud, local_dir
    INSTANCE_KILLED = "instance.killed"  # reason: deadline | hard_kill | crash | grace_expired
    INSTANCE_EXITED = "instance.exited"  # code (0: clean), clean: bool, error
    NOTICE_ISSUED = "notice.issued"  # notice_id, cloud, kind, action, deadline (clock seconds)
    NOTICE_DEADLINE = "notice.deadline"  # notice_id, action
    FAULT_STARTED = "fault.started"  # fault, target, params
    FAULT_ENDED = "fault.ended"  # fault
    STORAGE_OP = "storage.op"  # op (e.g. s3.put_object), key, bytes, ok, error, status, observed
    LOCAL_SNAPSHOT = "local.snapshot"  # local_dir, files: {path: "sha256:..."} (kill or exit)
    LOCAL_UNSYNCED_LOST = "local.unsynced_lost"  # files: {path: what happened} (host lost)
    UNHANDLED_ERROR = "task.unhandled_error"  # message, error (a task nobody awaited)

    # -- reported by the target ---------------------------------------------------------------
    JOB_STARTED = "job.started"  # items
    RESUMED = "job.resumed"  # position, checkpoint_id, tier (None when starting fresh)
    EPOCH = "job.epoch"  # epoch
    ITEM_DONE = "job.item_done"  # position (items done so far)
    OUTPUT_COMMITTED = "output.committed"  # key, first, last, checksum
    NOTICE_SEEN = "notice.seen"  # source, action, deadline (clock seconds), notice_time
    MONITOR_BLIND = "monitor.blind"  # source, reason
    MONITOR_SIGHTED = "monitor.sighted"  # source
    CHECKPOINT_STARTED = "checkpoint.started"  # checkpoint_id, position, reason
    CHECKPOINT_UPLOAD_STARTED = "checkpoint.upload_started"  # checkpoint_id, bytes
    CHECKPOINT_DURABLE = "checkpoint.durable"  # checkpoint_id, tier, position, key, checksum
    CHECKPOINT_FAILED = "checkpoint.failed"  # checkpoint_id, tier, error
    METADATA_COMMITTED = "metadata.committed"  # checkpoint_id, position, epoch
    JOB_COMPLETED = "job.completed"  # position
    JOB_STOPPED = "job.stopped"  # position, reason (e.g. notice)
    CHECKPOINT_REJECTED = "checkpoint.rejected"  # checkpoint_id, tier, reason (bad at recovery)
    UPLOAD_ABORTED = "checkpoint.upload_aborted"  # key, reason
    OUTPUT_FAILED = "output.failed"  # key, error


#: Kinds only the harness records. A target reporting one is not believed (its report is
#: dropped): the checks read them as the harness's own evidence.
HARNESS_KINDS = frozenset(
    {
        Kind.RUN_STARTED,
        Kind.RUN_FINISHED,
        Kind.INSTANCE_STARTED,
        Kind.INSTANCE_KILLED,
        Kind.INSTANCE_EXITED,
        Kind.NOTICE_ISSUED,
        Kind.NOTICE_DEADLINE,
        Kind.FAULT_STARTED,
        Kind.FAULT_ENDED,
        Kind.STORAGE_OP,
        Kind.LOCAL_SNAPSHOT,
        Kind.LOCAL_UNSYNCED_LOST,
        Kind.UNHANDLED_ERROR,
        "imds.request",
        "imds.gap",
        "instance.superseded",
        "notice.approved",
        "run.gave_up",
        "signal.sent",
        "timeline.fired",
        "timeline.skipped",
    }
)


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened."""

    seq: int
    t: float
    source: Source
    kind: str
    instance: str | None = None
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "t": round(self.t, 6),
            "source": self.source,
            "kind": self.kind,
            "instance": self.instance,
            "data": dict(self.data),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Event:
        return cls(
            seq=int(raw["seq"]),
            t=float(raw["t"]),
            source=raw["source"],
            kind=str(raw["kind"]),
            instance=raw.get("instance"),
            data=MappingProxyType(dict(raw.get("data") or {})),
        )


Listener = Callable[[Event], None]


class History:
    """Append-only event log with synchronous listeners (used for ``on:`` triggers).

    ``time`` is a zero-argument callable returning the clock's monotonic seconds.
    """

    def __init__(self, time: Callable[[], float]) -> None:
        self._time = time
        self._events: list[Event] = []
        self._listeners: list[Listener] = []

    def record(
        self,
        source: Source,
        kind: str,
        instance: str | None = None,
        /,
        **data: Any,
    ) -> Event:
        """Append an event. The first three are positional-only, so that ``data`` may carry
        keys named ``source``, ``kind`` or ``instance`` (a notice's source, a notice kind)."""
        event = Event(
            seq=len(self._events),
            t=self._time(),
            source=source,
            kind=kind,
            instance=instance,
            data=MappingProxyType(data),
        )
        self._events.append(event)
        for listener in list(self._listeners):
            listener(event)
        return event

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` on every new event; returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def __iter__(self) -> Iterator[Event]:
        return iter(self._events)

    def __len__(self) -> int:
        return len(self._events)

    def of_kind(self, *kinds: str) -> list[Event]:
        return [e for e in self._events if e.kind in kinds]

    def to_jsonl(self) -> str:
        """Canonical text form: identical histories give identical bytes."""
        return "".join(
            json.dumps(e.to_json(), sort_keys=True, separators=(",", ":")) + "\n"
            for e in self._events
        )


class FaultRecorder(Protocol):
    """What records a run's faults: either tier's world."""

    @property
    def current(self) -> Any: ...

    def record(self, kind: str, instance: Any = None, **data: Any) -> Any: ...

    def later(self, delay: float, callback: Callable[..., None], *args: Any) -> None: ...


def record_fault(
    world: FaultRecorder, index: int, fault: str, params: dict[str, Any], duration: float | None
) -> None:
    """``fault.started`` for timeline entry ``index`` now and, after ``duration`` (if any),
    ``fault.ended``: the same records in both tiers."""
    world.record(
        Kind.FAULT_STARTED,
        world.current,
        fault=fault,
        entry=index,
        target=fault.split(".")[0],
        params=params,
        duration=duration,
    )
    if duration:
        world.later(duration, _fault_ended, world, index, fault)


def _fault_ended(world: FaultRecorder, index: int, fault: str) -> None:
    world.record(Kind.FAULT_ENDED, fault=fault, entry=index)
