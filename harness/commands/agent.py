"""``harness agent``: run on the spot host; fake interruption notices over the real IMDS."""

from __future__ import annotations

import asyncio
import errno
import signal
from pathlib import Path

import click

from fake_imds.eventbridge import EventSink, sink_from_spec
from fake_imds.server import (
    IMDSV2_MODES,
    FakeImds,
    ImdsV2Mode,
    UnsafeBindError,
    check_bind,
    is_loopback,
)
from harness.cli import EXIT_OK, EXIT_USAGE, HarnessError
from harness.clock import RealClock
from harness.commands.serve import DEFAULT_PORT, notice_line
from harness.inject.agent import TOKEN_ENV
from harness.inject.overlay import (
    DEFAULT_UPSTREAM,
    Upstream,
    overlay_server,
    upstream_identity,
)


def read_token(token: str | None, token_file: Path | None) -> str | None:
    if token and token_file:
        raise HarnessError(
            "give the token by --token-file or the environment, not both", EXIT_USAGE
        )
    if token_file is None:
        return token or None
    try:
        text = token_file.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise HarnessError(
            f"cannot read --token-file {token_file}: {error.strerror}", EXIT_USAGE
        ) from None
    if not text:
        raise HarnessError(f"--token-file {token_file} is empty", EXIT_USAGE)
    return text


@click.command("agent")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port (0: any free port).",
)
@click.option(
    "--upstream",
    default=DEFAULT_UPSTREAM,
    show_default=True,
    help="The real metadata service every path not faked is passed to.",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the control token (or set the environment variable).",
)
@click.option(
    "--token",
    envvar=TOKEN_ENV,
    show_envvar=True,
    hidden=True,
    help="The control token (prefer --token-file or the environment; never printed).",
)
@click.option(
    "--imdsv2",
    type=click.Choice(IMDSV2_MODES),
    default="optional",
    show_default=True,
    help="Token rules the overlay enforces for its clients.",
)
@click.option(
    "--events", metavar="FILE|URL", help="EventBridge-shaped events: file, URL or sqs:<url>."
)
def agent(
    host: str,
    port: int,
    upstream: str,
    token_file: Path | None,
    token: str | None,
    imdsv2: ImdsV2Mode,
    events: str | None,
) -> int:
    """Serve the metadata overlay on the spot host and take notices from `harness inject`.

    Interruption paths (spot/instance-action, spot/termination-time, events/recommendations/
    rebalance, events/maintenance/*, autoscaling/*) are faked when a notice is scheduled; every
    other path (credentials, identity, user data) is answered by the real metadata service.
    Point the job at the overlay with AWS_EC2_METADATA_SERVICE_ENDPOINT. Beyond loopback a
    control token is required.

    \b
    Examples:
      # on the host, loopback only: the job and the agent share the machine
      harness agent --token-file /etc/spot-harness/agent-token
      AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:1338/ python train.py
    \b
      # reachable from a laptop (open the port to it only): then, from the laptop
      harness agent --host 0.0.0.0 --token-file /etc/spot-harness/agent-token
      HARNESS_AGENT_TOKEN=... harness inject --via agent --target http://10.0.0.12:1338
    """
    secret = read_token(token, token_file)
    try:
        check_bind(host, secret)
        sink = None if events is None else sink_from_spec(events)
    except (UnsafeBindError, ValueError) as refused:
        raise HarnessError(str(refused), EXIT_USAGE) from None
    try:
        asyncio.run(_run(host, port, upstream, secret, imdsv2, sink))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise HarnessError(
                f"port {port} on {host} is in use; choose another with --port (0: any free port)"
            ) from None
        raise HarnessError(f"cannot listen on {host}:{port}: {error}") from None
    return EXIT_OK


async def _run(
    host: str,
    port: int,
    upstream_url: str,
    secret: str | None,
    imdsv2: ImdsV2Mode,
    sink: EventSink | None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    upstream = Upstream(upstream_url, RealClock())
    try:
        identity = await upstream_identity(upstream)
        server = overlay_server(
            upstream,
            identity,
            host=host,
            port=port,
            control_token=secret,
            imdsv2=imdsv2,
            events=sink,
        )
        async with server:
            for line in banner(server, upstream, host, bool(secret), identity):
                click.echo(line)
            server.plane.subscribe(lambda n: click.echo(notice_line(server, n), err=True))
            await stop.wait()
            click.echo("stopping", err=True)
    finally:
        await upstream.close()


def banner(
    server: FakeImds, upstream: Upstream, host: str, has_token: bool, identity: dict[str, str]
) -> list[str]:
    who = identity.get("instance_id", "unknown instance (upstream identity not readable)")
    lines = [
        f"metadata overlay: {server.url}/  (fakes interruption paths; the rest from "
        f"{upstream.base_url})",
        f"instance:         {who}",
        f"control API:      {server.control_url}/"
        + ("  (bearer token required)" if has_token else "  (loopback only, no token)"),
        f"point the job at it: export AWS_EC2_METADATA_SERVICE_ENDPOINT={server.url}/",
    ]
    if not is_loopback(host):
        lines.append(
            "warning: beyond loopback the overlay also relays this instance's credentials to "
            "anyone who can reach the port; restrict it (security group, firewall)"
        )
    lines.append("Ctrl-C or SIGTERM stops it.")
    return lines
