"""``harness margin SCENARIO``: how much notice (or bandwidth, state, outage) a job can take."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from harness.cli import EXIT_OK
from harness.commands.options import progress_bar
from harness.commands.report import check_report, write_document
from harness.errors import InputError
from harness.report.html import Section
from harness.report.journal import journal_document
from harness.report.margin import (
    KNOBS,
    MarginError,
    MarginResult,
    Probe,
    knob_for,
    margin_plot,
    most_probes,
    search,
    verdict_lines,
)
from harness.report.svg import esc
from harness.scenario.loader import ScenarioError, load_file
from harness.scenario.model import Scenario


@click.command("margin")
@click.argument("scenario", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--vary",
    type=click.Choice(KNOBS),
    default="lead",
    show_default=True,
    help="What to search: the notice's lead, the S3 upload bandwidth, the checkpoint state "
    "size, or the length of the scenario's IMDS fault.",
)
@click.option(
    "--seeds", type=click.IntRange(1, 1000), default=20, show_default=True, help="Seeds to run."
)
@click.option("--first-seed", type=click.IntRange(min=0), help="Default: the scenario's seed.")
@click.option(
    "--percentile",
    type=click.FloatRange(50, 100),
    default=99.0,
    show_default=True,
    help="Which percentile of the per-seed boundaries to report.",
)
@click.option(
    "--document",
    type=click.IntRange(min=1),
    help="Which scenario of a file that holds several (1-based).",
)
@click.option("--low", help="Lower end of the search (default: 1s, 100kB/s, 1MiB or 0s).")
@click.option("--high", help="Upper end of the search (default: 10m, 10GB/s, 1TiB or 1h).")
@click.option(
    "--report",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write an HTML page with the plot (an earlier report there is replaced).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def margin(
    scenario: Path,
    vary: str,
    seeds: int,
    first_seed: int | None,
    percentile: float,
    document: int | None,
    low: str | None,
    high: str | None,
    report: Path | None,
    quiet: bool,
) -> int:
    """Find where `saved_before_deadline` starts failing, by bisection over seeds.

    Varies one parameter of SCENARIO (by default the lead of every notice that ends an
    instance), bisects it for each seed between a value where the check holds and one where
    it fails, and prints the percentile of the boundaries, against each cloud's notice:
    AWS 120s, GCP 30s, Azure 30s (the shortest NotBefore of a Preempt), Kubernetes the grace
    period. Each run is a full simulated run; the progress bar shows them.

    \b
    Examples:
      harness margin scenarios/aws/notice_during_checkpoint_upload.yaml
      harness margin scenarios/gcp/preemption.yaml --seeds 50 --report margin.html
      harness margin scenarios/gcp/preemption.yaml --low 1s --high 1m
      harness margin scenarios/aws/notice_during_checkpoint_upload.yaml --vary bandwidth
      harness margin scenarios/aws/imds_server_errors.yaml --vary imds-outage
    """
    chosen = _load(scenario, document)
    if report is not None:
        check_report(report)
    try:
        knob = knob_for(vary, chosen).bounded(low, high)
    except MarginError as error:
        raise InputError(f"{scenario}: {error}") from None
    start = chosen.seed if first_seed is None else first_seed
    console = Console(stderr=True)
    with progress_bar(console, quiet) as progress:
        task = progress.add_task(f"{vary}: runs (at most)", total=seeds * most_probes(knob))

        def advance(probe: Probe) -> None:
            progress.update(task, advance=1, description=f"{vary}: seed {probe.seed}")

        try:
            result = search(
                chosen, knob, range(start, start + seeds), percentile=percentile, on_probe=advance
            )
        except MarginError as error:
            raise InputError(str(error)) from None
    for line in verdict_lines(result):
        click.echo(line)
    click.echo(f"{result.runs} runs")
    if report is not None:
        section = Section(f"Margin: {scenario}", margin_html(result, chosen), "margin")
        meta = {"command": "margin", "paths": [str(scenario)]}
        click.echo(
            write_document(
                report, journal_document([], [], meta, finished=True), [section], "margin"
            )
        )
    return EXIT_OK


def _load(path: Path, document: int | None) -> Scenario:
    try:
        loaded = load_file(path)
    except ScenarioError as error:
        raise InputError(str(error)) from None
    if document is not None:
        if document > len(loaded):
            raise InputError(f"{path} holds {len(loaded)} scenario(s), not {document}")
        return loaded[document - 1].scenario
    if len(loaded) != 1:
        raise InputError(f"{path} holds {len(loaded)} scenarios; choose one with --document N")
    return loaded[0].scenario


def margin_html(result: MarginResult, scenario: Scenario) -> str:
    """The margin section of a report: the verdict, the plot and every seed's boundary."""
    knob = result.knob
    rows = "".join(
        f"<tr><td>{b.seed}</td><td>"
        + (
            "fails even at " + esc(knob.format(knob.safe_end))
            if b.holds_at is None
            else esc(knob.format(b.holds_at)) + (" (or less)" if b.always else "")
        )
        + "</td></tr>"
        for b in result.boundaries
    )
    return (
        f'<p class="description">{esc(scenario.description)}</p>'
        f"<pre>{esc(chr(10).join(verdict_lines(result)))}</pre>"
        f'<div class="svgbox">{margin_plot(result)}</div>'
        f"<details><summary>boundary per seed ({result.runs} runs)</summary>"
        f"<table><tr><th>seed</th><th>{esc(knob.what)} at which the check still holds</th></tr>"
        f"{rows}</table></details>"
    )
