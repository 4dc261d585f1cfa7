"""How fast the simulation tier runs, on one core.

Prints three figures:

1. the median wall time of a standard single-notice AWS scenario (about 30 simulated minutes,
   the reference runtime polling IMDSv2 every 5 s over HTTP, moto S3, fakeredis), floor 100 ms,
   and its median and mean CPU time (the mean carries the garbage collector's rare full passes);
   then (1b) its median CPU time on the full stack and with the shortcuts (S3 in process,
   metadata connections in memory),
   runs interleaved, which outside load skews less than two separate runs of the script;
   (1c) the same with the shortcut, its metadata server over real loopback sockets against
   the in-memory network of ``harness/loopback.py``, runs interleaved;
2. the total wall time of the scenario library (``scenarios/``), one run each;
3. the time compression (simulated seconds per wall second) of a 24-hour churn scenario with a
   terminate notice every 20-60 minutes, floor 5,000x; the checks over its history are timed
   separately and reported beside it.

Run: ``.venv/bin/python benchmarks/sim_speed.py [--runs 15] [--full-stack] [--standard-only]``
(``--standard-only``: figures 1, 1b and 1c, for comparing two versions of the code). The script
re-executes itself under ``taskset -c 0`` when taskset exists, so the figures are for one core;
it says so when it cannot pin itself. Each figure is measured after a warm-up run (imports, the
boto3 client). ``--full-stack`` sends every S3 call through moto's HTTP layer and every
metadata request over real loopback sockets, for the figures without the simulation's
shortcuts.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PINNED_ENV = "SIM_SPEED_PINNED"
SINGLE_FLOOR_MS = 100.0
COMPRESSION_FLOOR = 5000.0

STANDARD = """\
description: Benchmark - one 2-minute AWS notice in a 30-minute job.
seed: 1
target: reference
job: {items: 330, seconds_per_item: 5s, checkpoint_every: 5m, state_size: 64MiB}
env: {cloud: aws, imdsv2: required}
timeline:
  - at: 12m
    notice: {action: terminate, lead: 2m}
expect: [saved_before_deadline, exactly_once, resume_correct, durable]
"""


def pin_to_one_core() -> str:
    """Re-exec under taskset once; returns a note on how the figures were taken."""
    if os.environ.get(PINNED_ENV):
        return "pinned to one core with taskset -c 0"
    taskset = shutil.which("taskset")
    if taskset is None:
        return "NOT pinned (taskset not found): figures may use more than one core"
    os.environ[PINNED_ENV] = "1"
    os.execv(taskset, [taskset, "-c", "0", sys.executable, *sys.argv])
    raise AssertionError("unreachable")


def add_full_stack_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--full-stack",
        action="store_true",
        help="every S3 call through moto's HTTP layer and every metadata request over loopback "
        "sockets (HARNESS_SIM_FULL_STACK=1): the figures without the simulation's shortcuts",
    )


def apply_full_stack_option(args: argparse.Namespace) -> str:
    """Set the environment for ``--full-stack`` (kept across the re-exec under taskset);
    returns how S3 is simulated, for the first line of the output."""
    if args.full_stack:
        os.environ["HARNESS_SIM_FULL_STACK"] = "1"
        return "full stack (moto's HTTP layer, loopback sockets)"
    return "in-process S3 shortcut and in-memory metadata connections on"


def churn_scenario(hours: float = 24.0, seed: int = 24) -> str:
    """A day of work with a terminate notice every 20-60 minutes (seeded)."""
    rng = random.Random(seed)
    timeline, t = [], 0.0
    while True:
        t += rng.uniform(20 * 60, 60 * 60)
        if t >= hours * 3600:
            break
        timeline.append({"at": f"{t:.0f}s", "notice": {"action": "terminate", "lead": "2m"}})
    document = {
        "description": "Benchmark - 24 hours of churn, a notice every 20-60 minutes.",
        "seed": seed,
        "target": "reference",
        "job": {
            "items": int(hours * 3600 / 5),
            "seconds_per_item": "5s",
            "checkpoint_every": "5m",
            "state_size": "64MiB",
        },
        "env": {"cloud": "aws", "imdsv2": "required", "budget": f"{hours:g}h"},
        "timeline": timeline,
        "expect": ["saved_before_deadline", "durable"],
    }
    return yaml.safe_dump(document, sort_keys=False)


def single_notice(runs: int) -> tuple[float, float, float, float, str]:
    from harness.scenario import load_text
    from harness.sim.runner import run_scenario

    scenario = load_text(STANDARD, "standard.yaml")[0].scenario
    warm = run_scenario(scenario)
    walls, cpus = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = run_scenario(scenario)
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - started_cpu)
    return (
        statistics.median(walls) * 1000,
        statistics.median(cpus) * 1000,
        statistics.mean(cpus) * 1000,
        warm.sim_seconds,
        result.status,
    )


def single_notice_both_ways(runs: int) -> tuple[float, float]:
    """Median CPU ms of the standard scenario on the full S3 stack and with the shortcut, runs
    interleaved in one process, so that outside load weighs on both alike."""
    from harness.scenario import load_text
    from harness.sim import moto_patches
    from harness.sim.runner import run_scenario

    scenario = load_text(STANDARD, "standard.yaml")[0].scenario
    run_scenario(scenario)
    full, shortcut = [], []
    for _ in range(runs):
        with moto_patches.full_stack():
            started = time.process_time()
            run_scenario(scenario)
            full.append(time.process_time() - started)
        started = time.process_time()
        run_scenario(scenario)
        shortcut.append(time.process_time() - started)
    return statistics.median(full) * 1000, statistics.median(shortcut) * 1000


def single_notice_network_both_ways(runs: int) -> tuple[float, float]:
    """Median CPU ms of the standard scenario with its metadata server over real loopback
    sockets and over the in-memory network (harness/loopback.py), the S3 shortcut on in both,
    runs interleaved in one process."""
    from harness.clock import VirtualEventLoop
    from harness.scenario import load_text
    from harness.sim import runner
    from harness.sim.targets import resolve_target

    scenario = load_text(STANDARD, "standard.yaml")[0].scenario
    target = resolve_target(scenario.target)
    golden = runner.golden_of(scenario, target)

    def cpu_ms(memory: bool) -> float:
        loop = VirtualEventLoop(memory_network=memory)
        started = time.process_time()
        try:
            loop.run_until_complete(
                runner.run_scenario_async(scenario, target=target, golden=golden)
            )
        finally:
            loop.close()
        return (time.process_time() - started) * 1000

    cpu_ms(True)
    sockets, memory = [], []
    for _ in range(runs):
        sockets.append(cpu_ms(False))
        memory.append(cpu_ms(True))
    return statistics.median(sockets), statistics.median(memory)


def library() -> tuple[int, float, float, dict[str, int]]:
    from harness.scenario import load_paths
    from harness.sim.runner import run_scenario

    loaded, problems = load_paths([REPO / "scenarios"])
    if problems:
        print(f"  ({len(problems)} invalid scenario file(s) skipped)")
    # The simulation's library: command targets run in real time (benchmarks/detection.py).
    loaded = [item for item in loaded if item.scenario.target.command is None]
    statuses: dict[str, int] = {}
    simulated = 0.0
    started = time.perf_counter()
    for item in loaded:
        result = run_scenario(item.scenario)
        simulated += result.sim_seconds
        statuses[result.status] = statuses.get(result.status, 0) + 1
    return len(loaded), time.perf_counter() - started, simulated, statuses


def churn() -> tuple[float, float, float, int, int]:
    """Simulated seconds, wall seconds of the simulation, wall seconds of the checks, counts."""
    from harness.checks import evaluate
    from harness.history import Kind
    from harness.scenario import load_text
    from harness.sim.golden import reference_golden
    from harness.sim.runner import run_scenario

    scenario = load_text(churn_scenario(), "churn.yaml")[0].scenario
    unchecked = scenario.model_copy(update={"expect": ()})
    started = time.perf_counter()
    result = run_scenario(unchecked)
    wall = time.perf_counter() - started
    assert result.snapshot is not None
    started = time.perf_counter()
    evaluate(
        [spec.name for spec in scenario.expect],
        result.history,
        result.snapshot,
        reference_golden(scenario.job),
    )
    checks_wall = time.perf_counter() - started
    instances = len(result.history.of_kind(Kind.INSTANCE_STARTED))
    return result.sim_seconds, wall, checks_wall, instances, len(scenario.timeline)


def print_load() -> None:
    load = os.getloadavg()[0]
    print(f"(load average during the run: {load:.2f}; other processes on the core inflate wall)")


def verdict(ok: bool) -> str:
    return "meets the floor" if ok else "BELOW THE FLOOR"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of the standard scenario")
    parser.add_argument("--skip-library", action="store_true", help="skip figure 2")
    parser.add_argument(
        "--standard-only", action="store_true", help="figures 1, 1b and 1c only (skip 2 and 3)"
    )
    add_full_stack_option(parser)
    args = parser.parse_args()
    stack = apply_full_stack_option(args)
    note = pin_to_one_core()
    sys.path.insert(0, str(REPO))
    print(f"sim_speed: {note}; python {sys.version.split()[0]}; {stack}")

    median_ms, cpu_ms, mean_cpu_ms, simulated, status = single_notice(args.runs)
    print(
        f"1. standard single-notice AWS scenario ({simulated / 60:.0f} simulated minutes, "
        f"5 s IMDS polling over HTTP, moto S3, fakeredis): median {median_ms:.1f} ms wall "
        f"({cpu_ms:.1f} ms CPU, mean {mean_cpu_ms:.1f}) over {args.runs} runs "
        f"(floor {SINGLE_FLOOR_MS:.0f} ms: "
        f"{verdict(median_ms <= SINGLE_FLOOR_MS)}); verdict {status}"
    )
    if not args.full_stack:
        full_ms, shortcut_ms = single_notice_both_ways(args.runs)
        print(
            f"1b. the same, {args.runs} runs each way interleaved: median {full_ms:.1f} ms CPU on "
            f"the full stack, {shortcut_ms:.1f} ms CPU with the shortcuts "
            f"({100 * (1 - shortcut_ms / full_ms):.0f} % less)"
        )
        sockets_ms, memory_ms = single_notice_network_both_ways(args.runs)
        print(
            f"1c. the same with the shortcut, {args.runs} runs each way interleaved: median "
            f"{sockets_ms:.1f} ms CPU with the metadata server over loopback sockets, "
            f"{memory_ms:.1f} ms CPU over in-memory connections "
            f"({100 * (1 - memory_ms / sockets_ms):.0f} % less)"
        )
    if args.standard_only:
        print_load()
        return 0
    if not args.skip_library:
        count, wall, lib_simulated, statuses = library()
        summary = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
        print(
            f"2. scenario library: {count} scenarios in {wall:.2f} s wall "
            f"({lib_simulated / 3600:.1f} simulated hours; {summary})"
        )
    sim_seconds, wall, checks_wall, instances, notices = churn()
    compression = sim_seconds / wall
    print(
        f"3. 24-hour churn ({notices} notices, {instances} instances): "
        f"{sim_seconds / 3600:.1f} simulated hours in {wall:.2f} s wall = {compression:,.0f}x "
        f"(floor {COMPRESSION_FLOOR:,.0f}x: {verdict(compression >= COMPRESSION_FLOOR)}); "
        f"checking its history afterwards took {checks_wall:.2f} s more "
        f"({sim_seconds / (wall + checks_wall):,.0f}x including the checks)"
    )
    print_load()
    return 0


if __name__ == "__main__":
    sys.exit(main())
