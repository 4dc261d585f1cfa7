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
from harness.errors import EnvironmentProblem, HarnessError, InputError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3
EXIT_INTERRUPTED = 130

#: name -> "module:attribute" of a click command.
COMMANDS: dict[str, str] = {
    "agent": "harness.commands.agent:agent",
    "cost": "harness.commands.cost:cost",
    "crash-points": "harness.commands.crashpoints:crash_points",
    "demo": "harness.commands.demo:demo",
    "explore": "harness.commands.explore:explore",
    "inject": "harness.commands.inject:inject",
    "margin": "harness.commands.margin:margin",
    "notice": "harness.commands.notice:notice",
    "report": "harness.commands.report:report",
    "run": "harness.commands.run:run",
    "runtime": "harness.commands.runtime:runtime",
    "scenarios": "harness.commands.scenarios:scenarios",
    "schema": "harness.commands.schema:schema",
    "serve": "harness.commands.serve:serve",
    "validate": "harness.commands.validate:validate",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            extra = EXTRAS.get((error.name or "").partition(".")[0])
            if extra is None:
                raise
            return _needs_extra(cmd_name, extra, error.name or "")
        command = getattr(module, attr)
        assert isinstance(command, click.Command)
        return command


#: Top-level packages of the optional extras -> the extra that installs them. The base install
#: (agent, inject, serve, notice, runtime) has none of them.
EXTRAS = {"moto": "sim", "fakeredis": "sim", "hypothesis": "sim", "pytest": "sim", "_pytest": "sim"}


def _needs_extra(name: str, extra: str, missing: str) -> click.Command:
    """A stand-in for a command whose extra is not installed: it says what to install."""
    hint = f"pip install 'spot-harness[{extra}]'"

    def refuse() -> None:
        raise EnvironmentProblem(
            f"`harness {name}` needs the [{extra}] extra ({missing} is not installed): {hint}"
        )

    return click.Command(
        name,
        callback=refuse,
        help=f"Not installed here: needs the [{extra}] extra ({hint}).",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
    )


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="harness")
def cli() -> None:
    """Chaos testing for spot-instance interruptions.

    \b
    Examples:
      harness run --library                 # the standard scenario library, shipped
      harness scenarios list                # its scenarios, one line each
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
    except HarnessError as error:
        click.echo(f"Error: {error}", err=True)
        return exit_code(error)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return EXIT_INTERRUPTED
    return result if isinstance(result, int) else EXIT_OK


def exit_code(error: HarnessError) -> int:
    """The exit code of an error the user can act on: the one place that decides it."""
    if isinstance(error, InputError):
        return EXIT_USAGE
    if isinstance(error, EnvironmentProblem):
        return EXIT_ENVIRONMENT
    return EXIT_ENVIRONMENT


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
