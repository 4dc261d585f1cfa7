"""``harness scenarios``: the standard scenario library shipped with the package."""

from __future__ import annotations

import click

from harness.cli import EXIT_OK
from harness.errors import InputError
from harness.scenario import library
from harness.scenario.loader import load_file


@click.group("scenarios")
def scenarios() -> None:
    """The standard scenario library, shipped with the package.

    Run it from anywhere with `harness run --library`, or part of it with
    `harness run library:FOLDER` / `library:FOLDER/NAME`.

    \b
    Examples:
      harness scenarios list
      harness scenarios list aws
      harness scenarios show aws/terminate_mid_job > my_scenario.yaml
      harness run library:aws/terminate_mid_job
    """


@scenarios.command("list")
@click.argument("folder", required=False, default="")
def list_scenarios(folder: str) -> int:
    """List the library's scenarios (optionally one FOLDER) with their descriptions.

    \b
    Examples:
      harness scenarios list
      harness scenarios list known_bad
    """
    root = library.library_root()
    base = library.resolve(library.PREFIX + folder)
    for name in library.names(root):
        file = library.resolve(library.PREFIX + name)
        if base != root and base not in file.parents:
            continue
        for item in load_file(file):
            suffix = f"[{item.document + 1}]" if item.documents > 1 else ""
            click.echo(
                f"{library.PREFIX}{name}{suffix}  {_first_sentence(item.scenario.description)}"
            )
    return EXIT_OK


@scenarios.command("show")
@click.argument("name")
def show(name: str) -> int:
    """Print one library scenario's YAML, e.g. to start a scenario of your own from it.

    \b
    Examples:
      harness scenarios show aws/terminate_mid_job
      harness scenarios show library:gcp/preemption > preemption.yaml
    """
    file = library.resolve(name if library.is_library_name(name) else library.PREFIX + name)
    if file.is_dir():
        raise InputError(
            f"`{name}` is a folder; name one of its scenarios (`harness scenarios list`)"
        )
    click.echo(file.read_text(), nl=False)
    return EXIT_OK


def _first_sentence(text: str) -> str:
    head, dot, _ = text.partition(". ")
    return head + (dot.strip() if dot else "")
