"""Human-readable failure reports: what happened when, which check broke, the proving events.

A failure is rendered as a short timeline of the run (the events that matter for interruptions,
plus every event a violation cites, marked ``>``), the broken checks with their violations, and
a ``harness run FILE --seed N`` line that replays the run exactly.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.history import Event, History, Kind
from harness.sim.runner import CheckOutcome, RunResult
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


def replay_command(file: str | Path | None, seed: int) -> str:
    """The command that replays a run: ``harness run FILE --seed N``."""
    target = shlex.quote(str(file)) if file is not None else "SCENARIO.yaml"
    return f"harness run {target} --seed {seed}"


def describe_event(event: Event, short_ids: dict[str, str]) -> str:
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
    who = short_ids.get(event.instance or "", "-")
    return f"{clock_text(event.t)}  {who:<4} {event.kind:<26} {' '.join(shown)}".rstrip()


def clock_text(seconds: float) -> str:
    """Run time as ``h:mm:ss.mmm``, fixed width, so a timeline's columns line up."""
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours}:{minutes:02d}:{rest / 1000:06.3f}"


def _short_ids(history: History) -> dict[str, str]:
    """``i-0abc...`` -> ``#1``, ``#2`` in order of boot, so lines stay short."""
    ids: dict[str, str] = {}
    for event in history.of_kind(Kind.INSTANCE_STARTED):
        if event.instance and event.instance not in ids:
            ids[event.instance] = f"#{event.data.get('incarnation', len(ids) + 1)}"
    return ids


def timeline_lines(history: History, cited: Iterable[int] = ()) -> list[str]:
    """The run as a short timeline; events in ``cited`` (seq numbers) are marked ``>``."""
    marked = set(cited)
    short = _short_ids(history)
    chosen = [e for e in history if e.kind in NOTABLE or e.seq in marked]
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


def _check_lines(outcome: CheckOutcome) -> list[str]:
    result = outcome.result
    if result.unverified:
        return [f"check {outcome.spec.label} unverified: {result.reason}"]
    if outcome.expected_to_fail and result.passed:
        return [
            f"check {outcome.spec.label} passed, but the scenario says it fails: "
            f"{outcome.spec.fails}"
        ]
    lines = [
        f"check {outcome.spec.label} broke" + (f": {result.summary}" if result.summary else "")
    ]
    for violation in result.violations[:5]:
        lines.append(f"  - {violation.message}")
        if violation.events:
            refs = ", ".join(
                f"#{e.seq} {e.kind} at {clock_text(e.t)}" for e in violation.events[:6]
            )
            lines.append(f"    events: {refs}")
    if len(result.violations) > 5:
        lines.append(f"  ... {len(result.violations) - 5} more violations")
    return lines


def render_failure(result: RunResult, file: str | Path | None = None) -> str:
    """The whole failure report of one run, plain text."""
    scenario = result.scenario
    head = f"{result.status.upper()}: {scenario.description} (seed {result.seed})"
    lines = [head]
    if result.error is not None:
        lines.append(f"the run could not be judged: {result.error}")
    cited: set[int] = set()
    for outcome in result.failed_checks:
        lines.extend(_check_lines(outcome))
        for violation in outcome.result.violations:
            cited.update(e.seq for e in violation.events)
    if len(result.history):
        lines.append(
            f"timeline (ended: {result.end_reason}, "
            f"{format_duration(round(result.sim_seconds, 3))} simulated):"
        )
        lines.extend("  " + line for line in timeline_lines(result.history, cited))
    lines.append(f"replay: {replay_command(file, result.seed)}")
    return "\n".join(lines)


def result_json(result: RunResult, file: str | Path | None, name: str) -> dict[str, Any]:
    """One run as the journal records it (the history in full, the verdict, the replay)."""
    return {
        "name": name,
        "file": str(file) if file is not None else None,
        **result.to_json(),
        "replay": replay_command(file, result.seed),
        "history": [event.to_json() for event in result.history],
    }
