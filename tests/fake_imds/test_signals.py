"""Signal sequences against real child processes (real loop) and in-process instances (virtual)."""

from __future__ import annotations

import asyncio
import signal
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest

from fake_imds.control import BodyError, schedule_notice
from fake_imds.model import MetadataPlane
from fake_imds.server import FakeImds
from fake_imds.signals import (
    DISPATCHER_KEY,
    InProcessTarget,
    ProcessTarget,
    SignalOptions,
    Step,
    acpi_shutdown,
    evict,
    gcp_preemption,
)
from harness.clock import DEFAULT_EPOCH, run_virtual

# A child that appends every signal it receives to a journal, in order. With "ignore" it keeps
# running after SIGTERM (only SIGKILL ends it); with "exit" it leaves cleanly on SIGTERM.
CHILD = textwrap.dedent(
    """
    import signal, sys, time
    journal, mode = sys.argv[1], sys.argv[2]
    def note(line):
        with open(journal, "a") as f:
            f.write(line + "\\n")
    def on_signal(number, frame):
        note(signal.Signals(number).name)
        if mode == "exit":
            note("clean-exit")
            sys.exit(0)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    note("started")
    print("ready", flush=True)
    while True:
        time.sleep(0.05)
    """
)


async def start_child(tmp_path: Path, mode: str) -> tuple[asyncio.subprocess.Process, Path]:
    journal = tmp_path / "journal.txt"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), str(journal), mode, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    assert await process.stdout.readline() == b"ready\n"
    return process, journal


def journal_lines(journal: Path) -> list[str]:
    return journal.read_text().split()


def test_eviction_runs_prestop_then_sigterm_then_sigkill_on_a_stubborn_child(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        process, journal = await start_child(tmp_path, "ignore")
        pre_stop = [sys.executable, "-c", f"open({str(journal)!r}, 'a').write('prestop\\n')"]
        report = await evict(ProcessTarget(process), grace=0.5, pre_stop=pre_stop)
        assert report.names() == [
            "prestop.started",
            "prestop.finished",
            "signal",
            "signal",
            "killed",
        ]
        assert [s.detail.get("signal") for s in report.steps if s.name == "signal"] == [
            "SIGTERM",
            "SIGKILL",
        ]
        assert report.outcome == "killed"
        assert process.returncode == -signal.SIGKILL
        assert journal_lines(journal) == ["started", "prestop", "SIGTERM"]

    asyncio.run(main())


def test_eviction_ends_with_a_clean_exit_when_the_child_leaves_on_sigterm(tmp_path: Path) -> None:
    async def main() -> None:
        process, journal = await start_child(tmp_path, "exit")
        report = await evict(ProcessTarget(process), grace=30)
        assert report.names() == ["signal", "exited"]
        assert report.outcome == "exited"
        assert process.returncode == 0
        assert journal_lines(journal) == ["started", "SIGTERM", "clean-exit"]

    asyncio.run(main())


def test_a_pid_target_is_signalled_and_its_exit_seen_without_owning_the_process(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        process, journal = await start_child(tmp_path, "ignore")
        report = await acpi_shutdown(ProcessTarget(process.pid), hard_kill_after=0.3)
        await process.wait()
        assert report.outcome == "killed"
        assert process.returncode == -signal.SIGKILL
        assert journal_lines(journal) == ["started", "SIGTERM"]

    asyncio.run(main())


def test_acpi_shutdown_can_send_another_soft_signal(tmp_path: Path) -> None:
    async def main() -> None:
        process, journal = await start_child(tmp_path, "exit")
        report = await acpi_shutdown(
            ProcessTarget(process), hard_kill_after=10, soft_signal="SIGINT"
        )
        assert report.outcome == "exited"
        assert journal_lines(journal) == ["started", "SIGINT", "clean-exit"]

    asyncio.run(main())


def test_a_failing_prestop_command_does_not_stop_the_eviction(tmp_path: Path) -> None:
    async def main() -> None:
        process, _ = await start_child(tmp_path, "exit")
        pre_stop = [sys.executable, "-c", "raise SystemExit(3)"]
        report = await evict(ProcessTarget(process), grace=30, pre_stop=pre_stop)
        assert report.names() == ["prestop.started", "prestop.failed", "signal", "exited"]
        assert report.steps[1].detail == {"returncode": 3}
        polite = asyncio.get_running_loop().create_future()
        missing = await evict(
            InProcessTarget(lambda name: polite.set_result(name), task=polite),
            grace=0,
            pre_stop=[str(tmp_path / "no-such-command")],
        )
        assert missing.outcome == "exited"
        assert missing.names()[:2] == ["prestop.started", "prestop.failed"]
        assert "FileNotFoundError" in missing.steps[1].detail["error"]

    asyncio.run(main())


async def stubborn_instance(signals: asyncio.Queue[str], seen: list[tuple[float, str]]) -> None:
    """An in-process instance that notes each signal and keeps working until cancelled."""
    loop = asyncio.get_running_loop()
    try:
        while True:
            name = await signals.get()
            seen.append((loop.time(), name))
    except asyncio.CancelledError:
        seen.append((loop.time(), "cancelled"))
        raise


def test_in_process_eviction_in_virtual_time_counts_prestop_against_the_grace() -> None:
    async def main() -> tuple[list[tuple[float, str]], list[tuple[float, str]]]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        seen: list[tuple[float, str]] = []
        task = asyncio.create_task(stubborn_instance(queue, seen))
        await asyncio.sleep(0)

        async def pre_stop() -> None:
            await asyncio.sleep(10)  # a slow drain, in virtual time

        report = await evict(InProcessTarget.for_queue(queue, task), grace=30, pre_stop=pre_stop)
        steps: list[tuple[float, str]] = [(s.t, s.name) for s in report.steps]
        return steps, seen

    steps, seen = run_virtual(main)
    assert steps == [
        (0.0, "prestop.started"),
        (10.0, "prestop.finished"),
        (10.0, "signal"),
        (30.0, "signal"),
        (30.0, "killed"),
    ]
    assert seen == [(10.0, "SIGTERM"), (30.0, "cancelled")]


def test_a_prestop_hook_outliving_the_grace_period_gets_the_two_second_extension() -> None:
    async def main() -> list[tuple[float, str]]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        task = asyncio.create_task(stubborn_instance(queue, []))

        async def pre_stop() -> None:
            await asyncio.sleep(3600)

        report = await evict(InProcessTarget.for_queue(queue, task), grace=5, pre_stop=pre_stop)
        return [(s.t, s.name) for s in report.steps]

    assert run_virtual(main) == [
        (0.0, "prestop.started"),
        (5.0, "prestop.timed_out"),
        (5.0, "signal"),
        (7.0, "signal"),
        (7.0, "killed"),
    ]


def test_the_kubelet_leaves_at_least_two_seconds_between_sigterm_and_sigkill() -> None:
    async def main() -> list[tuple[float, str]]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        task = asyncio.create_task(stubborn_instance(queue, []))

        async def pre_stop() -> None:
            await asyncio.sleep(9)  # uses up almost all of the grace period

        short = await evict(InProcessTarget.for_queue(queue, task), grace=1)
        task = asyncio.create_task(stubborn_instance(queue, []))
        used_up = await evict(InProcessTarget.for_queue(queue, task), grace=10, pre_stop=pre_stop)
        return [(s.t, s.name) for s in short.steps + used_up.steps if s.name == "signal"]

    assert run_virtual(main) == [
        (0.0, "signal"),
        (2.0, "signal"),
        (11.0, "signal"),
        (13.0, "signal"),
    ]


def test_gcp_preemption_has_a_notice_period_then_soft_off_then_hard_off() -> None:
    async def main() -> tuple[list[Step], list[tuple[float, str]]]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        seen: list[tuple[float, str]] = []
        task = asyncio.create_task(stubborn_instance(queue, seen))
        report = await gcp_preemption(
            InProcessTarget.for_queue(queue, task), notice_period=120, shutdown_period=30
        )
        return report.steps, seen

    steps, seen = run_virtual(main)
    assert [(s.t, s.name, s.detail.get("signal")) for s in steps] == [
        (0.0, "notice", None),
        (120.0, "signal", "SIGTERM"),
        (150.0, "signal", "SIGKILL"),
        (150.0, "killed", None),
    ]
    assert seen == [(120.0, "SIGTERM"), (150.0, "cancelled")]


def test_an_instance_that_exits_on_sigterm_is_not_killed() -> None:
    async def main() -> tuple[str, list[str]]:
        queue: asyncio.Queue[str] = asyncio.Queue()

        async def polite() -> None:
            await queue.get()
            await asyncio.sleep(4)  # saves its state, then returns

        task = asyncio.create_task(polite())
        listened: list[str] = []
        report = await acpi_shutdown(
            InProcessTarget.for_queue(queue, task),
            hard_kill_after=10,
            listener=lambda step: listened.append(f"{step.t:g}:{step.name}"),
        )
        return report.outcome, listened

    assert run_virtual(main) == ("exited", ["0:signal", "4:exited"])


def test_a_callback_target_without_a_task_is_ended_by_its_kill_callback() -> None:
    async def main() -> list[str]:
        calls: list[str] = []
        target = InProcessTarget(calls.append, on_kill=lambda: calls.append("kill"))
        await acpi_shutdown(target, hard_kill_after=3)
        return calls

    assert run_virtual(main) == ["SIGTERM", "kill"]


def test_bad_arguments_are_refused_with_a_reason() -> None:
    async def main() -> None:
        target = InProcessTarget(lambda name: None, on_kill=lambda: None)
        with pytest.raises(ValueError, match="longer than GCP"):
            await gcp_preemption(target, shutdown_period=45)
        with pytest.raises(ValueError, match="non-negative"):
            await evict(target, grace=-1)
        with pytest.raises(ValueError, match="unknown signal"):
            await acpi_shutdown(target, hard_kill_after=1, soft_signal="SIGNOPE")
        with pytest.raises(ValueError, match="needs its task"):
            InProcessTarget(lambda name: None)

    run_virtual(main)


def test_a_kubernetes_eviction_notice_signals_a_registered_in_process_instance() -> None:
    async def main() -> tuple[int, list[tuple[float, str]], list[str]]:
        seen: list[tuple[float, str]] = []
        async with FakeImds() as server, aiohttp.ClientSession() as session:
            queue: asyncio.Queue[str] = asyncio.Queue()
            task = asyncio.create_task(stubborn_instance(queue, seen))
            dispatcher = server.app[DISPATCHER_KEY]
            dispatcher.register(InProcessTarget.for_queue(queue, task))
            await asyncio.sleep(5)
            body = {"cloud": "kubernetes", "kind": "eviction", "grace": "20s"}
            async with session.post(f"{server.control_url}/notices", json=body) as response:
                status = response.status
            await dispatcher.drain()
            async with session.get(f"{server.control_url}/signals") as response:
                (report,) = await response.json()
        return status, seen, [f"{s['t']:g}:{s['step']}" for s in report["steps"]]

    status, seen, steps = run_virtual(main)
    assert status == 201
    assert seen == [(5.0, "SIGTERM"), (25.0, "cancelled")]
    assert steps == ["5:signal", "25:signal", "25:killed"]


def test_a_gcp_preemption_notice_is_a_soft_off_then_a_hard_off_for_registered_targets() -> None:
    async def main() -> list[tuple[float, str]]:
        seen: list[tuple[float, str]] = []
        async with FakeImds() as server:
            queue: asyncio.Queue[str] = asyncio.Queue()
            task = asyncio.create_task(stubborn_instance(queue, seen))
            server.app[DISPATCHER_KEY].register(InProcessTarget.for_queue(queue, task))
            schedule_notice(server.plane, {"cloud": "gcp", "kind": "preemption", "lead": "150s"})
            await server.app[DISPATCHER_KEY].drain()
        return seen

    assert run_virtual(main) == [(120.0, "SIGTERM"), (150.0, "cancelled")]


def test_serve_style_pid_targets_get_real_signals_from_an_eviction_notice(tmp_path: Path) -> None:
    async def main() -> None:
        process, journal = await start_child(tmp_path, "ignore")
        options = {"signals": SignalOptions(pids=(process.pid,))}
        async with FakeImds(options=options) as server:
            schedule_notice(server.plane, {"cloud": "kubernetes", "grace": "0.3s"})
            await server.app[DISPATCHER_KEY].drain()
            ((_, report),) = server.app[DISPATCHER_KEY].reports
        await process.wait()
        assert report.outcome == "killed"
        assert process.returncode == -signal.SIGKILL
        assert journal_lines(journal) == ["started", "SIGTERM"]

    asyncio.run(main())


@pytest.mark.parametrize(
    ("body", "field"),
    [({"kind": "drain"}, "kind"), ({"grace": "forever"}, "grace"), ({"pid": 1}, "pid")],
)
def test_malformed_kubernetes_notices_name_the_field(body: dict[str, str], field: str) -> None:
    plane = MetadataPlane(clock=_Frozen())
    with pytest.raises(BodyError) as caught:
        schedule_notice(plane, {"cloud": "kubernetes", **body})
    assert caught.value.field == field


class _Frozen:
    def monotonic(self) -> float:
        return 0.0

    def now(self) -> datetime:
        return DEFAULT_EPOCH

    async def sleep(self, seconds: float) -> None:
        raise AssertionError("not used")
