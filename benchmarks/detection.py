"""How fast the reference runtime, run as a process target, reacts to a notice, and what the
process tier itself costs per scenario.

Prints, for the reference runtime (``harness runtime run``) as a command target:

- AWS: the time from the notice to its first checkpoint event (``checkpoint.started`` of the
  emergency save), as a ratio to its poll interval (a poller sees a notice within one interval);
- GCP: the absolute latency of the hanging GET on ``instance/preempted`` (from the notice to the
  fake metadata server's answer), floor 50 ms;
- the harness's own overhead per process scenario: a run of a command that exits at once, i.e.
  starting and stopping moto, Redis, the watchdog, the metadata server and both proxies, the
  process itself, the snapshot and the checks; floor 1.5 s.

    python benchmarks/detection.py            # 5 AWS runs, 3 GCP runs, 5 empty runs
    python benchmarks/detection.py --runs 2

Exits 1 if a floor is missed. Real processes, real time: about a minute and a half.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import textwrap
import time
from pathlib import Path

from harness.history import Event, History
from harness.process.runner import run_process_scenario
from harness.scenario import load_text
from harness.scenario.model import Scenario

POLL_INTERVAL = 0.5
GCP_FLOOR = 0.050
OVERHEAD_FLOOR = 1.5
HERE = Path(__file__).parent

REFERENCE = """
description: detection benchmark ({cloud})
target:
  command: [python, -m, harness.cli, runtime, run, --quiet]
  ready: {{event: job.started}}
job: {{items: 40, seconds_per_item: 100ms, checkpoint_every: 10s, state_size: 64KiB,
      runtime: {{poll_interval: {poll}s, safety_margin: 500ms}}}}
env: {{cloud: {cloud}, replacement: {{delay: 500ms}}, budget: 60s}}
timeline:
  - at: {at}s
    notice: {notice}
expect: [completes]
"""

EMPTY = """
description: overhead benchmark
target: {command: [sh, -c, "exit 0"]}
env: {budget: 30s}
expect: [completes]
"""


def _scenario(text: str) -> Scenario:
    (loaded,) = load_text(textwrap.dedent(text))
    return loaded.scenario


def _after(history: History, start: Event, kind: str, **data: object) -> Event | None:
    return next(
        (
            e
            for e in history
            if e.seq > start.seq
            and e.kind == kind
            and all(str(e.data.get(k, "")).startswith(str(v)) for k, v in data.items())
        ),
        None,
    )


def _run(text: str) -> History:
    result = run_process_scenario(_scenario(text), base_dir=HERE)
    if result.error is not None:
        raise SystemExit(f"benchmark run failed: {result.error}")
    return result.history


def aws_ratios(runs: int) -> list[float]:
    ratios = []
    for index in range(runs):
        at = 1.0 + index * POLL_INTERVAL / runs  # notices at every phase of the poll cycle
        history = _run(
            REFERENCE.format(
                cloud="aws", poll=POLL_INTERVAL, at=at, notice="{action: terminate, lead: 4s}"
            )
        )
        issued = next(e for e in history if e.kind == "notice.issued")
        saving = _after(history, issued, "checkpoint.started", reason="notice")
        if saving is None:
            raise SystemExit("the reference runtime made no emergency checkpoint")
        ratios.append((saving.t - issued.t) / POLL_INTERVAL)
    return ratios


def gcp_latencies(runs: int) -> list[float]:
    latencies = []
    for index in range(runs):
        history = _run(
            REFERENCE.format(
                cloud="gcp",
                poll=POLL_INTERVAL,
                at=1.0 + index * 0.1,
                notice="{kind: preemption, lead: 4s}",
            )
        )
        issued = next(e for e in history if e.kind == "notice.issued")
        answered = _after(
            history, issued, "imds.request", path="/computeMetadata/v1/instance/preempted"
        )
        if answered is None:
            raise SystemExit("the hanging GET was never answered")
        latencies.append(answered.t - issued.t)
    return latencies


def overheads(runs: int) -> list[float]:
    run_process_scenario(_scenario(EMPTY), base_dir=HERE)  # the golden, cached for the runs
    found = []
    for _ in range(runs):
        started = time.perf_counter()
        result = run_process_scenario(_scenario(EMPTY), base_dir=HERE)
        found.append(time.perf_counter() - started)
        if result.status != "passed":
            raise SystemExit(f"the empty run did not pass: {result.error or result.status}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (1-20)")
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 20:
        parser.error("--runs must be between 1 and 20")
    ratios = aws_ratios(args.runs)
    latencies = gcp_latencies(max(1, args.runs * 3 // 5))
    costs = overheads(args.runs)
    print(
        f"aws notice -> first checkpoint event: {statistics.median(ratios):.2f} x poll interval "
        f"(median; min {min(ratios):.2f}, max {max(ratios):.2f}; poll {POLL_INTERVAL:g}s, "
        f"{len(ratios)} runs)"
    )
    median_ms, max_ms = statistics.median(latencies) * 1000, max(latencies) * 1000
    print(
        f"gcp hanging GET answered after the notice: median {median_ms:.1f} ms, "
        f"max {max_ms:.1f} ms (floor {GCP_FLOOR * 1000:.0f} ms, {len(latencies)} runs)"
    )
    print(
        f"harness overhead per process scenario: median {statistics.median(costs):.2f} s, "
        f"max {max(costs):.2f} s (floor {OVERHEAD_FLOOR:g} s, {len(costs)} runs)"
    )
    missed = max(latencies) > GCP_FLOOR or statistics.median(costs) > OVERHEAD_FLOOR
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
