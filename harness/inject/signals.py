"""``harness inject --via signal --target pid:N``: the interruption as signals to a local process.

The notice is a catchable signal (SIGTERM unless ``--signal`` says otherwise). For terminate and
stop, the process then has the lead to finish (the deadline) before SIGKILL, the way a host that
goes away ends everything still running; for hibernate it is frozen at once with SIGSTOP, as a
hibernating host gives no time. The sequence itself is :func:`fake_imds.signals.acpi_shutdown`.
"""

from __future__ import annotations

import asyncio
import os
import signal as _signal

from fake_imds.signals import ProcessTarget, SignalReport, Step, acpi_shutdown
from harness.errors import InputError
from harness.inject.plan import SignalPlan
from harness.inject.status import StatusLine
from harness.units import format_duration

SIGNAL_NAMES: tuple[str, ...] = tuple(
    sorted(s.name.removeprefix("SIG") for s in _signal.Signals if not s.name.startswith("SIG_"))
)


def check_target(pid: int) -> None:
    """Refuse pids that make no sense to interrupt, and ones we may not signal."""
    if pid <= 1 or pid == os.getpid():
        raise InputError(f"refusing to signal pid {pid}: pick the job's own process")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise InputError(f"no process with pid {pid}") from None
    except PermissionError:
        raise InputError(
            f"not allowed to signal pid {pid}: run as its user (or root)",
        ) from None


async def apply_signal(plan: SignalPlan, status: StatusLine) -> SignalReport:
    """Signal the process; for terminate/stop with ``--wait``, SIGKILL it at the deadline."""
    check_target(plan.pid)
    target = ProcessTarget(plan.pid)
    notice = f"SIG{plan.signal}"

    def show(step: Step) -> None:
        status.note(f"[{format_duration(round(step.t - started, 3))}] {_describe(step, plan)}")

    started = _now()
    if plan.action != "hibernate" and plan.wait:
        return await acpi_shutdown(
            target, hard_kill_after=plan.lead_seconds, soft_signal=notice, listener=show
        )
    report = SignalReport("local-signal", listener=show)
    for name in (notice, "SIGSTOP") if plan.action == "hibernate" else (notice,):
        report.record("signal", signal=name)
        target.send(name)
    if plan.action == "hibernate":
        status.note(f"process {plan.pid} is frozen; resume it with: kill -CONT {plan.pid}")
    return report


def _now() -> float:
    return asyncio.get_running_loop().time()


def _describe(step: Step, plan: SignalPlan) -> str:
    if step.name == "signal":
        return f"sent {step.detail.get('signal')} to {plan.pid}"
    if step.name == "exited":
        return f"process {plan.pid} exited before the deadline"
    if step.name == "killed":
        return f"deadline: process {plan.pid} was still running and got SIGKILL"
    return step.name
