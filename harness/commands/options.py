"""Options and helpers the ``harness`` commands share, so each is spelled and checked once."""

from __future__ import annotations

import asyncio
import errno
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import click

from harness import bounds
from harness.errors import EnvironmentProblem, InputError
from harness.units import DURATION_HELP, UnitError, parse_duration

F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from fake_imds.eventbridge import EventSink

    _ParamType = click.ParamType[Any]
else:  # click < 8.2 has no generic ParamType
    _ParamType = click.ParamType

#: The port the fake metadata server and the agent listen on by default.
DEFAULT_PORT = 1338


class Duration(_ParamType):
    """A duration in the project's grammar, checked when the command line is read.

    The value stays the text the user gave (servers and plans take the same grammar, and show
    it as written) unless ``seconds=True``, which converts it to a float.
    """

    name = "duration"

    def __init__(self, *, seconds: bool = False, positive: bool = False) -> None:
        self.seconds = seconds
        self.positive = positive

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float) and self.seconds:
            return value
        try:
            seconds = parse_duration(str(value))
        except UnitError:
            self.fail(f"expected {DURATION_HELP}, got {value!r}", param, ctx)
        if self.positive and seconds <= 0:
            self.fail(f"must be more than 0s, got {value!r}", param, ctx)
        shown = param.opts[0] if param is not None and param.opts else "duration"
        try:  # the same ranges as scenarios and the control API (a month, unless named)
            bounds.check(shown, seconds, str(value), bound=shown.lstrip("-").replace("-", "_"))
        except ValueError as error:
            self.fail(str(error), param, ctx)
        return seconds if self.seconds else str(value)


class HttpUrl(_ParamType):
    """An ``http://`` or ``https://`` URL with a host."""

    name = "url"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "URL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        parts = urlsplit(str(value))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.fail(f"expected an http:// or https:// URL with a host, got {value!r}", param, ctx)
        return str(value)


def host_option(command: F) -> F:
    return click.option(
        "--host",
        default="127.0.0.1",
        show_default=True,
        help="Address to listen on. Beyond loopback a control token is required.",
    )(command)


def port_option(command: F) -> F:
    return click.option(
        "--port",
        default=DEFAULT_PORT,
        show_default=True,
        type=click.IntRange(0, 65535),
        help="Port (0: any free port).",
    )(command)


def imdsv2_option(help_text: str) -> Callable[[F], F]:
    # fake_imds is imported here, not at the top: `notice` and `inject` share this module and
    # need none of the server
    from fake_imds.server import IMDSV2_MODES

    return click.option(
        "--imdsv2",
        type=click.Choice(IMDSV2_MODES),
        default="optional",
        show_default=True,
        help=help_text,
    )


def events_option(command: F) -> F:
    return click.option(
        "--events",
        metavar="FILE|URL",
        help="Where EventBridge-shaped events go when notices fire: a JSON-lines file (appended "
        "to, never truncated), an http(s) URL (one POST each), or sqs:<queue url>.",
    )(command)


def event_sink(spec: str | None) -> EventSink | None:
    """The ``--events`` sink; events it cannot deliver are reported on stderr as they fail.
    Raises ValueError for a spec it refuses."""
    from fake_imds.eventbridge import sink_from_spec

    if spec is None:
        return None
    return sink_from_spec(spec, on_failure=lambda message: click.echo(message, err=True))


def token_option(envvar: str, help_text: str, *, hidden: bool = False) -> Callable[[F], F]:
    """``--token``, also read from ``envvar`` (shown in --help by name, never by value)."""
    return click.option("--token", envvar=envvar, show_envvar=True, hidden=hidden, help=help_text)


def read_secret(value: str | None, path: Path | None, option: str, env: str) -> str | None:
    """A token given directly (or by ``env``) or in the file ``path``; never both."""
    if value and path:
        raise InputError(f"give the token by {option} or by {env}, not both")
    if path is None:
        return value or None
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise InputError(f"cannot read {option} {path}: {error.strerror}") from None
    if not text:
        raise InputError(f"{option} {path} is empty")
    return text


def serve_until_stopped(
    serve: Callable[[asyncio.Event], Coroutine[Any, Any, None]], host: str, port: int
) -> None:
    """Run ``serve(stop)`` until Ctrl-C or SIGTERM sets ``stop``; a port that cannot be bound is
    a clear error instead of a traceback."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(stop)

    try:
        asyncio.run(main())
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise EnvironmentProblem(
                f"port {port} on {host} is in use; choose another with --port (0: any free port)"
            ) from None
        raise EnvironmentProblem(
            f"cannot listen on {host}:{port}: {error.strerror or error}"
        ) from None


def progress_bar(console: Console, quiet: bool) -> Progress:
    """The progress bar long commands show (description, bar, n/total, elapsed); it vanishes
    when done, and ``quiet`` turns it off."""
    # rich is imported here: the commands sharing this module without a bar start faster
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
        transient=True,
    )
