"""The summary table printed after ``harness run``: one row per scenario run."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.history import Kind
from harness.sim.runner import RunResult
from harness.units import format_duration

STATUS_STYLE = {
    "passed": "green",
    "xfailed": "yellow",
    "failed": "bold red",
    "unverified": "bold magenta",
    "xpassed": "bold red",
    "error": "bold red",
}


@dataclass(frozen=True)
class Row:
    name: str
    result: RunResult
    file: Path | None = None


def summary_table(rows: Sequence[Row], *, whole_words: bool = False) -> Table:
    """One row per run. With ``whole_words`` (for logs, which do not reflow), cells wrap
    between words, never inside one: each wrapping column is at least as wide as its longest
    word, and the console must be :func:`fitting_width` wide."""
    table = Table(title="scenario runs", title_justify="left", expand=False)
    table.add_column("scenario", overflow="fold")
    table.add_column("seed", justify="right")
    table.add_column("status")
    table.add_column("instances", justify="right")
    table.add_column("simulated", justify="right")
    table.add_column("wall", justify="right")
    table.add_column("checks broken", overflow="fold")
    for row in rows:
        result = row.result
        broken = ", ".join(
            c.spec.label + (" (unverified)" if c.result.unverified else "")
            for c in result.failed_checks
        ) or (result.error or "")
        if not broken:
            known = [c.spec.label for c in result.checks if c.expected_to_fail]
            broken = ", ".join(f"{label} (known bad)" for label in known)
        instances = len(result.history.of_kind(Kind.INSTANCE_STARTED))
        status = result.status
        table.add_row(
            row.name,
            str(result.seed),
            f"[{STATUS_STYLE[status]}]{status}[/]",
            str(instances),
            format_duration(round(result.sim_seconds)),
            f"{result.wall_seconds * 1000:.0f}ms",
            broken,
        )
    for column in (table.columns[0], table.columns[-1]) if whole_words else ():
        column.min_width = max((len(w) for c in column.cells for w in str(c).split()), default=0)
    return table


#: The widest a log line of the table may get; past it, cells wrap between words.
MAX_LOG_WIDTH = 400


def fitting_width(table: Table) -> int:
    """A console width at which no cell of ``table`` is cut inside a word: wide enough for
    every row on one line, up to :data:`MAX_LOG_WIDTH`, and never narrower than the longest
    words need."""
    wide = Console(width=MAX_LOG_WIDTH, file=io.StringIO())
    words = sum((c.min_width or 0) + 3 for c in table.columns) + 1
    return max(min(wide.measure(table).maximum, MAX_LOG_WIDTH), words)


def totals_line(rows: Sequence[Row]) -> str:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.result.status] = counts.get(row.result.status, 0) + 1
    parts = [
        f"{counts[s]} {s}"
        for s in ("passed", "xfailed", "failed", "unverified", "xpassed", "error")
        if s in counts
    ]
    simulated = sum(r.result.sim_seconds for r in rows)
    wall = sum(r.result.wall_seconds for r in rows)
    speed = f", {simulated / wall:,.0f}x real time" if wall > 0 else ""
    return (
        f"{len(rows)} runs: {', '.join(parts) or 'none'}; "
        f"{format_duration(round(simulated))} simulated in {wall:.2f}s{speed}"
    )
