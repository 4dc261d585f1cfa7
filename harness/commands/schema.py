"""``harness schema``: print the JSON Schema of scenario files."""

from __future__ import annotations

import click

from harness.cli import EXIT_OK
from harness.scenario.schema import schema_text


@click.command("schema")
def schema() -> int:
    """Print the JSON Schema of scenario files (draft 2020-12).

    Editors use it for completion and inline errors, e.g. with a first line
    `# yaml-language-server: $schema=scenario.schema.json` in a scenario file.

    \b
    Examples:
      harness schema > scenario.schema.json
    """
    click.echo(schema_text(), nl=False)
    return EXIT_OK
