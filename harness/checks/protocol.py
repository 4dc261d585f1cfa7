"""Checks of how a target treats the cloud's signals and its metadata service, judged from the
harness's own record of the metadata requests (``imds.request``, ``imds.gap``: see
:mod:`harness.sim.metadata`) and the lifecycle, plus the target's reports where it says what it
believed (``notice.seen``) or did (``job.item_done``, ``job.stopped``).

- ``works_through_advisory``: a rebalance recommendation, a maintenance event, an Azure Freeze
  end nothing; the job must not stop or exit because of one.
- ``token_renewed``: no IMDSv2 token presented again after the service refused it as expired.
- ``approved_after_save``: an Azure event approved (``StartRequests``) only once the state is
  saved where it survives the event.
- ``client_timeout``: a metadata request that gets no answer (a GCP ``wait_for_change`` GET
  above all) is given up and asked again in time: the client has a timeout of its own.
- ``polls_within_lead``: while its monitor runs, an instance never goes longer than the cloud's
  notice lead without asking the metadata service.
- ``true_deadline``: the deadline a target believes is no later than the real one: taken from
  the notice's own time, not from when it was seen, nor from a skewed local clock.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Mapping
from typing import Any

from harness.checks.oracles import (
    CheckContext,
    _interrupting,
    _must_cover,
    _storage_evidence,
    _surviving,
    _surviving_tiers,
    names_notice,
)
from harness.checks.results import CheckResult, Violation
from harness.checks.view import Instance, Notice
from harness.history import Event, Kind
from harness.units import format_duration

IMDS_REQUEST = "imds.request"
IMDS_GAP = "imds.gap"
#: Status the recorder gives a request that got no answer (a timeout fault held it).
NO_ANSWER = 0

#: The shortest notice each polled cloud documents: AWS's two minutes, GCP's 30 s of soft off,
#: Azure's 30 s minimum for a Preempt. Polling less often than this can miss a whole notice.
CLOUD_LEAD = {"aws": 120.0, "gcp": 30.0, "azure": 30.0}
#: Metadata paths that carry a notice: an instance that asks one of them watches for notices
#: (one that only read its identity once, and waits for a signal, polls nothing).
NOTICE_PATHS = (
    "/spot/instance-action",
    "/spot/termination-time",
    "/events/recommendations/rebalance",
    "/autoscaling/target-lifecycle-state",
    "/events/maintenance/scheduled",
    "/instance/preempted",
    "/instance/maintenance-event",
    "/metadata/scheduledevents",
)
#: An instance that does no item for this long (or twice its longest pause between items
#: before, if longer) after an advisory signal, while its job is not done, has stopped working
#: (a checkpoint of the library's states takes seconds).
STALL = 120.0
#: A believed deadline may be this much later than the real one (notice times are to the second).
DEADLINE_TOLERANCE = 1.0
#: Notices that carry no time of their own, with the lead their cloud documents: the target can
#: only count that long from when it saw them (GCP's 30 s, whatever lead a story gives).
UNTIMED = {
    ("gcp", "preemption"): 30.0,
    ("kubernetes", "eviction"): 0.0,
    ("aws", "asg-termination"): 0.0,
}


def _t(seconds: float) -> str:
    return f"t={format_duration(seconds)}"


def _note(event: Event) -> Mapping[str, Any]:
    return event.data.get("note") or {}


def _requested_at(event: Event) -> float:
    return float(event.data.get("requested_at", event.t))


# -- works_through_advisory -----------------------------------------------------------------------


def works_through_advisory(ctx: CheckContext) -> CheckResult:
    """After an advisory signal, and until a real interruption notice comes, the instance goes
    on working: no ``job.stopped``, no exit before the job is done, no long stop of its items."""
    violations: list[Violation] = []
    judged = 0
    for notice in ctx.view.notices:
        if not notice.advisory:
            continue
        for instance in ctx.view.notice_targets(notice):
            if not instance.alive_during(notice.issued) or _done_by(ctx, instance, notice.issued):
                continue
            if _interruption_pending(ctx, notice, instance):
                continue  # it is being interrupted anyway: stopping is its answer to that
            judged += 1
            found = _stopped_for_advisory(ctx, notice, instance)
            if found is not None:
                violations.append(found)
    return CheckResult.from_violations(
        "works_through_advisory",
        violations,
        summary=f"{judged} advisory signal(s) to a working instance",
        evidence={"lifecycle", "target.events"},
        unverified="" if judged else "no advisory signal reached an instance with work left",
    )


def _interruption_pending(ctx: CheckContext, advisory: Notice, instance: Instance) -> bool:
    """A real notice to ``instance`` issued no later than ``advisory`` whose deadline is still
    ahead: the advisory comes on top of an interruption already under way."""
    return any(
        told == instance and n.issued.seq < advisory.issued.seq and n.deadline >= advisory.issued.t
        for n, told in _interrupting(ctx)
    )


def _done_by(ctx: CheckContext, instance: Instance, event: Event) -> bool:
    return any(e.seq <= event.seq for e in ctx.view.by(instance.id, Kind.JOB_COMPLETED))


def _stopped_for_advisory(
    ctx: CheckContext, advisory: Notice, instance: Instance
) -> Violation | None:
    start = advisory.issued
    real = [
        n.issued
        for n in ctx.view.notices
        if not n.advisory and n.issued.seq > start.seq and instance in ctx.view.notice_targets(n)
    ]
    completed = [e for e in ctx.view.by(instance.id, Kind.JOB_COMPLETED) if e.seq > start.seq]
    until = min([e.seq for e in real + completed], default=None)
    end_t = min([e.t for e in real + completed] + [instance.end, ctx.view.run_end])
    what = f"{advisory.kind or 'advisory'} signal {advisory.id} at {_t(start.t)}"
    superseded = ctx.view.by(instance.id, "instance.superseded")
    for event in ctx.view.by(instance.id, Kind.JOB_STOPPED, Kind.INSTANCE_EXITED):
        if superseded or event.data.get("reason") == "fenced":
            break  # a newer instance took over: that, not the signal, ended this one
        if event.seq > start.seq and (until is None or event.seq < until):
            said = "stopped its job" if event.kind == Kind.JOB_STOPPED else "exited"
            return Violation.citing(
                f"{instance.id} {said} at {_t(event.t)} after the {what}, though no "
                "interruption followed: an advisory signal ends nothing",
                [start, event],
            )
    done = [e.t for e in ctx.view.positions(instance.id)]
    before = [t for t in done if t <= start.t]
    if not before:
        return None  # not working yet (recovering): a stall is not its answer to the signal
    # The instance's own pace: a job of long items may take longer than STALL over one.
    pace = max((b - a for a, b in itertools.pairwise(before)), default=0.0)
    if end_t == float("inf"):
        return None
    points = [start.t, *(t for t in done if start.t < t < end_t), end_t]
    quiet, quiet_from = max((b - a, a) for a, b in itertools.pairwise(points))
    quiet_until = quiet_from + quiet
    if (
        quiet > max(STALL, 2 * pace)
        and not _worked_through(ctx.view.positions(instance.id), quiet_from, quiet_until)
        and not _storage_trouble(ctx, instance, quiet_from, quiet_until)
    ):
        return Violation.citing(
            f"{instance.id} did no item from {_t(quiet_from)} to {_t(quiet_from + quiet)} "
            f"after the {what}, "
            "though no interruption followed: it stopped working for an advisory signal",
            [start, *real[:1], *completed[:1], instance.ended],
        )
    return None


def _storage_trouble(ctx: CheckContext, instance: Instance, since: float, until: float) -> bool:
    """Whether ``instance`` met storage trouble from ``since`` to ``until``: a storage request
    of its own failed, or a timed storage fault of the harness was on for it. Waiting out an
    outage or throttling (an output's retries) is not stopping for the signal."""
    failed = any(
        since <= e.t <= until and not e.data.get("ok", True)
        for e in ctx.view.by(instance.id, Kind.STORAGE_OP)
    )
    return failed or any(
        e.t <= until and e.t + float(e.data["duration"]) >= since
        for e in ctx.view.of_kind(Kind.FAULT_STARTED)
        if _timed_storage_fault_on(e, instance)
    )


def _timed_storage_fault_on(fault: Event, instance: Instance) -> bool:
    scope = (fault.data.get("params") or {}).get("incarnation")
    return (
        bool(fault.data.get("duration"))
        and fault.data.get("target") in ("s3", "redis", "disk")
        and scope in (None, instance.started.data.get("incarnation"))
    )


def _worked_through(done: list[Event], since: float, until: float) -> bool:
    """Whether a quiet stretch was work reported in one batch: the item report that ends it
    covers the stretch at no less than half the instance's usual pace (the median of its other
    reports). A target that reports every output or checkpoint is quiet between them; a stalled
    one reports nothing, or too few items for the time."""
    rates, covering = [], None
    for a, b in itertools.pairwise(done):
        if b.t <= a.t:
            continue
        rate = (int(b.data.get("position", 0)) - int(a.data.get("position", 0))) / (b.t - a.t)
        if a.t <= since + 1e-9 and b.t >= until - 1e-9:
            covering = rate
        else:
            rates.append(rate)
    if covering is None or len(rates) < 2:
        return False  # nothing reported at its end, or no usual pace to compare with
    return covering >= 0.5 * statistics.median(rates)


# -- token_renewed --------------------------------------------------------------------------------


def token_renewed(ctx: CheckContext) -> CheckResult:
    """No IMDSv2 token is presented again once the service refused it as expired. One request
    with an expired token is the documented way to learn it expired (a 401, then a new token);
    presenting it again means the client never renews (every poll is a 401, read as nothing)."""
    violations: list[Violation] = []
    expired_uses: dict[tuple[str | None, Any], list[Event]] = {}
    for event in ctx.view.of_kind(IMDS_REQUEST):
        note = _note(event)
        if "token_expired_for" in note:
            expired_uses.setdefault((event.instance, note.get("token")), []).append(event)
    for (instance, serial), uses in expired_uses.items():
        if len(uses) > 1:
            first, again = uses[0], uses[1]
            violations.append(
                Violation.citing(
                    f"{instance} presented IMDSv2 token #{serial} (TTL "
                    f"{format_duration(float(_note(first).get('token_ttl', 0)))}) again at "
                    f"{_t(_requested_at(again))}, after the service refused it as expired at "
                    f"{_t(_requested_at(first))} ({len(uses)} uses after expiry in all)",
                    [first, again],
                )
            )
    outlived = _tokens_outlived(ctx)
    judged = outlived or bool(expired_uses)
    return CheckResult.from_violations(
        "token_renewed",
        violations,
        summary=f"{outlived} instance(s) ran past an IMDSv2 token's TTL",
        evidence={"imds.requests", "lifecycle"},
        unverified="" if judged else "no IMDSv2 token outlived its TTL while its instance ran",
    )


def _tokens_outlived(ctx: CheckContext) -> int:
    """Instances still running when the first token they were given expired."""
    count = 0
    for instance in ctx.view.instances:
        for event in ctx.view.by(instance.id, IMDS_REQUEST):
            note = _note(event)
            if event.data.get("method") == "PUT" and "token_ttl" in note:
                if _requested_at(event) + float(note["token_ttl"]) < instance.end:
                    count += 1
                break
    return count


# -- approved_after_save --------------------------------------------------------------------------


def approved_after_save(ctx: CheckContext) -> CheckResult:
    """An Azure approval (``StartRequests``) lets the platform act at once: by then a
    checkpoint covering every item done must be readable on a tier that survives the event,
    and the instance must do no more work."""
    violations: list[Violation] = []
    judged = 0
    notices = {n.id: n for n in ctx.view.notices}
    for approval in ctx.view.of_kind(IMDS_REQUEST):
        instance = ctx.view.instance(approval.instance)
        ids = [str(i) for i in _note(approval).get("notices") or ()]
        approved = [notices[i] for i in ids if i in notices and not notices[i].advisory]
        if instance is None or not approved or "approved" not in _note(approval):
            continue
        judged += 1
        found = _approved_unsaved(ctx, approval, approved[0], instance)
        if found is not None:
            violations.append(found)
    return CheckResult.from_violations(
        "approved_after_save",
        violations,
        summary=f"{judged} approval(s) of an interrupting event",
        evidence=_storage_evidence(ctx) | {"imds.requests", "lifecycle", "target.events"},
        unverified="" if judged else "no interrupting Azure event was approved",
    )


def _approved_unsaved(
    ctx: CheckContext, approval: Event, notice: Notice, instance: Instance
) -> Violation | None:
    at = _requested_at(approval)
    resumed = ctx.view.resumed(instance)
    start = int(resumed.data.get("position") or 0) if resumed else 0
    done_then = ctx.view.position_at(instance, at) or start
    # As saved_before_deadline: an output that could not be written caps what a save may cover.
    needed = _must_cover(ctx, notice, instance, done_then, start, by=at)
    saved = [
        cp.position
        for cp in ctx.view.checkpoints
        if cp.position >= needed
        and _surviving(cp, notice.keeps_local, instance)
        and ctx.verifier.available_before(cp, approval.seq)
    ]
    what = f"{instance.id} approved event {notice.id} ({notice.kind}) at {_t(at)}"
    done = ctx.view.positions(instance.id)
    if needed > 0 and not saved:
        tier = _surviving_tiers(notice)
        return Violation.citing(
            f"{what} with {done_then} items done and no checkpoint of position {needed} or "
            f"later readable on {tier}: "
            "the platform may end the VM as soon as it is approved",
            [notice.issued, approval, *[e for e in done if e.seq < approval.seq][-1:]],
        )
    later = [
        e
        for e in done
        if e.seq > approval.seq and int(e.data.get("position", 0)) > max(saved, default=needed)
    ]
    if later:
        return Violation.citing(
            f"{what}, then went on working (item {later[-1].data.get('position')} at "
            f"{_t(later[-1].t)}): work after an approval is lost when the event starts",
            [approval, later[0]],
        )
    return None


# -- client_timeout -------------------------------------------------------------------------------


def client_timeout(ctx: CheckContext) -> CheckResult:
    """A metadata request that gets no answer (a silently dropped connection: the harness's
    ``timeout`` fault) must be given up and asked again within the cloud's shortest notice,
    plus the ``timeout_sec`` a GCP hanging GET asked the server to hold it: a client without a
    timeout of its own (GCP's ``wait_for_change`` is the classic) waits for ever, blind."""
    violations: list[Violation] = []
    judged = 0
    watching = {i.id: _watching_since(ctx, i) for i in ctx.view.instances}
    for event in ctx.view.of_kind(IMDS_REQUEST):
        instance = ctx.view.instance(event.instance)
        lead = CLOUD_LEAD.get(instance.cloud) if instance is not None else None
        if instance is None or lead is None or event.data.get("status") != NO_ANSWER:
            continue
        if watching[instance.id] is None:
            continue  # it watches no notice path: its metadata requests are one-off reads
        note = _note(event)
        at = _requested_at(event)
        bound = at + float(note.get("timeout_sec") or 0.0) + lead
        again = _next_request(ctx, instance, event)
        if again is None and _monitoring_until(ctx, instance) <= bound:
            continue  # the instance was gone (or done) before the wait could be judged
        judged += 1
        if again is not None and again[0] <= bound:
            continue
        waited = "never asked again" if again is None else f"asked again only at {_t(again[0])}"
        held = f", timeout_sec {note.get('timeout_sec') or 'none'}" if note else ""
        violations.append(
            Violation.citing(
                f"{instance.id}'s {event.data.get('method')} {event.data.get('path')} at "
                f"{_t(at)}{held} got no answer, and it {waited}: it had to give up by "
                f"{_t(bound)} to see a {format_duration(lead)} notice",
                [event, *(again[1:] if again else [instance.ended])],
            )
        )
    return CheckResult.from_violations(
        "client_timeout",
        violations,
        summary=f"{judged} unanswered metadata request(s)",
        evidence={"imds.requests", "imds.gaps", "lifecycle"},
        unverified="" if judged else "no metadata request went unanswered while its instance ran",
    )


def _next_request(
    ctx: CheckContext, instance: Instance, after: Event
) -> tuple[float, Event] | None:
    """When ``instance`` next asked the metadata service after the request ``after``, and the
    event that shows it (a recorded request, or the quiet stretch that ended with one)."""
    at = _requested_at(after)
    for event in ctx.view.by(instance.id, IMDS_REQUEST, IMDS_GAP):
        if event.seq <= after.seq:
            continue
        if event.kind == IMDS_REQUEST and _requested_at(event) > at:
            return _requested_at(event), event
        if event.kind == IMDS_GAP and not event.data.get("ended"):
            return float(event.data["until"]), event
    return None


def _monitoring_until(ctx: CheckContext, instance: Instance) -> float:
    """Until when ``instance`` had to watch for notices: its end, its job's completion or stop,
    or its seeing an interruption notice, whichever came first."""
    ends = [instance.end]
    ends += [e.t for e in ctx.view.by(instance.id, Kind.JOB_COMPLETED, Kind.JOB_STOPPED)]
    seen = ctx.view.by(instance.id, Kind.NOTICE_SEEN)
    for notice, target in _interrupting(ctx):
        if target is instance:
            ends += [e.t for e in seen if e.t >= notice.issued.t][:1]
    return min(ends)


# -- polls_within_lead ----------------------------------------------------------------------------


def polls_within_lead(ctx: CheckContext) -> CheckResult:
    """From its first request on a notice path until it is done watching (its end, its job's
    end, or an interruption notice seen), an instance on a polled cloud never goes longer than
    that cloud's shortest notice without asking the metadata service."""
    violations: list[Violation] = []
    judged = 0
    for instance in ctx.view.instances:
        lead = CLOUD_LEAD.get(instance.cloud)
        first = _watching_since(ctx, instance)
        if lead is None or first is None:
            continue
        judged += 1
        until = _monitoring_until(ctx, instance)
        for gap in ctx.view.by(instance.id, IMDS_GAP):
            since = max(float(gap.data["since"]), first)
            quiet = min(float(gap.data["until"]), until) - since
            if quiet > lead:
                violations.append(
                    Violation.citing(
                        f"{instance.id} asked the metadata service nothing for "
                        f"{format_duration(quiet)} from {_t(since)}, longer than {instance.cloud}"
                        f"'s {format_duration(lead)} notice: a whole notice could pass unseen",
                        [gap],
                    )
                )
    return CheckResult.from_violations(
        "polls_within_lead",
        violations,
        summary=f"{judged} instance(s) polling the metadata service",
        evidence={"imds.requests", "imds.gaps", "lifecycle", "target.events"},
        unverified="" if judged else "no instance of a polled cloud watched a notice path",
    )


def _watching_since(ctx: CheckContext, instance: Instance) -> float | None:
    """When ``instance`` first asked a notice path (None: it never watched for notices)."""
    for event in ctx.view.by(instance.id, IMDS_REQUEST):
        if str(event.data.get("path", "")).endswith(NOTICE_PATHS):
            return _requested_at(event)
    return None


# -- true_deadline --------------------------------------------------------------------------------


def true_deadline(ctx: CheckContext) -> CheckResult:
    """Every deadline a target reports for an interruption notice (``notice.seen``) is no later
    than the real one (1 s: notice times are to the second). A notice without a time of its own
    (GCP preemption, a Kubernetes eviction, an Auto Scaling termination), or an instance whose
    calendar clock is skewed, leaves only counting from when it was seen: then the deadline may
    be as late as that moment plus the notice's lead, no later."""
    violations: list[Violation] = []
    judged = 0
    skew = _skew(ctx)
    interrupting = list(_interrupting(ctx))
    for notice, instance in interrupting:
        if notice.deadline <= notice.issued.t:
            continue  # hibernation starts at once, whatever time the notice shows
        others = [n for n, i in interrupting if i is instance and n is not notice]
        for seen in _seen_with_deadline(ctx, notice, instance):
            found = _late_deadline(notice, instance, seen, skew)
            if found is not None and _answers_another(others, instance, seen, skew):
                continue  # another notice's sighting: it tells nothing about this one
            judged += 1
            if found is not None:
                violations.append(found)
                break
    return CheckResult.from_violations(
        "true_deadline",
        violations,
        summary=f"{judged} deadline(s) reported",
        evidence={"lifecycle", "target.events"},
        unverified="" if judged else "no interruption notice was reported seen with a deadline",
    )


def _answers_another(
    others: list[Notice], instance: Instance, seen: Event, skew: Event | None
) -> bool:
    """Whether ``seen`` holds a true deadline of another notice issued to ``instance`` before
    it: a sighting names no notice, so one of a later notice is no wrong belief about this one."""
    return any(
        other.issued.seq < seen.seq and _late_deadline(other, instance, seen, skew) is None
        for other in others
    )


def _skew(ctx: CheckContext) -> Event | None:
    """The clock-skew fault of the run, if any skewed the instances' calendar clocks."""
    for event in ctx.view.of_kind(Kind.FAULT_STARTED):
        params = event.data.get("params") or {}
        if event.data.get("fault") == "clock.skew" and float(params.get("skew") or 0):
            return event
    return None


def _seen_with_deadline(ctx: CheckContext, notice: Notice, instance: Instance) -> Iterable[Event]:
    for seen in ctx.view.by(instance.id, Kind.NOTICE_SEEN):
        matches = names_notice(seen, notice)
        if seen.seq > notice.issued.seq and seen.data.get("deadline") is not None and matches:
            yield seen


def _late_deadline(
    notice: Notice, instance: Instance, seen: Event, skew: Event | None
) -> Violation | None:
    believed = float(seen.data["deadline"])
    real = notice.deadline
    if believed <= real + DEADLINE_TOLERANCE:
        return None
    lead = float(notice.issued.data.get("lead") or real - notice.issued.t)
    cloud = str(notice.issued.data.get("cloud", instance.cloud))
    untimed = UNTIMED.get((cloud, notice.kind))
    counted = seen.t + max(lead, untimed or 0.0)
    if (untimed is not None or skew is not None) and believed <= counted + DEADLINE_TOLERANCE:
        return None
    why = "counted from when it was seen, not from the notice's own time"
    if skew is not None:
        off = float((skew.data.get("params") or {}).get("skew") or 0)
        why = f"taken from its own calendar clock, {format_duration(abs(off))} off"
    elif abs(believed - counted) > DEADLINE_TOLERANCE:
        why = "from a wrong clock"
    return Violation.citing(
        f"{instance.id} believed notice {notice.id} ({notice.kind}) ends at {_t(believed)}, "
        f"{format_duration(believed - real)} after its real deadline {_t(real)}: {why}",
        [notice.issued, seen, *([skew] if skew is not None else [])],
    )
