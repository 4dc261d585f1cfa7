"""The HTML report: one self-contained page (inline CSS and SVG, no script, no network).

A summary table of every run (failed ones first), then per run its checks with their status and
evidence, an SVG timeline, the text timeline of :mod:`harness.report.render` and the replay
command. ``harness margin`` and ``harness cost`` add their plots as extra sections.

A report is only ever written where there is no file or an earlier report, never over anything
else (the same rule as the journal).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.checks.results import EVIDENCE
from harness.report.figures import RunFigures, run_figures
from harness.report.journal import write_atomic
from harness.report.render import (
    STATUS_ORDER,
    check_label,
    check_status,
    check_verdict,
    render_record,
)
from harness.report.svg import esc, legend_html, timeline_svg
from harness.units import format_duration

#: Marks a file as a report, so that a later report may replace it (and nothing else).
GENERATOR = "spot-harness-report/1"
_MARKER = f'<meta name="generator" content="{GENERATOR}">'


class ReportError(ValueError):
    """The report path cannot be used; the message says why."""


@dataclass(frozen=True)
class Section:
    """An extra part of the page (a margin or cost plot): a heading and trusted HTML."""

    title: str
    html: str
    anchor: str


def check_report_path(path: Path) -> bool:
    """Raise unless ``path`` is free or holds an earlier report; True in the latter case."""
    if path.is_dir():
        raise ReportError(f"{path} is a directory; give a file name such as report.html")
    if not path.exists():
        if not path.parent.is_dir():
            raise ReportError(f"{path.parent} does not exist; create it or choose another path")
        return False
    try:
        with path.open("r", encoding="utf-8") as existing:
            head = existing.read(4096)
    except (OSError, UnicodeDecodeError):
        head = ""
    if _MARKER not in head:
        raise ReportError(
            f"{path} exists and is not a harness report; refusing to overwrite it "
            "(choose another path or remove the file)"
        )
    return True


def write_report(path: Path, page: str) -> bool:
    """Write ``page`` to ``path`` atomically; True if it replaced an earlier report."""
    replaced = check_report_path(path)
    write_atomic(path, page)
    return replaced


def render_report(
    document: Mapping[str, Any], sections: Sequence[Section] = (), title: str = ""
) -> str:
    """The whole page for a journal document (``runs`` may be empty when only sections)."""
    runs = sorted(
        enumerate(document.get("runs") or ()),
        key=lambda pair: (_status_rank(pair[1]), pair[0]),
    )
    body = [f"<h1>{esc(title or 'spot-harness report')}</h1>"]
    if runs:
        body.append(f'<p class="totals">{esc(_totals(document))}</p>')
    problems = document.get("problems") or ()
    if problems:
        items = "".join(f"<li><pre>{esc(p)}</pre></li>" for p in problems)
        body.append(f'<section class="problems"><h2>Problems</h2><ul>{items}</ul></section>')
    figures = {index: run_figures(record) for index, record in runs}
    if runs:
        body.append(_summary(runs, figures))
    for section in sections:
        body.append(
            f'<section id="{esc(section.anchor)}"><h2>{esc(section.title)}</h2>'
            f"{section.html}</section>"
        )
    if runs:
        body.append(f'<div class="legend">{legend_html()}</div>')
    for index, record in runs:
        body.append(_run_section(index, record, figures[index]))
    return _PAGE.format(title=esc(title or "spot-harness report"), body="\n".join(body))


def _status_rank(record: Mapping[str, Any]) -> int:
    status = str(record.get("status", "error"))
    return STATUS_ORDER.index(status) if status in STATUS_ORDER else 0


def _totals(document: Mapping[str, Any]) -> str:
    runs = document.get("runs") or ()
    counts: dict[str, int] = {}
    for run in runs:
        counts[str(run.get("status"))] = counts.get(str(run.get("status")), 0) + 1
    parts = [f"{counts[s]} {s}" for s in STATUS_ORDER if s in counts]
    simulated = sum(float(r.get("sim_seconds", 0.0)) for r in runs)
    wall = sum(float(r.get("wall_seconds", 0.0)) for r in runs)
    unfinished = "" if document.get("finished", True) else " (the journal is not finished)"
    return (
        f"{len(runs)} runs: {', '.join(parts)}; {format_duration(round(simulated))} simulated "
        f"in {wall:.2f}s{unfinished}"
    )


def _badge(status: str) -> str:
    return f'<span class="badge {esc(status)}">{esc(status)}</span>'


def _seconds(value: float | None, missing: str = "-") -> str:
    return missing if value is None else format_duration(round(value, 1))


def _summary(runs: Sequence[tuple[int, Mapping[str, Any]]], figures: Mapping[int, Any]) -> str:
    head = (
        "<tr><th>scenario</th><th>seed</th><th>verdict</th><th>checks (evidence)</th>"
        "<th>lost work</th><th>detection latency</th><th>margin before deadline</th>"
        "<th>instances</th><th>simulated</th><th>wall</th></tr>"
    )
    rows = []
    for index, record in runs:
        found: RunFigures = figures[index]
        rows.append(
            f'<tr class="{esc(record.get("status", ""))}">'
            f'<td><a href="#run-{index}">{esc(record.get("name") or record.get("file") or index)}'
            f"</a></td><td>{esc(record.get('seed', ''))}</td>"
            f"<td>{_badge(str(record.get('status', '?')))}</td>"
            f"<td>{_check_chips(record.get('checks') or ())}</td>"
            f"<td>{esc(_seconds(max(found.lost_work, default=None)))}</td>"
            f"<td>{esc(_seconds(max(found.detection, default=None)))}</td>"
            f"<td>{_margin_cell(found)}</td>"
            f"<td>{found.instances}</td>"
            f"<td>{esc(_seconds(float(record.get('sim_seconds', 0.0))))}</td>"
            f"<td>{float(record.get('wall_seconds', 0.0)) * 1000:.0f} ms</td></tr>"
        )
    return f'<table class="summary"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _margin_cell(found: RunFigures) -> str:
    worst = found.worst_margin
    if worst is None:
        return "-"
    if worst.seconds is None:
        return '<span class="bad">no save before the deadline</span>'
    return esc(format_duration(round(worst.seconds, 1)))


_MARKS = {"passed": "✓", "failed": "✗", "unverified": "?"}


def _check_chips(checks: Iterable[Mapping[str, Any]]) -> str:
    chips = []
    for check in checks:
        status = check_status(check)
        names = ", ".join(check.get("evidence") or ())
        # a journal from before checks named their evidence: the run's table says so once
        evidence = f" <small>({esc(names)})</small>" if names else ""
        known = " known-bad" if check.get("fails") else ""
        chips.append(
            f'<span class="chip {status}{known}" title="{esc(check_verdict(check))}; '
            f'{esc(check.get("summary") or check.get("reason") or "")}">'
            f"{_MARKS.get(status, '')} {esc(check_label(check))}{evidence}</span>"
        )
    return " ".join(chips)


def _evidence(names: Iterable[str]) -> str:
    shown = [
        f'<abbr title="{esc(EVIDENCE.get(name, "evidence"))}">{esc(name)}</abbr>' for name in names
    ]
    # A journal written before checks named their evidence has none to show.
    return ", ".join(shown) or '<span class="dim">not recorded</span>'


def _checks_table(checks: Sequence[Mapping[str, Any]]) -> str:
    if not checks:
        return "<p>No check was judged.</p>"
    rows = []
    for check in checks:
        status = check_status(check)
        note = check.get("reason") if status == "unverified" else check.get("summary")
        violations = "".join(
            f"<li>{esc(v.get('message', ''))}"
            + (
                " <small>events "
                + ", ".join(f"#{e['seq']} {esc(e['kind'])}" for e in v.get("events") or ())
                + "</small>"
                if v.get("events")
                else ""
            )
            + "</li>"
            for v in check.get("violations") or ()
        )
        rows.append(
            f'<tr class="{status}"><td>{esc(check_label(check))}</td>'
            f"<td>{_badge(status)} {esc(check_verdict(check))}</td>"
            f"<td>{_evidence(check.get('evidence') or ())}</td>"
            f"<td>{esc(note or '')}"
            + (f"<ul>{violations}</ul>" if violations else "")
            + "</td></tr>"
        )
    return (
        '<table class="checks"><thead><tr><th>check</th><th>status</th><th>evidence</th>'
        f"<th>what it found</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _run_section(index: int, record: Mapping[str, Any], found: RunFigures) -> str:
    status = str(record.get("status", "?"))
    name = record.get("name") or record.get("file") or f"run {index}"
    facts = [
        f"seed {record.get('seed', '?')}",
        f"ended: {record.get('end_reason', '?')}",
        f"{_seconds(float(record.get('sim_seconds', 0.0)))} simulated",
        f"{float(record.get('wall_seconds', 0.0)) * 1000:.0f} ms wall",
        f"{found.instances} instance(s), {found.interruptions} interrupted",
    ]
    error = f'<p class="bad">{esc(record["error"])}</p>' if record.get("error") else ""
    failed = status not in ("passed", "xfailed")
    return (
        f'<section class="run {esc(status)}" id="run-{index}">'
        f"<h2>{_badge(status)} {esc(name)}</h2>"
        f'<p class="description">{esc(record.get("description", ""))}</p>'
        f'<p class="facts">{esc(" · ".join(facts))}</p>{error}'
        f"{_checks_table(record.get('checks') or ())}"
        f'<div class="svgbox">{timeline_svg(record)}</div>'
        f"<details{' open' if failed else ''}><summary>text timeline</summary>"
        f"<pre>{esc(render_record(record))}</pre></details>"
        f"<p>replay: <code>{esc(record.get('replay', ''))}</code></p></section>"
    )


_PAGE = (
    "<!DOCTYPE html>\n"
    '<html lang="en"><head><meta charset="utf-8">\n'
    + _MARKER
    + '\n<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>{title}</title><style>\n"
    "body{{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}}\n"
    "table.summary{{width:100%}}\n"
    "table.summary td:first-child{{min-width:16em;overflow-wrap:anywhere}}\n"
    "h1{{font-size:1.5em}} h2{{font-size:1.15em;margin-top:1.6em}}\n"
    "table{{border-collapse:collapse;margin:.6em 0;font-size:.9em}}\n"
    "th,td{{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}}\n"
    "th{{background:#f4f4f4}}\n"
    ".badge{{display:inline-block;padding:1px 7px;border-radius:9px;color:#fff;"
    "font-size:.85em;background:#777}}\n"
    ".badge.passed{{background:#2e8b57}} .badge.xfailed{{background:#b8860b}}\n"
    ".badge.failed,.badge.error,.badge.xpassed{{background:#d62728}}\n"
    ".badge.unverified{{background:#8e44ad}}\n"
    ".chip{{display:inline-block;margin:1px 2px;padding:0 4px;border-radius:4px;"
    "background:#eef6ee}}\n"
    ".chip.failed{{background:#fde2e2}} .chip.unverified{{background:#efe3f6}}\n"
    ".chip.known-bad{{outline:1px dashed #b8860b}}\n"
    ".chip small,td small{{color:#666}}\n"
    ".bad{{color:#d62728;font-weight:bold}} .dim{{color:#888}}\n"
    "tr.failed td:first-child,tr.error td:first-child{{border-left:4px solid #d62728}}\n"
    "tr.unverified td:first-child{{border-left:4px solid #8e44ad}}\n"
    ".svgbox{{overflow-x:auto}} svg{{background:#fff}}\n"
    ".legend{{font-size:.85em;margin:1em 0}} .key{{margin-right:1em;white-space:nowrap}}\n"
    "pre{{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.8em}}\n"
    ".description{{font-style:italic}} .facts{{color:#555;font-size:.9em}}\n"
    "</style></head><body>\n{body}\n</body></html>\n"
)
