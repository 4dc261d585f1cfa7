"""The checks of a process run: the shared oracles, read as a black box would be.

A command target may report nothing about itself. Each check is first run as in simulation
(:func:`harness.checks.evaluate`); where its verdict would rest on reports the target did not
make, the process tier judges from what the harness saw instead (the proxies' S3 requests and
Redis commands, the metadata requests, the exit codes, the final storage and the golden), or
answers ``unverified`` with the reason. Every result names the evidence it rests on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import NamedTuple

from harness.checks import CheckResult, CheckSpec, Golden, StorageSnapshot, Violation, evaluate
from harness.checks.golden import digest_matches
from harness.checks.results import CheckStatus
from harness.checks.view import S3_WRITE_OPS, HistoryView, Instance, Notice
from harness.history import Event, History, Kind
from harness.scenario.model import Scenario
from harness.sim.runner import CheckOutcome
from harness.units import format_duration

#: Metadata paths whose answer carries an interruption notice, per dialect.
NOTICE_PATHS = (
    "/latest/meta-data/spot/instance-action",
    "/latest/meta-data/events/maintenance/scheduled",
    "/latest/meta-data/autoscaling/target-lifecycle-state",
    "/computeMetadata/v1/instance/preempted",
    "/metadata/scheduledevents",
)
#: The reports each check's shared oracle needs: one event of every group, from the target.
#: Without them the process tier judges from what the harness saw.
_REPORTED: dict[str, tuple[tuple[str, ...], ...]] = {
    "saved_before_deadline": ((Kind.CHECKPOINT_DURABLE,),),
    "durable": ((Kind.CHECKPOINT_DURABLE,),),
    "lost_work": ((Kind.ITEM_DONE, Kind.RESUMED),),
    "detects_notice": ((Kind.NOTICE_SEEN,),),
    "resume_correct": ((Kind.CHECKPOINT_DURABLE,), (Kind.RESUMED, Kind.ITEM_DONE)),
}


def judge(
    scenario: Scenario, history: History, snapshot: StorageSnapshot, golden: Golden
) -> tuple[CheckOutcome, ...]:
    view = HistoryView(history)
    outcomes = []
    for spec in scenario.expect:
        raw = {spec.name: dict(spec.params)} if spec.params else spec.name
        (shared,) = evaluate([raw], history, snapshot, golden)
        outcomes.append(CheckOutcome(spec, _as_black_box(spec, shared, view, snapshot, golden)))
    return tuple(outcomes)


def _reported(view: HistoryView, name: str) -> bool:
    groups = _REPORTED.get(name, ())
    return bool(groups) and all(
        any(e.source == "target" for e in view.of_kind(*kinds)) for kinds in groups
    )


class Seen(NamedTuple):
    """What the harness has to judge a process by, and whether it reported what the shared
    oracle of the check being judged needs."""

    view: HistoryView
    snapshot: StorageSnapshot
    golden: Golden
    reported: bool


def _as_black_box(
    spec: CheckSpec,
    shared: CheckResult,
    view: HistoryView,
    snapshot: StorageSnapshot,
    golden: Golden,
) -> CheckResult:
    rule = _RULES.get(spec.name)
    if rule is None:
        return shared
    return rule(shared, Seen(view, snapshot, golden, _reported(view, spec.name)))


def _with(result: CheckResult, evidence: Iterable[str], unverified: str = "") -> CheckResult:
    """``result`` with its evidence named, and ``unverified`` when it found nothing to judge."""
    if unverified and result.status == "passed":
        return replace(
            result, status="unverified", reason=unverified, evidence=tuple(sorted(set(evidence)))
        )
    return replace(result, evidence=tuple(sorted(set(evidence))))


def _fresh(
    name: str,
    violations: list[Violation],
    evidence: Iterable[str],
    summary: str,
    unverified: str = "",
    params: dict[str, float] | None = None,
) -> CheckResult:
    return CheckResult.from_violations(
        name, violations, params=params, summary=summary, evidence=evidence, unverified=unverified
    )


# -- saved_before_deadline ----------------------------------------------------------------------


def _saved_before_deadline(shared: CheckResult, seen: Seen) -> CheckResult:
    if seen.reported:
        nothing = shared.summary.startswith("0 ")
        return _with(
            shared,
            ("target.events", "s3.ops", "storage.snapshot", "lifecycle"),
            "no notice reached a process with work to save" if nothing else "",
        )
    violations = []
    judged = 0
    for notice, instance in _interruptions(seen.view):
        end = notice.deadline_event or instance.killed or instance.ended
        if (
            end is None
            or notice.deadline <= notice.issued.t
            or _completed(seen.view, instance, end)
        ):
            continue  # no time to save (hibernation), or the job was done
        judged += 1
        violation = _stopped_in_time(seen.view, notice, instance)
        if violation is not None:
            violations.append(violation)
    return _fresh(
        "saved_before_deadline",
        violations,
        ("s3.ops", "lifecycle"),
        f"{judged} interruption(s); without reports a process passes if it stopped on its own "
        "before the deadline with every S3 write since the notice acknowledged",
        "" if judged else "no interruption notice reached a running process",
    )


def _stopped_in_time(view: HistoryView, notice: Notice, instance: Instance) -> Violation | None:
    """A black box saved in time if it exited by itself before the deadline and no S3 write it
    made after the notice failed; killed while still running, it lost what it had not saved."""
    deadline_seq = notice.deadline_event.seq if notice.deadline_event else 1 << 62
    exited = next(
        (e for e in view.by(instance.id, Kind.INSTANCE_EXITED) if e.seq < deadline_seq), None
    )
    horizon = exited.seq if exited is not None else deadline_seq
    attempts = [
        op
        for op in view.storage_ops(ok=None)
        if op.instance == instance.id
        and notice.issued.seq < op.seq < horizon
        and str(op.data.get("op", "")).startswith("s3.")
        and op.data.get("op") in S3_WRITE_OPS | _UPLOAD_STEPS
    ]
    failed = [op for op in attempts if not op.data.get("ok", True)]
    when = f"t={format_duration(notice.issued.t)}"
    if exited is not None and not failed:
        return None
    if exited is None:
        return Violation.citing(
            f"{instance.id} was still running at the deadline t={format_duration(notice.deadline)}"
            f" of notice {notice.id} ({notice.action}, issued {when}): SIGKILL took whatever it "
            f"had not saved ({len(attempts)} S3 write(s) since the notice)",
            [notice.issued, *attempts[-1:], notice.deadline_event or instance.killed],
        )
    return Violation.citing(
        f"{instance.id} exited after notice {notice.id} ({notice.action}, issued {when}) with "
        f"{len(failed)} failed S3 write(s) since the notice (last: {failed[-1].data.get('op')} "
        f"{failed[-1].data.get('key')}: {failed[-1].data.get('error')})",
        [notice.issued, failed[-1], exited],
    )


_UPLOAD_STEPS = frozenset({"s3.upload_part", "s3.create_multipart"})


def _interruptions(view: HistoryView) -> Iterable[tuple[Notice, Instance]]:
    for notice in view.notices:
        if notice.advisory:
            continue
        for instance in view.notice_targets(notice):
            if instance.alive_during(notice.issued):
                yield notice, instance


def _completed(view: HistoryView, instance: Instance, end: Event) -> bool:
    return any(e.seq <= end.seq for e in view.by(instance.id, Kind.JOB_COMPLETED))


def _s3_writes(view: HistoryView, instance: Instance, after: int, before: int) -> list[Event]:
    return [
        op
        for op in view.storage_ops()
        if op.instance == instance.id
        and after < op.seq < before
        and op.data.get("op") in S3_WRITE_OPS
    ]


# -- outputs ------------------------------------------------------------------------------------


def _exactly_once(shared: CheckResult, seen: Seen) -> CheckResult:
    return _with(
        shared,
        ("storage.snapshot", "golden", "s3.ops"),
        "" if seen.golden.outputs else "the uninterrupted run wrote nothing under outputs/",
    )


def _resume_correct(shared: CheckResult, seen: Seen) -> CheckResult:
    outputs = _outputs_match(seen.view, seen.snapshot, seen.golden)
    if seen.reported:
        merged = replace(shared, violations=shared.violations + tuple(outputs))
        if outputs:
            merged = replace(merged, status="failed")
        return _with(merged, ("target.events", "storage.snapshot", "golden"))
    return _fresh(
        "resume_correct",
        outputs,
        ("storage.snapshot", "golden"),
        f"{len(seen.golden.outputs)} output(s) compared with the uninterrupted run (the target "
        "reports no resume position)",
        ""
        if seen.golden.outputs
        else "the target reports no position and the uninterrupted run "
        "wrote nothing under outputs/ to compare",
    )


def _outputs_match(view: HistoryView, snapshot: StorageSnapshot, golden: Golden) -> list[Violation]:
    """A black box resumed correctly if what it finally left equals the uninterrupted run's."""
    violations = []
    for key, digest in sorted(golden.outputs.items()):
        current = snapshot.current(key)
        writes = [op for op in view.storage_ops() if op.data.get("key") == key]
        if current is None:
            violations.append(Violation.citing(f"output {key} is missing at the end", writes[-1:]))
        elif current.blob is None or not digest_matches(digest, current.blob):
            violations.append(
                Violation.citing(
                    f"output {key} differs from the uninterrupted run's ({digest})", writes[-1:]
                )
            )
    for key in snapshot.keys(golden.output_prefix):
        if key not in golden.outputs and snapshot.current(key) is not None:
            writes = [op for op in view.storage_ops() if op.data.get("key") == key]
            violations.append(
                Violation.citing(
                    f"output {key} does not exist in the uninterrupted run", writes[:1]
                )
            )
    return violations


# -- durable, lost_work, uploads, fencing, completion -------------------------------------------


def _durable(shared: CheckResult, seen: Seen) -> CheckResult:
    if seen.reported:
        return _with(
            _without_pruned_local(shared, seen.view, seen.snapshot),
            ("target.events", "storage.snapshot", "s3.ops"),
        )
    return _with(
        shared,
        ("storage.snapshot", "s3.ops"),
        "the target reported no checkpoint durable (HARNESS_EVENTS), and the harness cannot tell "
        "a checkpoint from any other object",
    )


def _without_pruned_local(
    result: CheckResult, view: HistoryView, snapshot: StorageSnapshot
) -> CheckResult:
    """Drop violations that rest only on a local checkpoint missing at the end: the harness does
    not see a process's file operations, so a checkpoint it pruned itself (or one on a disk
    wiped since) is not evidence of a lie."""
    by_seq = {e.seq: e for e in view.events}

    def pruned(violation: Violation) -> bool:
        cited = [by_seq[ref.seq] for ref in violation.events if ref.seq in by_seq]
        return bool(cited) and all(_missing_local(e, view, snapshot) for e in cited)

    kept = tuple(v for v in result.violations if not pruned(v))
    dropped = len(result.violations) - len(kept)
    if not dropped:
        return result
    summary = (
        f"{result.summary}; {dropped} local checkpoint(s) gone by the end not judged (the "
        "harness does not see file operations)"
    )
    status: CheckStatus = "failed" if kept else "passed"
    return replace(result, violations=kept, status=status, summary=summary)


def _missing_local(event: Event, view: HistoryView, snapshot: StorageSnapshot) -> bool:
    if event.kind != Kind.CHECKPOINT_DURABLE or event.data.get("tier") != "local":
        return False
    owner = view.instance(event.instance)
    if owner is None:
        return False
    files = snapshot.files.get(owner.local_dir, {})
    key = str(event.data.get("key") or "")
    return not any(key.endswith(path) or path.endswith(key) for path in files)


def _lost_work(shared: CheckResult, seen: Seen) -> CheckResult:
    if seen.reported:
        restarts = len(seen.view.instances) > 1
        return _with(
            shared,
            ("target.events", "lifecycle"),
            "" if restarts else "the job never restarted, so no work could be redone",
        )
    return _with(
        shared,
        ("lifecycle",),
        "the target reports no progress (job.item_done in HARNESS_EVENTS): the harness cannot "
        "tell how much work was redone",
    )


def _detects_notice(shared: CheckResult, seen: Seen) -> CheckResult:
    within = float(shared.params.get("within", 0.0))
    if seen.reported:
        return _with(shared, ("target.events", "lifecycle"))
    violations = []
    judged = 0
    for notice, instance in _interruptions(seen.view):
        judged += 1
        asked = [
            e
            for e in seen.view.by(instance.id, "imds.request")
            if e.seq > notice.issued.seq
            and e.data.get("status") == 200
            and str(e.data.get("path", "")).rstrip("/") in NOTICE_PATHS
        ]
        if not asked or asked[0].t - notice.issued.t > within:
            late = (
                f"first read it {format_duration(asked[0].t - notice.issued.t)} after"
                if asked
                else "never read it from the metadata service"
            )
            violations.append(
                Violation.citing(
                    f"{instance.id} {late} notice {notice.id} was issued at "
                    f"t={format_duration(notice.issued.t)} (within {format_duration(within)} "
                    "required)",
                    [notice.issued, *asked[:1], instance.ended],
                )
            )
    return _fresh(
        "detects_notice",
        violations,
        ("imds.requests", "lifecycle"),
        f"{judged} notice(s), judged by the metadata requests the fake served",
        "" if judged else "no interruption notice reached a running process",
        params={"within": within},
    )


def _no_leaked_uploads(shared: CheckResult, seen: Seen) -> CheckResult:
    started = any(e.data.get("op") == "s3.create_multipart" for e in seen.view.storage_ops())
    return _with(
        shared,
        ("s3.ops", "storage.snapshot"),
        "" if started or seen.snapshot.uploads else "no multipart upload was started",
    )


def _fenced(shared: CheckResult, seen: Seen) -> CheckResult:
    overlapped = any(
        later.start < (earlier.end if earlier.ended else float("inf"))
        for earlier, later in zip(seen.view.instances, seen.view.instances[1:], strict=False)
    )
    return _with(
        shared,
        ("s3.ops", "lifecycle"),
        "" if overlapped else "no two incarnations ran at the same time",
    )


def _completes(shared: CheckResult, seen: Seen) -> CheckResult:
    return _with(shared, ("lifecycle", "storage.snapshot", "golden"))


Rule = Callable[[CheckResult, Seen], CheckResult]
_RULES: dict[str, Rule] = {
    "saved_before_deadline": _saved_before_deadline,
    "exactly_once": _exactly_once,
    "resume_correct": _resume_correct,
    "durable": _durable,
    "lost_work": _lost_work,
    "detects_notice": _detects_notice,
    "no_leaked_uploads": _no_leaked_uploads,
    "fenced": _fenced,
    "completes": _completes,
}
