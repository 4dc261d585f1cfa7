"""Injection on the host through SSM Run Command (``AWS-RunShellScript``).

Two things can run on the host: a signal to a process (the notice signal now, SIGKILL at the
deadline if it still runs, or SIGSTOP at once for hibernate), or a call to the on-host agent's
control API, which then serves the notice through its metadata overlay. The agent's token is read
from a file on the host, so it never travels in the command text (which SSM keeps in its
history).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.errors import EnvironmentProblem, HarnessError
from harness.inject.plan import (
    AwsFacts,
    InjectRequest,
    PlanError,
    SsmPlan,
    check_agent_kind,
    expected_checkpoint,
    normalise_signal,
    parse_lead,
)
from harness.inject.preflight import AwsClients, call
from harness.inject.status import StatusLine, Timekeeper
from harness.units import format_duration

DOCUMENT = "AWS-RunShellScript"
#: Invocation states after which nothing changes any more.
FINAL_STATES = frozenset(
    {"Success", "Cancelled", "TimedOut", "Failed", "Cancelling", "Undeliverable", "Terminated"}
)


def signal_commands(
    *, pid: int | None, process: str | None, signal: str, action: str, lead: float, wait: bool
) -> list[str]:
    """Shell lines that signal a process on the host."""
    if (pid is None) == (process is None):
        raise PlanError("--via ssm with --ssm-run signal needs exactly one of --pid or --process")
    if pid is not None and pid < 2:
        raise PlanError(
            f"refusing --pid {pid}: kill would signal a process group (0), every process (-1) "
            "or init (1); give the job's own process id"
        )
    find = (
        [f"pid={pid}"]
        if pid is not None
        else [
            f"pid=$(pgrep -o -f -- {shlex.quote(str(process))}) || "
            f"{{ echo 'no process matches {_echo_safe(str(process))}' >&2; exit 3; }}",
            # the oldest match could be init itself (a pattern such as "systemd")
            '[ "$pid" -gt 1 ] || { echo "refusing to signal pid $pid" >&2; exit 3; }',
        ]
    )
    lines = [
        "set -eu",
        *find,
        f'kill -s {signal} "$pid"',
        f'echo "spot-harness: sent SIG{signal} to $pid"',
    ]
    if action == "hibernate":
        lines += ['kill -s STOP "$pid"', 'echo "spot-harness: froze $pid (SIGSTOP)"']
    elif wait:
        lines += [
            f"sleep {round(lead)}",
            'if kill -0 "$pid" 2>/dev/null; then kill -s KILL "$pid"; '
            'echo "spot-harness: deadline: SIGKILL to $pid"; '
            'else echo "spot-harness: $pid exited before the deadline"; fi',
        ]
    return lines


def agent_commands(
    *, agent_url: str, token_file: str, kind: str, action: str, lead: float
) -> list[str]:
    """Shell lines that schedule a notice through the local agent's control API.

    The bearer token goes from the file to curl through stdin (``-H @-``), so it appears
    neither in the command SSM stores nor in the host's process list.
    """
    body = json.dumps({"kind": kind, "action": action, "lead": format_duration(lead)})
    url = agent_url.rstrip("/") + "/_harness/v1/notices"
    return [
        "set -eu",
        f"printf 'Authorization: Bearer %s\\n' \"$(cat {shlex.quote(token_file)})\" | "
        f"curl -fsS -X POST -H @- -H 'Content-Type: application/json' "
        f"--data {shlex.quote(body)} {shlex.quote(url)}",
    ]


def _echo_safe(text: str) -> str:
    return text.replace("'", "")


def plan_ssm(request: InjectRequest, facts: AwsFacts, signal_names: Sequence[str]) -> SsmPlan:
    chosen = request.pid is not None or bool(request.process)
    mode = request.ssm_mode or ("signal" if chosen else "agent")
    lead = parse_lead(request.lead)
    action = request.action or "terminate"
    if mode == "signal":
        commands = signal_commands(
            pid=request.pid,
            process=request.process,
            signal=normalise_signal(request.signal, signal_names),
            action=action,
            lead=lead,
            wait=request.wait,
        )
    else:
        check_agent_kind(request.kind)
        commands = agent_commands(
            agent_url=request.agent_url,
            token_file=request.agent_token_file,
            kind=request.kind,
            action=action,
            lead=lead,
        )
    return SsmPlan(
        region=facts.region,
        account=facts.account,
        caller_arn=facts.caller_arn,
        instances=facts.instances,
        mode=mode,
        commands=tuple(commands),
        lead_seconds=lead,
        wait=request.wait,
        expect_checkpoint=expected_checkpoint(request),
        warnings=facts.warnings,
    )


@dataclass
class SsmOutcome:
    command_id: str = ""
    states: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.states) and all(s == "Success" for s in self.states.values())


class SsmInjector:
    """Sends the command and polls every invocation until it ends."""

    def __init__(
        self,
        clients: AwsClients,
        status: StatusLine,
        timekeeper: Timekeeper | None = None,
        *,
        poll_every: float = 2.0,
        max_polls: int = 1000,
    ) -> None:
        self._clients = clients
        self._status = status
        self._time = timekeeper or Timekeeper()
        self._poll_every = poll_every
        self._max_polls = max_polls

    def apply(self, plan: SsmPlan) -> SsmOutcome:
        instance_ids = [i.instance_id for i in plan.instances]
        reply = call(
            "sending the command (ssm:SendCommand)",
            self._clients.ssm.send_command,
            InstanceIds=instance_ids,
            DocumentName=DOCUMENT,
            Comment="spot-harness injection",
            Parameters={"commands": list(plan.commands)},
            TimeoutSeconds=max(60, round(plan.lead_seconds) + 60),
        )
        outcome = SsmOutcome(command_id=str(reply["Command"]["CommandId"]))
        self._status.note(f"sent SSM command {outcome.command_id} to {', '.join(instance_ids)}")
        if not plan.wait and plan.mode == "agent":
            self._status.note("not waiting for the command to finish (--no-wait)")
            return outcome
        self._poll(outcome, instance_ids)
        return outcome

    def _poll(self, outcome: SsmOutcome, instance_ids: Sequence[str]) -> None:
        began = self._time.now()
        for _ in range(self._max_polls):
            for instance_id in instance_ids:
                if outcome.states.get(instance_id) in FINAL_STATES:
                    continue
                self._read(outcome, instance_id)
            elapsed = (self._time.now() - began).total_seconds()
            self._status.show(_status_text(outcome), elapsed)
            if all(outcome.states.get(i) in FINAL_STATES for i in instance_ids):
                break
            self._time.sleep(self._poll_every)
        else:
            self._status.note("gave up waiting for the command; check it in the SSM console")
        self._status.end()

    def _read(self, outcome: SsmOutcome, instance_id: str) -> None:
        try:
            reply: Mapping[str, Any] = self._clients.ssm.get_command_invocation(
                CommandId=outcome.command_id, InstanceId=instance_id
            )
        except self._clients.ssm.exceptions.InvocationDoesNotExist:
            outcome.states[instance_id] = "Pending"  # not registered yet: ask again later
            return
        outcome.states[instance_id] = str(reply.get("Status", "Pending"))
        outcome.outputs[instance_id] = str(reply.get("StandardOutputContent", ""))
        outcome.errors[instance_id] = str(reply.get("StandardErrorContent", ""))


def _status_text(outcome: SsmOutcome) -> str:
    return "command " + ", ".join(f"{i}: {s}" for i, s in sorted(outcome.states.items()))


def failure(outcome: SsmOutcome) -> HarnessError | None:
    bad = {i: s for i, s in outcome.states.items() if s != "Success"}
    if not bad or not outcome.states:
        return None
    details = "; ".join(
        f"{i}: {s} {outcome.errors.get(i, '').strip()}".strip() for i, s in sorted(bad.items())
    )
    return EnvironmentProblem(f"the SSM command did not succeed everywhere: {details}")
