"""`harness run` and `harness explore` off a terminal (CI logs, pipes): a periodic plain
progress line instead of a bar, and a summary whose cells are never cut inside a word."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.commands import run as run_command
from tests.cli.test_run import write


def test_run_off_a_terminal_prints_plain_progress_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_command, "PROGRESS_EVERY", 0.0)  # a line after every scenario
    write(tmp_path, "a.yaml", "1h")
    write(tmp_path, "b.yaml", "1s")  # fails its check
    assert main(["run", str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    progress = [line for line in lines if line.startswith("progress: ")]
    assert [line.split(",")[0] for line in progress] == [
        "progress: 1/2 scenarios",
        "progress: 2/2 scenarios",
    ]
    assert progress[-1].endswith("elapsed; 1 failed")
    assert not any("\r" in line or "\x1b[" in line for line in lines)  # no bar redraws


def test_run_quiet_prints_no_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_command, "PROGRESS_EVERY", 0.0)
    write(tmp_path, "a.yaml", "1h")
    assert main(["run", str(tmp_path), "-q"]) == 0
    assert "progress:" not in capsys.readouterr().out


def test_explore_off_a_terminal_prints_plain_progress_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_command, "PROGRESS_EVERY", 0.0)
    assert main(["explore", "-n", "2", "--seed", "1", "--out", str(tmp_path / "out")]) == 0
    progress = [line for line in capsys.readouterr().out.splitlines() if "progress: " in line]
    assert progress[0].startswith("progress: 1/2 runs incl. shrinking")
    assert len(progress) >= 2


def test_summary_cells_in_a_log_are_never_cut_inside_a_word(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "s3_errors_on_parts_during_the_emergency_save_of_a_long_running_training_job"
    write(tmp_path, f"{name}.yaml", "1s")  # fails `completes`
    assert main(["run", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert str(tmp_path / name) in out  # the whole path on one line of the table
    table = out[out.index("scenario runs") :]
    assert "completes(within=1s)" in table
