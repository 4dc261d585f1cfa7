"""Where a simulated run's CPU time goes: the target's own code against the harness's.

Samples the process's CPU time (``ITIMER_PROF``, one sample per millisecond of CPU by default)
while it runs the standard single-notice scenario (``benchmarks/sim_speed.py``'s) or a seeded
exploration (``--explore``), and files every sample under the layer of the innermost frame
that is not the standard library (asyncio's own frames are filed under the event loop):

- the target: the reference runtime's code (``harness/runtime``, ``harness/storage``,
  ``harness/retry.py``, ``harness/target.py``) and the client libraries it calls (botocore,
  boto3, redis-py); a work of C code (hashing a state) is filed under its Python caller;
- the harness's simulated services: S3 (moto and the in-process shortcut), Redis (fakeredis),
  the metadata service (aiohttp's server and ``fake_imds``);
- the harness's engine: the virtual event loop (asyncio, ``harness/clock.py``, the in-memory
  network), the world and timeline, the observation of storage and metadata, the checks and
  the end-of-run snapshot, and the search (Hypothesis, ``harness/explore``, scenario
  validation).

It then prints the share and milliseconds of each layer a run, and the bound the target's share
sets: were the harness free, a run would still cost the target's milliseconds, so no work on
the harness can run more schedules a second than ``1000 / target ms``.

Run: ``.venv/bin/python benchmarks/cost_breakdown.py [--runs 20] [--explore --examples 40
--seed 1] [--interval-us 1000] [--top N]`` (``--top``: the N functions of each layer where
its samples fell). Pinned to one core with ``taskset`` as ``sim_speed.py`` is.
The figures are samples (a few percent apart from one run of the script to the next); the
sampling itself adds about 2 % to the CPU time.
"""

from __future__ import annotations

import argparse
import collections
import signal
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.sim_speed import STANDARD, pin_to_one_core  # noqa: E402

STDLIB = sysconfig.get_paths()["stdlib"]
ASYNCIO = f"{STDLIB}/asyncio/"
PACKAGES = "site-packages/"

TARGET_RUNTIME = "target: the reference runtime's code"
TARGET_CLIENTS = "target: its client libraries (botocore, boto3, redis-py)"
S3 = "harness: simulated S3 (moto, the shortcut)"
REDIS = "harness: simulated Redis (fakeredis)"
METADATA = "harness: simulated metadata service (aiohttp server, fake_imds)"
LOOP = "harness: virtual event loop (asyncio, clock, in-memory network)"
WORLD = "harness: world, timeline, observation, faults"
CHECKS = "harness: checks and end-of-run snapshot"
SEARCH = "harness: search (Hypothesis, explore, scenario validation)"
OTHER = "other"

#: (path fragment, layer), tried in order on the innermost frame outside the standard library.
RULES: tuple[tuple[str, str], ...] = (
    ("/harness/runtime/", TARGET_RUNTIME),
    ("/harness/storage/", TARGET_RUNTIME),
    ("/harness/retry.py", TARGET_RUNTIME),
    ("/harness/target.py", TARGET_RUNTIME),
    (f"{PACKAGES}botocore/", TARGET_CLIENTS),
    (f"{PACKAGES}boto3/", TARGET_CLIENTS),
    (f"{PACKAGES}s3transfer/", TARGET_CLIENTS),
    (f"{PACKAGES}redis/", TARGET_CLIENTS),
    (f"{PACKAGES}moto/", S3),
    ("/harness/sim/moto_patches.py", S3),
    ("/harness/sim/s3.py", S3),
    (f"{PACKAGES}fakeredis/", REDIS),
    (f"{PACKAGES}aiohttp/", METADATA),
    (f"{PACKAGES}multidict/", METADATA),
    (f"{PACKAGES}yarl/", METADATA),
    ("/fake_imds/", METADATA),
    ("/harness/clock.py", LOOP),
    ("/harness/loopback.py", LOOP),
    ("/harness/sim/", WORLD),
    ("/harness/history.py", WORLD),
    ("/harness/checks/", CHECKS),
    (f"{PACKAGES}hypothesis/", SEARCH),
    ("/harness/explore/", SEARCH),
    ("/harness/scenario/", SEARCH),
    (f"{PACKAGES}pydantic", SEARCH),
    (f"{PACKAGES}yaml/", SEARCH),
)

HARNESS_LAYERS = (S3, REDIS, METADATA, LOOP, WORLD, CHECKS, SEARCH)
TARGET_LAYERS = (TARGET_RUNTIME, TARGET_CLIENTS)


def filed_frame(frame: FrameType | None) -> tuple[str, str]:
    """The layer of the innermost frame that is not the standard library (asyncio's frames are
    the event loop's), and that frame's place (``file:function``)."""
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(ASYNCIO):
            return LOOP, _place(frame)
        if not filename.startswith(STDLIB) or PACKAGES in filename:
            layer = next((layer for fragment, layer in RULES if fragment in filename), OTHER)
            return layer, _place(frame)
        frame = frame.f_back
    return OTHER, "-"


def _place(frame: FrameType) -> str:
    """``folder/file.py:function`` of ``frame``."""
    code = frame.f_code
    return f"{'/'.join(code.co_filename.split('/')[-2:])}:{code.co_name}"


class Sampler:
    """Counts samples per layer on every ``interval`` seconds of the process's CPU time."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.samples: collections.Counter[str] = collections.Counter()
        self.places: collections.Counter[tuple[str, str]] = collections.Counter()

    def _sample(self, _signum: int, frame: FrameType | None) -> None:
        filed = filed_frame(frame)
        self.samples[filed[0]] += 1
        self.places[filed] += 1

    def __enter__(self) -> Sampler:
        signal.signal(signal.SIGPROF, self._sample)
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)
        return self

    def __exit__(self, *_exc: object) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, signal.SIG_DFL)


def run_standard(runs: int, sampler: Sampler) -> tuple[int, float]:
    from harness.scenario import load_text
    from harness.sim.runner import run_scenario

    scenario = load_text(STANDARD, "standard.yaml")[0].scenario
    run_scenario(scenario)  # warm: imports, the shared client, the golden run
    started = time.process_time()
    with sampler:
        for _ in range(runs):
            run_scenario(scenario)
    return runs, time.process_time() - started


def run_explore(examples: int, seed: int, sampler: Sampler) -> tuple[int, float]:
    from harness.explore.search import explore

    with tempfile.TemporaryDirectory() as out:
        started = time.process_time()
        with sampler:
            report = explore(examples=examples, seed=seed, out=Path(out))
    if report.failure is not None:
        print(f"explore stopped on a failure after {report.examples} schedules: {report.failure}")
    if report.repeats:
        print(f"({report.repeats} schedules drawn again after they passed: not run again)")
    return report.examples, time.process_time() - started


def print_table(sampler: Sampler, runs: int, cpu: float, unit: str, top: int) -> None:
    samples = sampler.samples
    total = sum(samples.values()) or 1
    per_run_ms = cpu * 1000 / runs

    def line(name: str, count: int) -> None:
        share = count / total
        print(f"  {share * 100:5.1f} %  {share * per_run_ms:7.2f} ms  {name}")
        places = [(place, n) for (layer, place), n in sampler.places.items() if layer == name]
        for place, n in sorted(places, key=lambda item: -item[1])[:top]:
            print(f"            {n / total * 100:5.1f} %  {place}")

    print(f"{runs} {unit}s, {cpu:.2f} s CPU, {per_run_ms:.1f} ms a {unit}; {total} samples")
    for group, layers in (("the target", TARGET_LAYERS), ("the harness", HARNESS_LAYERS)):
        count = sum(samples[layer] for layer in layers)
        print(f"{group}: {count / total * 100:.1f} %, {count / total * per_run_ms:.2f} ms a {unit}")
        for layer in sorted(layers, key=lambda name: -samples[name]):
            line(layer, samples[layer])
    line(OTHER, samples[OTHER])
    target_ms = sum(samples[layer] for layer in TARGET_LAYERS) / total * per_run_ms
    if target_ms > 0:
        print(
            f"bound: were the harness free, a {unit} would still cost the target's "
            f"{target_ms:.1f} ms: at most {1000 / target_ms:.0f} {unit}s a second on one core"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of the standard scenario")
    parser.add_argument("--explore", action="store_true", help="sample a seeded exploration")
    parser.add_argument("--examples", type=int, default=40, help="schedules to explore")
    parser.add_argument("--seed", type=int, default=1, help="seed of the exploration")
    parser.add_argument(
        "--interval-us", type=int, default=1000, help="CPU microseconds between samples"
    )
    parser.add_argument(
        "--top", type=int, default=0, help="also list the N places (file:function) of each layer"
    )
    args = parser.parse_args()
    note = pin_to_one_core()
    print(f"cost_breakdown: {note}; python {sys.version.split()[0]}")
    sampler = Sampler(args.interval_us / 1e6)
    if args.explore:
        runs, cpu = run_explore(args.examples, args.seed, sampler)
        print_table(sampler, runs, cpu, "schedule", args.top)
    else:
        runs, cpu = run_standard(args.runs, sampler)
        print_table(sampler, runs, cpu, "run", args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
