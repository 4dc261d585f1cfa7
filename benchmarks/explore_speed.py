"""How many schedules ``harness explore`` tries a second, on one core, with the full checks.

Runs :func:`harness.explore.search.explore` (what ``harness explore`` runs) against the reference
runtime with a fixed seed, so every run of this script explores the same schedules, and prints:

- explored schedules per second: examples / (wall time of the search), and the same on CPU time;
  the search includes Hypothesis drawing each schedule, its validation as a scenario file, the
  simulated run and the checks every explored schedule is judged by;
- how long the process took to import the command (``harness explore`` pays it once per call).

Run: ``.venv/bin/python benchmarks/explore_speed.py [--examples 50] [--seed 1] [--full-stack]
[--steer]`` (``--steer``: the steered search, ``harness explore --steer``, whose schedules differ).
The script re-executes itself under ``taskset -c 0`` when taskset exists (as ``sim_speed.py``
does), so the figure is for one core; the search's first schedule also builds the job's golden
run, which the figure includes, as the command pays it too. ``--full-stack`` sends every S3
call through moto's HTTP layer, for the figure without the simulation's S3 shortcut.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FLOOR = 50.0  # explored schedules per second on one core
sys.path.insert(0, str(REPO))

from benchmarks.sim_speed import (  # noqa: E402
    add_full_stack_option,
    apply_full_stack_option,
    pin_to_one_core,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=50, help="schedules to explore")
    parser.add_argument("--seed", type=int, default=1, help="seed of the search")
    parser.add_argument(
        "--steer", action="store_true", help="with Hypothesis' targeted phase (explore --steer)"
    )
    add_full_stack_option(parser)
    args = parser.parse_args()
    stack = apply_full_stack_option(args)
    note = pin_to_one_core()
    print(f"explore_speed: {note}; python {sys.version.split()[0]}; {stack}")

    started = time.perf_counter()
    from harness.commands import explore as _command  # noqa: F401  (the CLI's imports)
    from harness.explore.search import explore

    imported = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as out:
        started, started_cpu = time.perf_counter(), time.process_time()
        report = explore(examples=args.examples, seed=args.seed, out=Path(out), steer=args.steer)
        wall = time.perf_counter() - started
        cpu = time.process_time() - started_cpu
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(report.statuses.items()))
    found = f"; failure found: {report.failure.path.name}" if report.failure else ""
    rate = report.examples / wall
    met = "met" if rate >= FLOOR else "NOT MET"
    print(
        f"explored schedules per second (one core, full checks, seed {args.seed}): "
        f"{rate:.1f} wall ({report.examples / cpu:.1f} on CPU time; floor {FLOOR:.0f}: {met}): "
        f"{report.examples} schedules in {wall:.2f} s wall, {cpu:.2f} s CPU ({statuses}{found})"
    )
    print(f"importing the explore command took {imported:.2f} s more (once per invocation)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
