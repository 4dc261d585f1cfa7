"""``harness notice``: a thin client of a fake metadata server's control API."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import click

from fake_imds.vocabulary import CLOUDS, control_kinds
from harness.bounds import BoundError, check
from harness.cli import EXIT_OK
from harness.commands.options import DEFAULT_PORT, Duration
from harness.errors import EnvironmentProblem, HarnessError, InputError
from harness.units import DURATION_HELP, parse_duration

DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
CONTROL_PATH = "/_harness/v1"
TIMEOUT = 10.0


class ControlClient:
    """Calls ``/_harness/v1/`` on a server; the bearer token is sent, never shown."""

    def __init__(self, url: str, token: str | None) -> None:
        base = url.rstrip("/")
        if base.endswith(CONTROL_PATH):
            base = base[: -len(CONTROL_PATH)]
        if not base.startswith(("http://", "https://")):
            raise InputError(
                f"--url must be the server's http:// URL (e.g. {DEFAULT_URL}), got {url!r}",
            )
        self.base = base
        self._token = token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base}{CONTROL_PATH}{path}", data=data, method=method
        )
        request.add_header("Content-Type", "application/json")
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as refused:
            raise _refusal(refused) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise EnvironmentProblem(
                f"cannot reach the control API at {self.base}{CONTROL_PATH}/: {reason}; "
                "is `harness serve` running there?"
            ) from None


def _refusal(refused: urllib.error.HTTPError) -> HarnessError:
    try:
        detail = json.loads(refused.read() or b"{}")
    except ValueError:
        detail = {}
    message = detail.get("error") if isinstance(detail, dict) else None
    field = detail.get("field") if isinstance(detail, dict) else None
    text = f"the server refused the request (HTTP {refused.code}): {message or refused.reason}"
    if field:
        text += f" [field: {field}]"
    problem = InputError if refused.code in (400, 404) else EnvironmentProblem
    return problem(text)


def parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; a VALUE that is valid JSON (``3``, ``true``, ``[..]``) is decoded."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--param takes KEY=VALUE, got {pair!r}")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def build_body(
    cloud: str | None,
    kind: str | None,
    action: str | None,
    lead: str | None,
    at: str | None,
    params: dict[str, Any],
) -> dict[str, Any]:
    """The ``POST notices`` body: only the fields given, so each cloud applies its defaults."""
    named = {"cloud": cloud, "kind": kind, "action": action, "lead": lead, "at": at}
    body = {k: v for k, v in named.items() if v is not None}
    for key, value in params.items():
        if key in body:
            raise InputError(f"--param {key}=... repeats --{key}; give it once")
        body[key] = value
    return body


def check_lead(kind: str | None, lead: str | None) -> None:
    """Refuse a lead out of its range here, with the server's own message (harness.bounds)."""
    if lead is None:
        return
    bound = "scheduled_lead" if kind == "scheduled-event" else "lead"
    try:
        check("lead", parse_duration(lead), lead, bound=bound)
    except BoundError as error:
        raise InputError(f"--lead: {error}") from None


def describe(notice: dict[str, Any]) -> str:
    return (
        f"{notice['id']}: {notice['cloud']} {notice['kind']} {notice['action']}, "
        f"visible {notice['issued_at']}, deadline {notice['deadline']} ({notice['state']})"
    )


@click.command("notice")
@click.option(
    "--url",
    envvar="HARNESS_IMDS_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="The fake metadata server (as printed by `harness serve`). Env: HARNESS_IMDS_URL.",
)
@click.option("--cloud", help="aws (the server's default), gcp, azure, webhook, kubernetes.")
@click.option(
    "--kind",
    help="The cloud's notice kind (the first is its default); "
    + "; ".join(f"{cloud}: {', '.join(control_kinds(cloud))}" for cloud in CLOUDS)
    + " (a webhook's kind is free text).",
)
@click.option("--action", help="AWS spot: terminate (default), stop, hibernate.")
@click.option(
    "--lead", type=Duration(), help=f"Time from the notice to the action: {DURATION_HELP}."
)
@click.option(
    "--at",
    help="When the notice appears: an ISO-8601 time (2026-01-01T00:05:00Z) or +DURATION "
    "from now (+30s). Default: now.",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="An extra body field (repeatable), e.g. --param url=http://hook.example/ for a "
    "webhook or --param state=Warmed:Stopped; JSON values are decoded.",
)
@click.option(
    "--token",
    envvar="HARNESS_CONTROL_TOKEN",
    help="Bearer token of a server started with a control token; never printed. Better from "
    "the environment (HARNESS_CONTROL_TOKEN): a command line is visible to every user.",
)
@click.option("--list", "list_only", is_flag=True, help="List the server's notices instead.")
@click.option("--cancel", metavar="ID", help="Cancel the notice with this id instead.")
@click.option("--json", "as_json", is_flag=True, help="Print the server's JSON answer.")
def notice(
    url: str,
    cloud: str | None,
    kind: str | None,
    action: str | None,
    lead: str | None,
    at: str | None,
    params: tuple[str, ...],
    token: str | None,
    list_only: bool,
    cancel: str | None,
    as_json: bool,
) -> int:
    """Schedule, list or cancel interruption notices on a running fake metadata server.

    \b
    Examples:
      harness notice --url http://127.0.0.1:1338 --action terminate --lead 2m
      harness notice --kind rebalance
      harness notice --kind fis-spot-interruption --lead 5m
      harness notice --kind scheduled-event --action system-reboot --lead 1h
      harness notice --cloud gcp --kind preemption --lead 30s
      harness notice --cloud webhook --param url=http://127.0.0.1:9000/hook --lead 2m
      harness notice --cloud azure --kind preempt --lead 30s
      harness notice --cloud kubernetes --kind eviction --param grace=30s
      harness notice --list
      harness notice --cancel notice-0001
    """
    client = ControlClient(url, token)
    if list_only or cancel:
        if list_only and cancel:
            raise InputError("give either --list or --cancel, not both")
        answer = (
            client.call("DELETE", f"/notices/{cancel}")
            if cancel
            else client.call("GET", "/notices")
        )
    else:
        check_lead(kind, lead)
        body = build_body(cloud, kind, action, lead, at, parse_params(params))
        answer = client.call("POST", "/notices", body)
    if as_json:
        click.echo(json.dumps(answer, indent=2, sort_keys=True))
    elif list_only:
        for item in answer["notices"]:
            click.echo(describe(item))
        if not answer["notices"]:
            click.echo("no notices")
    else:
        prefix = "canceled" if cancel else "scheduled"
        for item in answer.get("sequence", [answer]):
            click.echo(f"{prefix} {describe(item)}")
    return EXIT_OK
