"""``harness explore``: search generated interruption schedules for one that breaks a check."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.bounds import BOUNDS, DEFAULT_MAX_SIM_TIME, format_days
from harness.cli import EXIT_FAILED, EXIT_OK
from harness.commands.options import Duration
from harness.commands.run import PlainProgress
from harness.errors import InputError
from harness.explore import explore as run_explore
from harness.explore.search import explored_status
from harness.scenario.model import CLOUDS, Cloud
from harness.sim.runner import RunResult
from harness.sim.targets import TargetError, load_python_target

_PYTHON_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def parse_target(text: str) -> Any:
    """``reference`` or ``pkg.module:attribute`` (scenario syntax for the latter)."""
    if text == "reference":
        return "reference"
    path = text.removeprefix("python:")
    if _PYTHON_TARGET.match(path):
        try:  # refused now, not as an "error" run written out as a failing schedule
            load_python_target(path)
        except TargetError as error:
            raise InputError(f"--target: {error}") from None
        return {"python": path}
    raise InputError(
        f"unknown target {text!r}; use `reference` or `package.module:attribute` "
        "(e.g. harness.examples.broken:off_by_one_resume)",
    )


#: Most schedules one exploration may try (a nightly campaign of a few hours at most).
MAX_EXAMPLES = 100_000


@click.command("explore")
@click.option(
    "--examples",
    "-n",
    type=click.IntRange(1, MAX_EXAMPLES),
    default=50,
    show_default=True,
    help="How many schedules to try before giving up.",
)
@click.option(
    "--seed",
    type=click.IntRange(0, int(BOUNDS["seed"].high)),
    help="Seed of the search (default: a fixed derandomized search).",
)
@click.option(
    "--target",
    default="reference",
    show_default=True,
    help="`reference` or an in-process target `package.module:attribute`.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("explore-failures"),
    show_default=True,
    help="Folder for the failing schedule (an existing file is never overwritten).",
)
@click.option(
    "--cloud",
    "clouds",
    type=click.Choice(CLOUDS),
    multiple=True,
    help="Only schedules on these clouds (repeatable; default: every cloud).",
)
@click.option(
    "--max-entries",
    type=click.IntRange(min=1, max=12),
    default=4,
    show_default=True,
    help="Most timeline entries in one schedule.",
)
@click.option(
    "--max-sim-time",
    type=Duration(seconds=True, positive=True),
    default=format_days(DEFAULT_MAX_SIM_TIME),
    show_default=True,
    help="Never run a generated schedule that would simulate longer than this (at most 31d).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def explore(
    examples: int,
    seed: int | None,
    target: str,
    out: Path,
    clouds: tuple[Cloud, ...],
    max_entries: int,
    max_sim_time: float,
    quiet: bool,
) -> int:
    """Generate interruption schedules and look for one that breaks a check.

    Each schedule mixes notices (every cloud) with S3, Redis, disk, metadata-service, clock
    and process faults, runs in virtual time, and is judged by the checks every target must
    pass whatever happens (exactly_once, resume_correct, durable, no_leaked_uploads, fenced,
    completes). The first failure is shrunk to the smallest schedule that still fails and
    written to OUT as a scenario file, with the `harness run` line that replays it. Exit
    status 1 when a failing schedule was found.

    \b
    Examples:
      harness explore --examples 200
      harness explore --seed 7 --target harness.examples.broken:off_by_one_resume
      harness explore --cloud aws --cloud gcp --out failures/

    Off a terminal (CI logs), progress is a plain line every 10 seconds.
    """
    chosen = parse_target(target)
    console = Console(highlight=False)
    plain = PlainProgress("runs incl. shrinking", examples, not quiet and not console.is_terminal)
    with _progress(console, examples, quiet) as bar:
        task = bar.add_task("exploring", total=examples)

        def advance(count: int, result: RunResult) -> None:
            status = explored_status(result)
            bar.update(task, completed=min(count, examples), description=f"{status:8}")
            plain.advance(count, f"last {status}")

        report = run_explore(
            examples=examples,
            seed=seed,
            target=chosen,
            out=out,
            clouds=clouds or CLOUDS,
            max_entries=max_entries,
            progress=advance,
            max_sim_time=max_sim_time,
        )
    counts = ", ".join(f"{n} {status}" for status, n in sorted(report.statuses.items()))
    if report.unverified:
        counts += f"; nothing to judge for {report.unverified_text()}"
    if report.failure is None:
        click.echo(f"no failing schedule in {report.examples} runs ({counts})")
        return EXIT_OK
    failure = report.failure
    click.echo(f"{report.examples} runs ({counts}); smallest failing schedule:")
    click.echo(f"  breaks: {', '.join(failure.broken)}")
    click.echo(f"  written to: {failure.path}")
    click.echo(f"  replay: {failure.command}")
    return EXIT_FAILED


def _progress(console: Console, total: int, quiet: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs incl. shrinking"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
        transient=True,
    )
