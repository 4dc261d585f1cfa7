"""``harness crash-points SCENARIO``: crash the target at each of its persistence steps in turn."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import click
from rich.console import Console

from harness.bounds import BOUNDS, DEFAULT_MAX_SIM_TIME, format_days
from harness.cli import EXIT_FAILED, EXIT_OK
from harness.commands.options import Duration, progress_bar
from harness.commands.run import LOG_WIDTH, PlainProgress, _with_target, check_work, display_name
from harness.errors import HarnessError, InputError
from harness.explore.crashpoints import (
    LOSSES,
    CrashPointRow,
    CrashVerdict,
    Enumerator,
    Loss,
    select_steps,
    write_failure,
)
from harness.process.dispatch import is_process
from harness.scenario.loader import LoadedScenario, load_paths
from harness.scenario.model import TargetSpec
from harness.sim.iohook import StepStart
from harness.sim.runner import RunResult

_SPAN = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d*)\s*)?$")
_KEY_WIDTH = 44


def parse_span(text: str | None) -> tuple[int, int] | None:
    """``--steps 5-12`` (inclusive), ``5-`` (from 5 on) or ``7`` (that step alone)."""
    if text is None:
        return None
    found = _SPAN.match(text)
    if found is None:
        raise InputError(f"--steps {text!r}: expected A-B, A- or A (step numbers from 1)")
    first = int(found.group(1))
    last = first if found.group(2) is None else int(found.group(2) or 10**9)
    if first < 1 or last < first:
        raise InputError(f"--steps {text!r}: steps are numbered from 1, and A-B needs A <= B")
    return first, last


@click.command("crash-points")
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option(
    "--lose",
    type=click.Choice(["process", "host", "both"]),
    default="both",
    show_default=True,
    help="What each crash loses: the process (the OS keeps its writes and renames), the host "
    "(a kept disk keeps only what was fsynced), or one run of each.",
)
@click.option(
    "--steps",
    "span",
    metavar="A-B",
    help="Crash only at the steps numbered A to B (`5-12`, `30-`, `7`), as the list numbers them.",
)
@click.option(
    "--limit", type=click.IntRange(min=1), help="Crash at no more than N steps (the first ones)."
)
@click.option(
    "--seed",
    type=click.IntRange(0, int(BOUNDS["seed"].high)),
    help="Override the scenario's seed.",
)
@click.option(
    "--target",
    metavar="MODULE:ATTR",
    help="Crash this target instead of the scenario's own: `reference` or an in-process target "
    "`package.module:attribute` (as `harness run --target`).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the steps and every crash's verdict and checks to this new file (an existing "
    "file is refused).",
)
@click.option(
    "--write-failures",
    "failures_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write each failing crash to this folder as a scenario file `harness run` replays "
    "(new names only: no file is overwritten).",
)
@click.option(
    "--max-sim-time",
    type=Duration(seconds=True, positive=True),
    default=format_days(DEFAULT_MAX_SIM_TIME),
    show_default=True,
    help="Refuse a scenario that would simulate longer than this (at most 31d).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress; the table and the totals only.")
def crash_points(
    scenario: Path,
    lose: str,
    span: str | None,
    limit: int | None,
    seed: int | None,
    target: str | None,
    json_path: Path | None,
    failures_dir: Path | None,
    max_sim_time: float,
    quiet: bool,
) -> int:
    """Crash a scenario's target at every persistence step, one at a time, and judge each.

    The scenario runs once in simulation; every persistence step of the target is listed as
    it starts (S3 requests and Redis commands the harness observes, local-disk writes, fsyncs,
    renames and directory fsyncs), numbered over the whole run. Then the scenario runs again
    once per step and per loss, with the instance dying just before that step: `process` (the
    OS keeps its writes and renames) or `host` (power lost: a kept disk keeps only what was
    fsynced). The replacement recovers, and each run is judged by the scenario's checks plus
    exactly_once, resume_correct, durable, no_leaked_uploads and completes; the checks a crash
    breaks by itself (saved_before_deadline, lost_work, detects_notice) are not judged.

    Prints one line per step: number, time, instance, step, key, the verdict of each crash and
    the checks it broke. Exit status 1 if any crash broke a check or could not be judged, or
    if the run without a crash already fails.

    \b
    Examples:
      harness crash-points library:aws/terminate_mid_job
      harness crash-points scenarios/crash/crash_before_local_rename.yaml --lose host
      harness crash-points library:aws/terminate_mid_job --steps 20-40 --json crashes.json
      harness crash-points my.yaml --target harness.examples.broken:pointer_before_upload \\
          --lose process --write-failures crash-failures/

    A crash found with --write-failures replays with the `harness run` line written at the top
    of its file. Off a terminal (CI logs), progress is a plain line every 10 seconds.
    """
    item = _load_one(scenario, target)
    problem = check_work(item, max_sim_time)
    if problem is not None:
        raise InputError(str(problem))
    chosen_span = parse_span(span)
    if json_path is not None and json_path.exists():
        raise InputError(f"--json {json_path}: the file exists; name a new one")
    losses: tuple[Loss, ...] = LOSSES if lose == "both" else (lose,)  # type: ignore[assignment]
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = LOG_WIDTH
    started = time.perf_counter()
    try:
        enumerator = Enumerator(item.scenario, seed)
    except HarnessError:
        raise
    except Exception as error:  # the target's own code failed in its uninterrupted run
        click.echo(f"{display_name(item)}: the uninterrupted run failed: {error!r}", err=True)
        return EXIT_FAILED
    first, steps = enumerator.first_run()
    chosen = select_steps(steps, chosen_span, limit)
    click.echo(
        f"{display_name(item)} (seed {enumerator.scenario.seed}): {first.status} without a "
        f"crash, {len(steps)} persistence steps; crashing at {len(chosen)} of them "
        f"({', '.join(losses)})"
    )
    rows = _crash_with_progress(enumerator, chosen, losses, console, quiet)
    seconds = time.perf_counter() - started
    _print_table(rows, losses)
    failing = [(row, v) for row in rows for v in row.verdicts if not v.ok]
    written = _write_failures(failing, failures_dir, item.name)
    if json_path is not None:
        _write_json(json_path, item, enumerator, first, steps, rows, seconds)
        click.echo(f"json: {json_path}")
    click.echo(f"{len(steps)} steps, {_totals(rows)}, in {seconds:.1f}s")
    for path, command in written:
        click.echo(f"written: {path}\n  replay: {command}")
    if first.status in ("failed", "error"):
        click.echo(f"without a crash the run already {first.status}: {_first_problem(first)}")
    return EXIT_FAILED if failing or first.status in ("failed", "error") else EXIT_OK


def _totals(rows: list[CrashPointRow]) -> str:
    """``12 crash runs: 10 passed, 1 failed, 1 unverified``."""
    statuses = [v.status for row in rows for v in row.verdicts]
    counts = {status: statuses.count(status) for status in dict.fromkeys(statuses)}
    counts.setdefault("passed", 0)
    counts.setdefault("failed", 0)
    order = ["passed", "failed", *sorted(set(counts) - {"passed", "failed"})]
    return f"{len(statuses)} crash runs: " + ", ".join(f"{counts[s]} {s}" for s in order)


def _first_problem(result: RunResult) -> str:
    return result.error or ", ".join(c.spec.label for c in result.broken_checks)


def _load_one(path: Path, target: str | None) -> LoadedScenario:
    loaded, problems = load_paths([path])
    if problems:
        raise InputError("\n".join(str(p) for p in problems))
    if len(loaded) != 1:
        raise InputError(
            f"{path}: holds {len(loaded)} scenarios; crash-points takes one (name one file "
            "of one document)"
        )
    (item,) = loaded
    if target is not None:
        from harness.commands.explore import parse_target  # loads hypothesis: only when asked

        item = _with_target(item, TargetSpec.model_validate(parse_target(target)))
    if is_process(item):
        raise InputError(
            f"{path}: its target is a command (real processes); crash-points runs in "
            "simulation: pass --target with an in-process target"
        )
    return item


def _crash_with_progress(
    enumerator: Enumerator,
    steps: list[StepStart],
    losses: tuple[Loss, ...],
    console: Console,
    quiet: bool,
) -> list[CrashPointRow]:
    plain = PlainProgress("crash points", len(steps), not quiet and not console.is_terminal)
    with progress_bar(console, quiet) as bar:
        task = bar.add_task("crash points", total=len(steps))
        done_rows: list[CrashPointRow] = []

        def done(row: CrashPointRow) -> None:
            done_rows.append(row)
            failing = sum(1 for r in done_rows if not r.ok)
            bar.update(task, advance=1, description=f"step {row.step.ordinal} {row.step.op}")
            plain.advance(len(done_rows), f"{failing} step(s) failing" if failing else "")

        return enumerator.crash_all(steps, losses, done)


def _print_table(rows: list[CrashPointRow], losses: tuple[Loss, ...]) -> None:
    heads = ["step", "time", "instance", "operation", "key", *losses, "broken"]
    lines = [heads]
    for row in rows:
        step = row.step
        key = step.key or "-"
        if len(key) > _KEY_WIDTH:
            key = "..." + key[-(_KEY_WIDTH - 3) :]
        problems = sorted({v.problem for v in row.verdicts if not v.ok})
        lines.append(
            [
                str(step.ordinal),
                f"{step.t:.3f}s",
                step.instance,
                step.op,
                key,
                *(v.status for v in row.verdicts),
                "; ".join(problems) or "-",
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(heads) - 1)]
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        click.echo("  ".join([*cells, line[-1]]).rstrip())


def _write_failures(
    failing: list[tuple[CrashPointRow, CrashVerdict]], folder: Path | None, name: str
) -> list[tuple[Path, str]]:
    """Each failing crash as a scenario file (which names the target, --target included)."""
    if folder is None:
        return []
    return [write_failure(verdict, row.step, folder, name) for row, verdict in failing]


def _write_json(
    path: Path,
    item: LoadedScenario,
    enumerator: Enumerator,
    first: RunResult,
    steps: list[StepStart],
    rows: list[CrashPointRow],
    seconds: float,
) -> None:
    document = {
        "scenario": display_name(item),
        "file": str(item.file),
        "seed": enumerator.scenario.seed,
        "checks": [c.label for c in enumerator.scenario.expect],
        "first_run": first.to_json(),
        "steps": [
            {"step": s.ordinal, "t": round(s.t, 6), "instance": s.instance, "op": s.op}
            | {"key": s.key}
            for s in steps
        ],
        "crash_points": [row.to_json() for row in rows],
        "wall_seconds": round(seconds, 3),
    }
    try:
        with path.open("x", encoding="utf-8") as handle:  # "x": never overwrite
            json.dump(document, handle, indent=1)
    except FileExistsError:
        raise InputError(f"--json {path}: the file appeared meanwhile; name a new one") from None
