"""``harness serve``: run the fake metadata server until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import re
import shlex
from pathlib import Path

import click

from fake_imds.aws import AwsOptions
from fake_imds.azure import AzureOptions
from fake_imds.model import DEFAULT_REQUEST_LOG_LIMIT, Notice
from fake_imds.server import DEFAULT_DIALECTS, DIALECTS, FakeImds, ImdsV2Mode, UnsafeBindError
from fake_imds.signals import SignalOptions
from harness.bounds import BOUNDS
from harness.cli import EXIT_OK
from harness.commands.options import (
    event_sink,
    events_option,
    host_option,
    imdsv2_option,
    port_option,
    read_secret,
    serve_until_stopped,
)
from harness.errors import InputError

#: ``eu-west-1b``, ``us-gov-west-1a``: the region and a zone letter.
_AVAILABILITY_ZONE = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+[a-z]")


def aws_options(
    instance_id: str | None,
    instance_type: str | None,
    availability_zone: str | None,
    user_data: Path | None,
    tags: tuple[str, ...],
    asg_state: str | None,
) -> AwsOptions:
    """AwsOptions from the identity flags (unset flags keep the defaults)."""
    changes: dict[str, object] = {}
    if instance_id:
        changes["instance_id"] = instance_id
    if instance_type:
        changes["instance_type"] = instance_type
    if availability_zone:
        if not _AVAILABILITY_ZONE.fullmatch(availability_zone):
            raise InputError(
                f"--availability-zone {availability_zone!r} is not a zone name such as "
                "eu-west-1b (the region, eu-west-1, is taken from it)",
            )
        changes["availability_zone"] = availability_zone
        changes["region"] = availability_zone.rstrip("abcdefghijklmnopqrstuvwxyz")
    if user_data is not None:
        changes["user_data"] = _read_user_data(user_data)
    if tags:
        changes["tags"] = dict(_pair(tag) for tag in tags)
    if asg_state:
        changes["asg_state"] = asg_state
    return AwsOptions(**changes)  # type: ignore[arg-type]


def _read_user_data(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(
            f"--user-data {path} is not UTF-8 text; the fake serves user-data as text "
            "(decompress or base64-encode it first)",
        ) from None
    except OSError as error:
        message = f"cannot read --user-data {path}: {error.strerror}"
        raise InputError(message) from None


def _pre_stop_command(text: str | None) -> tuple[str, ...] | None:
    try:
        return tuple(shlex.split(text or "")) or None
    except ValueError as error:
        message = f"--pre-stop {text!r}: {error} (quote it as in a shell)"
        raise InputError(message) from None


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise InputError(f"--tag takes KEY=VALUE, got {text!r}")
    return key, value


def banner(server: FakeImds, dialects: list[str], imdsv2: str, token: bool) -> list[str]:
    url = server.url
    lines = [
        f"fake metadata server: {url}  (dialects: {', '.join(dialects)}; IMDSv2 {imdsv2})",
        f"control API:          {server.control_url}"
        + ("  (bearer token required)" if token else ""),
        f"point AWS clients at it: export AWS_EC2_METADATA_SERVICE_ENDPOINT={url}",
    ]
    if "gcp" in dialects:
        lines.append(f"point GCP clients at it: export GCE_METADATA_HOST={url.split('//', 1)[1]}")
    lines.append("Ctrl-C or SIGTERM stops it.")
    return lines


def notice_line(server: FakeImds, notice: Notice) -> str:
    plane = server.plane
    state = notice.current_state(plane.now())
    return (
        f"[{plane.iso(plane.now())}] {notice.id} {notice.cloud} {notice.kind} "
        f"{notice.action}: {state} (deadline {plane.iso(notice.deadline)})"
    )


@click.command("serve")
@host_option
@port_option
@imdsv2_option("optional: v1 and v2; required: v1 gets 401; disabled: 403 everywhere.")
@click.option(
    "--control-token",
    envvar="HARNESS_CONTROL_TOKEN",
    help="Bearer token every control call must carry; required beyond loopback. Better from "
    "the environment (HARNESS_CONTROL_TOKEN) or --control-token-file: a command line is "
    "visible to every user of the machine. Never printed.",
)
@click.option(
    "--control-token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the control token.",
)
@events_option
@click.option(
    "--dialect",
    "dialects",
    multiple=True,
    type=click.Choice(sorted(DIALECTS)),
    help="Serve only these clouds' paths (repeatable). Default: all.",
)
@click.option("--instance-id", help="The fake instance's id.")
@click.option("--instance-type", help="The fake instance's type.")
@click.option("--availability-zone", help="e.g. eu-west-1b (the region follows).")
@click.option(
    "--user-data",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File served as user-data.",
)
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="KEY=VALUE",
    help="Instance tag in metadata (repeatable); turns tags/instance on.",
)
@click.option("--asg-state", help="autoscaling/target-lifecycle-state, e.g. InService.")
@click.option("--seed", default=0, show_default=True, help="Seed for tokens and ids.")
@click.option(
    "--signal-pid",
    "signal_pids",
    multiple=True,
    type=click.IntRange(1),
    metavar="PID",
    help="Process that gets SIGTERM, then SIGKILL, on kubernetes eviction and GCP preemption "
    "notices (repeatable).",
)
@click.option(
    "--pre-stop",
    metavar="COMMAND",
    help="preStop command run before SIGTERM on a kubernetes eviction; its time counts "
    "against the grace period.",
)
@click.option("--azure-throttle", is_flag=True, help="Azure: answer 429 past 5 requests/s.")
@click.option(
    "--request-log-limit",
    type=click.IntRange(1, int(BOUNDS["request_log_limit"].high)),
    default=DEFAULT_REQUEST_LOG_LIMIT,
    show_default=True,
    help="Entries the served-request log keeps (GET /_harness/v1/requests); older ones are "
    "dropped and counted.",
)
def serve(
    host: str,
    port: int,
    imdsv2: ImdsV2Mode,
    control_token: str | None,
    control_token_file: Path | None,
    events: str | None,
    dialects: tuple[str, ...],
    instance_id: str | None,
    instance_type: str | None,
    availability_zone: str | None,
    user_data: Path | None,
    tags: tuple[str, ...],
    asg_state: str | None,
    seed: int,
    signal_pids: tuple[int, ...],
    pre_stop: str | None,
    azure_throttle: bool,
    request_log_limit: int,
) -> int:
    """Run the fake metadata server (AWS IMDS and the other clouds' paths on one port).

    \b
    Examples:
      harness serve                                   # http://127.0.0.1:1338
      harness serve --imdsv2 required --port 0
      harness serve --events events.jsonl --tag Name=trainer
      HARNESS_CONTROL_TOKEN=$(cat token) harness serve --host 0.0.0.0
      harness serve --signal-pid 4242 --pre-stop "sh drain.sh"   # evictions signal 4242
    Then, from another shell: harness notice --action terminate --lead 2m
    """
    control_token = read_secret(
        control_token,
        control_token_file,
        "--control-token-file",
        "--control-token or HARNESS_CONTROL_TOKEN",
    )
    options = aws_options(instance_id, instance_type, availability_zone, user_data, tags, asg_state)
    pre_stop_command = _pre_stop_command(pre_stop)
    names = list(dialects) or list(DEFAULT_DIALECTS)
    try:
        signals = SignalOptions(signal_pids, pre_stop_command)
        sink = event_sink(events)
        server = FakeImds(
            host,
            port,
            imdsv2=imdsv2,
            control_token=control_token,
            events=sink,
            dialects=names,
            options={
                "aws": options,
                "signals": signals,
                "azure": AzureOptions(throttle=azure_throttle),
            },
            seed=seed,
            request_log_limit=request_log_limit,
        )
    except (UnsafeBindError, ValueError) as refused:
        raise InputError(str(refused)) from None
    serve_until_stopped(
        lambda stop: _run(server, names, imdsv2, bool(control_token), stop), host, port
    )
    return EXIT_OK


async def _run(
    server: FakeImds, names: list[str], imdsv2: str, token: bool, stop: asyncio.Event
) -> None:
    async with server:
        await report_until_stopped(server, banner(server, names, imdsv2, token), stop)


async def report_until_stopped(server: FakeImds, lines: list[str], stop: asyncio.Event) -> None:
    """For a started server: print its banner, then a line per notice change until ``stop``."""
    for line in lines:
        click.echo(line)
    server.plane.subscribe(lambda n: click.echo(notice_line(server, n), err=True))
    await stop.wait()
    click.echo("stopping", err=True)
