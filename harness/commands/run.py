"""``harness run PATH...``: play scenarios in simulation and report which guarantees broke."""

from __future__ import annotations

import dataclasses
import os
import shlex
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.cli import EXIT_FAILED, EXIT_OK
from harness.errors import InputError
from harness.report.journal import Journal, JournalError
from harness.report.render import render_failure, replay_command, result_json
from harness.report.summary import Row, summary_table, totals_line
from harness.scenario import library
from harness.scenario.loader import LoadedScenario, load_paths
from harness.scenario.model import TargetSpec
from harness.sim.runner import RunResult, run_scenario

#: Checks that judge the reference runtime's storage layout: left out for any other target.
REFERENCE_ONLY_CHECKS = frozenset({"reference_layout"})
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
    "--target",
    metavar="MODULE:ATTR",
    help="Run every scenario against this target instead of its own: `reference` or an "
    "in-process target `package.module:attribute` (importing it runs its code). Known-bad "
    "scenarios then fail unless the target breaks the same checks; reference_layout is left out "
    "for targets other than the reference.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar; failures and totals only.")
def run(
    paths: tuple[Path, ...],
    whole_library: bool,
    seed: int | None,
    journal: Path | None,
    target: str | None,
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
      harness run scenarios/aws scenarios/storage --target mypkg.handler:target
    """
    console = Console(stderr=False, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = LOG_WIDTH
    if whole_library:
        paths = (*paths, Path(library.PREFIX))
    if not paths:
        raise InputError("name scenario files or folders, or pass --library (see --help)")
    loaded, problems = load_paths(paths)
    if target is not None:
        # Imported here: the explore command's module loads hypothesis, which a plain run needs not.
        from harness.commands.explore import parse_target

        chosen = TargetSpec.model_validate(parse_target(target))
        loaded = [_with_target(item, chosen) for item in loaded]
    for problem in problems:
        click.echo(f"{problem}", err=True)
    if not loaded:
        where = ", ".join(str(path) for path in paths)
        why = " (see the problems above)" if problems else f": no *.yaml or *.yml file in {where}"
        raise InputError("no scenario to run" + why)
    book = _open_journal(journal, paths, seed)
    if book is not None and book.replaced:
        click.echo(f"replacing the earlier journal {book.path}", err=True)
    if book is not None and problems:
        book.add_problems([str(p) for p in problems])
    rows = _run_all(loaded, seed, book, console, quiet, target)
    if book is not None:
        book.finish()
    failed = [row for row in rows if not row.result.ok]
    for row in failed:
        click.echo()
        report = render_failure(row.result, row.file)
        click.echo(report.replace(*_replay_lines(row.file, row.result.seed, target)))
    if not quiet:
        console.print()
        console.print(summary_table(rows))
    console.print(totals_line(rows), markup=False)
    if book is not None:
        console.print(f"journal: {book.path}", markup=False)
    return EXIT_FAILED if failed or problems else EXIT_OK


def display_name(item: LoadedScenario) -> str:
    """The file as given (without its suffix) or its library name, plus the document number if
    it holds several."""
    name = library.display_name(item.file) or str(item.file.with_suffix(""))
    return name if item.documents == 1 else f"{name}[{item.document + 1}]"


def _with_target(item: LoadedScenario, target: TargetSpec) -> LoadedScenario:
    """``item`` with its scenario's target replaced (``--target``); for a target other than the
    reference, without the checks of the reference runtime's own storage layout."""
    expect = item.scenario.expect
    if not target.reference:
        expect = tuple(c for c in expect if c.name not in REFERENCE_ONLY_CHECKS)
    update = {"target": target, "expect": expect}
    return dataclasses.replace(item, scenario=item.scenario.model_copy(update=update))


def _replay_lines(file: Path | None, seed: int, target: str | None) -> tuple[str, str]:
    """(the replay command as rendered, the one to show): ``--target`` is part of the replay."""
    plain = replay_command(file, seed)
    return plain, plain + (f" --target {shlex.quote(target)}" if target is not None else "")


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
    target: str | None,
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
            result: RunResult = run_scenario(item.scenario, seed=seed)
            rows.append(Row(display_name(item), result, item.file))
            if book is not None:
                entry = result_json(result, item.file, display_name(item))
                entry["replay"] = _replay_lines(item.file, result.seed, target)[1]
                book.add(entry)
            progress.advance(task)
    return rows
