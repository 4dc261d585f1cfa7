"""The checks: pure functions of a history, the final storage state and the golden outcome.

Each returns a :class:`CheckResult` whose violations cite the events that prove them. Reports of
the target are never taken alone: a checkpoint called durable must be found in storage with the
claimed content, outputs are counted from S3 versions, and storage operations are ordered by the
harness's own ``storage.op`` records.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from harness.checks import layout
from harness.checks.golden import Golden, digest_matches, same_digest
from harness.checks.results import CheckResult, Violation
from harness.checks.snapshot import StorageSnapshot
from harness.checks.verify import GAP_OPS, Verifier
from harness.checks.view import (
    S3_DELETE_OPS,
    S3_WRITE_OPS,
    Checkpoint,
    HistoryView,
    Instance,
    Notice,
)
from harness.history import Event, Kind
from harness.units import format_duration

#: A reported deadline may be this much later than the real one (calendar rounding to seconds).
DEADLINE_TOLERANCE = 1.0


@dataclass(frozen=True)
class CheckContext:
    view: HistoryView
    snapshot: StorageSnapshot
    golden: Golden
    verifier: Verifier


def _t(seconds: float) -> str:
    return f"t={format_duration(seconds)}"


def _surviving_tiers(notice: Notice) -> str:
    return "local disk or S3" if notice.keeps_local else "S3"


def _surviving(cp: Checkpoint, action_keeps_local: bool, instance: Instance) -> bool:
    if cp.tier != "local":
        return True
    return action_keeps_local and cp.local_dir == instance.local_dir


def _interrupting(ctx: CheckContext) -> Iterable[tuple[Notice, Instance]]:
    """(notice, instance) for every interruption notice that reached a live instance."""
    for notice in ctx.view.notices:
        if notice.advisory:
            continue
        for instance in ctx.view.notice_targets(notice):
            if instance.alive_during(notice.issued):
                yield notice, instance


def _completed_by(ctx: CheckContext, instance: Instance, t: float) -> bool:
    return any(e.t <= t for e in ctx.view.by(instance.id, Kind.JOB_COMPLETED))


# -- saved_before_deadline ------------------------------------------------------------------------


def saved_before_deadline(ctx: CheckContext) -> CheckResult:
    violations: list[Violation] = []
    checked = 0
    for notice, instance in _interrupting(ctx):
        if notice.deadline <= notice.issued.t or _completed_by(ctx, instance, notice.deadline):
            continue  # no time to save (hibernate starts at once), or nothing left to save
        needed = ctx.view.position_at(instance, notice.issued.t)
        resumed = ctx.view.resumed(instance)
        start = int(resumed.data.get("position") or 0) if resumed else 0
        if needed is None or needed <= 0:
            needed = start
        if needed <= 0:
            continue  # nothing done yet, nothing to lose
        checked += 1
        violation = _saved_in_time(ctx, notice, instance, needed, start)
        if violation is not None:
            violations.append(violation)
    return CheckResult.from_violations(
        "saved_before_deadline",
        violations,
        summary=f"{checked} interruption(s) with work to save",
        evidence=_storage_evidence(ctx) | {"lifecycle", "target.events"},
        unverified=""
        if checked
        else "no interruption notice reached an instance with work to save",
    )


def _saved_in_time(
    ctx: CheckContext, notice: Notice, instance: Instance, needed: int, start: int
) -> Violation | None:
    keeps_local = notice.keeps_local
    deadline_seq = _seq_at(ctx.view, notice.deadline)
    # The local disk is judged until the machine's end when that came first: a later notice
    # that terminates it, or a host failure, after the process had saved and exited is not
    # this notice's action (the later notice is judged on its own when the process saw it).
    killed = instance.killed
    local_seq = min(deadline_seq, killed.seq) if killed is not None else deadline_seq
    required = _must_cover(ctx, notice, instance, needed, start)
    # A checkpoint durable by the deadline that holds the work done when the notice came: a
    # save made after the notice, or an earlier one that already covers it all. A save of an
    # older state (the last periodic one again) loses the work in between: it does not count.
    surviving = [
        cp
        for cp in ctx.view.checkpoints
        if cp.t <= notice.deadline
        and _surviving(cp, keeps_local, instance)
        and ctx.verifier.available_before(cp, local_seq if cp.tier == "local" else deadline_seq)
    ]
    saved = [cp for cp in surviving if cp.position >= required]
    if saved:
        return _kept_working(ctx, notice, instance, max(cp.position for cp in saved))
    tiers = _surviving_tiers(notice)
    stale = [cp for cp in surviving if cp.t >= notice.issued.t]
    late = [cp for cp in ctx.view.checkpoints if cp.event.instance == instance.id]
    last_item = [e for e in ctx.view.positions(instance.id) if e.t <= notice.issued.t][-1:]
    what = (
        f"the checkpoint made durable on {tiers} after the notice holds position "
        f"{max(cp.position for cp in stale)}, older than that (position {required} needed)"
        if stale
        else f"no checkpoint was made durable on {tiers} between the notice and the deadline"
    )
    return Violation.citing(
        f"notice {notice.id} ({notice.action}) to {instance.id} at {_t(notice.issued.t)}, "
        f"deadline {_t(notice.deadline)}: it had done {needed} items, and {what}"
        + (
            f"; newest reported: position {late[-1].position} on {late[-1].tier} "
            f"at {_t(late[-1].t)}"
            if late
            else "; none reported"
        ),
        [
            notice.issued,
            notice.deadline_event or instance.ended,
            *last_item,
            *(cp.event for cp in late[-1:]),
        ],
    )


def _must_cover(
    ctx: CheckContext,
    notice: Notice,
    instance: Instance,
    needed: int,
    start: int,
    by: float | None = None,
) -> int:
    """The position a save after the notice must reach by ``by`` (default: the deadline): all
    the work done when it came, unless an output of that work could not be written by then (an
    S3 error): then no checkpoint may go past the outputs written (a resume would skip the
    missing one), and only the work up to the last written output (or the resume) can be asked
    for."""
    cutoff = notice.deadline if by is None else by
    events = [
        e
        for e in ctx.view.by(instance.id, Kind.OUTPUT_COMMITTED, Kind.OUTPUT_FAILED)
        if e.t <= cutoff
    ]
    committed = {str(e.data.get("key")) for e in events if e.kind == Kind.OUTPUT_COMMITTED}
    if all(str(e.data.get("key")) in committed for e in events if e.kind == Kind.OUTPUT_FAILED):
        return needed
    written = [
        int(e.data.get("last") or 0)
        for e in events
        if e.kind == Kind.OUTPUT_COMMITTED and e.t <= notice.issued.t
    ]
    return min(needed, max([start, *written]))


def _kept_working(
    ctx: CheckContext, notice: Notice, instance: Instance, saved: int
) -> Violation | None:
    """A save is not enough if the instance went on working until the deadline took it: the
    work after the save is lost. It must stop (``job.stopped``, completion or exit) in time,
    unless nothing it did is beyond what was saved."""
    stopped = [
        e
        for e in ctx.view.by(
            instance.id, Kind.JOB_STOPPED, Kind.JOB_COMPLETED, Kind.INSTANCE_EXITED
        )
        if e.t <= notice.deadline
    ]
    done = [e for e in ctx.view.positions(instance.id) if e.t <= notice.deadline]
    beyond = [e for e in done if int(e.data.get("position", 0)) > saved]
    if stopped or not beyond:
        return None
    return Violation.citing(
        f"{instance.id} kept working after notice {notice.id} ({notice.action}) until its "
        f"deadline {_t(notice.deadline)}: items {saved + 1}.."
        f"{beyond[-1].data.get('position')} and the batch in progress were never saved",
        [notice.issued, beyond[-1], notice.deadline_event or instance.killed or instance.ended],
    )


def _seq_at(view: HistoryView, t: float) -> int:
    """The history position just after everything recorded at or before ``t``."""
    return next((e.seq for e in view.events if e.t > t), len(view.events))


# -- exactly_once ---------------------------------------------------------------------------------


def exactly_once(ctx: CheckContext) -> CheckResult:
    golden, snapshot = ctx.golden, ctx.snapshot
    violations: list[Violation] = []
    for key in sorted(golden.outputs):
        problems = _output_problems(ctx, key)
        if problems:  # the evidence is gathered only for outputs that went wrong
            evidence = _output_evidence(ctx, key)
            violations.extend(Violation.citing(problem, evidence) for problem in problems)
    for key in snapshot.keys(golden.output_prefix):
        if key not in golden.outputs:
            violations.append(
                Violation.citing(f"unexpected output {key}", _output_evidence(ctx, key))
            )
    return CheckResult.from_violations(
        "exactly_once",
        violations,
        summary=f"{len(golden.outputs)} expected output(s)",
        evidence={"storage.snapshot", "golden"} | (_storage_evidence(ctx) & {"s3.ops"}),
        unverified=""
        if golden.outputs or violations
        else f"the uninterrupted run wrote no outputs under {golden.output_prefix}: nothing to "
        "count",
    )


def _output_problems(ctx: CheckContext, key: str) -> list[str]:
    """What is wrong with expected output ``key`` in storage (nothing when it is right)."""
    versions = ctx.snapshot.versions_of(key)
    if not versions:
        return [f"output {key} was never written"]
    problems = []
    if ctx.snapshot.current(key) is None:
        problems.append(f"output {key} was deleted")
    if len(versions) > 1:
        problems.append(f"output {key} was written {len(versions)} times")
    expected = ctx.golden.outputs[key]
    wrong = [v for v in versions if v.blob is None or not digest_matches(expected, v.blob)]
    if wrong:
        problems.append(
            f"output {key}: {len(wrong)} version(s) differ from the golden content {expected}"
        )
    return problems


def _output_evidence(ctx: CheckContext, key: str) -> list[Event]:
    committed = [e for e in ctx.view.of_kind(Kind.OUTPUT_COMMITTED) if e.data.get("key") == key]
    writes = [
        e
        for e in ctx.view.storage_ops()
        if e.data.get("op") in S3_WRITE_OPS | S3_DELETE_OPS and e.data.get("key") == key
    ]
    return committed + writes


# -- resume_correct -------------------------------------------------------------------------------


def resume_correct(ctx: CheckContext) -> CheckResult:
    violations: list[Violation] = []
    for instance in ctx.view.instances:
        violations.extend(_check_resume(ctx, instance))
    violations.extend(_states_match_golden(ctx))
    violations.extend(_final_state(ctx))
    restarts = [i for i in ctx.view.instances[1:] if _restart(ctx, i) is not None]
    return CheckResult.from_violations(
        "resume_correct",
        violations,
        summary=f"{len(restarts)} restart(s) of {len(ctx.view.instances)} instance(s)",
        evidence=_storage_evidence(ctx) | {"storage.snapshot", "golden", "target.events"},
        unverified="" if restarts else "no instance started after another had worked",
    )


def newest_available(
    ctx: CheckContext,
    instance: Instance,
    before: Event | None = None,
    still: Event | None = None,
) -> Checkpoint | None:
    """The newest checkpoint an instance could read when it started (or, given ``before``,
    by the time of that event), and, given ``still``, not yet deleted or damaged then by
    anyone but the instance itself (its own deletion is its own doing)."""
    seq = (before or instance.started).seq
    readable = [
        cp
        for cp in ctx.view.checkpoints
        if (cp.tier != "local" or cp.local_dir == instance.local_dir)
        and ctx.verifier.available_before(cp, seq)
        and (still is None or not _lost_to_others(ctx, cp, instance, still))
    ]
    return max(readable, key=lambda cp: (cp.position, cp.event.seq), default=None)


def _lost_to_others(ctx: CheckContext, cp: Checkpoint, instance: Instance, until: Event) -> bool:
    """Whether an injected fault or another instance removed or damaged ``cp`` before
    ``until``."""
    removal = ctx.verifier.removal_before(cp, until.seq)
    if removal is None:
        return False
    return removal.kind == Kind.FAULT_STARTED or removal.instance != instance.id


def _check_resume(ctx: CheckContext, instance: Instance) -> list[Violation]:
    resumed = ctx.view.resumed(instance)
    items = ctx.view.positions(instance.id)
    if resumed is None and not items:
        return []  # gone before it resumed: nothing to judge
    position = (
        int(resumed.data.get("position") or 0)
        if resumed is not None
        else int(items[0].data.get("position", 1)) - 1
    )
    # One damaged or deleted while the instance recovered, before it resumed, is not owed.
    best = newest_available(ctx, instance, still=resumed)
    expected = best.position if best is not None else 0
    cite = [resumed, items[0] if items else None, best.event if best else None]
    violations: list[Violation] = []
    if position < expected:
        violations.append(
            Violation.citing(
                f"{instance.id} resumed at position {position}, but a valid durable checkpoint at "
                f"position {expected} ({best.tier if best else ''}) existed when it started",
                cite,
            )
        )
    elif (
        position > expected
        and not _made_durable_during_recovery(ctx, instance, resumed, position)
        and not _unreported_but_valid(ctx, instance, resumed, position)
    ):
        violations.append(
            Violation.citing(
                f"{instance.id} resumed at position {position}, beyond the newest valid durable "
                f"checkpoint (position {expected}) when it started",
                cite,
            )
        )
    after = [e for e in items if resumed is None or e.seq > resumed.seq]
    if after and int(after[0].data.get("position", 0)) != position + 1:
        violations.append(
            Violation.citing(
                f"{instance.id} resumed at position {position} but its next item done was "
                f"position {after[0].data.get('position')} (expected {position + 1})",
                [resumed, after[0]],
            )
        )
    return violations


def _made_durable_during_recovery(
    ctx: CheckContext, instance: Instance, resumed: Event | None, position: int
) -> bool:
    """A checkpoint made durable after the instance started but before it resumed (an older
    instance still running while recovery waited out an outage) may be resumed from."""
    if resumed is None:
        return False
    later = newest_available(ctx, instance, before=resumed)
    return later is not None and later.position == position


def _unreported_but_valid(
    ctx: CheckContext, instance: Instance, resumed: Event | None, position: int
) -> bool:
    """A resume from a checkpoint that was complete in storage but never reported durable (the
    writer died between the write and its report) is correct if storage proves it: the content
    resumed from was there when the instance started and is the golden state at ``position``."""
    if resumed is None or not resumed.data.get("key") or not resumed.data.get("checksum"):
        return False
    checksum = str(resumed.data["checksum"])
    expected = ctx.golden.state_at(position)
    if expected is not None and not same_digest(expected, checksum):
        return False
    checkpoint = Checkpoint(event=resumed, local_dir=instance.local_dir)
    if str(resumed.data.get("tier") or "s3") == "local":
        held = ctx.view.local_snapshot_before(instance.local_dir, instance.started.seq)
        digest = (held.data.get("files") or {}).get(checkpoint.path) if held else None
        return digest is not None and same_digest(checksum, str(digest))
    wrote = [
        op
        for op in ctx.view.storage_ops()
        if op.seq < instance.started.seq
        and ctx.view.op_path(op) == checkpoint.path
        and op.data.get("op") in S3_WRITE_OPS
    ]
    return bool(wrote) and ctx.verifier.verdict(checkpoint).status == "verified"


def _states_match_golden(ctx: CheckContext) -> list[Violation]:
    violations = []
    for cp in ctx.view.checkpoints:
        expected = ctx.golden.state_at(cp.position)
        if expected is None or cp.checksum is None or same_digest(expected, cp.checksum):
            continue
        violations.append(
            Violation.citing(
                f"checkpoint {cp.id} at position {cp.position} holds state {cp.checksum}, but the "
                f"golden state there is {expected}",
                [cp.event],
            )
        )
    return violations


def _final_state(ctx: CheckContext) -> list[Violation]:
    completed = ctx.view.completed()
    items = ctx.golden.items
    if completed is None or items is None:
        return []
    position = int(completed.data.get("position", -1))
    if position != items:
        return [
            Violation.citing(
                f"job reported complete at position {position}, but the job has {items} items",
                [completed],
            )
        ]
    return []


# -- durable --------------------------------------------------------------------------------------


def durable(ctx: CheckContext) -> CheckResult:
    violations: list[Violation] = []
    for cp in ctx.view.checkpoints:
        violations.extend(_reported_durable_holds(ctx, cp))
    violations.extend(_metadata_points_to_durable(ctx))
    violations.extend(_pointers_to_incomplete_objects(ctx))
    violations.extend(_always_one_valid(ctx))
    writes = [op for op in ctx.view.storage_ops() if op.data.get("op") in _PERSISTING_OPS]
    unseen = [
        cp.key
        for cp in ctx.view.checkpoints
        if cp.tier != "local" and not ctx.verifier.writes_of(cp)
    ]
    if not writes:
        why = "no write to S3, Redis or the local disk was seen" + (
            " (yet checkpoints were reported durable)" if ctx.view.checkpoints else ""
        )
    elif unseen:
        why = (
            f"checkpoint {unseen[0]} is in storage but the harness saw no write of it (written "
            "through a client the harness did not hand out?): when it became durable is unknown"
        )
    else:
        why = ""
    return CheckResult.from_violations(
        "durable",
        violations,
        summary=f"{len(ctx.view.checkpoints)} durable report(s), {len(writes)} write(s) seen",
        evidence=_storage_evidence(ctx) | {"storage.snapshot", "target.events"},
        unverified=why,
    )


def _reported_durable_holds(ctx: CheckContext, cp: Checkpoint) -> list[Violation]:
    verdict = ctx.verifier.verdict(cp)
    if verdict.contradicted:
        return [
            Violation.citing(
                f"checkpoint {cp.id} reported durable on {cp.tier} at {_t(cp.t)}, but "
                f"{verdict.detail}",
                [cp.event],
            )
        ]
    if cp.tier != "local" and ctx.verifier.written_before(cp) is None:
        later = next((op for op in ctx.verifier.writes_of(cp) if op.seq > cp.event.seq), None)
        if later is None:
            return []  # no write seen at all: ``durable`` says it could not verify
        return [
            Violation.citing(
                f"checkpoint {cp.id} reported durable at {_t(cp.t)} before any write of "
                f"{cp.key} completed",
                [cp.event, later],
            )
        ]
    return []


def _metadata_points_to_durable(ctx: CheckContext) -> list[Violation]:
    violations = []
    for meta in ctx.view.of_kind(Kind.METADATA_COMMITTED):
        target = str(meta.data.get("checkpoint_id", ""))
        reports = [cp for cp in ctx.view.checkpoints if cp.id == target]
        before = [cp for cp in reports if cp.event.seq < meta.seq]
        if not before:
            violations.append(
                Violation.citing(
                    f"metadata moved to checkpoint {target} at {_t(meta.t)} before it was durable",
                    [meta, *(cp.event for cp in reports[:1])],
                )
            )
        elif all(ctx.verifier.verdict(cp).contradicted for cp in before):
            violations.append(
                Violation.citing(
                    f"metadata points to checkpoint {target}, which storage does not hold intact",
                    [meta, *(cp.event for cp in before)],
                )
            )
    return violations


def _storage_problems(ctx: CheckContext, problems: list[layout.Problem]) -> list[Violation]:
    """Storage-level findings, citing the last successful write of the key concerned."""
    violations = []
    for problem in problems:
        writes = [op for op in ctx.view.storage_ops() if ctx.view.op_path(op) == problem.key]
        violations.append(Violation.citing(problem.message, writes[-1:]))
    return violations


def _always_one_valid(ctx: CheckContext) -> list[Violation]:
    """Once a valid checkpoint exists on a tier, the target's own deletes and in-place rewrites
    must never leave that tier without one: a crash at that instant would find none there (wipes
    and injected corruption are the cloud's doing, not the target's)."""
    violations = []
    for op in ctx.view.storage_ops():
        if op.data.get("op") not in GAP_OPS:
            continue
        if op.data.get("op") == "local.write" and not ctx.verifier.in_place(op):
            continue
        store = ctx.view.store_of(op)
        before = [
            cp
            for cp in ctx.view.checkpoints
            if cp.store == store and ctx.verifier.available_before(cp, op.seq)
        ]
        after = [cp for cp in before if ctx.verifier.available_before(cp, op.seq + 1)]
        if before and not after:
            victim = max(before, key=lambda cp: cp.position)
            tier = "S3" if store == "s3" else f"local dir {store}"
            violations.append(
                Violation.citing(
                    f"{op.data.get('op')} of {ctx.view.op_path(op)} by {op.instance} at "
                    f"{_t(op.t)} left {tier} without a valid checkpoint (it destroyed "
                    f"{victim.id}, position {victim.position})",
                    [victim.event, op],
                )
            )
    return violations


#: Storage ops that persist something (a write of S3, Redis or the local disk).
_PERSISTING_OPS = S3_WRITE_OPS | frozenset({"redis.write", "local.write", "local.rename"})


def _storage_evidence(ctx: CheckContext) -> set[str]:
    """Which of the harness's own storage observations the run has."""
    return set(ctx.view.storage_evidence)


def _pointers_to_incomplete_objects(ctx: CheckContext) -> list[Violation]:
    """Metadata the target wrote to Redis (any key, any layout) must never name an S3 object
    before a write of that object completed: a reader following it would find nothing, or an
    older version. Judged from the harness's own records of Redis commands and S3 requests."""
    written: dict[str, Event] = {}  # S3 key -> its first completed write
    for op in ctx.view.storage_ops():
        if op.data.get("op") in S3_WRITE_OPS:
            written.setdefault(str(op.data.get("key")), op)
    later_keys = set(written) | set(ctx.snapshot.keys(""))
    violations = []
    for op in ctx.view.storage_ops():
        if op.data.get("op") != "redis.write":
            continue
        for value in op.data.get("values") or ():
            first = written.get(str(value))
            if str(value) in later_keys and (first is None or first.seq > op.seq):
                violations.append(
                    Violation.citing(
                        f"redis {op.data.get('command')} of {op.data.get('key')} by {op.instance} "
                        f"at {_t(op.t)} names s3 object {value} before any write of it completed",
                        [op, first],
                    )
                )
    return violations


# -- reference_layout -----------------------------------------------------------------------------


def reference_layout(ctx: CheckContext) -> CheckResult:
    """The bundled runtime's own storage invariants (``docs/runtime.md``): every manifest and its
    Redis metadata name checkpoints storage holds intact; no older epoch wrote after a newer."""
    problems = layout.metadata_problems(ctx.snapshot, ctx.verifier.corrupted_keys())
    problems += layout.fencing_problems(ctx.snapshot)
    manifests = layout.count_metadata(ctx.snapshot)
    return CheckResult.from_violations(
        "reference_layout",
        _storage_problems(ctx, problems),
        summary=f"{manifests} manifest version(s) and metadata hash(es)",
        evidence={"storage.snapshot"},
        unverified=""
        if manifests or problems
        else "no manifest or Redis metadata of the reference layout in storage",
    )


# -- lost_work ------------------------------------------------------------------------------------


def lost_work(ctx: CheckContext, at_most: float) -> CheckResult:
    violations = []
    worst = 0.0
    instances = ctx.view.instances
    for index, previous in enumerate(instances):
        following = next((i for i in instances[index + 1 :] if _restart(ctx, i) is not None), None)
        if following is None:
            continue
        lost, cite = _work_lost(ctx, previous, following)
        worst = max(worst, lost)
        if lost > at_most:
            violations.append(
                Violation.citing(
                    f"{format_duration(lost)} of work done by {previous.id} was redone by "
                    f"{following.id} (at most {format_duration(at_most)} allowed)",
                    cite,
                )
            )
    restarts = [i for i in instances[1:] if _restart(ctx, i) is not None]
    return CheckResult.from_violations(
        "lost_work",
        violations,
        params={"at_most": at_most},
        summary=f"worst loss {format_duration(worst)}",
        evidence={"lifecycle", "target.events"},
        unverified="" if restarts else "no instance restarted the job after an interruption",
    )


def _restart(ctx: CheckContext, instance: Instance) -> int | None:
    """Where an instance restarted the job: its resume, else the item before its first one."""
    resumed = ctx.view.resumed(instance)
    if resumed is not None:
        return int(resumed.data.get("position") or 0)
    items = ctx.view.positions(instance.id)
    return int(items[0].data.get("position", 1)) - 1 if items else None


def _work_lost(
    ctx: CheckContext, previous: Instance, following: Instance
) -> tuple[float, list[Event | None]]:
    """Seconds ``previous`` worked past the position ``following`` restarted from.

    Work ends at the last item done when the instance stopped on its own (a notice, the end of
    the job), else at the kill: the batch in progress was lost too. The time the restart
    position was reached is interpolated between the items reported around it.
    """
    restart = _restart(ctx, following)
    origin = ctx.view.resumed(previous)
    if restart is None or (origin is None and not ctx.view.positions(previous.id)):
        return 0.0, []
    points = [(_restart(ctx, previous) or 0, (origin or previous.started).t)]
    points += [(int(e.data.get("position", 0)), e.t) for e in ctx.view.positions(previous.id)]
    reached = _time_reached(points, restart)
    if reached is None:
        return 0.0, []
    stopped = ctx.view.by(previous.id, Kind.JOB_STOPPED, Kind.JOB_COMPLETED)
    end = points[-1][1] if stopped or previous.ended is None else previous.end
    cite = [previous.ended, ctx.view.resumed(following), *ctx.view.positions(previous.id)[-1:]]
    return max(0.0, end - reached), cite


def _time_reached(points: list[tuple[int, float]], position: int) -> float | None:
    """When ``position`` was reached, interpolated; ``None`` if it never was."""
    for (p0, t0), (p1, t1) in itertools.pairwise([points[0], *points]):
        if p1 >= position:
            if p1 == p0 or position <= p0:
                return t1 if position > p0 else t0
            return t0 + (t1 - t0) * (position - p0) / (p1 - p0)
    return None


# -- detects_notice -------------------------------------------------------------------------------


def detects_notice(ctx: CheckContext, within: float) -> CheckResult:
    violations = []
    count = 0
    for notice, instance in _interrupting(ctx):
        seen = [
            e
            for e in ctx.view.by(instance.id, Kind.NOTICE_SEEN)
            if e.t >= notice.issued.t and names_notice(e, notice)
        ]
        if not seen:
            ended_early = instance.end < notice.issued.t + within
            if ended_early and ctx.view.ending_action(instance) == "exit":
                continue  # finished its work and left before it had to notice
            violations.append(
                Violation.citing(
                    f"{instance.id} never reported seeing notice {notice.id} ({notice.action}) "
                    f"issued at {_t(notice.issued.t)}",
                    [notice.issued, instance.ended],
                )
            )
            continue
        count += 1
        delay = seen[0].t - notice.issued.t
        if delay > within:
            violations.append(
                Violation.citing(
                    f"{instance.id} saw notice {notice.id} {format_duration(delay)} after it was "
                    f"issued (within {format_duration(within)} required)",
                    [notice.issued, seen[0]],
                )
            )
        late = _believed_late(seen, notice)
        if late is not None:
            violations.append(
                Violation.citing(
                    f"{instance.id} believed notice {notice.id} ends at "
                    f"{_t(float(late.data['deadline']))}, later than its real deadline "
                    f"{_t(notice.deadline)}",
                    [notice.issued, late],
                )
            )
    judged = count + len(violations)
    return CheckResult.from_violations(
        "detects_notice",
        violations,
        params={"within": within},
        summary=f"{count} notice(s) seen",
        evidence={"lifecycle", "target.events"},
        unverified="" if judged else "no interruption notice reached a running instance",
    )


def _believed_late(seen: list[Event], notice: Notice) -> Event | None:
    """The first sighting after ``notice`` if every one of them believed a deadline later than
    the real one, else None. A sighting names no notice: with two notices close together the
    first sighting may be the other one's (a later deadline, rightly), so the target is blamed
    only when no sighting of the notice's action held its deadline."""
    beliefs = [e for e in seen if e.data.get("deadline") is not None]
    if any(float(e.data["deadline"]) <= notice.deadline + DEADLINE_TOLERANCE for e in beliefs):
        return None
    return beliefs[0] if beliefs else None


#: Notices whose signal names no action (GCP's ``preempted`` flag and ACPI soft off, a pod's
#: SIGTERM): whether the machine will be stopped or deleted is not in it, so a target can only
#: say it is interrupted, and any interrupting word names the notice.
ACTIONLESS = frozenset({("gcp", "preemption"), ("kubernetes", "eviction")})
INTERRUPTING_WORDS = frozenset(
    {"terminate", "stop", "hibernate", "preempt", "preemption", "eviction", "reboot", "redeploy"}
)


def names_notice(seen: Event, notice: Notice) -> bool:
    """Whether a sighting (``notice.seen``) names ``notice``: what the target said it was, the
    cloud's word (``action``: Azure's ``preempt``) or what it takes it to do (``effect``:
    ``terminate``), is the notice's action or kind, or for a notice whose signal names no
    action (:data:`ACTIONLESS`) any interrupting word; a sighting that says nothing names any
    notice. ``detects_notice`` and ``true_deadline`` match sightings by this one rule."""
    said = {str(seen.data[k]) for k in ("action", "effect") if seen.data.get(k)}
    if not said:
        return True
    names = {notice.action, notice.kind}
    if (str(notice.issued.data.get("cloud", "")), notice.kind) in ACTIONLESS:
        names |= INTERRUPTING_WORDS
    return bool(said & names)


# -- no_leaked_uploads ----------------------------------------------------------------------------


def no_leaked_uploads(ctx: CheckContext) -> CheckResult:
    violations = []
    for upload in ctx.snapshot.uploads:
        opened = _unfinished_creates(ctx, upload.key)
        creator = ctx.view.instance(opened[0].instance) if opened else None
        if creator is not None and _nobody_could_clean(ctx, creator):
            continue
        violations.append(
            Violation.citing(
                f"a multipart upload of {upload.key} was never completed or aborted"
                + (f" (started by {creator.id} at {_t(opened[0].t)})" if creator else ""),
                [*opened, *_failed_aborts(ctx, upload.key), creator.ended if creator else None],
            )
        )
    return CheckResult.from_violations(
        "no_leaked_uploads",
        violations,
        summary=f"{len(ctx.snapshot.uploads)} open upload(s)",
        evidence={"storage.snapshot"} | (_storage_evidence(ctx) & {"s3.ops"}),
    )


def _unfinished_creates(ctx: CheckContext, key: str) -> list[Event]:
    """``s3.create_multipart`` steps on ``key`` that no successful complete or abort closed."""
    pending: list[Event] = []
    for op in ctx.view.storage_ops():
        if op.data.get("key") != key:
            continue
        name = op.data.get("op")
        if name == "s3.create_multipart":
            pending.append(op)
        elif name in ("s3.complete_multipart", "s3.abort_multipart") and pending:
            pending.pop()
    return pending


def _failed_aborts(ctx: CheckContext, key: str) -> list[Event]:
    return [
        op
        for op in ctx.view.storage_ops(ok=False)
        if op.data.get("op") == "s3.abort_multipart" and op.data.get("key") == key
    ]


def _nobody_could_clean(ctx: CheckContext, creator: Instance) -> bool:
    """The creator died without warning-free cleanup chance and no instance came after it."""
    killed = creator.ended is not None and creator.ended.kind == Kind.INSTANCE_KILLED
    return killed and not any(i.start >= creator.end for i in ctx.view.instances)


# -- fenced ---------------------------------------------------------------------------------------


def fenced(ctx: CheckContext) -> CheckResult:
    violations = []
    judged = 0
    for instance in ctx.view.instances:
        claim = _superseded_by(ctx, instance)
        if claim is None:
            continue
        judged += 1
        newer_keys = _keys_written_by_others(ctx, instance, claim)
        for event in ctx.view.events[claim.seq + 1 :]:
            if event.instance != instance.id:
                continue
            why = _forbidden_write(ctx, event, newer_keys)
            if why:
                violations.append(
                    Violation.citing(
                        f"{instance.id} {why} at {_t(event.t)}, after {claim.instance} took over "
                        f"at {_t(claim.t)}{_shared_epoch(ctx, instance, claim)}",
                        [claim, event],
                    )
                )
    return CheckResult.from_violations(
        "fenced",
        violations,
        summary=f"{judged} instance(s) outlived by a newer one",
        evidence=_storage_evidence(ctx) | {"lifecycle"},
        unverified="" if judged else "no instance was still running when a newer one took over",
    )


def _superseded_by(ctx: CheckContext, instance: Instance) -> Event | None:
    """The first claim (epoch, else resume, else its first write to S3 or Redis) of an instance
    started after this one.

    A later instance that took the same epoch claimed the job too: two live writers sharing an
    epoch cannot fence each other, so the older one's writes after it are judged all the same.
    Only an older epoch (an instance that came back from before this one) claims nothing."""
    own_epoch = ctx.view.epoch_of(instance)
    mine = int(own_epoch.data.get("epoch", 0)) if own_epoch else None
    claims = []
    for later in ctx.view.instances[instance.order + 1 :]:
        epoch = ctx.view.epoch_of(later)
        if epoch is not None and (mine is None or int(epoch.data.get("epoch", 0)) >= mine):
            claims.append(epoch)
        elif epoch is None:
            claim = ctx.view.resumed(later) or _first_shared_write(ctx, later)
            if claim is not None:  # one killed before it did anything claimed nothing
                claims.append(claim)
    alive = [c for c in claims if c.seq < (instance.ended.seq if instance.ended else 1 << 62)]
    return min(alive, key=lambda e: e.seq, default=None)


def _first_shared_write(ctx: CheckContext, instance: Instance) -> Event | None:
    """The first write of ``instance`` to storage other instances share (S3, Redis)."""
    return next(
        (
            op
            for op in ctx.view.storage_ops()
            if op.instance == instance.id
            and (op.data.get("op") in S3_WRITE_OPS or op.data.get("op") == "redis.write")
        ),
        None,
    )


def _shared_epoch(ctx: CheckContext, instance: Instance, claim: Event) -> str:
    own = ctx.view.epoch_of(instance)
    if claim.kind != Kind.EPOCH or own is None:
        return ""
    epoch = own.data.get("epoch")
    return f" under the same epoch {epoch}" if claim.data.get("epoch") == epoch else ""


def _keys_written_by_others(ctx: CheckContext, instance: Instance, claim: Event) -> set[str]:
    """S3 keys that instances started after this one write (at any time in the run)."""
    newer = {i.id for i in ctx.view.instances[instance.order + 1 :]}
    return {
        str(op.data.get("key"))
        for op in ctx.view.storage_ops()
        if op.instance in newer and op.data.get("op") in S3_WRITE_OPS
    }


def _forbidden_write(ctx: CheckContext, event: Event, newer_keys: set[str]) -> str:
    if event.kind == Kind.METADATA_COMMITTED:
        return f"moved the job metadata to {event.data.get('checkpoint_id')}"
    if event.kind != Kind.STORAGE_OP or not event.data.get("ok", True):
        return ""
    op, key = event.data.get("op"), str(event.data.get("key", ""))
    if key not in newer_keys:
        return ""  # a fresh object of its own, or an identical output: harmless
    if op in S3_DELETE_OPS:
        return f"deleted {key}, which a newer instance writes"
    if op in S3_WRITE_OPS and _every_write_took_effect(ctx, key):
        return f"overwrote {key} ({op}), which a newer instance writes"
    return ""


def _every_write_took_effect(ctx: CheckContext, key: str) -> bool:
    """Whether S3 holds as many versions of ``key`` as writes were let through: then no write
    was refused by a condition (``If-Match``), and this one changed the object."""
    writes = [
        op
        for op in ctx.view.storage_ops()
        if op.data.get("op") in S3_WRITE_OPS and op.data.get("key") == key
    ]
    return len(ctx.snapshot.versions_of(key)) >= len(writes)


# -- completes ------------------------------------------------------------------------------------


def completes(ctx: CheckContext, within: float) -> CheckResult:
    completed = ctx.view.completed()
    finished = ctx.view.of_kind(Kind.RUN_FINISHED)
    if completed is None:
        return CheckResult.from_violations(
            "completes",
            [
                Violation.citing(
                    f"the job never completed (run ended at {_t(ctx.view.run_end)})",
                    finished[-1:],
                )
            ],
            params=_finite(within=within),
            evidence={"target.events", "lifecycle"},
        )
    took = completed.t - ctx.view.run_start
    violations = []
    if took > within:
        violations.append(
            Violation.citing(
                f"the job completed after {format_duration(took)} "
                f"(within {format_duration(within)} required)",
                [completed],
            )
        )
    missing = [k for k in sorted(ctx.golden.outputs) if ctx.snapshot.current(k) is None]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        violations.append(
            Violation.citing(
                f"the job reported completion but {len(missing)} output(s) are missing: {shown}",
                [completed],
            )
        )
    return CheckResult.from_violations(
        "completes",
        violations,
        params=_finite(within=within),
        summary=f"completed after {format_duration(took)}",
        evidence={"target.events", "storage.snapshot", "golden"},
    )


def _finite(**params: float) -> dict[str, float]:
    """Parameters worth reporting: an unlimited ``within`` is left out (and JSON has no inf)."""
    return {k: v for k, v in params.items() if v != float("inf")}


CheckFunction = Callable[..., CheckResult]
