"""``harness validate PATH...``: check scenario files without running them."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli import EXIT_OK, EXIT_USAGE
from harness.scenario.loader import load_paths


@click.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...]) -> int:
    """Check scenario files and report every problem with file:line:col.

    Directories are searched for *.yaml and *.yml. Exit status 2 if any file is invalid.

    \b
    Examples:
      harness validate scenarios
      harness validate my_scenario.yaml
    """
    loaded, problems = load_paths(paths)
    for problem in problems:
        click.echo(str(problem), err=True)
    if not loaded and not problems:
        click.echo(f"no *.yaml or *.yml file in {_listed(paths)}", err=True)
    files = len({item.file for item in loaded})
    click.echo(
        f"{len(loaded)} scenario(s) in {files} file(s) valid"
        + (f"; {len(problems)} problem(s)" if problems else "")
    )
    return EXIT_USAGE if problems or not loaded else EXIT_OK


def _listed(paths: tuple[Path, ...]) -> str:
    return ", ".join(str(path) for path in paths)
