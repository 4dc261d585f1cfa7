"""Apply a :class:`~harness.inject.plan.FisPlan`: create the experiment template, start the
experiment, watch it and the instances, and clean up on every path.

FIS has no waiters, so the experiment is polled. A spot-interruption action sends the rebalance
recommendation when it starts, the interruption notice two minutes before the deadline (at once
when the lead is two minutes) and interrupts the instances at the deadline
(``durationBeforeInterruption`` after the start); the action completes when they are gone.

Ctrl-C while watching stops the experiment; the template is deleted on success, failure and
Ctrl-C alike unless the plan keeps it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from harness.errors import EnvironmentProblem, HarnessError
from harness.inject.plan import NOTICE_BEFORE_DEADLINE, FisPlan
from harness.inject.preflight import AwsClients, call
from harness.inject.status import StatusLine, Timekeeper, when

TERMINAL = frozenset({"completed", "stopped", "failed", "cancelled"})
#: Instance states that mean the interruption happened (the instance left ``running``).
INTERRUPTED_STATES = frozenset({"shutting-down", "terminated", "stopping", "stopped"})


@dataclass
class Progress:
    """What the watch has seen so far; also the outcome once the experiment ends."""

    experiment_id: str = ""
    template_id: str = ""
    state: str = "pending"
    reason: str = ""
    action_state: str = "pending"
    started_at: datetime | None = None
    instance_states: dict[str, str] = field(default_factory=dict)
    template_deleted: bool = False

    def rebalance_at(self) -> datetime | None:
        return self.started_at if self.action_state != "skipped" else None

    def notice_at(self, lead: float) -> datetime | None:
        start = self.rebalance_at()
        return start + timedelta(seconds=max(0.0, lead - NOTICE_BEFORE_DEADLINE)) if start else None

    def deadline(self, lead: float) -> datetime | None:
        start = self.rebalance_at()
        return start + timedelta(seconds=lead) if start else None

    def interrupted(self) -> list[str]:
        return sorted(i for i, s in self.instance_states.items() if s in INTERRUPTED_STATES)

    def outcome(self) -> Literal["completed", "stopped", "error"]:
        """How the experiment ended: ran to completion, stopped by a condition, or went wrong."""
        if self.state == "completed":
            return "completed"
        return "stopped" if self.state == "stopped" else "error"


class FisInjector:
    """Runs one FIS plan. Clients, time and output are injected."""

    def __init__(
        self,
        clients: AwsClients,
        status: StatusLine,
        timekeeper: Timekeeper | None = None,
        *,
        poll_every: float = 5.0,
        stop_polls: int = 24,
    ) -> None:
        self._clients = clients
        self._status = status
        self._time = timekeeper or Timekeeper()
        self._poll_every = poll_every
        self._stop_polls = stop_polls

    def apply(self, plan: FisPlan) -> Progress:
        progress = Progress()
        try:
            self._create_template(plan, progress)
            self._status.note(f"created experiment template {progress.template_id}")
            progress.experiment_id = self._start(plan, progress.template_id)
            self._status.note(
                f"started experiment {progress.experiment_id}"
                + (" (preview: actions skipped)" if plan.preview else "")
            )
            if plan.wait:
                self._watch_or_stop(plan, progress)
            else:
                self._status.note(
                    f"not waiting; follow it with: aws fis get-experiment --id "
                    f"{progress.experiment_id} --region {plan.region}"
                )
        finally:
            self._cleanup(plan, progress)
        return progress

    # -- create / start -----------------------------------------------------------------------
    def _create_template(self, plan: FisPlan, progress: Progress) -> None:
        arguments: dict[str, Any] = {"clientToken": plan.client_token, **plan.template}
        create = self._clients.fis.create_experiment_template
        what = "creating the experiment template (fis:CreateExperimentTemplate)"
        try:
            reply = call(what, create, **arguments)
        except KeyboardInterrupt:
            # The request may have reached FIS. The client token makes the call idempotent, so
            # repeating it returns that template (or creates one) for the cleanup to delete.
            reply = call(what, create, **arguments)
            progress.template_id = str(reply["experimentTemplate"]["id"])
            raise
        progress.template_id = str(reply["experimentTemplate"]["id"])

    def _start(self, plan: FisPlan, template_id: str) -> str:
        arguments: dict[str, Any] = {
            "clientToken": f"{plan.client_token}-start",
            "experimentTemplateId": template_id,
            "tags": {"created-by": "spot-harness"},
        }
        if plan.preview:
            arguments["experimentOptions"] = {"actionsMode": "skip-all"}
        reply = call(
            "starting the experiment (fis:StartExperiment)",
            self._clients.fis.start_experiment,
            **arguments,
        )
        return str(reply["experiment"]["id"])

    # -- watch --------------------------------------------------------------------------------
    def _watch_or_stop(self, plan: FisPlan, progress: Progress) -> None:
        try:
            self._watch(plan, progress)
        except KeyboardInterrupt:
            self._status.note("interrupted: stopping the experiment")
            self._stop(progress)
            raise

    def _watch(self, plan: FisPlan, progress: Progress) -> None:
        began = self._time.now()
        watched = [i.instance_id for i in plan.instances]
        while True:
            self._poll(progress, watched)
            elapsed = (self._time.now() - began).total_seconds()
            self._status.show(status_text(plan, progress, self._time.now()), elapsed)
            if progress.state in TERMINAL:
                break
            self._time.sleep(self._poll_every)
        self._status.end()

    def _poll(self, progress: Progress, watched: Sequence[str]) -> None:
        reply = call(
            "watching the experiment (fis:GetExperiment)",
            self._clients.fis.get_experiment,
            id=progress.experiment_id,
        )
        read_experiment(progress, reply["experiment"])
        if watched and progress.action_state not in ("pending", "initiating"):
            progress.instance_states.update(self._instance_states(watched))

    def _instance_states(self, instance_ids: Sequence[str]) -> dict[str, str]:
        reply = call(
            "watching the instances (ec2:DescribeInstances)",
            self._clients.ec2.describe_instances,
            InstanceIds=list(instance_ids),
        )
        return {
            instance["InstanceId"]: instance.get("State", {}).get("Name", "unknown")
            for reservation in reply.get("Reservations", [])
            for instance in reservation.get("Instances", [])
        }

    def _stop(self, progress: Progress) -> None:
        """Stop the experiment and wait (bounded) until FIS says it stopped."""
        try:
            self._clients.fis.stop_experiment(id=progress.experiment_id)
            for _ in range(self._stop_polls):
                reply = self._clients.fis.get_experiment(id=progress.experiment_id)
                read_experiment(progress, reply["experiment"])
                if progress.state in TERMINAL:
                    break
                self._time.sleep(self._poll_every)
        except (ClientError, BotoCoreError) as error:
            self._status.note(
                f"could not stop experiment {progress.experiment_id}: {error}; stop it with "
                f"aws fis stop-experiment --id {progress.experiment_id}"
            )
            return
        self._status.note(f"experiment {progress.experiment_id} is {progress.state}")

    # -- cleanup ------------------------------------------------------------------------------
    def _cleanup(self, plan: FisPlan, progress: Progress) -> None:
        if not progress.template_id:
            return
        if plan.keep_template:
            self._status.note(f"kept experiment template {progress.template_id} (--keep-template)")
            return
        progress.template_deleted = self._delete_template(progress.template_id)

    def _delete_template(self, template_id: str) -> bool:
        try:
            self._clients.fis.delete_experiment_template(id=template_id)
        except (ClientError, BotoCoreError) as error:
            self._status.note(
                f"could not delete experiment template {template_id}: {error}; delete it with "
                f"aws fis delete-experiment-template --id {template_id}"
            )
            return False
        self._status.note(f"deleted experiment template {template_id}")
        return True


def read_experiment(progress: Progress, experiment: Mapping[str, Any]) -> None:
    """Fold one ``get_experiment`` answer into the progress."""
    state = experiment.get("state", {})
    progress.state = str(state.get("status", progress.state))
    progress.reason = str(state.get("reason", ""))
    for action in (experiment.get("actions") or {}).values():
        action_state = action.get("state", {}).get("status")
        if action_state:
            progress.action_state = str(action_state)
        started = action.get("startTime")
        if isinstance(started, datetime) and progress.started_at is None:
            progress.started_at = started
        break  # every action of a harness template runs in lockstep; the first one speaks


def status_text(plan: FisPlan, progress: Progress, now: datetime) -> str:
    """``experiment running | rebalance sent 14:02:01Z | notice sent 14:02:01Z | ...``"""
    parts = [f"experiment {progress.state}"]
    notice = progress.notice_at(plan.lead_seconds)
    if plan.preview:
        parts.append("preview: no signal sent")
    elif notice is not None:
        notice_sent = now >= notice or progress.action_state == "completed"
        parts.append(f"rebalance sent {when(progress.rebalance_at())}")
        parts.append(f"notice {'sent' if notice_sent else 'due'} {when(notice)}")
        parts.append(f"deadline {when(progress.deadline(plan.lead_seconds))}")
    if progress.instance_states:
        interrupted = progress.interrupted()
        parts.append(f"interrupted {len(interrupted)}/{len(progress.instance_states)}")
    if progress.state in ("failed", "stopped", "cancelled") and progress.reason:
        parts.append(progress.reason)
    return " | ".join(parts)


def summary(plan: FisPlan, progress: Progress) -> list[str]:
    """The closing lines a human reads after the watch."""
    lines = [
        f"experiment {progress.experiment_id}: {progress.state}"
        + (f" ({progress.reason})" if progress.reason else "")
    ]
    if plan.preview:
        lines.append("preview only: FIS resolved the targets and skipped every action")
    for instance_id, state in sorted(progress.instance_states.items()):
        lines.append(f"  {instance_id}: {state}")
    if progress.state == "failed":
        lines.append(
            "FIS reported a failure; check the role's permissions (docs/inject.md) and the "
            "experiment in the console"
        )
    if progress.state == "stopped":
        lines.append("the experiment was stopped (a stop condition fired, or it was stopped)")
    return lines


def failure(progress: Progress) -> HarnessError | None:
    if progress.state in ("failed", "cancelled"):
        return EnvironmentProblem(
            f"experiment {progress.experiment_id} {progress.state}: {progress.reason}",
        )
    return None
