"""`harness run` with command targets: refusals before anything runs, errors that say why."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.cli import main
from tests.process.conftest import run


def test_a_process_scenario_too_long_for_real_time_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long = tmp_path / "long.yaml"
    long.write_text(
        textwrap.dedent(
            """
            description: a simulation-sized story as a process
            target: {command: [sh, -c, "exit 0"]}
            timeline:
              - at: 10m
                notice: {lead: 2m}
            """
        )
    )
    assert main(["run", str(long), "--max-real-time", "1m"]) == 2
    err = capsys.readouterr().err
    assert "cannot run as processes" in err
    assert "needs about 12m40s of real time" in err and "limit of 1m" in err
    assert "shorter leads" in err


def test_a_command_that_cannot_start_is_an_error_naming_it() -> None:
    result = run(
        """
        description: no such program
        target: {command: [./no-such-handler]}
        env: {budget: 10s}
        expect: [durable]
        """
    )
    assert result.status == "error"
    assert result.error is not None and "cannot start './no-such-handler'" in result.error


def test_a_golden_run_that_does_not_complete_is_an_error_with_the_last_output() -> None:
    result = run(
        """
        description: a command that always fails
        target: {command: [sh, -c, "echo missing config >&2; exit 4"]}
        env: {budget: 2s, replacement: {delay: 500ms}}
        expect: [completes]
        """
    )
    assert result.status == "error"
    assert result.error is not None
    assert "the uninterrupted (golden) run did not complete (budget" in result.error
    assert "its last output: missing config" in result.error
