"""``harness schema``: print the JSON Schema of scenario files, or of the control API's bodies."""

from __future__ import annotations

import click

from fake_imds.schema import control_schema_text
from harness.cli import EXIT_OK
from harness.scenario.schema import schema_text


@click.command("schema")
@click.argument(
    "document", type=click.Choice(["scenario", "control"]), default="scenario", required=False
)
def schema(document: str) -> int:
    """Print a JSON Schema (draft 2020-12), generated from the models that validate the input.

    DOCUMENT is `scenario` (the default): scenario files. Editors use it for completion and
    inline errors, e.g. with a first line
    `# yaml-language-server: $schema=scenario.schema.json` in a scenario file.

    Or `control`: the bodies of the fake metadata server's control API, under `$defs`:
    `NoticeBody` (POST /_harness/v1/notices, one model per cloud and kind), `FaultBody`
    (POST faults) and `AwsIdentityBody` (PATCH identity/aws).

    \b
    Examples:
      harness schema > scenario.schema.json
      harness schema control > control.schema.json
    """
    click.echo(control_schema_text() if document == "control" else schema_text(), nl=False)
    return EXIT_OK
