"""``harness run PATH...``: play scenarios in simulation and report which guarantees broke."""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, HarnessError
from harness.commands.options import Duration
from harness.process.dispatch import is_process, run_loaded
from harness.process.plan import DEFAULT_MAX_REAL_TIME, process_problems
from harness.process.runner import ProcessOptions
from harness.process.servers import RedisKind
from harness.report.journal import Journal, JournalError
from harness.report.render import render_failure, result_json
from harness.report.summary import Row, summary_table, totals_line
from harness.scenario.loader import LoadedScenario, load_paths
from harness.sim.runner import RunResult

#: Width of the summary when printed to a log or pipe: scenario paths stay on one line.
LOG_WIDTH = 120


@click.command("run")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--seed", type=click.IntRange(min=0), help="Override every scenario's seed.")
@click.option(
    "--journal",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write every run (history, verdict, replay line) to this JSON file as it goes. An "
    "earlier journal there is replaced (and the command says so); any other file is refused.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar; failures and totals only.")
@click.option(
    "--redis",
    "redis_kind",
    type=click.Choice(["fake", "real"]),
    default="fake",
    show_default=True,
    help="Command targets: fakeredis' TCP server, or a real redis-server (must be installed).",
)
@click.option(
    "--max-real-time",
    type=Duration(seconds=True, positive=True),
    default=f"{DEFAULT_MAX_REAL_TIME:g}s",
    show_default=True,
    help="Command targets run in real time: refuse a scenario estimated to take longer, and "
    "stop any run at this limit.",
)
@click.option(
    "--time-scale",
    type=click.FloatRange(min=1.0),
    default=1.0,
    show_default=True,
    help="Command targets: run the process's clock N times faster (libfaketime; see "
    "docs/process.md for where that works). Leads, delays and budgets count faked seconds.",
)
def run(
    paths: tuple[Path, ...],
    seed: int | None,
    journal: Path | None,
    quiet: bool,
    redis_kind: RedisKind,
    max_real_time: float,
    time_scale: float,
) -> int:
    """Run scenario files (directories are searched for *.yaml).

    Each scenario plays its interruption story against its target, then the checks in its
    `expect:` judge the history and the final storage state. A failure prints a short
    timeline and the command that replays it. Exit status 1 if any scenario failed.

    Targets in Python run in virtual time; `target: {command: [...]}` runs the command as
    real processes in real time (servers, proxies, signals: see docs/process.md).

    \b
    Examples:
      harness run scenarios
      harness run scenarios/aws/notice_during_checkpoint_upload.yaml --seed 42
      harness run scenarios --journal out.json
      harness run scenarios/process --redis real
    """
    console = Console(stderr=False, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = LOG_WIDTH
    loaded, problems = load_paths(paths)
    for problem in problems:
        click.echo(f"{problem}", err=True)
    if not loaded:
        where = ", ".join(str(path) for path in paths)
        why = " (see the problems above)" if problems else f": no *.yaml or *.yml file in {where}"
        raise HarnessError("no scenario to run" + why, EXIT_USAGE)
    options = ProcessOptions(redis=redis_kind, max_real_time=max_real_time, time_scale=time_scale)
    _refuse_too_long(loaded, options)
    book = _open_journal(journal, paths, seed)
    if book is not None and book.replaced:
        click.echo(f"replacing the earlier journal {book.path}", err=True)
    if book is not None and problems:
        book.add_problems([str(p) for p in problems])
    rows = _run_all(loaded, seed, book, console, quiet, options)
    if book is not None:
        book.finish()
    failed = [row for row in rows if not row.result.ok]
    for row in failed:
        click.echo()
        click.echo(render_failure(row.result, row.file))
    if not quiet:
        console.print()
        console.print(summary_table(rows))
    console.print(totals_line(rows), markup=False)
    if book is not None:
        console.print(f"journal: {book.path}", markup=False)
    return EXIT_FAILED if failed or problems else EXIT_OK


def display_name(item: LoadedScenario) -> str:
    """The file as given (without its suffix), plus the document number if it holds several."""
    name = str(item.file.with_suffix(""))
    return name if item.documents == 1 else f"{name}[{item.document + 1}]"


def _refuse_too_long(loaded: list[LoadedScenario], options: ProcessOptions) -> None:
    """Command targets run in real time: refuse, before anything runs, those that cannot."""
    refused = [
        f"{display_name(item)}: {problem}"
        for item in loaded
        if is_process(item)
        for problem in process_problems(item.scenario, options.max_real_time, options.time_scale)
    ]
    if refused:
        raise HarnessError("cannot run as processes:\n  " + "\n  ".join(refused), EXIT_USAGE)


def _open_journal(path: Path | None, paths: tuple[Path, ...], seed: int | None) -> Journal | None:
    if path is None:
        return None
    try:
        return Journal(path, {"command": "run", "paths": [str(p) for p in paths], "seed": seed})
    except JournalError as error:
        raise HarnessError(str(error), EXIT_USAGE) from None


def _run_all(
    loaded: list[LoadedScenario],
    seed: int | None,
    book: Journal | None,
    console: Console,
    quiet: bool,
    options: ProcessOptions,
) -> list[Row]:
    rows: list[Row] = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
        transient=True,
    ) as progress:
        task = progress.add_task("scenarios", total=len(loaded))
        for item in loaded:
            progress.update(task, description=item.name)
            result: RunResult = run_loaded(item, seed, options)
            rows.append(Row(display_name(item), result, item.file))
            if book is not None:
                book.add(result_json(result, item.file, display_name(item)))
            progress.advance(task)
    return rows
