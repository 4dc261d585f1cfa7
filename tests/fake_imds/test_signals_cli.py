"""`harness serve` and `harness notice` with the other clouds' notices, end to end."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fake_imds.sync import SyncFakeImds
from harness.cli import main

CHILD = textwrap.dedent(
    """
    import signal, sys, time
    journal = sys.argv[1]
    def note(number, frame):
        with open(journal, "a") as f:
            f.write(signal.Signals(number).name + "\\n")
    signal.signal(signal.SIGTERM, note)
    print("ready", flush=True)
    while True:
        time.sleep(0.05)
    """
)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--cloud", "gcp", "--kind", "preemption", "--lead", "30s"], ("gcp", "preemption")),
        (
            ["--cloud", "gcp", "--kind", "maintenance", "--action", "migrate"],
            ("gcp", "maintenance"),
        ),
        (["--cloud", "azure", "--kind", "preempt", "--lead", "30s"], ("azure", "preempt")),
        (["--cloud", "azure", "--kind", "terminate"], ("azure", "terminate")),
        (["--cloud", "azure", "--kind", "freeze", "--param", "duration=9"], ("azure", "freeze")),
        (["--cloud", "azure", "--kind", "reboot"], ("azure", "reboot")),
        (["--cloud", "azure", "--kind", "redeploy"], ("azure", "redeploy")),
        (
            ["--cloud", "webhook", "--param", "url=http://127.0.0.1:9/hook", "--lead", "2m"],
            ("webhook", "interruption"),
        ),
        (
            ["--cloud", "kubernetes", "--kind", "eviction", "--param", "grace=30s"],
            ("kubernetes", "eviction"),
        ),
    ],
)
def test_harness_notice_sends_every_kind(
    imds: SyncFakeImds,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    expected: tuple[str, str],
) -> None:
    assert main(["notice", "--url", imds.url, "--json", *args]) == 0
    created = json.loads(capsys.readouterr().out)
    assert (created["cloud"], created["kind"]) == expected


def test_harness_notice_reports_a_bad_field_of_another_cloud(
    imds: SyncFakeImds, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["notice", "--url", imds.url, "--cloud", "azure", "--kind", "preempt",
                 "--lead", "5s"])  # fmt: skip
    assert code == 2
    assert "[field: lead]" in capsys.readouterr().err


def test_serve_signals_a_process_on_a_kubernetes_eviction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "journal.txt"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(journal)], stdout=subprocess.PIPE, text=True
    )
    server = None
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        env = {**os.environ, "NO_PROXY": "127.0.0.1"}
        server = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "serve", "--port", "0",
             "--signal-pid", str(child.pid)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
        )  # fmt: skip
        assert server.stdout is not None
        url = re.search(r"http://\S+", server.stdout.readline())
        assert url is not None
        args = ["--cloud", "kubernetes", "--kind", "eviction", "--param", "grace=0.3s"]
        assert main(["notice", "--url", url.group(0), *args]) == 0
        assert child.wait(timeout=30) == -signal.SIGKILL
        assert journal.read_text().split() == ["SIGTERM"]
    finally:
        for process in (server, child):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM if process is server else signal.SIGKILL)
                process.wait(timeout=30)
        capsys.readouterr()


def test_serve_refuses_a_pid_that_is_not_running(capsys: pytest.CaptureFixture[str]) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: nothing runs under that pid now
    assert main(["serve", "--port", "0", "--signal-pid", str(gone.pid)]) == 2
    assert f"no running process has pid {gone.pid}" in capsys.readouterr().err
