"""``harness run PATH...``: play scenarios in simulation and report which guarantees broke."""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.console import Console

from harness.cli import EXIT_FAILED, EXIT_OK
from harness.commands.options import progress_bar
from harness.commands.report import check_report, write_run_report
from harness.errors import InputError
from harness.report.journal import Journal, JournalError
from harness.report.render import render_failure, result_json
from harness.report.summary import Row, summary_table, totals_line
from harness.scenario import library
from harness.scenario.loader import LoadedScenario, load_paths
from harness.sim.runner import RunResult, run_scenario

#: Width of the summary when printed to a log or pipe: scenario paths stay on one line.
LOG_WIDTH = 120


@click.command("run")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--library",
    "whole_library",
    is_flag=True,
    help="Run the whole standard scenario library shipped with the package (as `library:`).",
)
@click.option("--seed", type=click.IntRange(min=0), help="Override every scenario's seed.")
@click.option(
    "--journal",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write every run (history, verdict, replay line) to this JSON file as it goes. An "
    "earlier journal there is replaced (and the command says so); any other file is refused.",
)
@click.option(
    "--report",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write an HTML report (timelines, checks, evidence) to this file at the end. An "
    "earlier report there is replaced; any other file is refused.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar; failures and totals only.")
def run(
    paths: tuple[Path, ...],
    whole_library: bool,
    seed: int | None,
    journal: Path | None,
    report: Path | None,
    quiet: bool,
) -> int:
    """Run scenario files (directories are searched for *.yaml) in virtual time.

    Each scenario plays its interruption story against its target, then the checks in its
    `expect:` judge the history and the final storage state. A failure prints a short
    timeline and the command that replays it. Exit status 1 if any scenario failed.

    The standard library ships with the package and runs from anywhere: `--library` for all of
    it, `library:FOLDER` or `library:FOLDER/NAME` for part (`harness scenarios list` names them).

    \b
    Examples:
      harness run --library
      harness run library:aws/terminate_mid_job --seed 7
      harness run scenarios
      harness run scenarios/aws/notice_during_checkpoint_upload.yaml --seed 42
      harness run scenarios --journal out.json
      harness run scenarios --report report.html
    """
    console = Console(stderr=False, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = LOG_WIDTH
    if whole_library:
        paths = (*paths, Path(library.PREFIX))
    if not paths:
        raise InputError("name scenario files or folders, or pass --library (see --help)")
    loaded, problems = load_paths(paths)
    for problem in problems:
        click.echo(f"{problem}", err=True)
    if not loaded:
        where = ", ".join(str(path) for path in paths)
        why = " (see the problems above)" if problems else f": no *.yaml or *.yml file in {where}"
        raise InputError("no scenario to run" + why)
    if report is not None:
        check_report(report)  # refused before any run, not after
    book = _open_journal(journal, paths, seed)
    if book is not None and book.replaced:
        click.echo(f"replacing the earlier journal {book.path}", err=True)
    if book is not None and problems:
        book.add_problems([str(p) for p in problems])
    rows = _run_all(loaded, seed, book, console, quiet)
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
    if report is not None:
        records = [result_json(row.result, row.file, row.name) for row in rows]
        meta = {"command": "run", "paths": [str(p) for p in paths], "seed": seed}
        console.print(write_run_report(report, records, [str(p) for p in problems], meta))
    return EXIT_FAILED if failed or problems else EXIT_OK


def display_name(item: LoadedScenario) -> str:
    """The file as given (without its suffix) or its library name, plus the document number if
    it holds several."""
    name = library.display_name(item.file) or str(item.file.with_suffix(""))
    return name if item.documents == 1 else f"{name}[{item.document + 1}]"


def _open_journal(path: Path | None, paths: tuple[Path, ...], seed: int | None) -> Journal | None:
    if path is None:
        return None
    try:
        return Journal(path, {"command": "run", "paths": [str(p) for p in paths], "seed": seed})
    except JournalError as error:
        raise InputError(str(error)) from None


def _run_all(
    loaded: list[LoadedScenario],
    seed: int | None,
    book: Journal | None,
    console: Console,
    quiet: bool,
) -> list[Row]:
    rows: list[Row] = []
    with progress_bar(console, quiet) as progress:
        task = progress.add_task("scenarios", total=len(loaded))
        for item in loaded:
            progress.update(task, description=item.name)
            result: RunResult = run_scenario(item.scenario, seed=seed)
            rows.append(Row(display_name(item), result, item.file))
            if book is not None:
                book.add(result_json(result, item.file, display_name(item)))
            progress.advance(task)
    return rows
