"""`harness run --target`: the library against another target, the replay naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"
CAREFUL = "harness.examples.handlers.careful:target"


def test_a_reference_scenario_passes_against_another_target(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    journal = tmp_path / "journal.json"
    path = LIBRARY / "aws" / "terminate_mid_job.yaml"
    assert main(["run", str(path), "--target", CAREFUL, "-q", "--journal", str(journal)]) == 0
    assert "1 runs: 1 passed" in capsys.readouterr().out
    (run,) = json.loads(journal.read_text())["runs"]
    keys = {e["data"].get("key", "") for e in run["history"] if e["kind"] == "checkpoint.durable"}
    assert keys and all(k.endswith(".ckpt") and "-i-" in k for k in keys)  # the careful layout
    assert run["replay"] == f"harness run {path} --seed 1 --target {CAREFUL}"


def test_a_known_bad_story_fails_against_a_target_that_does_it_right(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = LIBRARY / "known_bad" / "imdsv1_poller.yaml"
    assert main(["run", str(path), "--target", CAREFUL, "-q"]) == 1
    out = capsys.readouterr().out
    assert "XPASSED" in out
    assert f"replay: harness run {path} --seed 112 --target {CAREFUL}" in out


def test_the_reference_can_stand_in_for_a_scenario_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = LIBRARY / "known_bad" / "pointer_first.yaml"
    assert main(["run", str(path), "--target", "reference", "-q"]) == 1
    assert "XPASSED" in capsys.readouterr().out


def test_a_target_that_cannot_be_imported_is_refused_before_any_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = LIBRARY / "aws" / "terminate_mid_job.yaml"
    assert main(["run", str(path), "--target", "no_such_package.handler:target"]) == 2
    err = capsys.readouterr().err
    assert "--target" in err and "cannot import 'no_such_package.handler'" in err
    assert main(["run", str(path), "--target", "not a target"]) == 2
    assert "unknown target 'not a target'" in capsys.readouterr().err
