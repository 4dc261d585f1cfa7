"""Plays a scenario's timeline in a :class:`~harness.sim.world.World`.

``at:`` entries are timers from the start of the run; ``on:`` entries count matching history
events (kind, ``where`` data, incarnation) and fire ``delay`` after the nth. Firing is always
deferred to the loop (never inside the listener), so an action never runs in the middle of the
code that recorded the event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fake_imds.control import schedule_notice
from fake_imds.gcp import soft_off_at as gcp_soft_off_at
from fake_imds.model import MetadataPlane
from fake_imds.model import Notice as FakeNotice
from fake_imds.vocabulary import SCHEDULED_CODE_FOR_ACTION, takes_action
from harness.history import Event, Kind, record_fault
from harness.scenario.model import (
    NOTICE_KINDS,
    ClockFault,
    Crash,
    DiskFault,
    ImdsFault,
    Kill,
    Notice,
    OnTrigger,
    Overlap,
    RedisFault,
    S3Fault,
    TimelineEntry,
)
from harness.sim.iohook import CrashPoint, FaultKind, StorageFault
from harness.sim.s3 import corrupt_and_record
from harness.sim.world import Instance, LocalDisk, World

#: History kind of an interruption the instance approved to start early (Azure StartRequests).
NOTICE_APPROVED = "notice.approved"


class Timeline:
    """Arms every entry of a scenario's timeline against one world."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.entries = world.scenario.timeline
        self._unsubscribes: list[Callable[[], None]] = []

    def watch(self) -> None:
        """Start counting events for ``on:`` entries (before the first instance boots)."""
        for index, entry in enumerate(self.entries):
            if entry.on is not None:
                self._watch(index, entry.on)
            elif _counts_from_start(entry):
                self.fire(index)  # armed before the first step, which it may name

    def schedule(self, start: float) -> None:
        """Set the timers of ``at:`` entries, relative to ``start`` (once instance 1 is up)."""
        elapsed = self.world.now() - start
        for index, entry in enumerate(self.entries):
            if entry.at is not None and not _counts_from_start(entry):
                self.world.later(entry.at - elapsed, self.fire, index)

    def disarm(self) -> None:
        for unsubscribe in self._unsubscribes:
            unsubscribe()
        self._unsubscribes.clear()

    def _watch(self, index: int, trigger: OnTrigger) -> None:
        seen = 0

        def listener(event: Event) -> None:
            nonlocal seen
            if not _matches(event, trigger, self.world):
                return
            seen += 1
            if seen == trigger.nth:
                unsubscribe()
                self._unsubscribes.remove(unsubscribe)
                self.world.later(trigger.delay, self.fire, index)

        unsubscribe = self.world.history.subscribe(listener)
        self._unsubscribes.append(unsubscribe)

    # -- actions ------------------------------------------------------------------------------
    def fire(self, index: int) -> None:
        entry = self.entries[index]
        world = self.world
        if world.end_reason is not None:
            return
        world.record("timeline.fired", entry=index, action=entry.action_name, note=entry.note)
        handler: Callable[[int, Any], None] = getattr(self, f"_{entry.action_name}")
        handler(index, entry.action)

    def _target_instance(self, index: int) -> Instance | None:
        instance = self.world.current
        if instance is None:
            self.world.record("timeline.skipped", entry=index, reason="no instance is running")
        return instance

    def _notice(self, index: int, notice: Notice) -> None:
        instance = self._target_instance(index)
        if instance is None:
            return
        cloud = notice.resolved_cloud(instance.cloud)
        if notice.kind is not None and notice.kind not in NOTICE_KINDS[cloud]:
            # Validated against the scenario's cloud; the running replacement is on another.
            where = f"{cloud}, where {instance.instance_id} runs"
            reason = f"a `{notice.kind}` notice does not exist on {where}"
            self.world.record("timeline.skipped", entry=index, reason=reason)
            return
        if notice.rebalance_before:
            plane = instance.imds.plane
            issued = plane.add_notice("aws", "rebalance", "terminate", lead=0.0)
            self.world.record(
                Kind.NOTICE_ISSUED,
                instance,
                notice_id=issued.id,
                cloud="aws",
                notice_kind="rebalance",
                action=None,
                deadline=None,
                entry=index,
            )
            self.world.later(notice.rebalance_before, self._issue, index, instance, notice)
        else:
            self._issue(index, instance, notice)

    def _issue(self, index: int, instance: Instance, notice: Notice) -> None:
        """Schedule the notice through the plane's own parser for its cloud, as the control
        API would, so every dialect's rules apply (defaults, minimum grace, Azure types)."""
        world = self.world
        if not instance.alive or world.end_reason is not None:
            return
        notice = notice.as_told_on(
            instance.cloud, world.scenario.env.cloud, grace=world.grace_period
        )
        body = _notice_body(notice, instance)
        issued = schedule_notice(instance.imds.plane, body)[-1]
        cloud, kind = issued.cloud, issued.kind
        ends = notice.ends_instance(instance.cloud)
        # AWS hibernation starts at once; everything else ends at the deadline.
        gone_at = world.now() if notice.action == "hibernate" else issued.deadline
        world.record(
            Kind.NOTICE_ISSUED,
            instance,
            notice_id=issued.id,
            cloud=cloud,
            notice_kind=kind,
            action=notice.action,
            deadline=gone_at if ends else None,
            lead=issued.deadline - issued.issued_at,
            entry=index,
        )
        if ends and cloud == "kubernetes":
            world.later(0.0, self._signal, instance, "SIGTERM")
        elif ends and cloud == "gcp":
            world.later(gcp_soft_off_at(issued) - world.now(), self._signal, instance, "SIGTERM")
        if not ends:
            return
        instance.doomed = True
        disk: LocalDisk = "wiped" if notice.action == "terminate" else "kept"
        world.later(gone_at - world.now(), self._deadline, instance, issued.id, notice, disk)
        if cloud == "azure":
            self._watch_approval(instance, issued.id, notice, disk)

    def _watch_approval(
        self, instance: Instance, notice_id: str, notice: Notice, disk: LocalDisk
    ) -> None:
        """Azure lets an approved event (``StartRequests``) start at once: the approval is
        recorded and the instance goes then, not at ``NotBefore``."""

        def approved(at: float) -> None:
            if not instance.alive or self.world.end_reason is not None:
                return
            self.world.record(NOTICE_APPROVED, instance, notice_id=notice_id, cloud="azure", at=at)
            self.world.later(0.0, self._deadline, instance, notice_id, notice, disk)

        on_approval(instance.imds.plane, notice_id, approved)

    def _signal(self, instance: Instance, name: str) -> None:
        if instance.alive and instance.ctx is not None:
            instance.ctx.signals.put_nowait(name)
            self.world.record("signal.sent", instance, signal=name)

    def _deadline(
        self, instance: Instance, notice_id: str, notice: Notice, disk: LocalDisk
    ) -> None:
        if not instance.alive:
            return
        self.world.record(Kind.NOTICE_DEADLINE, instance, notice_id=notice_id, action=notice.action)
        self.world.kill(instance, "deadline", disk, notice.action)

    def _kill(self, index: int, kill: Kill) -> None:
        instance = self._target_instance(index)
        if instance is not None:
            # A hard kill is a host failure: a kept disk keeps only what was fsynced.
            self.world.kill(instance, "hard_kill", kill.local_disk, host_lost=True)

    def _crash(self, index: int, crash: Crash) -> None:
        lost = crash.lose == "host"
        point = CrashPoint(crash.at, crash.nth, crash.local_disk, index, lost, crash.ordinal)
        self.world.storage.crash_points.append(point)

    def _overlap(self, index: int, overlap: Overlap) -> None:
        self.world.overlap = overlap.for_

    def _clock(self, index: int, clock: ClockFault) -> None:
        self.world.set_skew(clock.skew)
        record_fault(self.world, index, "clock.skew", {"skew": clock.skew}, None)

    def _imds(self, index: int, fault: ImdsFault) -> None:
        params: dict[str, Any] = {"pattern": fault.path}
        if fault.status is not None:
            params.update(kind="status", status=fault.status)
        elif fault.latency is not None:
            params.update(kind="latency", seconds=fault.latency)
        elif fault.throttle is not None:
            params.update(kind="throttle", limit=fault.throttle)
        else:
            params.update(kind="timeout" if fault.timeout else "reset")
        self.world.add_imds_fault(fault.for_, params)
        record_fault(self.world, index, f"imds.{params['kind']}", params, fault.for_)

    def _s3(self, index: int, fault: S3Fault) -> None:
        if fault.corrupt is not None:
            corrupt_and_record(self.world, index, self.world.bucket, fault)
            return
        kind: FaultKind
        value = 0.0
        if fault.error is not None:
            kind = "s3.error"
        elif fault.outage:
            kind = "s3.outage"
        elif fault.bandwidth is not None:
            kind, value = "s3.bandwidth", fault.bandwidth
        else:
            assert fault.latency is not None
            kind, value = "s3.latency", fault.latency
        self._storage_fault(
            index,
            kind,
            fault.for_,
            fault.ops,
            fault.count,
            code=fault.error,
            value=value,
            incarnation=fault.incarnation,
        )

    def _redis(self, index: int, fault: RedisFault) -> None:
        world = self.world
        if fault.restart:
            world.spawn(_restart_redis(world))
            record_fault(self.world, index, "redis.restart", {}, 0.0)
        elif fault.down:
            if fault.incarnation is None:  # else only that instance's commands fail (its hook)
                world.redis_server.connected = False
            self._storage_fault(index, "redis.down", fault.for_, incarnation=fault.incarnation)
            if fault.for_ is not None:
                world.later(fault.for_, _reconnect, world)
        else:
            assert fault.latency is not None
            self._storage_fault(
                index,
                "redis.latency",
                fault.for_,
                incarnation=fault.incarnation,
                value=fault.latency,
            )

    def _disk(self, index: int, fault: DiskFault) -> None:
        if fault.full:
            self._storage_fault(index, "disk.full", fault.for_)
        elif fault.bandwidth is not None:
            self._storage_fault(index, "disk.bandwidth", fault.for_, value=fault.bandwidth)
        else:
            assert fault.latency is not None
            self._storage_fault(index, "disk.latency", fault.for_, value=fault.latency)

    # -- fault bookkeeping --------------------------------------------------------------------
    def _storage_fault(
        self,
        index: int,
        kind: Any,
        duration: float | None,
        ops: tuple[str, ...] | None = None,
        count: int | None = None,
        *,
        code: str | None = None,
        value: float = 0.0,
        incarnation: int | None = None,
    ) -> None:
        world = self.world
        now = world.now()
        fault = StorageFault(
            id=f"fault-{index}",
            kind=kind,
            start=now,
            end=None if duration is None else now + duration,
            ops=ops,
            remaining=count,
            code=code,
            value=value,
            incarnation=incarnation,
        )
        world.storage.faults.append(fault)
        params = {"ops": list(ops) if ops else None, "count": count, "code": code, "value": value}
        if incarnation is not None:
            params["incarnation"] = incarnation
        record_fault(self.world, index, kind, params, duration)


def _counts_from_start(entry: TimelineEntry) -> bool:
    """``crash: {ordinal: N}`` (at 0s): it numbers steps from the start of the run."""
    return entry.crash is not None and entry.crash.ordinal is not None


def on_approval(plane: MetadataPlane, notice_id: str, approved: Callable[[float], None]) -> None:
    """Call ``approved(at)`` once, when the notice's event is started by an approval
    (``StartRequests``: the plane notes ``started_at``), not when it starts on its own."""

    def on_change(changed: FakeNotice) -> None:
        started_at = changed.params.get("started_at")
        if changed.id != notice_id or changed.state != "started" or started_at is None:
            return
        unsubscribe()
        approved(float(started_at))

    unsubscribe = plane.subscribe(on_change)


def _notice_body(notice: Notice, instance: Instance) -> dict[str, Any]:
    """The control-API body of a scenario notice (``lead`` left to the dialect if not given)."""
    cloud = notice.resolved_cloud(instance.cloud)
    kind = notice.resolved_kind(instance.cloud)
    body: dict[str, Any] = {"cloud": cloud, "kind": kind}
    if notice.lead is not None:
        body["grace" if cloud == "kubernetes" else "lead"] = notice.lead
    if takes_action(cloud, kind):
        body["action"] = notice.action
    if cloud == "aws" and kind == "scheduled-event":
        body["action"] = SCHEDULED_CODE_FOR_ACTION.get(notice.action, "instance-stop")
    if cloud == "aws" and kind == "rebalance":
        body.pop("lead", None)
    if cloud == "webhook":
        body["url"] = instance.webhook_url or "http://127.0.0.1:9/no-receiver-registered"
    return body


def _matches(event: Event, trigger: OnTrigger, world: World) -> bool:
    if event.kind != trigger.event:
        return False
    if any(event.data.get(key) != value for key, value in trigger.where.items()):
        return False
    if trigger.incarnation is not None:
        owners = [i for i in world.instances if i.instance_id == event.instance]
        instance = owners[-1] if owners else None
        if instance is None or instance.incarnation != trigger.incarnation:
            return False
    return True


async def _restart_redis(world: World) -> None:
    """A restart without persistence: every key and every loaded script is gone (also when the
    server is down at the time: it comes back empty)."""
    server = world.redis_server
    was_connected, server.connected = server.connected, True
    try:
        await world.admin_redis.flushall()
        await world.admin_redis.script_flush()
    finally:
        server.connected = was_connected


def _reconnect(world: World) -> None:
    if not any(
        f.kind == "redis.down" and f.applies("redis.read", world.now())
        for f in world.storage.faults
    ):
        world.redis_server.connected = True
