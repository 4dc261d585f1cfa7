"""``harness inject``: a spot interruption on a live target, through AWS FIS, the on-host agent,
SSM Run Command or a local signal. Plan first (printed by ``--dry-run``), confirm, then apply.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

import aiohttp
import boto3
import click
from botocore.exceptions import BotoCoreError

from harness.cli import EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_OK
from harness.commands.options import Duration, token_option
from harness.errors import InputError
from harness.inject import fis as fis_apply
from harness.inject import ssm as ssm_apply
from harness.inject.agent import TOKEN_ENV, AgentClient, ScheduledNotice, apply_agent
from harness.inject.checkpoint import verify_checkpoint
from harness.inject.plan import (
    ACTIONS,
    AGENT_KINDS,
    DEFAULT_AGENT_TOKEN_FILE,
    DEFAULT_AGENT_URL,
    VIAS,
    AgentPlan,
    InjectRequest,
    PlanError,
    S3Location,
    SignalPlan,
    SsmPlan,
    check_fis_request,
    offline_facts,
    parse_instance_ids,
    plan_agent,
    plan_fis,
    plan_signal,
    resolve_via,
)
from harness.inject.preflight import AwsClients, aws_errors, partition_of, preflight_aws
from harness.inject.signals import SIGNAL_NAMES, apply_signal, check_target
from harness.inject.status import StatusLine, Timekeeper
from harness.units import DURATION_HELP

#: The region an offline dry run names when none is configured (it says so).
OFFLINE_REGION = "us-east-1"

#: A finished FIS experiment as an exit code: stopped means a stop condition fired (a failure).
FIS_EXIT_CODES = {"completed": EXIT_OK, "stopped": EXIT_FAILED, "error": EXIT_ENVIRONMENT}

EXAMPLES = """\b
Examples:
  # see what would happen (read-only calls only), then do it
  export HARNESS_FIS_ROLE_ARN=arn:aws:iam::123456789012:role/spot-harness-fis
  harness inject --target i-0abc12345678def01 --dry-run
  harness inject --target i-0abc12345678def01 --lead 5m
\b
  # a fleet: 25 % of the running spot instances tagged team=ml, stopped if an alarm fires
  harness inject --tag team=ml --percent 25 \\
      --stop-alarm arn:aws:cloudwatch:us-east-1:123456789012:alarm:job-errors
\b
  # resolve the targets without touching them (FIS actionsMode skip-all)
  harness inject --target i-0abc12345678def01 --preview --yes
\b
  # through `harness agent` on the host; check that a checkpoint reached S3 in time
  HARNESS_AGENT_TOKEN=... harness inject --via agent --target http://10.0.0.12:1338 \\
      --lead 2m --expect-checkpoint s3://my-bucket/checkpoints/
\b
  # SIGTERM to the job on the host via SSM, SIGKILL at the deadline
  harness inject --via ssm --target i-0abc12345678def01 --process 'python train.py' --lead 2m
\b
  # a local process
  harness inject --target pid:4242 --signal TERM --lead 30s --yes

Exit codes: 0 done, 1 the checkpoint did not land in time or the experiment was stopped,
2 bad input or refused, 3 AWS or agent trouble, 130 interrupted (the experiment is stopped and
the template deleted).
"""


@dataclass
class Runtime:
    """What the command needs from the outside world; tests replace parts of it."""

    timekeeper: Timekeeper = field(default_factory=Timekeeper)
    new_token: Callable[[], str] = field(default_factory=lambda: lambda: uuid.uuid4().hex)
    out: TextIO = field(default_factory=lambda: sys.stdout)
    interactive: Callable[[], bool] = field(default_factory=lambda: sys.stdin.isatty)
    confirm: Callable[[str], bool] = field(
        default_factory=lambda: lambda text: click.confirm(text, default=False)
    )
    poll_every: float = 5.0
    agent_poll_every: float = 1.0

    def aws(self, region: str | None, profile: str | None) -> AwsClients:
        try:
            session = boto3.Session(region_name=region, profile_name=profile)
        except BotoCoreError as error:
            raise aws_errors("opening the AWS session")(error) from None
        return AwsClients.from_session(session)

    def aws_if_possible(self, region: str | None, profile: str | None) -> AwsClients | str:
        """Clients when a region and credentials are at hand, else why not. Makes no AWS call
        (finding credentials may ask the instance's own metadata service, as every SDK does)."""
        try:
            session = boto3.Session(region_name=region, profile_name=profile)
        except BotoCoreError as error:
            return str(error)
        if not session.region_name:
            return "no AWS region: pass --region or set AWS_REGION"
        if session.get_credentials() is None:
            return "no AWS credentials found"
        return AwsClients.from_session(session)

    def offline_region(self, region: str | None, profile: str | None) -> str | None:
        """The region an offline plan names: --region, else the profile's (None: not set)."""
        try:
            configured = boto3.Session(region_name=region, profile_name=profile).region_name
        except BotoCoreError:
            return None
        return str(configured) if configured else None

    def status(self) -> StatusLine:
        return StatusLine(self.out)


def make_runtime() -> Runtime:
    return Runtime()


@click.command("inject", epilog=EXAMPLES)
@click.option(
    "--target",
    "-t",
    "targets",
    multiple=True,
    metavar="TARGET",
    help="i-... or an instance ARN (FIS, SSM; repeat or comma-separate), http://host:port "
    "(agent) or pid:N (local signal).",
)
@click.option("--via", type=click.Choice(VIAS), help="How to inject (default: from the target).")
@click.option(
    "--action",
    type=click.Choice(ACTIONS),
    help="terminate (default), stop or hibernate. Through FIS the instance's own interruption "
    "behaviour decides; a different --action is refused.",
)
@click.option(
    "--lead",
    type=Duration(),
    default="2m",
    show_default=True,
    help=f"Warning time: {DURATION_HELP}.",
)
@click.option("--region", help="AWS region (default: the profile's or AWS_REGION).")
@click.option("--profile", help="AWS profile.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the plan and template; change nothing. AWS is asked read-only questions when "
    "credentials and a region are at hand, else the plan is made offline (and says so).",
)
@click.option(
    "--offline",
    is_flag=True,
    help="With --dry-run: ask AWS nothing, no credentials needed; the instances are not checked.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Follow it until the deadline."
)
@click.option("--preview", is_flag=True, help="FIS: start with actionsMode skip-all.")
@click.option("--force", is_flag=True, help="Allow instances that are not spot instances.")
@click.option(
    "--role-arn",
    envvar="HARNESS_FIS_ROLE_ARN",
    help="FIS: the role FIS assumes (env HARNESS_FIS_ROLE_ARN); see docs/inject.md.",
)
@click.option("--stop-alarm", multiple=True, metavar="ARN", help="FIS: stop when this alarm fires.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="FIS: target by tag.")
@click.option(
    "--count", type=click.IntRange(min=1), help="FIS with --tag: interrupt N of the matches."
)
@click.option(
    "--percent",
    type=click.IntRange(1, 100),
    help="FIS with --tag: interrupt P % of the matches.",
)
@click.option("--keep-template", is_flag=True, help="FIS: keep the experiment template.")
@click.option(
    "--expect-checkpoint",
    metavar="s3://BUCKET/PREFIX",
    help="After the deadline, check that a checkpoint newer than the notice landed there.",
)
@token_option(TOKEN_ENV, "Agent: the control token (better from the environment; never printed).")
@click.option(
    "--kind",
    type=click.Choice(AGENT_KINDS),
    default="spot-interruption",
    show_default=True,
    help="Agent / SSM-agent: which notice.",
)
@click.option("--signal", default="TERM", show_default=True, help="Signal / SSM: notice signal.")
@click.option("--pid", type=int, help="SSM: the process id on the host.")
@click.option("--process", metavar="PATTERN", help="SSM: the process (pgrep -f PATTERN, oldest).")
@click.option(
    "--ssm-run",
    type=click.Choice(["signal", "agent"]),
    help="SSM: signal a process, or call the local agent (default: signal if --pid/--process).",
)
@click.option(
    "--agent-url",
    default=DEFAULT_AGENT_URL,
    show_default=True,
    help="SSM: the agent's address as seen on the host.",
)
@click.option(
    "--agent-token-file",
    default=DEFAULT_AGENT_TOKEN_FILE,
    show_default=True,
    help="SSM: file on the host holding the agent's token.",
)
def inject(
    targets: tuple[str, ...],
    via: str | None,
    action: str | None,
    lead: str,
    region: str | None,
    profile: str | None,
    dry_run: bool,
    offline: bool,
    yes: bool,
    wait: bool,
    preview: bool,
    force: bool,
    role_arn: str | None,
    stop_alarm: tuple[str, ...],
    tags: tuple[str, ...],
    count: int | None,
    percent: int | None,
    keep_template: bool,
    expect_checkpoint: str | None,
    token: str | None,
    kind: str,
    signal: str,
    pid: int | None,
    process: str | None,
    ssm_run: str | None,
    agent_url: str,
    agent_token_file: str,
) -> int:
    """Interrupt a live spot instance (or a process) the way the cloud would.

    Every run computes a plan first. --dry-run prints it (with the FIS experiment template) and
    stops, checking the instances with read-only AWS calls when it can (--dry-run --offline
    never calls AWS); otherwise the plan's blast radius is shown and must be confirmed (or --yes
    given).
    Created FIS templates are deleted afterwards, also on failure and Ctrl-C, and Ctrl-C while
    watching stops the experiment.
    """
    request = InjectRequest(
        targets=targets,
        via=via,  # type: ignore[arg-type]
        action=action,  # type: ignore[arg-type]
        lead=lead,
        region=region,
        role_arn=role_arn,
        stop_alarms=stop_alarm,
        tags=tags,
        count=count,
        percent=percent,
        preview=preview,
        keep_template=keep_template,
        force=force,
        wait=wait,
        expect_checkpoint=expect_checkpoint,
        kind=kind,
        signal=signal,
        pid=pid,
        process=process,
        ssm_mode=ssm_run,  # type: ignore[arg-type]
        agent_url=agent_url,
        agent_token_file=agent_token_file,
    )
    if offline and not dry_run:
        raise InputError("--offline only applies to --dry-run (a real injection needs AWS)")
    runtime = make_runtime()
    return run(
        request, runtime, profile=profile, token=token, dry_run=dry_run, offline=offline, yes=yes
    )


def run(
    request: InjectRequest,
    runtime: Runtime,
    *,
    profile: str | None = None,
    token: str | None = None,
    dry_run: bool = False,
    offline: bool = False,
    yes: bool = False,
) -> int:
    via = resolve_via(request)
    _refuse_foreign_options(request, via)
    if via in ("fis", "ssm") and dry_run:
        return _dry_run_aws(request, runtime, profile, via, offline=offline)
    if via == "fis":
        return _run_fis(request, runtime, profile, yes)
    if via == "ssm":
        return _run_ssm(request, runtime, profile, yes)
    if via == "agent":
        agent_plan = plan_agent(request, has_token=bool(token))
        if not _go(agent_plan.lines(), runtime, dry_run, yes, "schedule this notice"):
            return _declined(runtime, dry_run)
        return _run_agent(agent_plan, runtime, token, request.region, profile)
    signal_plan = plan_signal(request, SIGNAL_NAMES)
    lines = [*signal_plan.lines(), f"  process  {_command_line(signal_plan.pid)}"]
    check_target(signal_plan.pid)  # read-only (signal 0), so a dry run checks it too
    if not _go(lines, runtime, dry_run, yes, "send these signals"):
        return _declined(runtime, dry_run)
    return _run_signal(signal_plan, runtime, request.region, profile)


def _refuse_foreign_options(request: InjectRequest, via: str) -> None:
    fis_only = {
        "--tag": bool(request.tags),
        "--count": request.count is not None,
        "--percent": request.percent is not None,
        "--stop-alarm": bool(request.stop_alarms),
        "--preview": request.preview,
        "--keep-template": request.keep_template,
    }
    if via != "fis":
        used = [name for name, given in fis_only.items() if given]
        if used:
            raise PlanError(f"{', '.join(used)} only apply to --via fis")
    if via != "ssm" and (request.pid is not None or request.process or request.ssm_mode):
        raise PlanError("--pid, --process and --ssm-run only apply to --via ssm")


# -- confirmation -------------------------------------------------------------------------------


def _go(lines: list[str], runtime: Runtime, dry_run: bool, yes: bool, doing: str) -> bool:
    """Print the plan; True when it should be applied."""
    for line in lines:
        runtime.out.write(line + "\n")
    if dry_run:
        return False
    if yes:
        return True
    if not runtime.interactive():
        raise InputError(
            "refusing to change anything without confirmation: stdin is not a terminal. "
            "Check the plan above (--dry-run), then rerun with --yes",
        )
    return runtime.confirm(f"Really {doing}?")


def _declined(runtime: Runtime, dry_run: bool) -> int:
    if dry_run:
        runtime.out.write("dry run: nothing was changed\n")
        return EXIT_OK
    runtime.out.write("Nothing changed.\n")
    return EXIT_FAILED


# -- FIS ---------------------------------------------------------------------------------------


def _dry_run_aws(
    request: InjectRequest, runtime: Runtime, profile: str | None, via: str, *, offline: bool
) -> int:
    """The plan (and FIS template) of a FIS or SSM injection: checked read-only against AWS
    when credentials and a region are at hand, else made offline, saying what was not checked."""
    instance_ids = _instance_ids(request, via)
    if via == "fis":
        check_fis_request(request, role_needed=False)
    clients = "--offline" if offline else runtime.aws_if_possible(request.region, profile)
    if isinstance(clients, AwsClients):
        facts = preflight_aws(clients, request, need_fis=via == "fis", instance_ids=instance_ids)
    else:
        region = runtime.offline_region(request.region, profile)
        why = clients if region else f"{clients}; no region set, {OFFLINE_REGION} stands in"
        region = region or OFFLINE_REGION
        facts = offline_facts(request, region, partition_of(region), why)
    if via == "ssm":
        _go(ssm_apply.plan_ssm(request, facts, SIGNAL_NAMES).lines(), runtime, True, False, "")
        return _declined(runtime, dry_run=True)
    plan = plan_fis(request, facts, runtime.new_token(), role_needed=False)
    _go(plan.lines(), runtime, True, False, "")
    runtime.out.write("\nExperiment template (fis:CreateExperimentTemplate arguments):\n")
    runtime.out.write(plan.template_json() + "\n")
    return _declined(runtime, dry_run=True)


def _instance_ids(request: InjectRequest, via: str) -> tuple[str, ...]:
    instance_ids = parse_instance_ids(request.targets)
    if via == "fis" and not instance_ids and not request.tags:
        raise PlanError("name the instances: --target i-... or --tag KEY=VALUE")
    if via == "ssm" and not instance_ids:
        raise PlanError("--via ssm needs --target i-... (the host to run the command on)")
    return instance_ids


def _run_fis(request: InjectRequest, runtime: Runtime, profile: str | None, yes: bool) -> int:
    instance_ids = _instance_ids(request, "fis")
    check_fis_request(request)
    clients = runtime.aws(request.region, profile)
    facts = preflight_aws(clients, request, need_fis=True, instance_ids=instance_ids)
    plan = plan_fis(request, facts, runtime.new_token())
    if not _go(plan.lines(), runtime, False, yes, "interrupt these instances"):
        return _declined(runtime, dry_run=False)
    status = runtime.status()
    injector = fis_apply.FisInjector(
        clients, status, runtime.timekeeper, poll_every=runtime.poll_every
    )
    progress = injector.apply(plan)
    for line in fis_apply.summary(plan, progress):
        status.note(line)
    problem = fis_apply.failure(progress)
    if problem is not None:
        raise problem
    code = FIS_EXIT_CODES[progress.outcome()] if plan.wait else EXIT_OK
    if plan.expect_checkpoint and plan.wait and not plan.preview and progress.state == "completed":
        notice = progress.notice_at(plan.lead_seconds)
        deadline = progress.deadline(plan.lead_seconds)
        if notice is not None and deadline is not None:
            code = max(code, _verify(clients, plan.expect_checkpoint, notice, deadline, runtime))
    return code


def _verify(
    clients: AwsClients,
    location: S3Location,
    notice: datetime,
    deadline: datetime,
    runtime: Runtime,
) -> int:
    runtime.out.write(f"checking {location} for a checkpoint written after the notice...\n")
    verdict = verify_checkpoint(clients.s3, location, notice, deadline, runtime.timekeeper)
    runtime.out.write(verdict.message() + "\n")
    return EXIT_OK if verdict.ok else EXIT_FAILED


# -- SSM ---------------------------------------------------------------------------------------


def _run_ssm(request: InjectRequest, runtime: Runtime, profile: str | None, yes: bool) -> int:
    instance_ids = _instance_ids(request, "ssm")
    clients = runtime.aws(request.region, profile)
    facts = preflight_aws(clients, request, need_fis=False, instance_ids=instance_ids)
    plan: SsmPlan = ssm_apply.plan_ssm(request, facts, SIGNAL_NAMES)
    if not _go(plan.lines(), runtime, False, yes, "run this command on these instances"):
        return _declined(runtime, False)
    status = runtime.status()
    sent_at = runtime.timekeeper.now()
    injector = ssm_apply.SsmInjector(clients, status, runtime.timekeeper)
    outcome = injector.apply(plan)
    for instance_id, text in sorted(outcome.outputs.items()):
        for line in text.strip().splitlines():
            status.note(f"  {instance_id}: {line}")
    problem = ssm_apply.failure(outcome)
    if problem is not None:
        raise problem
    if plan.expect_checkpoint and plan.wait:
        notice, deadline = _ssm_times(plan, outcome, sent_at)
        return _verify(clients, plan.expect_checkpoint, notice, deadline, runtime)
    return EXIT_OK


def _ssm_times(
    plan: SsmPlan, outcome: ssm_apply.SsmOutcome, sent_at: datetime
) -> tuple[datetime, datetime]:
    """The notice's times: from the agent's JSON answer when there is one, else the send."""
    for text in outcome.outputs.values():
        try:
            notice = ScheduledNotice.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError):
            continue
        return notice.issued_at, notice.deadline
    return sent_at, sent_at + timedelta(seconds=plan.lead_seconds)


# -- agent -------------------------------------------------------------------------------------


def _run_agent(
    plan: AgentPlan, runtime: Runtime, token: str | None, region: str | None, profile: str | None
) -> int:
    async def go() -> int:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            client = AgentClient(plan.url, token, session)
            outcome = await apply_agent(
                plan, client, runtime.status(), poll_every=runtime.agent_poll_every
            )
        notice = outcome.notice
        if plan.expect_checkpoint and plan.wait and not outcome.canceled:
            clients = runtime.aws(region, profile)
            return _verify(
                clients, plan.expect_checkpoint, notice.issued_at, notice.deadline, runtime
            )
        return EXIT_OK

    return asyncio.run(go())


# -- local signal ------------------------------------------------------------------------------


def _run_signal(plan: SignalPlan, runtime: Runtime, region: str | None, profile: str | None) -> int:
    sent_at = runtime.timekeeper.now()
    report = asyncio.run(apply_signal(plan, runtime.status()))
    runtime.out.write(f"process {plan.pid}: {report.outcome}\n")
    if plan.expect_checkpoint and plan.wait:
        deadline = sent_at + timedelta(seconds=plan.lead_seconds)
        clients = runtime.aws(region, profile)
        return _verify(clients, plan.expect_checkpoint, sent_at, deadline, runtime)
    return EXIT_OK


def _command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "(command line unknown)"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip() or "(no command line)"
