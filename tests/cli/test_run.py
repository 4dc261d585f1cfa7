"""`harness run`, `harness validate`, `harness schema`: exit codes, output, the journal."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
import pytest

from harness.cli import main
from harness.report.journal import FORMAT

FAST = textwrap.dedent(
    """\
    description: {description}
    seed: 4
    target: {{python: "tests.sim.probe:probe_target"}}
    job: {{items: 6, step: 10}}
    env: {{s3: {{latency: 0}}, redis: {{latency: 0}}, disk: {{latency: 0, fsync: 0}}}}
    timeline: [{{at: 25s, kill: {{}}}}]
    expect: [{{completes: {{within: {within}}}}}]
    """
)


def write(folder: Path, name: str, within: str, description: str | None = None) -> Path:
    path = folder / name
    path.write_text(FAST.format(description=description or name, within=within))
    return path


def test_run_passing_scenarios_exits_0_with_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "a.yaml", "1h")
    write(tmp_path, "b.yaml", "1h")
    assert main(["run", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "scenario runs" in out and out.count("passed") >= 2
    assert "2 runs: 2 passed" in out


def test_run_failure_exits_1_and_prints_the_timeline_and_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "slow.yaml", "30s", "too slow")
    assert main(["run", str(path), "--seed", "11", "-q"]) == 1
    out = capsys.readouterr().out
    assert "FAILED: too slow (seed 11)" in out
    assert "check completes(within=30s) broke" in out
    assert "instance.killed" in out and "reason=hard_kill" in out
    assert f"replay: harness run {path} --seed 11" in out
    assert "1 runs: 1 failed" in out


def test_replay_line_reproduces_the_same_history(tmp_path: Path) -> None:
    path = write(tmp_path, "slow.yaml", "30s")
    first, second = tmp_path / "one.json", tmp_path / "two.json"
    assert main(["run", str(path), "--seed", "11", "-q", "--journal", str(first)]) == 1
    assert main(["run", str(path), "--seed", "11", "-q", "--journal", str(second)]) == 1
    runs = [json.loads(p.read_text())["runs"][0] for p in (first, second)]
    assert runs[0]["history"] == runs[1]["history"] and runs[0]["seed"] == 11


def test_journal_is_complete_json_with_every_run(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "1h")
    write(tmp_path, "b.yaml", "30s")
    journal = tmp_path / "out" / "journal.json"
    journal.parent.mkdir()
    assert (
        main(
            [
                "run",
                str(tmp_path / "a.yaml"),
                str(tmp_path / "b.yaml"),
                "-q",
                "--journal",
                str(journal),
            ]
        )
        == 1
    )
    document = json.loads(journal.read_text())
    assert document["format"] == FORMAT and document["finished"] is True
    assert document["summary"] == {"runs": 2, "failed": 1, "passed": 1}
    names = [(run["name"], run["status"]) for run in document["runs"]]
    assert names == [(str(tmp_path / "a"), "passed"), (str(tmp_path / "b"), "failed")]
    assert document["runs"][0]["file"] == str(tmp_path / "a.yaml")
    assert document["runs"][1]["replay"].endswith("b.yaml --seed 4")
    kinds = [event["kind"] for event in document["runs"][0]["history"]]
    assert kinds[0] == "run.started" and kinds[-1] == "run.finished"
    assert [p.name for p in journal.parent.iterdir()] == ["journal.json"]  # no temp files left


def test_journal_never_overwrites_a_file_it_did_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "a.yaml", "1h")
    precious = tmp_path / "notes.json"
    precious.write_text('{"mine": true}')
    assert main(["run", str(tmp_path / "a.yaml"), "--journal", str(precious)]) == 2
    assert "not a harness journal; refusing to overwrite" in capsys.readouterr().err
    assert precious.read_text() == '{"mine": true}'


def test_run_reports_bad_files_and_still_runs_the_good_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "good.yaml", "1h")
    (tmp_path / "bad.yaml").write_text("description: x\nenv: {cloud: asw}\n")
    assert main(["run", str(tmp_path), "-q"]) == 1
    captured = capsys.readouterr()
    assert "bad.yaml:2:14: `cloud` cannot be `asw`" in captured.err
    assert "1 runs: 1 passed" in captured.out


def test_run_without_any_scenario_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(tmp_path / "nothing.yaml")]) == 2
    err = capsys.readouterr().err
    assert "nothing.yaml:1:1: no such file or directory" in err
    assert "no scenario to run" in err


def test_validate_lists_every_problem_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "good.yaml", "1h")
    (tmp_path / "bad.yaml").write_text(
        "description: x\ntimeline:\n  - at: 1m\n    notice: {lead_time: 2m}\n"
    )
    assert main(["validate", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "bad.yaml:4:14: unknown key `lead_time` in `notice`; did you mean `lead`?" in (
        captured.err
    )
    assert "1 scenario(s) in 1 file(s) valid; 1 problem(s)" in captured.out
    assert main(["validate", str(tmp_path / "good.yaml")]) == 0


def test_schema_prints_a_valid_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["title"] == "spot-harness scenario"


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--help"]) == 0
    assert "harness run scenarios --journal out.json" in capsys.readouterr().out


def test_same_file_names_in_different_folders_replay_their_own_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for folder in ("aws", "gcp"):
        (tmp_path / folder).mkdir()
        write(tmp_path / folder, "slow.yaml", "30s", f"{folder} slow")
    assert main(["run", str(tmp_path), "-q"]) == 1
    out = capsys.readouterr().out
    assert f"replay: harness run {tmp_path / 'aws' / 'slow.yaml'} --seed 4" in out
    assert f"replay: harness run {tmp_path / 'gcp' / 'slow.yaml'} --seed 4" in out


def test_python_targets_are_imported_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "my_handler_pkg_xyz.py").write_text(
        "async def target(ctx):\n    ctx.emit('job.completed', position=0)\n"
    )
    (tmp_path / "mine.yaml").write_text(
        "description: my own target\n"
        "target: {python: 'my_handler_pkg_xyz:target'}\n"
        "expect: [{completes: {within: 1m}}]\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p != str(tmp_path)])
    assert main(["run", "mine.yaml", "-q"]) == 0
    assert "1 runs: 1 passed" in capsys.readouterr().out


def test_tier_simulation_leaves_command_targets_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The embedded suite: no real process, no server, whatever the folder holds."""
    write(tmp_path, "in_process.yaml", "1h")
    command = FAST.format(description="a command", within="1h").replace(
        '{python: "tests.sim.probe:probe_target"}', '{command: ["false"]}'
    )
    (tmp_path / "command.yaml").write_text(command)
    assert main(["run", str(tmp_path), "--tier", "simulation"]) == 0
    captured = capsys.readouterr()
    assert "--tier simulation: leaving out 1 scenario(s)" in captured.err
    assert "1 runs: 1 passed" in captured.out


def test_schema_control_prints_the_control_api_bodies(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "control"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["title"] == "spot-harness control API bodies"
    notice = {"$ref": "#/$defs/NoticeBody", "$defs": schema["$defs"]}
    assert jsonschema.Draft202012Validator(notice).is_valid({"cloud": "gcp", "lead": "30s"})
    assert not jsonschema.Draft202012Validator(notice).is_valid({"cloud": "gcp", "leed": "30s"})
