"""``harness explore``: search generated interruption schedules for one that breaks a check."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.bounds import BOUNDS, DEFAULT_MAX_SIM_TIME, format_days
from harness.cli import EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from harness.commands.options import Duration
from harness.commands.run import PlainProgress
from harness.errors import InputError
from harness.explore import explore as run_explore
from harness.explore.campaign import DATABASE, PROFILES, Shard, plan, run_record
from harness.explore.coverage import campaign_for, check_report_path, write_report
from harness.explore.search import ExploreReport, explored_status, stats_text
from harness.report.journal import Journal, JournalError, load_journal
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
    "--profile",
    type=click.Choice(sorted(PROFILES)),
    help="A campaign: ci (200 schedules, derandomized, no database), dev (1,000, failures "
    f"kept in {DATABASE} and replayed first; with --seed: no database), nightly (20,000, the "
    "same database). Default: 50 schedules, derandomized.",
)
@click.option(
    "--examples",
    "-n",
    type=click.IntRange(1, MAX_EXAMPLES),
    help="How many schedules to try before giving up (per shard; default: the profile's, or 50).",
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
@click.option(
    "--shard",
    default="0/1",
    show_default=True,
    help="Explore shard K of N (seed: --seed + K), e.g. on machine K of N.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 512),
    help="Run N shards on N local pytest-xdist workers, merged into one --journal.",
)
@click.option(
    "--journal",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write every explored run (verdicts; the failing one with its history) as a journal.",
)
@click.option(
    "--stats",
    is_flag=True,
    help="Print the share of notices among generated entries, how often each check judged, "
    "and the lines and arcs of the target's code the runs reached (see --cover).",
)
@click.option(
    "--max-shrinks",
    type=click.IntRange(0, MAX_EXAMPLES),
    default=150,
    show_default=True,
    help="Most runs spent shrinking the first failure (0: write it as found).",
)
@click.option(
    "--steer/--no-steer",
    default=False,
    show_default=True,
    help="Spend part of the budget climbing towards schedules that judge more checks, start "
    "more instances and reach more kinds of events (Hypothesis' targeted phase; below 1,000 "
    "examples it takes the second half of the budget, and the search loses its spread).",
)
@click.option(
    "--steer-coverage/--no-steer-coverage",
    default=False,
    show_default=True,
    help="Also steer the search towards schedules through code of the target that few "
    "schedules ran (records coverage while each schedule runs, which costs CPU; see --cover).",
)
@click.option(
    "--cover",
    multiple=True,
    metavar="PATH|PACKAGE",
    help="The code whose coverage is recorded (repeatable): a folder, a .py file or a dotted "
    "package (default: harness/runtime for the reference, else the target module's package).",
)
@click.option(
    "--coverage-report",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the lines of that code no schedule ran to this new file (never overwritten).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def explore(
    profile: str | None,
    examples: int | None,
    seed: int | None,
    target: str,
    out: Path,
    clouds: tuple[Cloud, ...],
    max_entries: int,
    max_sim_time: float,
    shard: str,
    workers: int | None,
    journal: Path | None,
    stats: bool,
    max_shrinks: int,
    steer: bool,
    steer_coverage: bool,
    cover: tuple[str, ...],
    coverage_report: Path | None,
    quiet: bool,
) -> int:
    """Generate interruption schedules and look for one that breaks a check.

    Each schedule draws an environment and a job for its cloud (link speeds, state size,
    poll interval, token TTL, grace period, replacement delay) and a timeline in which about
    two thirds of the entries are notices of that cloud, the rest S3, Redis, disk, metadata-service,
    clock and process faults, some in a row (a fault while the next instance recovers). It
    runs in virtual time and is judged by the checks every target must pass whatever happens
    (exactly_once, resume_correct, durable, no_leaked_uploads, fenced, completes), plus
    saved_before_deadline, detects_notice and lost_work wherever the run left room for them.
    The first failure is shrunk to the smallest schedule that still fails and written to OUT
    as a scenario file, with the `harness run` line that replays it. Exit status 1 when a
    failing schedule was found.

    \b
    Examples:
      harness explore --examples 200
      harness explore --profile ci --target harness.examples.broken:off_by_one_resume
      harness explore --profile dev --stats
      harness explore --profile nightly --workers 8 --journal nightly.json
      harness explore --profile nightly --shard 2/4 --journal shard2.json   # machine 3 of 4
      harness explore --cloud aws --cloud gcp --out failures/
      harness explore --profile nightly --steer               # climb towards busier runs
      harness explore --profile ci --steer-coverage --stats --coverage-report uncovered.txt
      harness explore --target mypkg.handler:target --cover mypkg --stats

    Off a terminal (CI logs), progress is a plain line every 10 seconds.
    """
    chosen = parse_target(target)
    part = Shard.parse(shard)
    count = examples or (PROFILES[profile].examples if profile else 50)
    coverage_mode = _coverage_mode(steer_coverage, cover, stats, coverage_report)
    scope = campaign_for(chosen, cover, coverage_mode)  # a bad --cover is refused before any run
    if coverage_report is not None:
        check_report_path(coverage_report)
    if workers is not None:
        if part.count != 1:
            raise InputError("--workers runs every shard itself; drop --shard")
        if (stats or coverage_report) and journal is None:
            option = "--stats" if stats else "--coverage-report"
            raise InputError(
                f"{option} with --workers reads the merged journal: add --journal FILE"
            )
        code = _on_workers(
            workers,
            profile or "ci",
            examples,
            seed,
            target,
            out,
            clouds,
            max_entries,
            journal,
            max_shrinks,
            max_sim_time,
            coverage_mode,
            cover,
            steer,
        )
        if journal is not None and journal.exists():
            merged = load_journal(journal).get("explore") or {}
            if stats:
                click.echo(stats_text(merged))
            _write_coverage_report(coverage_report, merged)
        return code
    book = _open_journal(journal, profile, part, seed, target)
    search_seed, database = plan(PROFILES[profile] if profile else None, part, seed)
    console = Console(highlight=False)
    plain = PlainProgress("runs incl. shrinking", count, not quiet and not console.is_terminal)
    with _progress(console, count, quiet) as bar:
        task = bar.add_task("exploring", total=count)

        def advance(done: int, result: RunResult) -> None:
            status = explored_status(result)
            bar.update(task, completed=min(done, count), description=f"{status:8}")
            plain.advance(done, f"last {status}")
            if book is not None:
                book.runs.append(run_record(result, part, done, history=False))

        report = run_explore(
            examples=count,
            seed=search_seed,
            target=chosen,
            out=out,
            clouds=clouds or CLOUDS,
            max_entries=max_entries,
            progress=advance,
            max_sim_time=max_sim_time,
            database=database,
            max_shrinks=max_shrinks,
            coverage=scope,
            steer=steer,
        )
    if book is not None:
        _finish_journal(book, report, part)
    if stats:
        click.echo(stats_text(report.stats()))
    _write_coverage_report(coverage_report, report.stats())
    counts = ", ".join(f"{n} {status}" for status, n in sorted(report.statuses.items()))
    if report.unverified:
        counts += f"; nothing to judge for {report.unverified_text()}"
    if report.repeats:
        counts += f"; {report.repeats} schedule(s) drawn again, not run again"
    if report.failure is None:
        click.echo(f"no failing schedule in {report.examples} runs ({counts})")
        return EXIT_OK
    failure = report.failure
    click.echo(f"{report.examples} runs ({counts}); smallest failing schedule:")
    click.echo(f"  breaks: {', '.join(failure.broken)}")
    click.echo(f"  written to: {failure.path}")
    click.echo(f"  replay: {failure.command}")
    return EXIT_FAILED


def _coverage_mode(steer: bool, cover: tuple[str, ...], stats: bool, report: Path | None) -> str:
    """Steer by coverage, only record it (for --stats and --coverage-report), or neither."""
    if steer:
        return "steer"
    if stats or report is not None:
        return "record"
    if cover:
        raise InputError(
            "--cover names the code whose coverage is recorded; add --steer-coverage, --stats "
            "or --coverage-report to use it"
        )
    return "off"


def _write_coverage_report(path: Path | None, stats: dict[str, Any]) -> None:
    if path is None:
        return
    if "coverage" not in stats:
        click.echo(f"no coverage was recorded; {path} not written", err=True)
        return
    write_report(path, stats["coverage"], stats.get("runs", 0))
    click.echo(f"lines no schedule ran: {path}")


def _open_journal(
    path: Path | None, profile: str | None, part: Shard, seed: int | None, target: str
) -> Journal | None:
    if path is None:
        return None
    meta = {"command": "explore", "profile": profile, "shard": part.label, "seed": seed}
    try:
        book = Journal(path, {**meta, "target": target})
    except JournalError as error:
        raise InputError(str(error)) from None
    if book.replaced:
        click.echo(f"replacing the earlier journal {book.path}", err=True)
    return book


def _finish_journal(book: Journal, report: ExploreReport, part: Shard) -> None:
    """The failing run with its history and replay line, the figures, then the final write."""
    if report.failed_run is not None and report.failure is not None:
        failing = run_record(report.failed_run, part, report.examples, history=True)
        failing.update(file=str(report.failure.path), replay=report.failure.command)
        book.runs.append(failing)
    book.meta["explore"] = report.stats()
    book.finish()


def _on_workers(
    workers: int,
    profile: str,
    examples: int | None,
    seed: int | None,
    target: str,
    out: Path,
    clouds: tuple[Cloud, ...],
    max_entries: int,
    journal: Path | None,
    max_shrinks: int,
    max_sim_time: float,
    coverage_mode: str,
    cover: tuple[str, ...],
    steer: bool,
) -> int:
    """One shard per worker through pytest-xdist; pytest's own lines show the progress."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "harness.explore.pytest_campaign",
        "--pyargs",
        "harness.explore.shards",
        "-n",
        str(workers),
        "-p",
        "no:cacheprovider",
        "-q",
        "--explore-shards",
        str(workers),
        "--explore-profile",
        profile,
        "--explore-target",
        target.removeprefix("python:"),
        "--explore-out",
        str(out),
        "--explore-max-entries",
        str(max_entries),
        "--explore-max-shrinks",
        str(max_shrinks),
        "--explore-max-sim-time",
        repr(max_sim_time),
        "--explore-coverage",
        coverage_mode,
    ]
    for named in cover:
        command += ["--explore-cover", named]
    command += ["--explore-steer"] if steer else []
    command += ["--explore-examples", str(examples)] if examples else []
    command += ["--explore-seed", str(seed)] if seed is not None else []
    command += ["--explore-journal", str(journal)] if journal is not None else []
    for cloud in clouds:
        command += ["--explore-cloud", cloud]
    click.echo("running: " + " ".join(command[1:]), err=True)
    code = subprocess.call(command)
    if code in (0, 1):  # every shard passed / a shard found a failing schedule
        return EXIT_OK if code == 0 else EXIT_FAILED
    click.echo(f"the campaign did not finish: pytest exited with status {code}", err=True)
    return EXIT_INTERRUPTED if code == 2 else EXIT_ENVIRONMENT


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
