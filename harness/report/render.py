"""The one renderer of a run for people: the text timeline, check verdicts and replay line.

``harness run`` failures, pytest failures and the HTML report all read a run through here, from
its journal record (:func:`result_json`), so the three say the same thing in the same words. A
failure is rendered as a short timeline of the run (the events that matter for interruptions,
plus every event a violation cites, marked ``>``), the broken checks with their status, evidence
and violations, and a ``harness run FILE --seed N`` line that replays the run exactly.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.history import Event, Kind
from harness.sim.runner import RunResult
from harness.units import format_duration

#: Event kinds shown in a failure timeline even when no violation cites them.
NOTABLE = frozenset(
    {
        Kind.RUN_STARTED,
        Kind.RUN_FINISHED,
        Kind.INSTANCE_STARTED,
        Kind.INSTANCE_KILLED,
        Kind.INSTANCE_EXITED,
        Kind.NOTICE_ISSUED,
        Kind.NOTICE_DEADLINE,
        Kind.NOTICE_SEEN,
        Kind.FAULT_STARTED,
        Kind.FAULT_ENDED,
        Kind.RESUMED,
        Kind.CHECKPOINT_STARTED,
        Kind.CHECKPOINT_DURABLE,
        Kind.CHECKPOINT_FAILED,
        Kind.JOB_COMPLETED,
        Kind.JOB_STOPPED,
        Kind.MONITOR_BLIND,
        "instance.superseded",
        "timeline.skipped",
        "signal.sent",
        "imds.request",
    }
)
#: Data keys worth showing per event, in order; the rest is left out of the one-line summary.
_SHOWN_KEYS = (
    "incarnation",
    "cloud",
    "action",
    "notice_kind",
    "reason",
    "deadline",
    "position",
    "tier",
    "checkpoint_id",
    "fault",
    "op",
    "path",
    "status",
    "key",
    "clean",
    "error",
)
MAX_TIMELINE_LINES = 40
#: Verdicts in the order reports list them: what needs attention first.
STATUS_ORDER = ("error", "failed", "xpassed", "unverified", "xfailed", "passed")


def replay_command(file: str | Path | None, seed: int) -> str:
    """The command that replays a run: ``harness run FILE --seed N``."""
    target = shlex.quote(str(file)) if file is not None else "SCENARIO.yaml"
    return f"harness run {target} --seed {seed}"


def describe_event(event: Event, short_ids: Mapping[str, str]) -> str:
    """One event on one line: clock, instance, kind and the data worth showing."""
    who = short_ids.get(event.instance or "", "-")
    return f"{clock_text(event.t)}  {who:<4} {event.kind:<26} {event_details(event)}".rstrip()


def event_details(event: Event) -> str:
    """The data of ``event`` worth showing, as ``key=value`` pairs."""
    data = event.data
    shown = []
    for key in _SHOWN_KEYS:
        value = data.get(key)
        if value is None or value == "":
            continue
        if key == "deadline" and isinstance(value, int | float):
            value = format_duration(float(value))
        if key == "key" and data.get("checkpoint_id"):
            continue  # the checkpoint id already names it
        shown.append(f"{key}={value}")
    return " ".join(shown)


def clock_text(seconds: float) -> str:
    """Run time as ``h:mm:ss.mmm``, fixed width, so a timeline's columns line up."""
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours}:{minutes:02d}:{rest / 1000:06.3f}"


def short_ids(events: Iterable[Event]) -> dict[str, str]:
    """``i-0abc...`` -> ``#1``, ``#2`` in order of boot, so lines stay short."""
    ids: dict[str, str] = {}
    for event in events:
        if event.kind == Kind.INSTANCE_STARTED and event.instance and event.instance not in ids:
            ids[event.instance] = f"#{event.data.get('incarnation', len(ids) + 1)}"
    return ids


def timeline_lines(history: Iterable[Event], cited: Iterable[int] = ()) -> list[str]:
    """The run as a short timeline; events in ``cited`` (seq numbers) are marked ``>``."""
    events = list(history)
    marked = set(cited)
    short = short_ids(events)
    chosen = [e for e in events if e.kind in NOTABLE or e.seq in marked]
    if len(chosen) > MAX_TIMELINE_LINES:
        keep = {e.seq for e in chosen if e.seq in marked or e.kind != Kind.CHECKPOINT_DURABLE}
        chosen = [e for e in chosen if e.seq in keep]
    lines: list[str] = []
    skipped = 0
    for event in chosen:
        if len(lines) >= MAX_TIMELINE_LINES and event.seq not in marked:
            skipped += 1
            continue
        prefix = ">" if event.seq in marked else " "
        lines.append(f"{prefix} {describe_event(event, short)}")
    if skipped:
        lines.append(f"  ... {skipped} more events (the journal has them all)")
    return lines


# -- reading a journal record ---------------------------------------------------------------------
# Journals written before checks had a status (or evidence) still render: every field is read
# with a default.


def record_events(record: Mapping[str, Any]) -> list[Event]:
    """The history of a journal record as events."""
    return [Event.from_json(raw) for raw in record.get("history") or ()]


def check_status(check: Mapping[str, Any]) -> str:
    """``passed``, ``failed`` or ``unverified`` (older journals only say passed or not)."""
    status = check.get("status")
    if status in ("passed", "failed", "unverified"):
        return str(status)
    return "passed" if check.get("passed") else "failed"


def check_label(check: Mapping[str, Any]) -> str:
    return str(check.get("check") or check.get("name") or "?")


def check_as_expected(check: Mapping[str, Any]) -> bool:
    if "as_expected" in check:
        return bool(check["as_expected"])
    return check_status(check) == ("failed" if check.get("fails") else "passed")


def failed_checks(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The checks of a record that did not come out as the scenario expects."""
    return [c for c in record.get("checks") or () if not check_as_expected(c)]


def cited_seqs(checks: Iterable[Mapping[str, Any]]) -> set[int]:
    """Seq numbers of every event the violations of ``checks`` cite."""
    return {
        int(ref["seq"])
        for check in checks
        for violation in check.get("violations") or ()
        for ref in violation.get("events") or ()
    }


def check_verdict(check: Mapping[str, Any]) -> str:
    """What a check's outcome means for the run, in a few words."""
    status = check_status(check)
    if status == "unverified":
        return "unverified"
    if check.get("fails"):
        return "known bad, failed as expected" if status == "failed" else "known bad, but passed"
    return "passed" if status == "passed" else "broke"


def check_lines(check: Mapping[str, Any]) -> list[str]:
    """A check that did not come out as expected: verdict, evidence, violations and events."""
    label = check_label(check)
    status = check_status(check)
    evidence = ", ".join(check.get("evidence") or ()) or "not recorded"
    if status == "unverified":
        return [
            f"check {label} unverified: {check.get('reason') or 'no evidence'}",
            f"  evidence: {evidence}",
        ]
    if check.get("fails") and status == "passed":
        return [f"check {label} passed, but the scenario says it fails: {check['fails']}"]
    summary = check.get("summary") or ""
    lines = [f"check {label} broke" + (f": {summary}" if summary else "")]
    lines.append(f"  evidence: {evidence}")
    violations: Sequence[Mapping[str, Any]] = check.get("violations") or ()
    for violation in violations[:5]:
        lines.append(f"  - {violation.get('message', '')}")
        refs = violation.get("events") or ()
        if refs:
            cited = ", ".join(
                f"#{e['seq']} {e['kind']} at {clock_text(float(e['t']))}" for e in refs[:6]
            )
            lines.append(f"    events: {cited}")
    if len(violations) > 5:
        lines.append(f"  ... {len(violations) - 5} more violations")
    return lines


def render_record(record: Mapping[str, Any]) -> str:
    """The failure report of one journal record, plain text."""
    status = str(record.get("status", "?"))
    head = f"{status.upper()}: {record.get('description', '')} (seed {record.get('seed', '?')})"
    lines = [head]
    if record.get("error"):
        lines.append(f"the run could not be judged: {record['error']}")
    broken = failed_checks(record)
    for check in broken:
        lines.extend(check_lines(check))
    events = record_events(record)
    if events:
        simulated = format_duration(round(float(record.get("sim_seconds", 0.0)), 3))
        lines.append(f"timeline (ended: {record.get('end_reason', '?')}, {simulated} simulated):")
        lines.extend("  " + line for line in timeline_lines(events, cited_seqs(broken)))
    replay = record.get("replay") or replay_command(record.get("file"), int(record.get("seed", 0)))
    lines.append(f"replay: {replay}")
    return "\n".join(lines)


def render_failure(result: RunResult, file: str | Path | None = None) -> str:
    """The whole failure report of one run, plain text."""
    return render_record(result_json(result, file, name=""))


def result_json(result: RunResult, file: str | Path | None, name: str) -> dict[str, Any]:
    """One run as the journal records it (the history in full, the verdict, the replay, and the
    job and environment it ran with, for the cost model)."""
    scenario = result.scenario
    return {
        "name": name,
        "file": str(file) if file is not None else None,
        **result.to_json(),
        "replay": replay_command(file, result.seed),
        "cloud": scenario.env.cloud,
        "job": dict(scenario.job),
        "history": [event.to_json() for event in result.history],
    }
