"""``--via ssm`` (the command built and sent, the invocation polled; moto runs nothing) and
``--via signal`` against a real child process that records the signals it gets."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from harness.inject.plan import InjectRequest, PlanError, SignalPlan
from harness.inject.preflight import AwsClients, preflight_aws
from harness.inject.signals import SIGNAL_NAMES, apply_signal
from harness.inject.ssm import SsmInjector, agent_commands, plan_ssm, signal_commands
from harness.inject.status import StatusLine
from tests.inject.conftest import FakeTime, run_spot

# -- SSM: the commands ---------------------------------------------------------------------------


def test_signal_command_sends_the_notice_then_kills_at_the_deadline() -> None:
    lines = signal_commands(
        pid=None, process="python train.py", signal="TERM", action="terminate", lead=120, wait=True
    )
    assert lines == [
        "set -eu",
        "pid=$(pgrep -o -f -- 'python train.py') || "
        "{ echo 'no process matches python train.py' >&2; exit 3; }",
        '[ "$pid" -gt 1 ] || { echo "refusing to signal pid $pid" >&2; exit 3; }',
        'kill -s TERM "$pid"',
        'echo "spot-harness: sent SIGTERM to $pid"',
        "sleep 120",
        'if kill -0 "$pid" 2>/dev/null; then kill -s KILL "$pid"; '
        'echo "spot-harness: deadline: SIGKILL to $pid"; '
        'else echo "spot-harness: $pid exited before the deadline"; fi',
    ]


def test_signal_command_for_hibernate_freezes_at_once() -> None:
    lines = signal_commands(
        pid=77, process=None, signal="USR1", action="hibernate", lead=120, wait=True
    )
    assert lines[1:] == [
        "pid=77",
        'kill -s USR1 "$pid"',
        'echo "spot-harness: sent SIGUSR1 to $pid"',
        'kill -s STOP "$pid"',
        'echo "spot-harness: froze $pid (SIGSTOP)"',
    ]


def test_signal_command_quotes_hostile_patterns() -> None:
    [_, find, *_] = signal_commands(
        pid=None, process="x'; rm -rf / #", signal="TERM", action="terminate", lead=120, wait=False
    )
    assert find.startswith("pid=$(pgrep -o -f -- 'x'\"'\"'; rm -rf / #')")


def test_agent_command_keeps_the_token_out_of_the_command_text() -> None:
    lines = agent_commands(
        agent_url="http://127.0.0.1:1338",
        token_file="/etc/spot-harness/agent-token",
        kind="spot-interruption",
        action="terminate",
        lead=120,
    )
    assert lines[1] == (
        "printf 'Authorization: Bearer %s\\n' \"$(cat /etc/spot-harness/agent-token)\" | "
        "curl -fsS -X POST -H @- -H 'Content-Type: application/json' "
        '--data \'{"kind": "spot-interruption", "action": "terminate", "lead": "2m"}\' '
        "http://127.0.0.1:1338/_harness/v1/notices"
    )


@pytest.mark.parametrize("pid", [-1, 0, 1])
def test_signal_mode_refuses_pids_that_reach_beyond_one_process(pid: int) -> None:
    with pytest.raises(PlanError, match=f"refusing --pid {pid}"):
        signal_commands(pid=pid, process=None, signal="TERM", action="terminate", lead=1, wait=True)


def test_signal_mode_needs_exactly_one_of_pid_or_process() -> None:
    with pytest.raises(PlanError, match="exactly one of --pid or --process"):
        signal_commands(pid=1, process="x", signal="TERM", action="terminate", lead=1, wait=True)


# -- SSM: send and poll ------------------------------------------------------------------------


def test_ssm_sends_the_command_and_polls_every_invocation(
    clients: AwsClients, output: io.StringIO, status: StatusLine, fake_time: FakeTime
) -> None:
    ids = run_spot(clients, 2)
    request = InjectRequest(targets=tuple(ids), via="ssm", pid=4242, lead="2m")
    facts = preflight_aws(clients, request, need_fis=False, instance_ids=ids)
    plan = plan_ssm(request, facts, SIGNAL_NAMES)
    sent: list[dict[str, Any]] = []
    real_send = clients.ssm.send_command

    def record(**kwargs: Any) -> Any:
        sent.append(kwargs)
        return real_send(**kwargs)

    clients.ssm.send_command = record  # type: ignore[method-assign]
    outcome = SsmInjector(clients, status, fake_time.timekeeper()).apply(plan)

    [call] = sent
    assert call["DocumentName"] == "AWS-RunShellScript"
    assert call["InstanceIds"] == ids
    assert call["Parameters"]["commands"][1:3] == ["pid=4242", 'kill -s TERM "$pid"']
    assert call["TimeoutSeconds"] == 180
    assert outcome.ok
    assert outcome.states == {ids[0]: "Success", ids[1]: "Success"}
    assert f"sent SSM command {outcome.command_id}" in output.getvalue()


def test_ssm_keeps_polling_until_the_invocation_ends(
    clients: AwsClients, status: StatusLine, output: io.StringIO, fake_time: FakeTime
) -> None:
    [instance_id] = run_spot(clients)
    request = InjectRequest(targets=(instance_id,), via="ssm", ssm_mode="agent")
    plan = plan_ssm(
        request,
        preflight_aws(clients, request, need_fis=False, instance_ids=[instance_id]),
        SIGNAL_NAMES,
    )
    answers = iter(["Pending", "InProgress", "Success"])
    real_get = clients.ssm.get_command_invocation

    def progressing(**kwargs: Any) -> Any:
        reply = dict(real_get(**kwargs))
        reply["Status"] = next(answers)
        reply["StandardOutputContent"] = '{"id": "notice-0001"}'
        return reply

    clients.ssm.get_command_invocation = progressing  # type: ignore[method-assign]
    outcome = SsmInjector(clients, status, fake_time.timekeeper(), poll_every=2.0).apply(plan)
    assert outcome.states == {instance_id: "Success"}
    assert fake_time.slept == [2.0, 2.0]
    watch = [
        line.split("] ", 1)[1] for line in output.getvalue().splitlines() if line.startswith("[")
    ]
    assert watch == [f"command {instance_id}: {s}" for s in ("Pending", "InProgress", "Success")]


# -- local signal --------------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import signal, sys, time
    record = open(sys.argv[1], "a", buffering=1)
    exit_on_term = sys.argv[2] == "exit"
    def on_term(signum, frame):
        record.write("TERM\\n")
        if exit_on_term:
            sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
    print("ready", flush=True)
    while True:
        time.sleep(3600)
    """
)


def start_child(tmp_path: Path, mode: str) -> tuple[subprocess.Popen[str], Path]:
    record = tmp_path / "signals.txt"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(record), mode], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    return child, record


def signal_plan(pid: int, **changes: Any) -> SignalPlan:
    values: dict[str, Any] = {
        "pid": pid, "signal": "TERM", "action": "terminate", "lead_seconds": 30.0, "wait": True,
        "expect_checkpoint": None,
    }  # fmt: skip
    values.update(changes)
    return SignalPlan(**values)


def test_the_plan_says_hibernate_freezes_even_without_waiting() -> None:
    lines = signal_plan(4242, action="hibernate", wait=False).lines()
    assert lines[-1] == "  then     SIGSTOP at once (resume it with kill -CONT)"
    assert signal_plan(4242, wait=False).lines()[-1] == "  then     nothing (--no-wait)"


def test_a_process_that_exits_on_sigterm_is_not_killed(tmp_path: Path, output: io.StringIO) -> None:
    child, record = start_child(tmp_path, "exit")
    report = asyncio.run(apply_signal(signal_plan(child.pid), StatusLine(output, live=False)))
    assert child.wait() == 0
    assert record.read_text() == "TERM\n"
    assert report.outcome == "exited"
    assert report.names() == ["signal", "exited"]
    assert f"process {child.pid} exited before the deadline" in output.getvalue()


def test_a_process_still_running_at_the_deadline_gets_sigkill(
    tmp_path: Path, output: io.StringIO
) -> None:
    child, record = start_child(tmp_path, "stay")
    report = asyncio.run(
        apply_signal(signal_plan(child.pid, lead_seconds=1.0), StatusLine(output, live=False))
    )
    assert child.wait() == -9
    assert record.read_text() == "TERM\n"
    assert report.names() == ["signal", "signal", "killed"]
    assert report.steps[1].detail == {"signal": "SIGKILL"}
    assert "got SIGKILL" in output.getvalue()


def test_hibernate_freezes_the_process(tmp_path: Path, output: io.StringIO) -> None:
    child, _ = start_child(tmp_path, "stay")
    try:
        plan = signal_plan(child.pid, action="hibernate")
        report = asyncio.run(apply_signal(plan, StatusLine(output, live=False)))
        assert [s.detail["signal"] for s in report.steps] == ["SIGTERM", "SIGSTOP"]
        _, wait_status = os.waitpid(child.pid, os.WUNTRACED)  # returns once it is stopped
        assert os.WIFSTOPPED(wait_status)
        assert os.WSTOPSIG(wait_status) == signal.SIGSTOP
        assert f"kill -CONT {child.pid}" in output.getvalue()
    finally:
        child.kill()
        child.wait()
