"""The one vocabulary of clouds, notice kinds, actions and fault kinds.

The control API (:mod:`fake_imds.control` and each cloud's notice body models), the scenario model
(:mod:`harness.scenario.model`) and the scenario timeline (:mod:`harness.sim.timeline`) all read
these tables, so a kind or an action is added in one place and every layer agrees on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

Cloud = Literal["aws", "gcp", "azure", "webhook", "kubernetes"]
CLOUDS: tuple[Cloud, ...] = ("aws", "gcp", "azure", "webhook", "kubernetes")

#: What a notice announces happens to the instance at its deadline.
NoticeAction = Literal["terminate", "stop", "hibernate"]
NOTICE_ACTIONS_ALL: tuple[NoticeAction, ...] = get_args(NoticeAction)
#: GCP: the actions of a preemption, and of a host maintenance event.
GcpPreemptionAction = Literal["terminate", "stop"]
GcpMaintenanceAction = Literal["migrate", "terminate"]
#: AWS scheduled-event codes (``events/maintenance/scheduled``), the first being the default.
ScheduledCode = Literal[
    "system-reboot",
    "instance-reboot",
    "system-maintenance",
    "instance-retirement",
    "instance-stop",
]

#: Notice kinds a scenario may use, per cloud, the first being the cloud's default; the value
#: says whether the notice ends the instance at its deadline.
NOTICE_KINDS: Mapping[Cloud, Mapping[str, bool]] = {
    "aws": {
        "spot-interruption": True,
        "rebalance": False,
        "scheduled-event": True,
        "asg-termination": True,
    },
    "gcp": {"preemption": True, "maintenance": False},
    "azure": {
        "preempt": True,
        "terminate": True,
        "freeze": False,
        "reboot": True,
        "redeploy": True,
    },
    "webhook": {"interruption": True},
    "kubernetes": {"eviction": True},
}

#: Kinds only the control API offers (shorthands that schedule several notices).
CONTROL_ONLY_KINDS: Mapping[Cloud, tuple[str, ...]] = {"aws": ("fis-spot-interruption",)}


def control_kinds(cloud: Cloud) -> tuple[str, ...]:
    """Every kind ``POST /_harness/v1/notices`` accepts for ``cloud``, the default first."""
    return (*NOTICE_KINDS[cloud], *CONTROL_ONLY_KINDS.get(cloud, ()))


#: The actions a scenario notice may announce on each cloud.
NOTICE_ACTIONS: Mapping[Cloud, tuple[NoticeAction, ...]] = {
    "aws": NOTICE_ACTIONS_ALL,
    "gcp": get_args(GcpPreemptionAction),
    "azure": ("terminate",),
    "webhook": NOTICE_ACTIONS_ALL,
    "kubernetes": ("terminate",),
}


def nearest_action(cloud: Cloud, action: NoticeAction) -> NoticeAction:
    """``action`` where ``cloud`` announces it, else the closest it has: a hibernation (the
    disk kept) is a stop, anything else a termination. A scenario's notice may land on a
    replacement of another cloud, known only when it fires."""
    offered = NOTICE_ACTIONS[cloud]
    if action in offered:
        return action
    return "stop" if action == "hibernate" and "stop" in offered else "terminate"


#: The shortest lead a notice of (cloud, kind) can have (the cloud guarantees at least this).
MIN_LEAD: Mapping[tuple[Cloud, str], float] = {("azure", "preempt"): 30.0}


#: The notice kinds whose control-API body carries the scenario's ``action`` as it is.
ACTION_KINDS: frozenset[tuple[Cloud, str]] = frozenset(
    {("aws", "spot-interruption"), ("aws", "fis-spot-interruption"), ("gcp", "preemption")}
)


#: The action a kind implies where its body names none: an Azure Reboot restarts the VM on its
#: host with its temporary disk kept, which the harness plays as a stop.
IMPLIED_ACTIONS: Mapping[tuple[Cloud, str], NoticeAction] = {("azure", "reboot"): "stop"}


def takes_action(cloud: Cloud, kind: str) -> bool:
    """Whether a notice of ``cloud``/``kind`` names its action in the control-API body."""
    return cloud == "webhook" or (cloud, kind) in ACTION_KINDS


#: The scheduled-event code standing for a scenario notice's action.
SCHEDULED_CODE_FOR_ACTION: Mapping[str, ScheduledCode] = {
    "terminate": "instance-retirement",
    "stop": "instance-stop",
}

#: Default lead (notice to deadline) per cloud: its spot notice's. On Kubernetes: the grace.
DEFAULT_LEAD: Mapping[Cloud, float] = {
    "aws": 120.0,
    "gcp": 30.0,
    "azure": 30.0,
    "webhook": 120.0,
    "kubernetes": 30.0,
}

FaultKind = Literal["status", "latency", "timeout", "reset", "throttle"]
#: Failure modes of the metadata service (``POST /_harness/v1/faults``, a scenario's ``imds:``).
FAULT_KINDS: tuple[FaultKind, ...] = ("status", "latency", "timeout", "reset", "throttle")
