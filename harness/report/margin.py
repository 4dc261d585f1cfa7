"""How much notice a job needs: the boundary where ``saved_before_deadline`` starts failing.

For one scenario, one parameter is varied (the notice's lead by default; or the S3 upload
bandwidth, the state size, an IMDS outage's length) and, for each seed, bisected between a value
where the check holds and one where it fails. The per-seed boundaries make a distribution; its
percentile (p99 by default) is the answer, compared with each cloud's notice.

Bisection assumes the check fails on one side of a boundary and holds on the other for a given
seed; the plot shows every seed's boundary, so a non-monotone job shows up as a spread.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from harness.checks.spec import CheckSpec
from harness.scenario.model import DEFAULT_LEAD, Scenario, TimelineEntry
from harness.sim.moto_patches import full_stack
from harness.sim.runner import run_scenario
from harness.units import (
    UnitError,
    format_duration,
    parse_bandwidth,
    parse_duration,
    parse_size,
)

CHECK = "saved_before_deadline"
Direction = Literal["higher", "lower"]


class MarginError(ValueError):
    """The search cannot run on this scenario or with these settings; the message says why."""


@dataclass(frozen=True)
class Knob:
    """A parameter the search varies, and which way is safer."""

    name: str
    what: str
    #: ``higher``: more of it helps (lead, bandwidth); ``lower``: less helps (state, outage).
    safer: Direction
    low: float
    high: float
    tolerance: float
    #: Bisect in log space (sizes, bandwidths), where ``tolerance`` is relative.
    log: bool
    format: Callable[[float], str]
    apply: Callable[[Scenario, float], Scenario]
    #: Reads a bound given on the command line (``90s``, ``64MiB``, ``50MB/s``).
    parse: Callable[[str], float] = parse_duration

    def bounded(self, low: str | None, high: str | None) -> Knob:
        """This knob searched between other bounds; MarginError if they make no range."""
        try:
            lo = self.parse(low) if low is not None else self.low
            hi = self.parse(high) if high is not None else self.high
        except UnitError as error:
            raise MarginError(f"bad bound for {self.name}: {error}") from None
        if not 0 <= lo < hi or (self.log and lo <= 0):
            raise MarginError(
                f"the {self.name} range must go up: --low {self.format(lo)} is not below "
                f"--high {self.format(hi)}" + (" (and above 0)" if self.log else "")
            )
        return dataclasses.replace(self, low=lo, high=hi)

    @property
    def safe_end(self) -> float:
        return self.high if self.safer == "higher" else self.low

    @property
    def unsafe_end(self) -> float:
        return self.low if self.safer == "higher" else self.high

    def close(self, a: float, b: float) -> bool:
        if self.log:
            return max(a, b) <= min(a, b) * (1 + self.tolerance)
        return abs(a - b) <= self.tolerance

    def middle(self, a: float, b: float) -> float:
        return math.sqrt(a * b) if self.log else (a + b) / 2

    def step_unsafe(self, value: float) -> float:
        """``value`` moved by the tolerance towards the unsafe end (kept in range)."""
        towards_high = self.safer == "lower"
        if self.log:
            moved = value * (1 + self.tolerance) if towards_high else value / (1 + self.tolerance)
        else:
            moved = value + self.tolerance if towards_high else value - self.tolerance
        return min(max(moved, self.low), self.high)


def _duration(seconds: float) -> str:
    return format_duration(round(seconds, 1))


def _size(value: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.0f}B"


def _bandwidth(value: float) -> str:
    for unit, scale in (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.0f}B/s"


def _with_entries(
    scenario: Scenario,
    pick: Callable[[TimelineEntry], bool],
    change: Callable[[TimelineEntry], TimelineEntry],
) -> Scenario:
    timeline = tuple(change(e) if pick(e) else e for e in scenario.timeline)
    return scenario.model_copy(update={"timeline": timeline})


def _interrupting(scenario: Scenario) -> Callable[[TimelineEntry], bool]:
    cloud = scenario.env.cloud
    return lambda e: e.notice is not None and e.notice.ends_instance(cloud)


def _set_lead(scenario: Scenario, lead: float) -> Scenario:
    def change(entry: TimelineEntry) -> TimelineEntry:
        assert entry.notice is not None
        return entry.model_copy(update={"notice": entry.notice.model_copy(update={"lead": lead})})

    return _with_entries(scenario, _interrupting(scenario), change)


def _set_bandwidth(scenario: Scenario, bandwidth: float) -> Scenario:
    env = scenario.env
    s3 = env.s3.model_copy(update={"upload": bandwidth})
    return scenario.model_copy(update={"env": env.model_copy(update={"s3": s3})})


def _set_state_size(scenario: Scenario, size: float) -> Scenario:
    return scenario.model_copy(update={"job": {**scenario.job, "state_size": int(size)}})


def _set_outage(scenario: Scenario, seconds: float) -> Scenario:
    def change(entry: TimelineEntry) -> TimelineEntry:
        assert entry.imds is not None
        return entry.model_copy(update={"imds": entry.imds.model_copy(update={"for_": seconds})})

    return _with_entries(scenario, lambda e: e.imds is not None, change)


KNOBS = ("lead", "bandwidth", "state-size", "imds-outage")


def knob_for(name: str, scenario: Scenario) -> Knob:
    """The knob called ``name``, checked against what ``scenario`` holds."""
    if name == "lead":
        if not any(_interrupting(scenario)(e) for e in scenario.timeline):
            raise MarginError(
                "the scenario has no notice that ends an instance; add one to its timeline, "
                "e.g. `- at: 4m` / `  notice: {action: terminate}`"
            )
        return Knob("lead", "notice (lead)", "higher", 1.0, 600.0, 1.0, False, _duration, _set_lead)
    if name == "bandwidth":
        return Knob(
            "bandwidth", "S3 upload bandwidth", "higher", 1e5, 1e10, 0.02, True, _bandwidth,
            _set_bandwidth, parse_bandwidth,
        )  # fmt: skip
    if name == "state-size":
        return Knob(
            "state-size", "checkpoint state size", "lower", 2**20, 2**40, 0.02, True, _size,
            _set_state_size, lambda text: float(parse_size(text)),
        )  # fmt: skip
    if name == "imds-outage":
        if not any(e.imds is not None for e in scenario.timeline):
            raise MarginError(
                "the scenario has no imds fault to lengthen; add one, e.g. "
                "`- at: 3m` / `  imds: {status: 500, path: /latest/meta-data/spot/*, for: 1m}`"
            )
        return Knob(
            "imds-outage", "IMDS outage", "lower", 0.0, 3600.0, 1.0, False, _duration, _set_outage
        )
    raise MarginError(f"unknown parameter {name!r}; expected one of: {', '.join(KNOBS)}")


@dataclass(frozen=True)
class Probe:
    seed: int
    value: float
    held: bool
    #: The check found nothing to judge (no interruption with work to save): not a failure.
    unverified: bool = False


@dataclass(frozen=True)
class SeedBoundary:
    seed: int
    #: The least safe value at which the check still held (within the tolerance); None when it
    #: failed even at the safe end of the range.
    holds_at: float | None
    #: Whether it held at the unsafe end too (the range never reached the boundary).
    always: bool = False


@dataclass
class MarginResult:
    knob: Knob
    percentile: float
    boundaries: list[SeedBoundary] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    cloud: str = "aws"
    grace: float = DEFAULT_LEAD["kubernetes"]

    @property
    def runs(self) -> int:
        return len(self.probes)

    @property
    def never(self) -> list[int]:
        """Seeds for which the check failed even at the safe end of the range."""
        return [b.seed for b in self.boundaries if b.holds_at is None]

    @property
    def required(self) -> float | None:
        """The value needed at the percentile over seeds (None: some seed never held)."""
        if self.never:
            return None
        values = sorted(b.holds_at for b in self.boundaries if b.holds_at is not None)
        if self.knob.safer == "higher":
            return nearest_rank(values, self.percentile)
        return nearest_rank(values, 100 - self.percentile)

    def fraction_held(self, value: float) -> float:
        """Share of seeds whose check held at ``value`` (from their boundaries)."""
        if not self.boundaries:
            return 0.0
        held = 0
        for b in self.boundaries:
            if b.holds_at is None:
                continue
            if (value >= b.holds_at) if self.knob.safer == "higher" else (value <= b.holds_at):
                held += 1
        return held / len(self.boundaries)


def nearest_rank(values: Sequence[float], percentile: float) -> float:
    """The nearest-rank percentile of sorted ``values``."""
    rank = max(1, math.ceil(percentile / 100 * len(values)))
    return values[min(rank, len(values)) - 1]


def search(
    scenario: Scenario,
    knob: Knob,
    seeds: Sequence[int],
    *,
    percentile: float = 99.0,
    on_probe: Callable[[Probe], None] = lambda probe: None,
) -> MarginResult:
    """Bisect ``knob`` for every seed; ``on_probe`` is told of each run (for progress)."""
    judged = scenario.model_copy(update={"expect": (CheckSpec(name=CHECK),)})
    result = MarginResult(knob, percentile, cloud=scenario.env.cloud, grace=_grace(scenario))

    def probe(seed: int, value: float) -> bool:
        outcome = run_scenario(knob.apply(judged, value), seed=seed)
        if outcome.error is not None:
            raise MarginError(
                f"the run with {knob.name} {knob.format(value)} failed: {outcome.error}"
            )
        status = outcome.checks[0].result.status
        found = Probe(seed, value, status != "failed", status == "unverified")
        result.probes.append(found)
        on_probe(found)
        return found.held

    hint: float | None = None
    # About half the probes of a bisection fail, and each failing run would be confirmed on the
    # full S3 stack: running them all there is cheaper than the shortcut plus confirmations.
    with full_stack():
        for seed in seeds:
            found = _bisect(knob, seed, probe, hint)
            result.boundaries.append(found)
            if found.holds_at is not None and not found.always:
                hint = found.holds_at
    return result


def _bisect(
    knob: Knob, seed: int, probe: Callable[[int, float], bool], hint: float | None = None
) -> SeedBoundary:
    """The boundary for one seed. Seeds rarely move it much, so a ``hint`` (the previous
    seed's boundary) is tried first: two runs confirm it, else the bisection goes on from the
    side it is on."""
    safe, unsafe = knob.safe_end, knob.unsafe_end
    if hint is not None:
        if probe(seed, hint):
            beyond = knob.step_unsafe(hint)
            if not probe(seed, beyond):
                return SeedBoundary(seed, hint)
            safe = beyond
        else:
            unsafe = hint
    if safe == knob.safe_end and not probe(seed, safe):
        return SeedBoundary(seed, None)
    if unsafe == knob.unsafe_end and probe(seed, unsafe):
        return SeedBoundary(seed, unsafe, always=True)
    while not knob.close(safe, unsafe):
        middle = knob.middle(safe, unsafe)
        if probe(seed, middle):
            safe = middle
        else:
            unsafe = middle
    return SeedBoundary(seed, safe)


def most_probes(knob: Knob) -> int:
    """An upper bound on the runs per seed, for progress bars."""
    if knob.log:
        steps = math.log(math.log(knob.high / knob.low) / math.log(1 + knob.tolerance), 2)
    else:
        steps = math.log((knob.high - knob.low) / knob.tolerance, 2)
    return 2 + math.ceil(steps)


def _grace(scenario: Scenario) -> float:
    """The Kubernetes grace period the scenario uses, else the default 30 s."""
    for entry in scenario.timeline:
        notice = entry.notice
        if notice is not None and notice.resolved_cloud(scenario.env.cloud) == "kubernetes":
            return notice.resolved_lead(scenario.env.cloud)
    return DEFAULT_LEAD["kubernetes"]


#: Each cloud's notice: (name, seconds or None for the grace period, what it is).
CLOUD_NOTICES: tuple[tuple[str, float | None, str], ...] = (
    ("AWS", 120.0, "the spot interruption notice"),
    ("GCP", 30.0, "the preemption notice"),
    ("Azure", 30.0, "the minimum NotBefore of a Preempt event"),
    ("Kubernetes", None, "terminationGracePeriodSeconds"),
)


def cloud_notices(result: MarginResult) -> list[tuple[str, float, str]]:
    return [(name, result.grace if s is None else s, what) for name, s, what in CLOUD_NOTICES]


def verdict_lines(result: MarginResult) -> list[str]:
    """The answer, as printed by ``harness margin``."""
    knob, over = result.knob, f"p{result.percentile:g} over {len(result.boundaries)} seeds"
    if result.never:
        seeds = ", ".join(map(str, result.never[:8]))
        return [
            f"{CHECK} fails even with {knob.format(knob.safe_end)} of {knob.what} "
            f"(seeds {seeds}): the job has no safe {knob.name} in the searched range"
        ]
    required = result.required
    assert required is not None
    if knob.name != "lead":
        bound = "at least" if knob.safer == "higher" else "at most"
        return [f"{CHECK} holds with {bound} {knob.format(required)} of {knob.what} at {over}"]
    lines = [f"needs {knob.format(required)} of notice at {over}: " + ", ".join(
        f"{'safe' if seconds >= required else 'not'} on {name} ({knob.format(seconds)})"
        for name, seconds, _ in cloud_notices(result)
    )]  # fmt: skip
    for name, seconds, what in cloud_notices(result):
        spare = seconds - required
        tail = f"{knob.format(spare)} to spare" if spare >= 0 else f"{knob.format(-spare)} short"
        lines.append(f"  {name:<11} {knob.format(seconds):>6}  {what}: {tail}")
    lines.append(
        f"  (measured with this scenario's {result.cloud} notice path; "
        "another cloud's handler may see its notice sooner or later)"
    )
    return lines


def fraction_points(result: MarginResult) -> list[tuple[float, float]]:
    """(value, share of seeds that hold) at each boundary, for the plot."""
    values = sorted({b.holds_at for b in result.boundaries if b.holds_at is not None})
    edges = [result.knob.low, *values, result.knob.high]
    return [(v, result.fraction_held(v)) for v in edges]


def summary_mapping(result: MarginResult) -> Mapping[str, object]:
    """The result as JSON-able data."""
    return {
        "parameter": result.knob.name,
        "percentile": result.percentile,
        "required": result.required,
        "seeds": [
            {"seed": b.seed, "holds_at": b.holds_at, "always": b.always} for b in result.boundaries
        ],
        "runs": result.runs,
    }


def margin_plot(result: MarginResult) -> str:
    """SVG: the share of seeds for which the check holds, against the searched parameter, with
    each cloud's notice marked (for the lead)."""
    from harness.report.svg import Guide, Series, line_plot

    knob = result.knob
    held = [b.holds_at for b in result.boundaries if b.holds_at is not None]
    top = max(held, default=knob.high)
    if knob.name == "lead":
        span = (0.0, max(130.0, top * 1.5))
        # Clouds with the same notice share one line (GCP, Azure and Kubernetes: 30 s).
        names: dict[float, list[str]] = {}
        for name, seconds, _ in cloud_notices(result):
            names.setdefault(seconds, []).append(name)
        guides = [
            Guide(seconds, f"{'/'.join(clouds)} {knob.format(seconds)}", "#4c78a8")
            for seconds, clouds in names.items()
        ]
    else:
        span, guides = (0.0, top * 2 if top > 0 else knob.high), []
    if result.required is not None:
        guides.append(Guide(result.required, f"p{result.percentile:g}", "#d62728"))
    values = sorted({span[0], *held, span[1]})
    points = [(v, 100 * result.fraction_held(v)) for v in values if span[0] <= v <= span[1]]
    return line_plot(
        [Series(f"seeds for which {CHECK} holds", "#333", points, steps=True, markers=True)],
        title=f"{CHECK} against {knob.what}, {len(result.boundaries)} seeds",
        x_label=knob.what,
        y_label="seeds that hold (%)",
        x_format=knob.format,
        y_format=lambda y: f"{y:.0f}%",
        guides=guides,
        x_range=span,
        y_range=(0.0, 105.0),
    )
