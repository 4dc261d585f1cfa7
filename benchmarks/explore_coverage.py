"""Does steering ``harness explore`` by coverage of the target pay for itself?

For each seed, explores the same budget of schedules against the reference runtime three ways
and prints, per way, the distinct arcs and the lines of ``harness/runtime`` the runs reached and
the CPU time per schedule:

- ``none``: no coverage recorded (what ``harness explore`` does without --stats or
  --steer-coverage): the cost baseline;
- ``record``: coverage recorded, the search steered as without it (the same schedules as
  ``none``): what the search reaches unsteered, and the tracer's cost;
- ``steer``: coverage recorded and fed to Hypothesis' ``target()`` (``--steer-coverage``).

It calls :func:`harness.explore.search.explore` with its defaults, which bound no schedule's
simulated time (``harness explore`` skips schedules longer than ``--max-sim-time``, 7 days),
so ``harness explore --seed N --stats`` explores other schedules and prints other counts.

Run: ``.venv/bin/python benchmarks/explore_coverage.py [--examples 200] [--seeds 1 2 3]
[--modes none record steer]``. Each (seed, way) runs in a fresh process, so no run profits from
another's imports or caches; CPU time, not wall time, is quoted, as other processes share the
machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODES = ("none", "record", "steer")


def one(examples: int, seed: int, mode: str) -> dict[str, float]:
    """Explore once in this process; the figures as a JSON-able mapping."""
    from harness.explore.coverage import campaign_for
    from harness.explore.search import explore

    campaign = campaign_for("reference", (), "off" if mode == "none" else mode)
    with tempfile.TemporaryDirectory() as out:
        started = time.process_time()
        report = explore(examples=examples, seed=seed, out=Path(out), coverage=campaign)
        cpu = time.process_time() - started
    figures = {"runs": report.examples, "cpu_ms": 1000 * cpu / report.examples}
    if campaign is not None:
        stats = campaign.stats()["files"].values()
        figures["arcs"] = campaign.arcs
        figures["lines"] = sum(len(f["lines"]) for f in stats)
        figures["executable"] = sum(f["executable"] for f in stats)
        figures["arcs_at_half"] = max(
            (count for run, count in campaign.progress if run <= examples // 2), default=0
        )
    figures["failed"] = report.failure is not None
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200, help="schedules per exploration")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--one", nargs=2, metavar=("SEED", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.examples, int(args.one[0]), args.one[1])))
        return 0
    print(f"explore_coverage: reference runtime, {args.examples} schedules per exploration")
    print(f"{'seed':>4} {'way':7} {'arcs':>6} {'at half':>8} {'lines':>12} {'CPU ms/schedule':>16}")
    for seed in args.seeds:
        for mode in args.modes:
            command = [sys.executable, __file__, "--examples", str(args.examples)]
            done = subprocess.run(
                [*command, "--one", str(seed), mode], capture_output=True, text=True, check=True
            )
            f = json.loads(done.stdout.splitlines()[-1])
            arcs = f"{f['arcs']:6}" if "arcs" in f else f"{'-':>6}"
            half = f"{f['arcs_at_half']:8}" if "arcs" in f else f"{'-':>8}"
            lines = f"{f['lines']} of {f['executable']}" if "arcs" in f else "-"
            failed = "  (found a failing schedule)" if f["failed"] else ""
            print(f"{seed:4} {mode:7} {arcs} {half} {lines:>12} {f['cpu_ms']:16.0f}{failed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
