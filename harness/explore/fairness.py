"""Which of the conditional checks a generated schedule may fairly be judged by.

The invariants (:data:`harness.explore.strategies.INVARIANTS`) hold whatever happens. Three
checks hold only when the schedule left the target the means to keep them:

- ``saved_before_deadline``: every interruption notice gave time to notice it and to upload the
  state twice over the slowest S3 link of the schedule (its own bandwidth and every
  ``bandwidth`` fault), and no other fault (storage errors, metadata service, clock, process)
  struck in or just before its window, unless it began once a prompt saver was done: a link
  slow enough, or S3 trouble late enough, that only a saver that waited misses the deadline
  is judged, not excused;
- ``detects_notice``: every interruption notice lasted longer than a poll interval plus a
  request, the metadata service and the clock were sound around it, and nothing else ended the
  instance before it could poll;
- ``lost_work``: no instance ran on beside its replacement and no checkpoint was silently
  corrupted or forgotten (a Redis restart); the bound is a checkpoint interval plus two saves
  plus the time every fault of the schedule lasted.

A generated schedule's times depend on ``on:`` triggers, so fairness is decided from the run's
history (when each entry fired and each notice came), never guessed from the schedule alone.
Checks are pure functions of the history, so the reproduction written with the fair checks only
fails the same way when replayed. A false alarm against a correct target is the worst outcome of
an exploration, so every rule errs on the side of judging less.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.checks.view import HistoryView, Instance, Notice
from harness.history import History, Kind
from harness.runtime.config import RuntimeConfig
from harness.runtime.job import JobSpec
from harness.scenario.model import Scenario, TimelineEntry
from harness.units import format_duration, parse_duration

CONDITIONAL = ("saved_before_deadline", "detects_notice", "lost_work")

#: Slack on top of every modelled duration: scheduling, retries, the calendar's rounding.
SLACK = 10.0
#: How long after its boot an instance may take to listen for webhook notices.
WEBHOOK_WARMUP = 5.0
#: How long a fault that ended just before a notice may still hold the target back (the
#: runtime's longest retry backoff).
AFTERMATH = 30.0


@dataclass(frozen=True)
class Window:
    """When one timeline entry disturbed the world: from its firing to its end (inf: until the
    end of the run, or an effect that lasts, such as a corrupted object or a skewed clock)."""

    action: str
    start: float
    end: float

    def overlaps(self, low: float, high: float) -> bool:
        return self.start <= high and self.end >= low


@dataclass(frozen=True)
class Budget:
    """What the schedule's environment and job allow: times to notice and to save."""

    config: RuntimeConfig
    save: float  # the state uploaded at the slowest S3 bandwidth of the run
    checkpoint_every: float

    @classmethod
    def of(cls, scenario: Scenario) -> Budget:
        job = JobSpec.from_mapping(scenario.job)
        config = RuntimeConfig.from_mapping(job.extra.get("runtime"))
        s3_faults = [e.s3 for e in scenario.timeline if e.s3 is not None]
        slowest = min([scenario.env.s3.upload] + [f.bandwidth for f in s3_faults if f.bandwidth])
        # Every latency fault at once (they add up where they overlap), on each of two requests.
        latency = scenario.env.s3.latency + sum(f.latency for f in s3_faults if f.latency)
        save = job.state_size / slowest + config.safety_margin + 2 * latency
        return cls(config=config, save=save, checkpoint_every=job.checkpoint_every)

    def detect(self, kind: str) -> float:
        """How long a correct target may take to see a notice of ``kind``: a poll interval and
        a request; AWS Auto Scaling's lifecycle state and scheduled events are slow paths,
        polled every ``maintenance_interval`` (a scheduled event is acted on only
        ``maintenance_lead`` before it, by design, so it is never judged by detects_notice)."""
        config = self.config
        interval = config.maintenance_interval if kind in _SLOW_KINDS else config.poll_interval
        return interval + config.http_timeout + 2.0

    def within(self, kinds: Iterable[str]) -> float:
        """``detects_notice``'s bound for a schedule whose notices are of ``kinds``."""
        return math.ceil(max((self.detect(kind) for kind in kinds), default=0.0) + SLACK)


#: Kinds the reference polls on its slow path (every ``maintenance_interval``).
_SLOW_KINDS = ("asg-termination", "scheduled-event")


def candidates(scenario: Scenario) -> list[Any]:
    """The conditional checks with the parameters this schedule's environment calls for
    (``lost_work``'s bound counts the faults of the whole timeline)."""
    budget = Budget.of(scenario)
    cloud = scenario.env.cloud
    kinds = {e.notice.resolved_kind(cloud) for e in scenario.timeline if e.notice is not None}
    at_most = math.ceil(
        budget.checkpoint_every
        + 2 * budget.save
        + budget.detect("")
        + 6 * SLACK
        + _fault_time(scenario)
    )
    return [
        "saved_before_deadline",
        {"detects_notice": {"within": format_duration(budget.within(kinds | {""}))}},
        {"lost_work": {"at_most": format_duration(at_most)}},
    ]


def fair_checks(scenario: Scenario, history: History) -> frozenset[str]:
    """The names in :data:`CONDITIONAL` that ``scenario``'s run may be judged by."""
    view = HistoryView(history)
    windows = list(_windows(scenario, view))
    budget = Budget.of(scenario)
    interrupting = [
        (notice, instance)
        for notice in view.notices
        if not notice.advisory
        for instance in view.notice_targets(notice)
        if instance.alive_during(notice.issued)
    ]
    within = _within(scenario)
    fair = set()
    if all(_saveable(notice, instance, windows, budget) for notice, instance in interrupting):
        fair.add("saved_before_deadline")
    if not _crowded(interrupting, within) and all(
        _detectable(notice, instance, windows, budget, within) for notice, instance in interrupting
    ):
        fair.add("detects_notice")
    if not any(w.action in _LOST_FOR_GOOD for w in windows):
        fair.add("lost_work")
    return frozenset(fair)


#: Faults after which even a correct target may redo unbounded work: a zombie instance working
#: beside its replacement, a checkpoint silently corrupted, the Redis pointer forgotten.
_LOST_FOR_GOOD = ("overlap", "s3.corrupt", "redis.restart")


def _within(scenario: Scenario) -> float:
    """The ``within`` :func:`candidates` gave ``detects_notice`` (seconds)."""
    for raw in candidates(scenario):
        if isinstance(raw, dict) and "detects_notice" in raw:
            return parse_duration(raw["detects_notice"]["within"])
    raise AssertionError("detects_notice is always a candidate")


def _saveable(notice: Notice, instance: Instance, windows: list[Window], budget: Budget) -> bool:
    if _before_receiver(notice, instance):
        return False
    lead = notice.deadline - notice.issued.t
    detect = budget.detect(notice.kind)
    if notice.kind == "scheduled-event":  # acted on maintenance_lead before it comes
        detect += budget.config.maintenance_lead
    if lead < detect + 2 * budget.save + SLACK:
        return False  # the save may be queued behind a periodic one: two uploads
    low = notice.issued.t - AFTERMATH - budget.save
    prompt = notice.issued.t + detect + 2 * budget.save + SLACK  # a prompt saver is done by then
    disturbed = any(w.overlaps(low, notice.deadline) and not _spared(w, prompt) for w in windows)
    return not disturbed and _lives_to_deadline(notice, instance)


#: Faults that only slow the S3 link: :class:`Budget` already counts them in the time a save
#: takes, so a notice they overlap is still judged by ``saved_before_deadline``.
SLOW_LINK = ("s3.bandwidth",)
#: Faults that hold saving back while they last but undo nothing already saved (unlike a
#: corruption, which damages a saved checkpoint, or a Redis restart, which forgets it).
HOLD_BACK = (
    "s3.error",
    "s3.outage",
    "s3.latency",
    "s3.bandwidth",
    "redis.down",
    "redis.latency",
    "disk.full",
    "disk.bandwidth",
    "disk.latency",
)


def _spared(window: Window, prompt: float) -> bool:
    """A fault a notice is still judged under: a slow link (counted in the save's time), or
    storage trouble that begins only once a saver that acted on the notice at once was done
    (``prompt``): it holds back only a saver that waited."""
    return window.action in SLOW_LINK or (window.action in HOLD_BACK and window.start >= prompt)


def _detectable(
    notice: Notice, instance: Instance, windows: list[Window], budget: Budget, within: float
) -> bool:
    if notice.kind == "scheduled-event" or _before_receiver(notice, instance):
        return False
    if budget.detect(notice.kind) + SLACK > within:
        return False  # a kind the bound was not made for (the replacement's cloud)
    seen_by = notice.issued.t + within
    killed_early = instance.end < seen_by and not _left(instance)
    if notice.deadline < seen_by or killed_early:
        return False
    return not any(w.overlaps(notice.issued.t - AFTERMATH, seen_by) for w in windows)


def _crowded(interrupting: list[tuple[Notice, Instance]], within: float) -> bool:
    """Two notices to one instance within ``within`` of each other: a sighting names no notice,
    so the first sighting after one may be the other's, and a target already acting on the more
    urgent one need not report the milder one (left unjudged rather than risk a false alarm)."""
    issued: dict[str, list[float]] = {}
    for notice, instance in interrupting:
        issued.setdefault(instance.id, []).append(notice.issued.t)
    return any(
        later - earlier <= within
        for times in issued.values()
        for earlier, later in zip(sorted(times), sorted(times)[1:], strict=False)
    )


def _before_receiver(notice: Notice, instance: Instance) -> bool:
    """A webhook notice sent as the instance boots reaches no receiver: nobody listens yet."""
    webhook = notice.issued.data.get("cloud") == "webhook"
    return webhook and notice.issued.t < instance.start + WEBHOOK_WARMUP


def _lives_to_deadline(notice: Notice, instance: Instance) -> bool:
    """The instance met its deadline, or left before it; nothing else killed it first."""
    return _left(instance) or instance.end >= notice.deadline - 1.0


def _left(instance: Instance) -> bool:
    """Still running at the end of the run, or it exited on its own (not killed)."""
    return instance.ended is None or instance.ended.kind == Kind.INSTANCE_EXITED


def _windows(scenario: Scenario, view: HistoryView) -> Iterable[Window]:
    """The disturbance of every non-notice entry that fired."""
    for fired in view.of_kind("timeline.fired"):
        entry = scenario.timeline[int(fired.data["entry"])]
        if entry.notice is not None:
            continue
        yield Window(_name(entry), fired.t, fired.t + _lasting(entry))


def _name(entry: TimelineEntry) -> str:
    action = entry.action_name
    fields: Mapping[str, Any] = entry.action.model_dump(exclude_defaults=True, by_alias=False)
    kind = next((k for k in fields if k not in ("for_", "ops", "count", "path")), "")
    return f"{action}.{kind}" if kind and action in ("s3", "redis", "disk", "imds") else action


def _lasting(entry: TimelineEntry) -> float:
    """Seconds an entry's effect lasts from its firing: a kill is over at once; a crash waits
    for its step, and a fault without ``for`` lasts to the end of the run."""
    if entry.kill is not None:
        return 0.0
    duration = getattr(entry.action, "for_", None)
    return float(duration) if duration is not None and entry.crash is None else math.inf


def _fault_time(scenario: Scenario) -> float:
    """Seconds the timeline's faults may hold saving back, summed (for ``lost_work``)."""
    total = 0.0
    for entry in scenario.timeline:
        if entry.notice is not None or entry.kill is not None or entry.crash is not None:
            continue
        duration = getattr(entry.action, "for_", None)
        count = getattr(entry.action, "count", None)
        total += float(duration) if duration is not None else AFTERMATH * (count or 1)
    return total
