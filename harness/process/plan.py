"""What a process run will cost in real time, and what it cannot do: checked before it starts.

A process run happens in real time, so a scenario written for simulation (2-minute leads, a
30-second replacement delay, twenty notices) would take an hour. :func:`process_problems` refuses
such a scenario with the estimate and a hint, and refuses the timeline actions the harness cannot
inject into a real process (local disk faults, clock skew, a crash at a local file step), naming
the entry.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from harness.process import timescale
from harness.process.netns import why_not
from harness.scenario.model import DEFAULT_LEAD, Scenario, TimelineEntry
from harness.units import format_duration

#: Default ceiling of one process run's real time (``--max-real-time``).
DEFAULT_MAX_REAL_TIME = 300.0
#: What a job is assumed to take when nothing says so (the run ends when it completes).
JOB_ALLOWANCE = 10.0


@dataclass(frozen=True)
class Estimate:
    """Real seconds a scenario's timeline needs, and the largest contributions."""

    seconds: float
    parts: tuple[str, ...]


def estimate(scenario: Scenario) -> Estimate:
    """The real time the timeline needs at least: every notice's lead and replacement delay,
    after the latest ``at:``, plus the job's own run time when it says how long an item takes."""
    env = scenario.env
    ending = [e for e in scenario.timeline if _ends_instance(e, scenario)]
    leads = sum(_lead(e, scenario) for e in ending)
    delays = env.replacement.delay * len(ending)
    latest_at = max((e.at for e in scenario.timeline if e.at is not None), default=0.0)
    job = _job_seconds(scenario)
    total = latest_at + leads + delays + job
    parts = []
    if ending:
        parts.append(f"{len(ending)} interruption(s): leads {format_duration(leads)}")
        parts.append(f"replacement delay {format_duration(env.replacement.delay)} x {len(ending)}")
    if latest_at:
        parts.append(f"latest at: {format_duration(latest_at)}")
    if job:
        parts.append(f"job {format_duration(job)}")
    return Estimate(min(total, env.budget), tuple(parts))


def process_problems(
    scenario: Scenario, max_real_time: float, time_scale: float = 1.0
) -> list[str]:
    """Why this scenario cannot run as a process target (empty when it can)."""
    problems = []
    if scenario.env.redis.server == "real" and shutil.which("redis-server") is None:
        problems.append(
            "env.redis.server: real needs redis-server on PATH (Debian: apt-get install "
            "redis-server)"
        )
    if timescale.why_not(time_scale):
        problems.append(timescale.why_not(time_scale))
    if scenario.target.network == "namespace" and why_not():
        problems.append(f"target.network: {why_not()}")
    for index, entry in enumerate(scenario.timeline):
        reason = _unsupported(entry)
        if reason:
            problems.append(f"timeline[{index}] ({entry.action_name}): {reason}")
    cost = estimate(scenario)
    if cost.seconds / time_scale > max_real_time:
        scaled = f" at --time-scale {time_scale:g}" if time_scale != 1 else ""
        problems.append(
            f"this scenario needs about {format_duration(cost.seconds / time_scale)} of real "
            f"time{scaled} "
            f"({'; '.join(cost.parts)}), more than the limit of {format_duration(max_real_time)}:"
            " use shorter leads (`lead: 5s`), a short `env.replacement.delay` (`1s`), fewer "
            "notices, a smaller job, --time-scale N (libfaketime), or raise the limit with "
            "--max-real-time"
        )
    return problems


def _unsupported(entry: TimelineEntry) -> str:
    if entry.disk is not None:
        return (
            "local disk faults need a hook in the process's file I/O, which a command target "
            "does not have; test them in simulation"
        )
    if entry.clock is not None:
        return "clock skew of a real process is not injected; test it in simulation"
    if entry.crash is not None:
        return _crash_problem(entry.crash.at)
    if entry.overlap is not None:
        return "overlapping incarnations are not played with real processes yet"
    scoped = entry.s3 if entry.s3 is not None else entry.redis
    if scoped is not None and scoped.incarnation is not None:
        return (
            "a fault of one incarnation (`incarnation:`, a partition of one host) is not played "
            "with real processes yet; drop `incarnation` or test it in simulation"
        )
    return ""


def _ends_instance(entry: TimelineEntry, scenario: Scenario) -> bool:
    if entry.kill is not None or entry.crash is not None:
        return True
    notice = entry.notice
    return notice is not None and notice.ends_instance(scenario.env.cloud)


def _lead(entry: TimelineEntry, scenario: Scenario) -> float:
    notice = entry.notice
    if notice is None:
        return 0.0
    lead = notice.resolved_lead(scenario.env.cloud)
    cloud = notice.resolved_cloud(scenario.env.cloud)
    if notice.lead is None and cloud not in DEFAULT_LEAD:
        return 0.0
    return lead + (notice.rebalance_before or 0.0)


def _job_seconds(scenario: Scenario) -> float:
    """``items`` x ``seconds_per_item`` when the job says so, else an allowance."""
    job = scenario.job
    try:
        items = float(job.get("items", 0))
        per_item = job.get("seconds_per_item")
        if per_item is None:
            return JOB_ALLOWANCE
        from harness.units import parse_duration

        return items * parse_duration(per_item)
    except (TypeError, ValueError):
        return JOB_ALLOWANCE


def _crash_problem(step: str | None) -> str:
    if step is None:
        return "`crash: {ordinal: N}` numbers the steps of a simulated run; use `at:` and `nth:`"
    if not step.startswith(("s3.", "redis.")):
        return (
            f"`crash: {{at: {step}}}`: the harness sees a process's S3 requests and "
            "Redis commands, not its file operations; crash at an s3.* or redis.* step"
        )
    return ""
