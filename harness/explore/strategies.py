"""Hypothesis strategies for interruption schedules: notices of every cloud mixed with storage,
metadata-service (network), clock and process faults.

Strategies build plain YAML-shaped data (what a scenario file holds), so a generated case is
written out as it was generated and validated by the same loader as hand-written files. Choices
are listed simplest first, so shrinking moves towards fewer entries, earlier times, milder faults.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from hypothesis import strategies as st

from harness.scenario.model import CLOUDS, Cloud

Data = dict[str, Any]

#: Checks every schedule must leave intact on a correct target, whatever the faults: nothing
#: lost that was durable, nothing written twice, exact resumes, fencing, completion.
INVARIANTS: tuple[Any, ...] = (
    "exactly_once",
    "resume_correct",
    "durable",
    "no_leaked_uploads",
    "fenced",
    {"completes": {"within": "6h"}},
)

#: A small job: a few simulated minutes, large enough for several checkpoints and outputs.
JOB: Data = {
    "items": 480,
    "seconds_per_item": "1s",
    "checkpoint_every": "90s",
    "state_size": "64MiB",
    "output_every": 40,
}

_EVENTS = ("checkpoint.upload_started", "checkpoint.durable", "job.resumed", "output.committed")
_CRASH_STEPS = (
    "s3.put_object",
    "s3.complete_multipart",
    "local.rename",
    "local.write",
    "redis.write",
    "s3.upload_part",
    "s3.create_multipart",
    "local.fsync_dir",
)


def _seconds(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda s: f"{s}s")


@cache
def triggers() -> st.SearchStrategy[Data]:
    """``at:`` a time in the first ten minutes, or ``on:`` the nth of a target event."""
    at = _seconds(0, 600).map(lambda t: {"at": t})
    on = st.fixed_dictionaries(
        {
            "event": st.sampled_from(_EVENTS),
            "nth": st.integers(1, 3),
            "delay": _seconds(0, 30),
        }
    ).map(lambda trigger: {"on": trigger})
    return st.one_of(at, on)


@cache
def notices(cloud: Cloud) -> st.SearchStrategy[Data]:
    """A notice in the dialect of ``cloud`` with a lead the cloud can give."""
    if cloud == "aws":
        return st.fixed_dictionaries(
            {
                "action": st.sampled_from(("terminate", "stop", "hibernate")),
                "lead": _seconds(0, 180),
            },
            optional={"rebalance_before": _seconds(10, 300)},
        ).map(_aws_notice)
    if cloud == "gcp":
        return st.just({"kind": "preemption"})
    if cloud == "azure":
        return st.fixed_dictionaries(
            {"kind": st.sampled_from(("preempt", "terminate")), "lead": _seconds(30, 300)}
        )
    if cloud == "kubernetes":
        return st.fixed_dictionaries({"kind": st.just("eviction"), "grace": _seconds(1, 90)})
    return st.fixed_dictionaries({"kind": st.just("interruption"), "lead": _seconds(10, 180)})


def _aws_notice(notice: Data) -> Data:
    if notice["action"] == "hibernate":  # hibernation starts at once
        notice = {**notice, "lead": "0s"}
        notice.pop("rebalance_before", None)
    return notice


def _action(name: str, fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Data]:
    """``{name: {field: drawn value, ...}}``."""
    return st.fixed_dictionaries({name: st.fixed_dictionaries(fields)})


@cache
def faults() -> st.SearchStrategy[Data]:
    """One non-notice action: storage, metadata service, clock or process."""
    duration = _seconds(5, 240)
    s3_errors = st.sampled_from(("SlowDown", "InternalError", "ServiceUnavailable"))
    return st.one_of(
        _action("s3", {"error": s3_errors, "count": st.integers(1, 6)}),
        _action("s3", {"outage": st.just(True), "for": duration}),
        _action(
            "s3", {"bandwidth": st.sampled_from(("20MB/s", "50MB/s", "200MB/s")), "for": duration}
        ),
        st.just({"s3": {"corrupt": "checkpoints/*.ckpt"}}),
        _action("imds", {"status": st.sampled_from((500, 503, 401)), "for": duration}),
        _action("imds", {"timeout": st.just(True), "for": _seconds(5, 60)}),
        _action("imds", {"throttle": st.integers(1, 5)}),
        _action("redis", {"down": st.just(True), "for": duration}),
        st.just({"redis": {"restart": True}}),
        _action("redis", {"latency": _seconds(1, 3)}),
        _action("disk", {"full": st.just(True), "for": duration}),
        _action("disk", {"bandwidth": st.sampled_from(("50MB/s", "200MB/s")), "for": duration}),
        _action("clock", {"skew": _seconds(0, 120)}),
        _action("crash", {"at": st.sampled_from(_CRASH_STEPS), "nth": st.integers(1, 3)}),
        st.fixed_dictionaries({"kill": st.sampled_from(({}, {"local_disk": "kept"}))}),
        _action("overlap", {"for": _seconds(10, 180)}),
    )


@st.composite
def timeline_entries(draw: st.DrawFn, cloud: Cloud) -> Data:
    trigger = draw(triggers())
    action = draw(st.one_of(notices(cloud).map(lambda n: {"notice": n}), faults()))
    return {**trigger, **action}


@st.composite
def schedules(
    draw: st.DrawFn,
    target: Any = "reference",
    clouds: tuple[Cloud, ...] = CLOUDS,
    max_entries: int = 4,
) -> Data:
    """A whole scenario (YAML-shaped): cloud, a replacement cloud, 1..max_entries entries."""
    cloud = draw(st.sampled_from(clouds))
    env: Data = {"cloud": cloud, "replacement": {"delay": draw(_seconds(5, 60))}}
    if cloud == "aws":
        env["imdsv2"] = draw(st.sampled_from(("required", "optional")))
    if draw(st.booleans()):
        env["replacement"]["cloud"] = draw(st.sampled_from(clouds))
    entries = draw(st.lists(timeline_entries(cloud), min_size=1, max_size=max_entries))
    return {
        "description": "A generated interruption schedule (smallest failing case found).",
        "seed": draw(st.integers(0, 1000)),
        "target": target,
        "job": dict(JOB),
        "env": env,
        "timeline": entries,
        "expect": expectations(env, entries),
    }


#: Below this lead a 64 MiB state may not reach S3 in time, whatever the target does.
SAVE_LEAD = 30


def expectations(env: Data, entries: list[Data]) -> list[Any]:
    """The invariants, plus ``saved_before_deadline`` when the schedule leaves room to save:
    only notices with at least :data:`SAVE_LEAD` seconds of lead, on one cloud, no faults."""
    leads = [_lead(entry["notice"]) for entry in entries if "notice" in entry]
    roomy = len(leads) == len(entries) and all(lead >= SAVE_LEAD for lead in leads)
    if roomy and "cloud" not in env["replacement"]:
        return ["saved_before_deadline", *INVARIANTS]
    return list(INVARIANTS)


def _lead(notice: Data) -> int:
    if notice.get("action") == "hibernate":
        return SAVE_LEAD  # judged as "no time to save": the check skips it
    raw = notice.get("lead", notice.get("grace", "30s"))
    return int(str(raw).removesuffix("s"))
