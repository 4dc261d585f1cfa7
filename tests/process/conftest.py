"""Helpers for process-tier tests: scenarios around ``targets/worker.py``."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

from harness.checks import CheckResult
from harness.history import Event, History
from harness.process.runner import run_process_scenario
from harness.scenario import load_text
from harness.scenario.model import Scenario
from harness.sim.runner import RunResult

HERE = Path(__file__).parent


def scenario(text: str) -> Scenario:
    (loaded,) = load_text(textwrap.dedent(text), "test.yaml")
    return loaded.scenario


def run(text: str) -> RunResult:
    return run_process_scenario(scenario(text), base_dir=HERE)


def kinds(history: History, instance: str | None = None) -> list[str]:
    return [e.kind for e in history if instance is None or e.instance == instance]


def first(history: History, kind: str, **data: object) -> Event:
    return next(
        e for e in history if e.kind == kind and all(e.data.get(k) == v for k, v in data.items())
    )


def check(result: RunResult, name: str) -> CheckResult:
    return next(c.result for c in result.checks if c.spec.name == name)


def gone(pid: int, patience: float = 10.0) -> bool:
    """Whether ``pid`` no longer exists (waits for init to reap an orphan's zombie)."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if _zombie(pid):
            return True
        time.sleep(0.02)
    return False


def _zombie(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return status.rsplit(")", 1)[1].split()[0] == "Z"
