"""The ``harness`` command. Subcommands live in ``harness.commands.*`` and are loaded lazily, so
``harness --help`` stays fast and a broken optional dependency only breaks its own command.

Exit codes, mapped here and nowhere else: 0 success, 1 a check or scenario failed,
2 usage or input error (click's own), 3 an environment problem (server, cloud, permissions),
130 interrupted.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import click

from harness import __version__

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3
EXIT_INTERRUPTED = 130

#: name -> "module:attribute" of a click command.
COMMANDS: dict[str, str] = {
    "agent": "harness.commands.agent:agent",
    "cost": "harness.commands.cost:cost",
    "demo": "harness.commands.demo:demo",
    "explore": "harness.commands.explore:explore",
    "inject": "harness.commands.inject:inject",
    "margin": "harness.commands.margin:margin",
    "notice": "harness.commands.notice:notice",
    "report": "harness.commands.report:report",
    "run": "harness.commands.run:run",
    "runtime": "harness.commands.runtime:runtime",
    "schema": "harness.commands.schema:schema",
    "serve": "harness.commands.serve:serve",
    "validate": "harness.commands.validate:validate",
}


class HarnessError(click.ClickException):
    """An error the user can act on: printed without a traceback, with an exit code."""

    exit_code = EXIT_ENVIRONMENT

    def __init__(self, message: str, exit_code: int = EXIT_ENVIRONMENT) -> None:
        super().__init__(message)
        self.__dict__["exit_code"] = exit_code


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="harness")
def cli() -> None:
    """Chaos testing for spot-instance interruptions.

    \b
    Examples:
      harness run scenarios                 # the standard scenario library, embedded
      harness serve --imdsv2 required       # a fake metadata server on 127.0.0.1
      harness notice --url URL --action terminate --lead 2m
      harness inject --target i-0abc12345678def01 --dry-run
      harness demo                          # a spot interruption end to end, in one second
    """


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code instead of exiting (for tests and embedding).

    Commands return their exit code as an int; errors map to codes here.
    """
    try:
        result = cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.Exit as stop:
        return stop.exit_code
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return EXIT_INTERRUPTED
    return result if isinstance(result, int) else EXIT_OK


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
