"""``harness run PATH...``: play scenarios in simulation and report which guarantees broke."""

from __future__ import annotations

import dataclasses
import os
import shlex
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from harness.bounds import (
    BOUNDS,
    DEFAULT_MAX_SIM_TIME,
    MAX_SIM_OPERATIONS,
    MAX_SIM_TIME_CEILING,
    format_days,
)
from harness.cli import EXIT_FAILED, EXIT_OK
from harness.commands.options import Duration, progress_bar
from harness.commands.report import check_report, write_run_report
from harness.errors import InputError
from harness.process.dispatch import is_process, run_loaded
from harness.process.plan import DEFAULT_MAX_REAL_TIME, process_problems
from harness.process.runner import ProcessOptions
from harness.process.servers import RedisKind
from harness.report.journal import Journal, JournalError
from harness.report.render import render_failure, replay_command, result_json
from harness.report.summary import Row, fitting_width, summary_table, totals_line
from harness.scenario import library
from harness.scenario.loader import LoadedScenario, Problem, load_paths
from harness.scenario.model import TargetSpec, estimate_work
from harness.sim.runner import RunResult
from harness.units import format_duration

#: Width of the summary when printed to a log or pipe: scenario paths stay on one line.
LOG_WIDTH = 120
#: Off a terminal (a CI log, a pipe), a plain progress line at most this often (seconds).
PROGRESS_EVERY = 10.0


class PlainProgress:
    """Progress for a log: a plain line when at least :data:`PROGRESS_EVERY` seconds passed
    since the last one (never a bar, which a log would fill with redraws)."""

    def __init__(self, what: str, total: int, enabled: bool) -> None:
        self.what = what
        self.total = total
        self.enabled = enabled
        self.started = self.last = time.monotonic()

    def advance(self, done: int, detail: str = "") -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last < PROGRESS_EVERY:
            return
        self.last = now
        elapsed = format_duration(round(now - self.started))
        tail = f"; {detail}" if detail else ""
        click.echo(f"progress: {done}/{self.total} {self.what}, {elapsed} elapsed{tail}")


def check_work(
    item: LoadedScenario, max_sim_time: float, options: ProcessOptions | None = None
) -> Problem | None:
    """Refuse, before it starts, a run that would simulate too long or too much (a command
    target: that would take too long in real time, or that asks what a process cannot do)."""
    if is_process(item):
        options = options or ProcessOptions()
        found = process_problems(item.scenario, options.max_real_time, options.time_scale)
        if found:
            return Problem(item.source.values[()], "cannot run as processes: " + "; ".join(found))
        return None
    work = estimate_work(item.scenario)
    if work.seconds > max_sim_time:
        return Problem(
            item.source.values[()],
            f"this run would simulate about {format_days(round(work.seconds))}, more than "
            f"--max-sim-time {format_days(max_sim_time)}; lower env.budget or the job's "
            f"size, or raise --max-sim-time (at most {format_days(MAX_SIM_TIME_CEILING)})",
        )
    if work.operations > MAX_SIM_OPERATIONS:
        return Problem(
            item.source.values[()],
            f"this run would simulate about {work.operations:,} units of work (items, output "
            f"objects, checkpoints), more than the {MAX_SIM_OPERATIONS:,} a run may plan; "
            "lower job.items, raise job.output_every or job.checkpoint_every",
        )
    return None


@click.command("run")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--library",
    "whole_library",
    is_flag=True,
    help="Run the whole standard scenario library shipped with the package (as `library:`).",
)
@click.option(
    "--seed",
    type=click.IntRange(0, int(BOUNDS["seed"].high)),
    help="Override every scenario's seed.",
)
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
@click.option(
    "--target",
    metavar="MODULE:ATTR",
    help="Run every scenario against this target instead of its own: `reference` or an "
    "in-process target `package.module:attribute` (importing it runs its code). Known-bad "
    "scenarios then fail unless the target breaks the same checks; reference_layout is left out "
    "for targets other than the reference.",
)
@click.option(
    "--tier",
    type=click.Choice(["all", "simulation", "process"]),
    default="all",
    show_default=True,
    help="Which scenarios to run: those of in-process targets (simulation: virtual time, no "
    "servers), those of command targets (process: real processes, servers on loopback), or both.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar; failures and totals only.")
@click.option(
    "--max-sim-time",
    type=Duration(seconds=True, positive=True),
    default=format_days(DEFAULT_MAX_SIM_TIME),
    show_default=True,
    help="Refuse, before it starts, a scenario that would simulate longer than this (at most 31d).",
)
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
    whole_library: bool,
    seed: int | None,
    journal: Path | None,
    report: Path | None,
    target: str | None,
    tier: str,
    quiet: bool,
    max_sim_time: float,
    redis_kind: RedisKind,
    max_real_time: float,
    time_scale: float,
) -> int:
    """Run scenario files (directories are searched for *.yaml) in virtual time.

    Each scenario plays its interruption story against its target, then the checks in its
    `expect:` judge the history and the final storage state. A failure prints a short
    timeline and the command that replays it. Exit status 1 if any scenario failed.

    Targets in Python run in virtual time; `target: {command: [...]}` runs the command as
    real processes in real time (servers, proxies, signals: see docs/process.md).

    The standard library ships with the package and runs from anywhere: `--library` for all of
    it, `library:FOLDER` or `library:FOLDER/NAME` for part (`harness scenarios list` names them).

    \b
    Examples:
      harness run --library
      harness run library:aws/terminate_mid_job --seed 7
      harness run scenarios
      harness run scenarios --tier simulation     # embedded: no servers, no processes
      harness run scenarios/aws/notice_during_checkpoint_upload.yaml --seed 42
      harness run scenarios --journal out.json
      harness run scenarios --report report.html
      harness run long_story.yaml --max-sim-time 20d
      harness run scenarios/aws scenarios/storage --target mypkg.handler:target
      harness run scenarios/process --redis real --time-scale 5

    A run's simulated span and work are estimated before it starts; past --max-sim-time, or
    past what a run may plan, the scenario is refused as a problem. Off a terminal (CI logs),
    progress is a plain line every 10 seconds.
    """
    limit = max_sim_time  # within BOUNDS["max_sim_time"]: checked as the option is read
    console = Console(stderr=False, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = LOG_WIDTH
    if whole_library:
        paths = (*paths, Path(library.PREFIX))
    if not paths:
        raise InputError("name scenario files or folders, or pass --library (see --help)")
    loaded, problems = load_paths(paths)
    if tier != "all":
        kept = [item for item in loaded if is_process(item) == (tier == "process")]
        if len(kept) < len(loaded):
            click.echo(
                f"--tier {tier}: leaving out {len(loaded) - len(kept)} scenario(s)", err=True
            )
        loaded = kept
    if target is not None:
        # Imported here: the explore command's module loads hypothesis, which a plain run needs not.
        from harness.commands.explore import parse_target

        chosen = TargetSpec.model_validate(parse_target(target))
        loaded = [_with_target(item, chosen) for item in loaded]
    options = ProcessOptions(redis=redis_kind, max_real_time=max_real_time, time_scale=time_scale)
    refused = {id(item): check_work(item, limit, options) for item in loaded}
    problems += [p for p in refused.values() if p is not None]
    loaded = [item for item in loaded if refused[id(item)] is None]
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
    rows = _run_all(loaded, seed, book, console, quiet, target, options)
    if book is not None:
        book.finish()
    failed = [row for row in rows if not row.result.ok]
    for row in failed:
        click.echo()
        text = render_failure(row.result, row.file)
        click.echo(text.replace(*_replay_lines(row.file, row.result.seed, target)))
    if not quiet:
        table = summary_table(rows, whole_words=not console.is_terminal)
        if not console.is_terminal:  # a log keeps long lines whole: no word is cut
            console.width = max(console.width, fitting_width(table))
        console.print()
        console.print(table)
    console.print(totals_line(rows), markup=False)
    if book is not None:
        console.print(f"journal: {book.path}", markup=False)
    if report is not None:
        records = [_record(row.result, row.file, row.name, target) for row in rows]
        meta = {"command": "run", "paths": [str(p) for p in paths], "seed": seed}
        console.print(write_run_report(report, records, [str(p) for p in problems], meta))
    return EXIT_FAILED if failed or problems else EXIT_OK


def display_name(item: LoadedScenario) -> str:
    """The file as given (without its suffix) or its library name, plus the document number if
    it holds several."""
    name = library.display_name(item.file) or str(item.file.with_suffix(""))
    return name if item.documents == 1 else f"{name}[{item.document + 1}]"


def _with_target(item: LoadedScenario, target: TargetSpec) -> LoadedScenario:
    """``item`` with its scenario's target replaced (``--target``)."""
    return dataclasses.replace(item, scenario=item.scenario.with_target(target))


def _replay_lines(file: Path | None, seed: int, target: str | None) -> tuple[str, str]:
    """(the replay command as rendered, the one to show): ``--target`` is part of the replay."""
    plain = replay_command(file, seed)
    return plain, plain + (f" --target {shlex.quote(target)}" if target is not None else "")


def _record(result: RunResult, file: Path | None, name: str, target: str | None) -> dict[str, Any]:
    """One run for the journal and the report, its replay naming ``--target`` if given."""
    entry = result_json(result, file, name)
    entry["replay"] = _replay_lines(file, result.seed, target)[1]
    return entry


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
    options: ProcessOptions,
) -> list[Row]:
    rows: list[Row] = []
    plain = PlainProgress("scenarios", len(loaded), not quiet and not console.is_terminal)
    with progress_bar(console, quiet) as progress:
        task = progress.add_task("scenarios", total=len(loaded))
        for item in loaded:
            progress.update(task, description=item.name)
            result: RunResult = run_loaded(item, seed, options)
            rows.append(Row(display_name(item), result, item.file))
            if book is not None:
                book.add(_record(result, item.file, display_name(item), target))
            progress.advance(task)
            failed = sum(1 for row in rows if not row.result.ok)
            plain.advance(len(rows), f"{failed} failed" if failed else "")
    return rows
