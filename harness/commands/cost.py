"""``harness cost``: what interruptions cost a job, from its journal and a price table."""

from __future__ import annotations

import math
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from harness.cli import EXIT_OK
from harness.commands.options import Duration
from harness.commands.report import check_report, merge_documents, write_document
from harness.commands.run import LOG_WIDTH
from harness.errors import InputError
from harness.report.cost import (
    Costed,
    Measured,
    PriceError,
    PriceTable,
    cost_plot,
    cost_rows,
    default_prices_path,
    load_prices,
    measure,
    select,
)
from harness.report.html import Section
from harness.report.journal import JournalError, journal_document, load_journal
from harness.report.svg import esc
from harness.units import format_duration


@click.command("cost")
@click.option(
    "--journal",
    "journals",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="A journal of runs of the job (harness run --journal); repeat for several.",
)
@click.option(
    "--prices",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Price table YAML (default: the shipped table of example figures).",
)
@click.option("--provider", help="Only rows of this provider (aws, gcp, ...).")
@click.option("--instance-type", help="Only rows of this instance type.")
@click.option(
    "--overhead",
    type=click.FloatRange(0, 100, max_open=True),
    help="Checkpoint overhead in percent of instance time, instead of the journal's.",
)
@click.option(
    "--lost-work",
    type=Duration(seconds=True),
    help="Work redone per interruption, instead of the journal's (e.g. 90s).",
)
@click.option(
    "--recovery",
    type=Duration(seconds=True),
    help="Boot to resume per interruption, instead of the journal's (e.g. 20s).",
)
@click.option(
    "--report",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write an HTML page with the plot (an earlier report there is replaced).",
)
@click.option("--show-prices", is_flag=True, help="Print the price table's path and stop.")
def cost(
    journals: tuple[Path, ...],
    prices: Path | None,
    provider: str | None,
    instance_type: str | None,
    overhead: float | None,
    lost_work: float | None,
    recovery: float | None,
    report: Path | None,
    show_prices: bool,
) -> int:
    """The interruption-adjusted price of a job on spot, against on-demand.

    Measures, from the journal's runs, the checkpoint overhead (share of instance time from a
    checkpoint's start to its first durable copy), the mean work redone per interruption and
    the mean recovery time (a replacement's boot to its resume); reads on-demand and spot
    prices and interruption rates from a price table; prints the effective price of a useful
    hour (and of 1000 items when the job says how long one takes), the share of on-demand it
    is, and the interruption rate at which spot stops paying. The default table holds EXAMPLE
    figures with named, dated sources; pass your own with --prices.

    \b
    Examples:
      harness run scenarios/aws --journal aws.json && harness cost --journal aws.json
      harness cost --journal aws.json --provider aws --report cost.html
      harness cost --overhead 1.5 --lost-work 4m --recovery 40s --prices my-prices.yaml
      harness cost --show-prices
    """
    if show_prices:
        click.echo(prices or default_prices_path())
        return EXIT_OK
    if report is not None:
        check_report(report)
    table = _prices(prices)
    rows = select(table, provider, instance_type)
    if not rows:
        raise InputError(
            f"no price row for provider {provider or 'any'} and instance type "
            f"{instance_type or 'any'}; the table has: "
            + ", ".join(sorted({r.label for r in table.prices}))
        )
    measured = _measured(journals, overhead, lost_work, recovery)
    costed = cost_rows(measured, rows)
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = LOG_WIDTH
    for line in measured_lines(measured):
        console.print(line, markup=False)
    console.print(cost_table(costed, measured, table.currency))
    console.print(prices_note(table, prices), markup=False)
    if report is not None:
        html = cost_html(measured, costed, table, prices)
        document = journal_document([], [], {"command": "cost"}, finished=True)
        click.echo(write_document(report, document, [Section("Cost", html, "cost")], "cost"))
    return EXIT_OK


def _prices(path: Path | None) -> PriceTable:
    try:
        return load_prices(path)
    except PriceError as error:
        raise InputError(f"invalid price table:\n{error}") from None


def _measured(
    journals: tuple[Path, ...],
    overhead: float | None,
    lost_work: float | None,
    recovery: float | None,
) -> Measured:
    given = (overhead, lost_work, recovery)
    if not journals and None in given:
        raise InputError(
            "give a journal (--journal FILE, from harness run --journal) or all three figures "
            "(--overhead, --lost-work, --recovery)"
        )
    measured = Measured(0.0, 0.0, 0.0)
    if journals:
        try:
            documents = [load_journal(path) for path in journals]
        except JournalError as error:
            raise InputError(str(error)) from None
        measured = measure(merge_documents(documents, journals)["runs"])
        if measured.runs == 0:
            raise InputError("the journal holds no judged run to measure")
    return Measured(
        overhead=measured.overhead if overhead is None else overhead / 100,
        lost_work=measured.lost_work if lost_work is None else lost_work,
        recovery=measured.recovery if recovery is None else recovery,
        runs=measured.runs,
        interruptions=measured.interruptions,
        instance_seconds=measured.instance_seconds,
        seconds_per_item=measured.seconds_per_item,
    )


def measured_lines(measured: Measured) -> list[str]:
    source = (
        f"measured over {measured.runs} run(s), "
        f"{format_duration(round(measured.instance_seconds))} of instance time, "
        f"{measured.interruptions} interruption(s)"
        if measured.runs
        else "figures given on the command line"
    )
    lines = [
        source,
        f"  checkpoint overhead: {100 * measured.overhead:.2f} % of instance time "
        f"({format_duration(round(3600 * measured.overhead, 1))} per hour)",
        f"  lost work per interruption: {format_duration(round(measured.lost_work, 1))}",
        f"  recovery per interruption: {format_duration(round(measured.recovery, 1))}",
    ]
    if measured.runs and not measured.interruptions:
        lines.append(
            "  (no interruption in these runs: lost work and recovery are 0; run scenarios "
            "with notices to measure them)"
        )
    return lines


def _money(value: float, currency: str) -> str:
    return "never" if not math.isfinite(value) else f"{value:.4f} {currency}"


def _rate(value: float) -> str:
    if math.isinf(value):
        return "any"
    return f"{value:.3g}/h (one per {format_duration(round(3600 / value))})" if value else "none"


def cost_table(costed: list[Costed], measured: Measured, currency: str) -> Table:
    table = Table(title="effective price of a useful hour", title_justify="left")
    for name in (
        "instance",
        "on-demand/h",
        "spot/h",
        "interruptions/h",
        "effective/h",
        "vs on-demand",
    ):
        table.add_column(name, justify="left" if name == "instance" else "right")
    per_items = measured.seconds_per_item is not None
    if per_items:
        table.add_column("per 1000 items", justify="right")
    table.add_column("break-even rate", justify="right")
    for item in costed:
        row = item.row
        cells = [
            row.label,
            f"{row.on_demand:.4f}",
            f"{row.spot:.4f}",
            f"{row.interruptions_per_hour:.3g}",
            _money(item.effective, row.currency or currency),
            f"{100 * item.ratio:.0f} %" if math.isfinite(item.ratio) else "-",
        ]
        if measured.seconds_per_item is not None:
            per_item = item.effective * measured.seconds_per_item / 3.6
            cells.append(_money(per_item, row.currency or currency))
        cells.append(_rate(item.break_even))
        table.add_row(*cells)
    return table


def prices_note(table: PriceTable, path: Path | None) -> str:
    dates = sorted({str(s.date) for s in table.sources.values()})
    where = path or "the shipped table (EXAMPLE figures, not current prices)"
    return f"prices: {where}; sources dated {', '.join(dates)}. {table.note}".strip()


def cost_html(
    measured: Measured, costed: list[Costed], table: PriceTable, path: Path | None
) -> str:
    rows = "".join(
        f"<tr><td>{esc(c.row.label)}</td><td>{c.row.on_demand:.4f}</td><td>{c.row.spot:.4f}</td>"
        f"<td>{c.row.interruptions_per_hour:.3g}</td>"
        f"<td>{esc(_money(c.effective, c.row.currency or table.currency))}"
        f"</td><td>{100 * c.ratio:.0f} %</td><td>{esc(_rate(c.break_even))}</td>"
        f"<td>{esc(', '.join(c.row.sources))}<br><small>{esc(c.row.note)}</small></td></tr>"
        for c in costed
    )
    sources = "".join(
        f'<li><b>{esc(name)}</b>: {esc(s.title)}, <a href="{esc(s.url)}">{esc(s.url)}</a> '
        f"({esc(s.date)})</li>"
        for name, s in table.sources.items()
    )
    return (
        f"<pre>{esc(chr(10).join(measured_lines(measured)))}</pre>"
        "<table><tr><th>instance</th><th>on-demand/h</th><th>spot/h</th><th>interruptions/h</th>"
        "<th>effective/h</th><th>vs on-demand</th><th>break-even rate</th><th>sources</th></tr>"
        f"{rows}</table>"
        f'<div class="svgbox">{cost_plot(measured, costed)}</div>'
        f"<p>{esc(prices_note(table, path))}</p><ul>{sources}</ul>"
    )
