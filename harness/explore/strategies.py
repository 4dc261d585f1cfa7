"""Hypothesis strategies for interruption schedules: the environment, the job and a timeline of
notices of every cloud mixed with storage, metadata-service (network), clock and process faults.

Strategies build plain YAML-shaped data (what a scenario file holds), so a generated case is
written out as it was generated and validated by the same loader as hand-written files. Choices
are listed simplest first, so shrinking moves towards fewer entries, earlier times, milder faults,
the default environment.

What a schedule generates, per cloud:

- the environment: S3, disk and Redis speeds, the replacement's delay (and sometimes its cloud),
  IMDSv2 on AWS;
- the job: size, pace, checkpoint interval, state size (the state materialized in bytes for some
  small states), and the reference runtime's own settings a deployment picks (poll interval,
  IMDSv2 token TTL short enough for the run to outlive tokens, Kubernetes grace period);
- a timeline in which about two thirds of the entries are notices of the cloud (AWS spot
  interruptions, rebalance recommendations alone, scheduled events, Auto Scaling terminations;
  GCP preemptions and maintenance events; every Azure event type; webhook notices; Kubernetes
  evictions), the rest faults, and some entries chains: an interruption followed by one or two
  faults that strike while the next instance recovers from it (the checkpoints it is about to
  read damaged, or rolled back to an older one), a host that lingers beside its replacement
  (mostly cut off from Redis or S3 alone: a split brain), notices that land while an output
  write is being retried, and notices while S3 degrades (a slow link, or errors, an outage or
  latency that begin during the lead).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from hypothesis import strategies as st

from harness.checks.protocol import CLOUD_LEAD
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
    # The cloud's protocol rules: each judges only what the run holds.
    "token_renewed",
    "works_through_advisory",
    "approved_after_save",
    "client_timeout",
    "polls_within_lead",
    "true_deadline",
)

#: The job when nothing else is drawn: a few simulated minutes, several checkpoints and outputs.
JOB: Data = {
    "items": 480,
    "seconds_per_item": "1s",
    "checkpoint_every": "90s",
    "state_size": "64MiB",
    "output_every": 40,
}

#: Target events an ``on:`` trigger counts (the recovery ones let a fault strike a restart).
_EVENTS = (
    "checkpoint.upload_started",
    "checkpoint.durable",
    "job.resumed",
    "output.committed",
    "checkpoint.started",
    "notice.seen",
    "metadata.committed",
)
_CRASH_STEPS = (
    "s3.put_object",
    "s3.complete_multipart",
    "local.rename",
    "local.write",
    "redis.write",
    "s3.upload_part",
    "s3.create_multipart",
    "local.fsync_dir",
    "s3.get_object",
    "redis.read",
    "local.read",
    "s3.list_objects",
)
#: Steps a restarting instance takes while it recovers (a crash there is a crash in recovery).
_RECOVERY_STEPS = ("s3.get_object", "redis.read", "local.read", "s3.list_objects", "redis.write")


# Strategies are built once and reused (``@cache``): Hypothesis validates each new strategy
# object on its first draw, which costs more than the draw; a reused one draws the same values.
@cache
def _seconds(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda s: f"{s}s")


# -- environment and job ------------------------------------------------------------------------


@cache
@st.composite
def environments(draw: st.DrawFn, cloud: Cloud, clouds: tuple[Cloud, ...] = CLOUDS) -> Data:
    """``env:`` for ``cloud``: link speeds, the replacement, IMDSv2 on AWS."""
    env: Data = {"cloud": cloud, "replacement": {"delay": draw(_seconds(5, 120))}}
    if cloud == "aws":
        env["imdsv2"] = draw(st.sampled_from(("required", "optional")))
    if draw(st.booleans()):
        env["replacement"]["cloud"] = draw(st.sampled_from(clouds))
    if draw(st.booleans()):
        env["s3"] = {
            "upload": draw(st.sampled_from(("100MB/s", "20MB/s", "50MB/s", "400MB/s"))),
            "download": draw(st.sampled_from(("200MB/s", "30MB/s", "800MB/s"))),
        }
    if draw(st.booleans()):
        env["disk"] = {"write": draw(st.sampled_from(("1GB/s", "100MB/s", "3GB/s")))}
    if draw(st.booleans()):
        env["redis"] = {"latency": draw(st.sampled_from(("1ms", "20ms", "200ms")))}
    return env


@cache
@st.composite
def jobs(draw: st.DrawFn, cloud: Cloud) -> Data:
    """``job:``: its size and pace, and the runtime settings (``job.runtime``) a deployment of the
    reference would choose; other targets ignore what they do not read."""
    job: Data = dict(JOB)
    if draw(st.booleans()):
        job.update(
            items=draw(st.integers(240, 720)),
            seconds_per_item=draw(st.sampled_from(("1s", "500ms", "2s"))),
            # Large jobs checkpoint every few minutes: a notice then rarely meets a periodic save.
            checkpoint_every=draw(st.one_of(_seconds(30, 240), st.sampled_from(("5m", "10m")))),
            output_every=draw(st.integers(20, 90)),
        )
    size = draw(st.sampled_from(("64MiB", "8MiB", "12MiB", "160MiB", "1GiB")))
    job["state_size"] = size
    # Real bytes only for small states (12 MiB at most: every copy of a materialized state is
    # hashed by the job, by S3 and by the end-of-run snapshot, most of a schedule's CPU).
    if size in ("8MiB", "12MiB") and draw(st.booleans()):
        job["materialize"] = True
    runtime: Data = {}
    if draw(st.booleans()):
        runtime["poll_interval"] = draw(st.sampled_from(("5s", "1s", "2s", "10s")))
    if cloud == "aws" and draw(st.booleans()):
        runtime["token_ttl"] = draw(st.sampled_from(("60s", "120s", "300s", "21600s")))
    if size in ("8MiB", "12MiB") and draw(st.booleans()):
        # Multipart on a state this small: every part, complete and abort path is taken.
        runtime.update(multipart_threshold="6MiB", part_size="5MiB")
    if runtime:
        job["runtime"] = runtime
    return job


def kubernetes_grace(job: Data) -> str | None:
    """The pod's grace period, as the runtime was told it (``job.runtime.grace_period``)."""
    grace = (job.get("runtime") or {}).get("grace_period")
    return str(grace) if grace is not None else None


# -- timeline -----------------------------------------------------------------------------------


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
def notices(cloud: Cloud, grace: str | None = None) -> st.SearchStrategy[Data]:
    """A notice in the dialect of ``cloud`` with a lead the cloud can give (on Kubernetes, the
    pod's ``grace`` when the schedule fixed one)."""
    if cloud == "aws":
        return _aws_notices()
    if cloud == "gcp":
        preemption = st.fixed_dictionaries(
            {"kind": st.just("preemption")},
            optional={
                "action": st.sampled_from(("terminate", "stop")),
                "lead": st.sampled_from(("30s", "120s", "60s")),
            },
        )
        maintenance = st.just({"kind": "maintenance"})
        return st.one_of(preemption, maintenance)
    if cloud == "azure":
        kinds = ("preempt", "terminate", "freeze", "reboot", "redeploy")
        return st.fixed_dictionaries({"kind": st.sampled_from(kinds), "lead": _seconds(30, 300)})
    if cloud == "kubernetes":
        fixed = st.just(grace) if grace is not None else _seconds(1, 90)
        return st.fixed_dictionaries({"kind": st.just("eviction"), "grace": fixed})
    return st.fixed_dictionaries(
        {
            "kind": st.just("interruption"),
            "action": st.sampled_from(("terminate", "stop", "hibernate")),
            "lead": _seconds(10, 180),
        }
    ).map(_no_lead_for_hibernation)


def _aws_notices() -> st.SearchStrategy[Data]:
    spot = st.fixed_dictionaries(
        {
            "action": st.sampled_from(("terminate", "stop", "hibernate")),
            "lead": st.one_of(st.just("120s"), _seconds(0, 180)),
        },
        optional={"rebalance_before": _seconds(10, 300)},
    ).map(_no_lead_for_hibernation)
    return st.one_of(
        spot,
        st.just({"kind": "rebalance"}),  # a recommendation that ends nothing
        st.fixed_dictionaries(
            {
                "kind": st.just("scheduled-event"),
                "action": st.sampled_from(("stop", "terminate")),
                "lead": st.sampled_from(("10m", "8m", "20m")),
            }
        ),
        st.fixed_dictionaries(
            {"kind": st.just("asg-termination"), "lead": st.sampled_from(("120s", "30s", "0s"))}
        ),
    )


def _no_lead_for_hibernation(notice: Data) -> Data:
    if notice.get("action") == "hibernate":  # hibernation starts at once
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
        corruptions(),
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


@cache
def corruptions() -> st.SearchStrategy[Data]:
    """Bit rot in the newest checkpoint, or a rollback: an older checkpoint's whole object (its
    own checksum intact) in the newest one's place."""
    return st.sampled_from(
        (
            {"s3": {"corrupt": "checkpoints/*.ckpt"}},
            {"s3": {"corrupt": "checkpoints/*.ckpt", "damage": "rollback"}},
        )
    )


@cache
def recovery_faults() -> st.SearchStrategy[Data]:
    """A fault that strikes a restarting instance: storage unreachable, or the instance lost
    again (a crash at a recovery step, a host loss) before it is back at work."""
    return st.one_of(
        _action("s3", {"outage": st.just(True), "for": _seconds(10, 180)}),
        _action("redis", {"down": st.just(True), "for": _seconds(5, 120)}),
        st.fixed_dictionaries({"kill": st.sampled_from(({}, {"local_disk": "kept"}))}),
        _action(
            "crash",
            {
                "at": st.sampled_from(_RECOVERY_STEPS),
                "nth": st.integers(1, 2),
                "lose": st.sampled_from(("process", "host")),
            },
        ),
        _action("imds", {"status": st.sampled_from((500, 401)), "for": _seconds(5, 60)}),
        _action("s3", {"error": st.just("SlowDown"), "count": st.integers(1, 6)}),
    )


@cache
@st.composite
def interruptions(draw: st.DrawFn, cloud: Cloud, grace: str | None) -> Data:
    """What ends an instance: a notice of its cloud (mostly), a host loss or a crash."""
    trigger = draw(triggers())
    choice = draw(st.integers(0, 3))
    if choice <= 1:
        return {**trigger, "notice": draw(notices(cloud, grace))}
    if choice == 2:
        return {**trigger, "kill": draw(st.sampled_from(({}, {"local_disk": "kept"})))}
    crash = {"at": draw(st.sampled_from(_CRASH_STEPS)), "nth": draw(st.integers(1, 3))}
    return {**trigger, "crash": crash}


@cache
@st.composite
def chains(draw: st.DrawFn, cloud: Cloud, grace: str | None) -> list[Data]:
    """Two or three faults in a row: an interruption (or the loss of a host that lingers beside
    its replacement), then one or two faults during the next instance's recovery (right after
    it boots, or right after it resumed), each of which may itself end that instance while it
    recovers."""
    if draw(st.booleans()):
        entries = [draw(interruptions(cloud, grace))]
        if draw(st.booleans()):
            # What the replacement reads is damaged (bit rot found on the restore, or a stale
            # replica served after a failover).
            booted = {"event": "instance.started", "incarnation": 2}
            entries.append({"on": booted, **draw(corruptions())})
    else:
        # A host that only seems lost lingers beside its replacement: a zombie writer to fence.
        trigger = draw(triggers())
        overlap = {"at": "0s", "overlap": {"for": draw(_seconds(10, 180))}}
        entries = [overlap, {**trigger, "kill": {}}]
        if draw(st.integers(0, 3)) > 0:
            # Split brain: the host seems lost because it is cut off from the network, from
            # Redis or S3 too, while its replacement reaches both.
            entries.append({**trigger, **draw(partitions())})
    for incarnation in range(2, 2 + draw(st.integers(1, 2))):
        event = draw(st.sampled_from(("instance.started", "job.resumed", "checkpoint.started")))
        on = {"event": event, "incarnation": incarnation, "delay": draw(_seconds(0, 20))}
        fault = draw(_recovery_faults_or_notices(cloud, grace))
        entries.append({"on": on, **fault})
    return entries


@cache
def partitions() -> st.SearchStrategy[Data]:
    """A network partition of the first instance alone (the zombie of an overlap), lasting
    about as long as a zombie lingers (its replacement's boot and the overlap)."""
    lasting = {"for": _seconds(60, 400), "incarnation": st.just(1)}
    redis = _action("redis", {"down": st.just(True), **lasting})
    return st.one_of(redis, redis, _action("s3", {"outage": st.just(True), **lasting}))


@cache
@st.composite
def notices_in_degraded_storage(draw: st.DrawFn, cloud: Cloud, grace: str | None) -> list[Data]:
    """A notice, and S3 degrading during its lead (a capacity event that takes instances also
    congests the zone's links): a slow link from before it, or errors, an outage or added
    latency that begin a while after it. Only a saver that acts at once is sure to fit."""
    at = draw(st.integers(0, 400))
    notice = {"at": f"{at}s", "notice": draw(notices(cloud, grace))}
    if draw(st.booleans()):
        slow = {"bandwidth": draw(st.sampled_from(("5MB/s", "10MB/s", "20MB/s")))}
        start = max(0, at - draw(st.integers(0, 60)))
    else:
        slow = draw(_s3_degradations())
        start = at + draw(st.integers(0, 150))
    degraded = {"at": f"{start}s", "s3": {**slow, "for": draw(_seconds(60, 600))}}
    return [notice, degraded]


@cache
def _s3_degradations() -> st.SearchStrategy[Data]:
    """S3 errors, an outage or added latency (without their start and duration)."""
    return st.one_of(
        st.fixed_dictionaries({"error": st.sampled_from(("SlowDown", "InternalError"))}),
        st.just({"outage": True}),
        st.fixed_dictionaries({"latency": _seconds(5, 60)}),
    )


#: The clouds whose notices a target polls a metadata service for.
POLLED_CLOUDS = frozenset(CLOUD_LEAD)


@cache
@st.composite
def notices_in_degraded_metadata(draw: st.DrawFn, cloud: Cloud, grace: str | None) -> list[Data]:
    """A notice, and the metadata service failing around it (an overloaded or restarting
    service): errors, throttling, slow answers, dropped connections or requests never answered,
    from up to a minute before the notice, on every path or on IMDSv2's token alone. A client
    must tell an error from a notice, renew its token, and give up a request that gets no
    answer in time to see the notice."""
    at = draw(st.integers(0, 400))
    start = max(0, at - draw(st.integers(0, 60)))
    fault: Data = draw(
        st.one_of(
            st.fixed_dictionaries({"status": st.sampled_from((500, 503, 401, 403))}),
            st.fixed_dictionaries({"throttle": st.integers(1, 3)}),
            st.just({"timeout": True}),
            st.just({"reset": True}),
            st.fixed_dictionaries({"latency": _seconds(1, 20)}),
        )
    )
    if cloud == "aws" and draw(st.booleans()):
        fault["path"] = "/latest/api/token"
    failing = {"at": f"{start}s", "imds": {**fault, "for": draw(_seconds(5, 120))}}
    return [failing, {"at": f"{at}s", "notice": draw(notices(cloud, grace))}]


@cache
@st.composite
def notices_in_retries(draw: st.DrawFn, cloud: Cloud, grace: str | None) -> list[Data]:
    """A burst of S3 errors on output writes, and a notice while the write is being retried."""
    at = draw(_seconds(0, 400))
    count = draw(st.integers(2, 6))
    errors = {"at": at, "s3": {"error": "SlowDown", "ops": ["s3.put_object"], "count": count}}
    on = {
        "event": "storage.op",
        "where": {"op": "s3.put_object", "ok": False},
        "nth": draw(st.integers(1, count)),
    }
    return [errors, {"on": on, "notice": draw(notices(cloud, grace))}]


@cache
def _recovery_faults_or_notices(cloud: Cloud, grace: str | None) -> st.SearchStrategy[Data]:
    return st.one_of(recovery_faults(), notices(cloud, grace).map(_as_notice))


def _as_notice(notice: Data) -> Data:
    return {"notice": notice}


@cache
@st.composite
def timeline_entries(draw: st.DrawFn, cloud: Cloud, grace: str | None = None) -> list[Data]:
    """One step of the story, or a short chain of them. A third of the steps are a notice, and
    more come in chains and in degraded storage or metadata service (most entries are notices):
    the choice is weighted, not one branch among a score of equal ones."""
    choice = draw(st.integers(0, 14))
    if choice <= 4:
        return [{**draw(triggers()), "notice": draw(notices(cloud, grace))}]
    if choice <= 8:
        return [{**draw(triggers()), **draw(faults())}]
    if choice <= 10:
        return draw(chains(cloud, grace))
    if choice == 11:
        return draw(notices_in_retries(cloud, grace))
    if choice == 14 and cloud in POLLED_CLOUDS:
        return draw(notices_in_degraded_metadata(cloud, grace))
    return draw(notices_in_degraded_storage(cloud, grace))


@st.composite
def schedules(
    draw: st.DrawFn,
    target: Any = "reference",
    clouds: tuple[Cloud, ...] = CLOUDS,
    max_entries: int = 4,
) -> Data:
    """A whole scenario (YAML-shaped): cloud, environment, job, 1..max_entries entries (a chain
    counts as one step but may add two more), and every check that may be judged on it; which
    of the conditional ones are fair is decided after the run (:mod:`harness.explore.fairness`).
    """
    cloud = draw(st.sampled_from(clouds))
    env = draw(environments(cloud, clouds))
    job = draw(jobs(cloud))
    grace = None
    if cloud == "kubernetes":
        grace = draw(st.sampled_from(("30s", "10s", "60s", "5s")))
        job["runtime"] = {**(job.get("runtime") or {}), "grace_period": grace}
    steps = draw(st.lists(timeline_entries(cloud, grace), min_size=1, max_size=max_entries))
    # A chain adds steps of its own; the schedule still holds at most ``max_entries``.
    entries = [entry for step in steps for entry in step][:max_entries]
    return {
        "description": "A generated interruption schedule (smallest failing case found).",
        "seed": draw(st.integers(0, 1000)),
        "target": target,
        "job": job,
        "env": env,
        "timeline": entries,
        "expect": list(INVARIANTS),
    }
