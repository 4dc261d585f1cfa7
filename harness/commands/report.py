"""``harness report JOURNAL...``: the HTML report of one or more journals."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from harness.cli import EXIT_OK
from harness.errors import InputError
from harness.report.html import ReportError, Section, check_report_path, render_report, write_report
from harness.report.journal import JournalError, journal_document, load_journal


@click.command("report")
@click.argument("journals", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The HTML file to write (default: the first journal's name with .html). An earlier "
    "report there is replaced; any other file is refused.",
)
@click.option("--title", default="", help="Heading of the page (default: spot-harness report).")
def report(journals: tuple[Path, ...], output: Path | None, title: str) -> int:
    """Write the HTML report of journals (from `harness run --journal` or pytest).

    One self-contained page, readable offline: a summary of every run (failed first) with the
    checks, their evidence, lost work, notice detection and the margin left before each
    deadline; then per run an SVG timeline (instances as lanes, notices and deadlines,
    checkpoints by tier, faults, kills, outputs, violations), the text timeline and the
    command that replays it. Several journals (e.g. one per pytest-xdist worker) make one
    report.

    \b
    Examples:
      harness run scenarios --journal out.json && harness report out.json
      harness report out.json -o /tmp/report.html
      harness report nightly-*.json -o nightly.html --title "nightly scenarios"
    """
    documents = [_load(path) for path in journals]
    target = output or journals[0].with_suffix(".html")
    if target.resolve() in {path.resolve() for path in journals}:
        raise InputError(f"{target} is one of the journals; choose another -o")
    merged = merge_documents(documents, journals)
    click.echo(write_document(target, merged, title=title))
    return EXIT_OK


def _load(path: Path) -> dict[str, Any]:
    try:
        return load_journal(path)
    except JournalError as error:
        raise InputError(str(error)) from None


def merge_documents(documents: Sequence[dict[str, Any]], paths: Sequence[Path]) -> dict[str, Any]:
    """One journal document holding the runs and problems of all of ``documents``."""
    if len(documents) == 1:
        return documents[0]
    runs = [run for document in documents for run in document.get("runs") or ()]
    problems = [str(p) for document in documents for p in document.get("problems") or ()]
    meta = {"command": "report", "journals": [str(path) for path in paths]}
    finished = all(document.get("finished", True) for document in documents)
    return journal_document(runs, problems, meta, finished=finished)


def check_report(path: Path) -> bool:
    """Refuse a report path that is not free and holds no earlier report (exit 2)."""
    try:
        return check_report_path(path)
    except ReportError as error:
        raise InputError(str(error)) from None


def write_document(
    path: Path, document: dict[str, Any], sections: Sequence[Section] = (), title: str = ""
) -> str:
    """Write the report of ``document``; returns the line that tells the user where it is."""
    try:
        replaced = write_report(path, render_report(document, sections, title=title))
    except ReportError as error:
        raise InputError(str(error)) from None
    return f"report: {path}" + (" (replaced the earlier report)" if replaced else "")


def write_run_report(
    path: Path, records: list[dict[str, Any]], problems: list[str], meta: dict[str, Any]
) -> str:
    """The report of runs made by this process (``harness run --report``)."""
    return write_document(path, journal_document(records, problems, meta, finished=True))
