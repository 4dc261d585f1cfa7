"""No process outlives a run, also when the harness itself is killed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.process.servers import Watchdog
from harness.process.watchdog import apply
from tests.process.conftest import HERE, gone


def _wait_for(path: Path, lines: int, patience: float = 30.0) -> list[str]:
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        if path.exists():
            found = path.read_text().splitlines()
            if len(found) >= lines:
                return found
        time.sleep(0.05)
    raise AssertionError(f"{path} never got {lines} lines")


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("redis", ["fake", "real"])
def test_killing_the_harness_leaves_no_process_behind(tmp_path: Path, redis: str) -> None:
    if redis == "real" and shutil.which("redis-server") is None:
        pytest.fail("redis-server is missing: run tests/system_deps.py (tests/system_packages.txt)")
    pid_file = tmp_path / "pids"
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        textwrap.dedent(
            f"""
            description: a long job, to be interrupted by killing the harness
            target:
              command: [python, {HERE / "targets" / "worker.py"}]
            job: {{items: 2000, seconds_per_item: 0.05, poll: false, grandchild: true,
                   pid_file: "{pid_file}"}}
            env: {{budget: 120s}}
            expect: [completes]
            """
        )
    )
    # The golden run comes first: wait for the pid file of the run (the second one written).
    harness = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(scenario), "--quiet", "--redis", redis],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        worker, grandchild, local_dir = _wait_for(pid_file, 3)
    finally:
        harness.send_signal(signal.SIGKILL)
        harness.wait()
    root = Path(local_dir).parent.parent
    try:
        assert gone(int(worker)) and gone(int(grandchild))
        deadline = time.monotonic() + 10
        while _processes_mentioning(str(root)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _processes_mentioning(str(root)) == []  # redis-server runs in the run's dir
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_watchdog_kills_the_groups_still_registered_when_the_harness_goes() -> None:
    kept = subprocess.Popen(["sleep", "600"], start_new_session=True)
    released = subprocess.Popen(["sleep", "600"], start_new_session=True)
    watchdog = Watchdog()
    try:
        watchdog.guard(kept.pid)
        watchdog.guard(released.pid)
        watchdog.release(released.pid)
        watchdog.close()  # the end of its input: what the kernel does when the harness dies
        assert kept.wait(timeout=10) == -signal.SIGKILL
        assert released.poll() is None  # released: not the watchdog's to kill
    finally:
        for process in (kept, released):
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()


def test_watch_follows_registrations_in_order() -> None:
    groups: set[int] = set()
    for line in ["+11\n", "+12\n", "-11\n", "junk\n", "+\n", "-99\n"]:
        apply(groups, line)
    assert groups == {12}
