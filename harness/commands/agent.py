"""``harness agent``: run on the spot host; fake interruption notices over the real IMDS."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from fake_imds.eventbridge import EventSink
from fake_imds.server import FakeImds, ImdsV2Mode, UnsafeBindError, check_bind, is_loopback
from harness.cli import EXIT_OK
from harness.clock import RealClock
from harness.commands.options import (
    HttpUrl,
    event_sink,
    events_option,
    host_option,
    imdsv2_option,
    port_option,
    read_secret,
    serve_until_stopped,
    token_option,
)
from harness.commands.serve import report_until_stopped
from harness.errors import InputError
from harness.inject.agent import TOKEN_ENV
from harness.inject.overlay import (
    DEFAULT_UPSTREAM,
    Upstream,
    overlay_server,
    upstream_identity,
)


@click.command("agent")
@host_option
@port_option
@click.option(
    "--upstream",
    type=HttpUrl(),
    default=DEFAULT_UPSTREAM,
    show_default=True,
    help="The real metadata service every path not faked is passed to.",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"File holding the control token (or set {TOKEN_ENV}); never printed.",
)
@token_option(
    TOKEN_ENV,
    "The control token (prefer --token-file or the environment; never printed).",
    hidden=True,
)
@imdsv2_option("Token rules the overlay enforces for its clients.")
@events_option
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

    Interruption paths (spot/instance-action, spot/termination-time,
    events/recommendations/rebalance, events/maintenance/*, autoscaling/*) are faked when a
    notice is scheduled; every other path (credentials, identity, user data) is answered by the
    real metadata service. Point the job at the overlay with AWS_EC2_METADATA_SERVICE_ENDPOINT.
    Beyond loopback a control token is required.

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
    secret = read_secret(token, token_file, "--token-file", TOKEN_ENV)
    try:
        check_bind(host, secret)
        sink = event_sink(events)
    except (UnsafeBindError, ValueError) as refused:
        raise InputError(str(refused)) from None
    serve_until_stopped(
        lambda stop: _run(host, port, upstream, secret, imdsv2, sink, stop), host, port
    )
    return EXIT_OK


async def _run(
    host: str,
    port: int,
    upstream_url: str,
    secret: str | None,
    imdsv2: ImdsV2Mode,
    sink: EventSink | None,
    stop: asyncio.Event,
) -> None:
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
            lines = banner(server, upstream, host, bool(secret), identity)
            await report_until_stopped(server, lines, stop)
    finally:
        await upstream.close()


def banner(
    server: FakeImds, upstream: Upstream, host: str, has_token: bool, identity: dict[str, str]
) -> list[str]:
    who = identity.get("instance_id", "unknown (the upstream did not answer)")
    lines = [
        f"metadata overlay: {server.url}/  (fakes interruption paths; the rest from "
        f"{upstream.base_url})",
        f"instance:         {who}",
        f"control API:      {server.control_url}/"
        + ("  (bearer token required)" if has_token else "  (loopback only, no token)"),
        f"point the job at it: export AWS_EC2_METADATA_SERVICE_ENDPOINT={server.url}/",
    ]
    if "instance_id" not in identity:
        lines.append(
            f"warning: {upstream.base_url} did not answer; the paths the overlay does not fake "
            "(credentials, identity, user data) fail until it does. Is this a cloud instance, "
            "and is --upstream right?"
        )
    if not is_loopback(host):
        lines.append(
            "warning: beyond loopback the overlay also relays this instance's credentials to "
            "anyone who can reach the port; restrict it (security group, firewall)"
        )
    lines.append("Ctrl-C or SIGTERM stops it.")
    return lines
