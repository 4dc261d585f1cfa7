"""The kill rate of the yardstick: how many seeded bugs the harness catches.

For every variant of :data:`harness.examples.yardstick.VARIANTS` (a reference-runtime or
careful-handler copy with one realistic bug), this runs

1. the standard library: every simulation scenario whose target is the reference runtime, with
   the variant as target (careful-handler variants: the scenarios the careful handler plays), and
2. ``harness explore`` (the Python API) with a fixed seed and a budget of examples,

then prints the kill rate (caught by the library, by explore, by either), and per variant the
scenarios and checks that caught it, the examples and seconds to explore's first failure, and
the size of the shrunk schedule (timeline entries / lines of YAML). It first checks that the
reference runtime and the careful handler pass the same library and exploration (a finding
there is a false alarm, printed as such).

Run: ``.venv/bin/python benchmarks/explore.py [--examples 100] [--seed 1]``; ``--variant NAME``
(repeatable) measures only some; ``--no-explore`` / ``--no-library`` leave one half out;
``--steer`` explores with Hypothesis' targeted phase (``harness explore --steer``). The
whole yardstick takes about an hour on a busy 2-core machine (figures: docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.bounds import DEFAULT_MAX_SIM_TIME
from harness.examples.yardstick import VARIANTS, Variant
from harness.examples.yardstick.library import (
    name_of,
    reference_scenarios,
    run_reference,
    run_variant,
    scenarios_for,
)
from harness.explore import explore
from harness.explore.search import explored_status
from harness.scenario.loader import LoadedScenario
from harness.scenario.model import TargetSpec
from harness.sim.runner import RunResult, run_scenario

CAREFUL = "harness.examples.handlers.careful:target"
#: Scenarios named per variant; the rest are counted.
SHOWN = 4


@dataclass
class Found:
    """What explore found against one target."""

    examples: int = 0  # examples run in all (shrinking included)
    first_at: int | None = None  # the example that first failed
    first_seconds: float | None = None
    broken: tuple[str, ...] = ()
    entries: int | None = None  # timeline entries of the shrunk schedule
    lines: int | None = None


@dataclass
class Measured:
    name: str
    library: dict[str, tuple[str, ...]] = field(default_factory=dict)  # scenario -> checks
    library_runs: int = 0
    explored: Found | None = None

    @property
    def by_library(self) -> bool:
        """Some scenario proved a guarantee broken (an ``unverified`` verdict is flagged, not
        counted: the run gave no evidence either way)."""
        return any(checks != ("unverified",) for checks in self.library.values())

    @property
    def by_explore(self) -> bool:
        return self.explored is not None and self.explored.first_at is not None


def broken_names(result: RunResult) -> tuple[str, ...]:
    return tuple(c.spec.name for c in result.broken_checks) or (result.status,)


def library_findings(
    items: list[LoadedScenario], run: Any
) -> tuple[dict[str, tuple[str, ...]], int]:
    """scenario name -> checks broken (or the status: ``unverified``, ``error``) for each
    scenario that did not pass; and the runs."""
    found = {}
    for item in items:
        result: RunResult = run(item.scenario)
        if not result.ok:
            found[name_of(item)] = broken_names(result)
    return found, len(items)


def explore_findings(target: Any, examples: int, seed: int, steer: bool = False) -> Found:
    found = Found()
    started = time.perf_counter()

    def progress(count: int, result: RunResult) -> None:
        found.examples = count
        if found.first_at is None and explored_status(result) not in ("passed", "xfailed"):
            found.first_at = count
            found.first_seconds = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as out:
        report = explore(
            examples=examples,
            seed=seed,
            target=target,
            out=Path(out),
            progress=progress,
            max_sim_time=DEFAULT_MAX_SIM_TIME,
            steer=steer,
        )
        if report.failure is not None:
            text = report.failure.path.read_text(encoding="utf-8")
            found.broken = report.failure.broken
            found.entries = len(yaml.safe_load(text)["timeline"])
            found.lines = len(text.splitlines())
    return found


def measure(variant: Variant, every: list[LoadedScenario], args: argparse.Namespace) -> Measured:
    measured = Measured(variant.name)
    if not args.no_library:
        items = scenarios_for(variant, every)
        measured.library, measured.library_runs = library_findings(
            items, lambda scenario: run_variant(variant, scenario)
        )
    if not args.no_explore:
        measured.explored = explore_findings(
            {"python": variant.target}, args.examples, args.seed, args.steer
        )
    return measured


def false_alarms(every: list[LoadedScenario], args: argparse.Namespace) -> list[str]:
    """Findings against the correct targets: the reference runtime and the careful handler."""
    lines = []
    careful = TargetSpec(python=CAREFUL)
    careful_variant = Variant("careful", "careful", "", "", "", ())
    if not args.no_library:
        found, runs = library_findings(every, run_reference)
        lines.append(_alarm_line("reference runtime, library", found, runs))
        items = scenarios_for(careful_variant, every)

        def as_careful(scenario: Any) -> RunResult:
            expect = tuple(c for c in scenario.expect if c.name != "reference_layout")
            return run_scenario(scenario.model_copy(update={"target": careful, "expect": expect}))

        found, runs = library_findings(items, as_careful)
        lines.append(_alarm_line("careful handler, library", found, runs))
    if not args.no_explore:
        for label, target in (("reference", "reference"), ("careful", {"python": CAREFUL})):
            got = explore_findings(target, args.examples, args.seed, args.steer)
            verdict = (
                f"FALSE ALARM at example {got.first_at}: {', '.join(got.broken)}"
                if got.first_at is not None
                else "no failure"
            )
            lines.append(f"{label}, explore seed {args.seed}: {got.examples} runs, {verdict}")
    return lines


def _alarm_line(label: str, found: dict[str, tuple[str, ...]], runs: int) -> str:
    if not found:
        return f"{label}: {runs} scenarios, all pass"
    shown = "; ".join(f"{name} ({', '.join(checks)})" for name, checks in found.items())
    return f"{label}: {runs} scenarios, FALSE ALARM in {len(found)}: {shown}"


def row(variant: Variant, measured: Measured) -> str:
    caught = list(measured.library.items())
    library = ", ".join(f"{name} [{'+'.join(checks)}]" for name, checks in caught[:SHOWN])
    if len(caught) > SHOWN:
        library += f" and {len(caught) - SHOWN} more"
    if measured.library_runs:
        library = f"{len(caught)}/{measured.library_runs}: {library or '-'}"
    else:
        library = "(not run)"
    explored = measured.explored
    if explored is None:
        found = "(not run)"
    elif explored.first_at is None:
        found = f"not found in {explored.examples}"
    else:
        found = (
            f"#{explored.first_at} in {explored.first_seconds:.1f}s, "
            f"shrunk to {explored.entries} entries / {explored.lines} lines "
            f"[{'+'.join(explored.broken)}]"
        )
    return f"{variant.name} ({variant.base})\n    library: {library}\n    explore: {found}"


def percent(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.0f} %)" if whole else "0/0"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=100, help="explore budget per target")
    parser.add_argument("--seed", type=int, default=1, help="explore seed")
    parser.add_argument("--variant", action="append", default=[], help="only these (repeatable)")
    parser.add_argument("--no-explore", action="store_true", help="library only")
    parser.add_argument("--no-library", action="store_true", help="explore only")
    parser.add_argument("--no-false-alarm-check", action="store_true", help="skip the baseline")
    parser.add_argument("--steer", action="store_true", help="explore with --steer")
    args = parser.parse_args(argv)
    unknown = [name for name in args.variant if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    chosen = [VARIANTS[name] for name in args.variant] or list(VARIANTS.values())
    every = reference_scenarios()
    print(
        f"yardstick: {len(chosen)} variants; explore --seed {args.seed} --examples "
        f"{args.examples}; {len(every)} library scenarios with the reference as target"
    )
    if not args.no_false_alarm_check:
        for line in false_alarms(every, args):
            print(f"baseline  {line}", flush=True)
    results = []
    started = time.perf_counter()
    for variant in chosen:
        measured = measure(variant, every, args)
        results.append(measured)
        print(row(variant, measured), flush=True)
    by_library = sum(m.by_library for m in results)
    by_explore = sum(m.by_explore for m in results)
    either = sum(m.by_library or m.by_explore for m in results)
    print()
    if not args.no_library:
        print(f"kill rate, library:  {percent(by_library, len(results))}")
    if not args.no_explore:
        print(f"kill rate, explore:  {percent(by_explore, len(results))}")
    print(f"kill rate, either:   {percent(either, len(results))}")
    missed = [m.name for m in results if not (m.by_library or m.by_explore)]
    flagged = [m.name for m in results if m.library and not (m.by_library or m.by_explore)]
    print(f"not caught: {', '.join(missed) or 'none'}")
    if flagged:
        print(f"of which only flagged unverified by the library: {', '.join(flagged)}")
    print(f"took {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
