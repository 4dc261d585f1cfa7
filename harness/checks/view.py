"""A derived, read-only view of a history: instances, notices, checkpoints, storage operations.

Every check reads the history through this view, so that the conventions about event data (which
field names what) live in one place next to :class:`harness.history.Kind`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import PurePosixPath
from typing import Any

from harness.history import Event, History, Kind

#: Storage operations that change what is stored (``storage.op`` ``op`` values).
S3_WRITE_OPS = frozenset({"s3.put_object", "s3.complete_multipart", "s3.copy_object"})
S3_DELETE_OPS = frozenset({"s3.delete_object", "s3.delete_objects"})
LOCAL_WRITE_OPS = frozenset({"local.write", "local.rename"})
LOCAL_DELETE_OPS = frozenset({"local.delete"})

#: Actions after which the local disk is kept for the next incarnation (any other wipes it).
KEEPING_ACTIONS = frozenset({"stop", "hibernate", "crash", "reboot"})
#: Notice kinds that announce no interruption by themselves.
ADVISORY_KINDS = frozenset({"rebalance", "recommendation", "maintenance"})


@dataclass(frozen=True)
class Instance:
    """One incarnation, from ``instance.started`` to its kill or exit."""

    id: str
    order: int
    started: Event
    #: The process's end: its kill or its own exit, whichever came first.
    ended: Event | None
    cloud: str
    local_dir: str
    #: The machine's end (``instance.killed``), which may follow a clean exit (at a deadline).
    killed: Event | None = None

    @property
    def start(self) -> float:
        return self.started.t

    @property
    def end(self) -> float:
        return self.ended.t if self.ended is not None else float("inf")

    def alive_at(self, t: float) -> bool:
        return self.start <= t < self.end

    def alive_during(self, event: Event) -> bool:
        """Whether the process was running when ``event`` was recorded (by history order, so
        that events at the same instant are told apart)."""
        ended = self.ended.seq if self.ended is not None else float("inf")
        return self.started.seq < event.seq < ended


@dataclass(frozen=True)
class Notice:
    issued: Event
    deadline_event: Event | None

    @property
    def id(self) -> str:
        return str(self.issued.data.get("notice_id", f"#{self.issued.seq}"))

    @property
    def action(self) -> str:
        return str(self.issued.data.get("action", "terminate"))

    @property
    def kind(self) -> str:
        # ``kind`` cannot be passed to ``History.record`` as data; ``notice_kind`` is the name.
        data = self.issued.data
        return str(data.get("notice_kind", data.get("kind", "")))

    @property
    def deadline(self) -> float:
        raw = self.issued.data.get("deadline")
        return float(raw) if raw is not None else self.issued.t

    @property
    def keeps_local(self) -> bool:
        """Whether the machine keeps its local disk through this notice's action."""
        return self.action in KEEPING_ACTIONS

    @property
    def advisory(self) -> bool:
        """A notice that ends nothing by itself (rebalance, Azure Freeze): no deadline."""
        data = self.issued.data
        no_deadline = "deadline" in data and data["deadline"] is None
        return no_deadline or self.kind in ADVISORY_KINDS or self.action in ADVISORY_KINDS


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint the target reported durable (``checkpoint.durable``)."""

    event: Event
    local_dir: str

    @property
    def id(self) -> str:
        return str(self.event.data.get("checkpoint_id", ""))

    @property
    def tier(self) -> str:
        return str(self.event.data.get("tier", "s3"))

    @property
    def position(self) -> int:
        return int(self.event.data.get("position", 0))

    @property
    def key(self) -> str:
        return str(self.event.data.get("key", ""))

    @property
    def checksum(self) -> str | None:
        raw = self.event.data.get("checksum")
        return str(raw) if raw else None

    @property
    def t(self) -> float:
        return self.event.t

    @cached_property
    def store(self) -> str:
        """Where the checkpoint lives: ``s3`` or the local dir it was written to."""
        return "s3" if self.tier != "local" else self.local_dir

    @cached_property
    def path(self) -> str:
        """The key within its store (local paths made relative to the dir)."""
        return relative_key(self.key, self.local_dir) if self.tier == "local" else self.key


def relative_key(key: str, local_dir: str) -> str:
    """A local path as reported, relative to ``local_dir`` when under it."""
    path, root = PurePosixPath(key), PurePosixPath(local_dir)
    if path.is_absolute() and local_dir and path.is_relative_to(root):
        return path.relative_to(root).as_posix()
    return path.as_posix()


class HistoryView:
    """Questions the checks ask of a history, answered once."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.events: list[Event] = list(history)
        # Indexes: checks ask the same questions many times over long histories.
        self._by_kind: dict[str, list[Event]] = {}
        self._by_instance: dict[str | None, list[Event]] = {}
        for event in self.events:
            self._by_kind.setdefault(event.kind, []).append(event)
            self._by_instance.setdefault(event.instance, []).append(event)
        self._where: dict[int, tuple[str, str]] = {}

    def of_kind(self, *kinds: str) -> list[Event]:
        if len(kinds) == 1:
            return list(self._by_kind.get(kinds[0], ()))
        return [e for e in self.events if e.kind in kinds]

    def by(self, instance: str, *kinds: str) -> list[Event]:
        return [e for e in self._by_instance.get(instance, ()) if e.kind in kinds]

    @cached_property
    def run_start(self) -> float:
        started = self.of_kind(Kind.RUN_STARTED)
        return started[0].t if started else (self.events[0].t if self.events else 0.0)

    @cached_property
    def run_end(self) -> float:
        return self.events[-1].t if self.events else 0.0

    @cached_property
    def instances(self) -> list[Instance]:
        found: list[Instance] = []
        for order, started in enumerate(self.of_kind(Kind.INSTANCE_STARTED)):
            name = started.instance or f"instance-{order + 1}"
            ends = [
                e
                for e in self.by(name, Kind.INSTANCE_KILLED, Kind.INSTANCE_EXITED)
                if e.seq > started.seq
            ]
            kills = [e for e in ends if e.kind == Kind.INSTANCE_KILLED]
            found.append(
                Instance(
                    id=name,
                    order=order,
                    started=started,
                    ended=ends[0] if ends else None,
                    cloud=str(started.data.get("cloud", "")),
                    local_dir=str(started.data.get("local_dir", "")),
                    killed=kills[0] if kills else None,
                )
            )
        return found

    @cached_property
    def _instances_by_id(self) -> dict[str, Instance]:
        return {i.id: i for i in reversed(self.instances)}  # the first of a name wins

    def instance(self, name: str | None) -> Instance | None:
        return self._instances_by_id.get(name) if name is not None else None

    def alive_at(self, t: float) -> list[Instance]:
        return [i for i in self.instances if i.alive_at(t)]

    @cached_property
    def notices(self) -> list[Notice]:
        deadlines = {
            str(e.data.get("notice_id")): e
            for e in self.of_kind(Kind.NOTICE_DEADLINE)
            if e.data.get("notice_id") is not None
        }
        return [
            Notice(issued=e, deadline_event=deadlines.get(str(e.data.get("notice_id"))))
            for e in self.of_kind(Kind.NOTICE_ISSUED)
        ]

    def notice_targets(self, notice: Notice) -> list[Instance]:
        """The instances a notice concerns: the one named, else every one alive when issued."""
        named = self.instance(notice.issued.instance)
        if named is not None:
            return [named]
        return [i for i in self.instances if i.alive_during(notice.issued)]

    @cached_property
    def checkpoints(self) -> list[Checkpoint]:
        result = []
        for event in self.of_kind(Kind.CHECKPOINT_DURABLE):
            owner = self.instance(event.instance)
            result.append(Checkpoint(event=event, local_dir=owner.local_dir if owner else ""))
        return result

    def storage_ops(self, *, ok: bool | None = True) -> Iterator[Event]:
        for event in self._by_kind.get(Kind.STORAGE_OP, ()):
            if ok is None or bool(event.data.get("ok", True)) == ok:
                yield event

    @cached_property
    def storage_evidence(self) -> frozenset[str]:
        """Which of the harness's own storage observations the run has (``s3.ops``,
        ``redis.ops``, ``local.files``): several checks ask, the history is read once."""
        found: set[str] = set()
        for op in self.storage_ops(ok=None):
            name = str(op.data.get("op", ""))
            found.add(
                "local.files" if name.startswith("local.") else name.partition(".")[0] + ".ops"
            )
        if self._by_kind.get(Kind.LOCAL_SNAPSHOT):
            found.add("local.files")
        return frozenset(found)

    def store_of(self, op: Event) -> str:
        """``s3``, ``redis`` or the local dir a storage op touched."""
        return self._locate(op)[0]

    def op_path(self, op: Event) -> str:
        """The key a storage op touched, local paths relative to the instance's dir."""
        return self._locate(op)[1]

    def _locate(self, op: Event) -> tuple[str, str]:
        found = self._where.get(op.seq)
        if found is None:
            name = str(op.data.get("op", ""))
            key = str(op.data.get("key") or "")
            if name.startswith("local."):
                owner = self.instance(op.instance)
                local_dir = owner.local_dir if owner else ""
                found = (local_dir, relative_key(key, local_dir))
            else:
                found = (name.partition(".")[0], key)
            self._where[op.seq] = found
        return found

    def ending_action(self, instance: Instance) -> str:
        """How it ended: a notice action, ``crash``, ``hard_kill``, ``exit`` or ``running``."""
        if instance.ended is None:
            return "running"
        data: Mapping[str, Any] = instance.ended.data
        if instance.ended.kind == Kind.INSTANCE_EXITED:
            return "exit"
        if data.get("action"):
            return str(data["action"])
        reason = str(data.get("reason", ""))
        if reason in ("crash", "hard_kill"):
            return reason
        ended_by = [
            n
            for n in self.notices
            if not n.advisory and instance in self.notice_targets(n) and n.issued.t <= instance.end
        ]
        return ended_by[-1].action if ended_by else (reason or "hard_kill")

    def local_wiped(self, instance: Instance) -> bool:
        """Whether the instance's end took its local dir with it."""
        if instance.ended is None:
            return False
        if instance.killed is not None and instance.killed.data.get("local_wiped") is not None:
            return bool(instance.killed.data["local_wiped"])
        flag = instance.ended.data.get("local_wiped")
        if flag is not None:
            return bool(flag)
        action = self.ending_action(instance)
        return action not in KEEPING_ACTIONS and action != "exit"

    def wiped_between(self, local_dir: str, after_seq: int, before_seq: int) -> Event | None:
        """The end event, between two history positions, of an instance whose end wiped
        ``local_dir``."""
        for inst in self.instances:
            gone = inst.killed or inst.ended
            if (
                inst.local_dir == local_dir
                and gone is not None
                and after_seq < gone.seq < before_seq
                and self.local_wiped(inst)
            ):
                return gone
        return None

    def positions(self, instance: str) -> list[Event]:
        return self.by(instance, Kind.ITEM_DONE)

    def position_at(self, instance: Instance, t: float) -> int | None:
        """Items done by ``instance`` at time ``t`` (``None`` before its first item)."""
        done = [e for e in self.positions(instance.id) if e.t <= t]
        return int(done[-1].data.get("position", 0)) if done else None

    def resumed(self, instance: Instance) -> Event | None:
        found = self.by(instance.id, Kind.RESUMED)
        return found[0] if found else None

    def epoch_of(self, instance: Instance) -> Event | None:
        found = self.by(instance.id, Kind.EPOCH)
        return found[0] if found else None

    def completed(self) -> Event | None:
        found = self.of_kind(Kind.JOB_COMPLETED)
        return found[0] if found else None

    def local_snapshot_after(self, local_dir: str, seq: int) -> Event | None:
        """The first ``local.snapshot`` of ``local_dir`` recorded after history position ``seq``
        (when the incarnation writing there was killed or exited)."""
        for event in self.of_kind(Kind.LOCAL_SNAPSHOT):
            if event.seq > seq and event.data.get("local_dir") == local_dir:
                return event
        return None

    def local_snapshot_before(self, local_dir: str, seq: int) -> Event | None:
        """The last ``local.snapshot`` of ``local_dir`` before ``seq``: what the dir held when
        the machine came back (an incarnation starting on a kept disk)."""
        found = None
        for event in self.of_kind(Kind.LOCAL_SNAPSHOT):
            if event.seq >= seq:
                break
            if event.data.get("local_dir") == local_dir:
                found = event
        return found

    def local_files_after(self, local_dir: str, seq: int) -> Mapping[str, str] | None:
        """path -> digest of ``local_dir`` at its first snapshot after ``seq``, if any."""
        event = self.local_snapshot_after(local_dir, seq)
        return None if event is None else dict(event.data.get("files") or {})

    @cached_property
    def _corruptions(self) -> list[Event]:
        return [
            e for e in self.of_kind(Kind.FAULT_STARTED) if "corrupt" in str(e.data.get("fault"))
        ]

    def corruptions(self) -> list[Event]:
        """Injected faults that corrupt stored bytes (``fault.started`` whose fault names it)."""
        return self._corruptions
