"""``harness crash-points``: the steps of a run, in order, and a crash before each of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.commands.crashpoints import parse_span
from harness.explore.crashpoints import Enumerator, judged, select_steps, with_crash
from harness.process.plan import process_problems
from harness.scenario.loader import ScenarioError, load_paths, load_text
from harness.scenario.model import TargetSpec
from harness.sim.iohook import StepStart

#: A tiny job without a notice (each crash is the interruption): two outputs, a final checkpoint.
TINY = """\
description: A tiny job; the crashes are its interruptions.
seed: 5
target: reference
job: {items: 2, seconds_per_item: 1s, checkpoint_every: 1h, state_size: 1MiB}
env: {cloud: aws}
expect: [exactly_once, resume_correct, durable, no_leaked_uploads, completes]
"""
POINTER_FIRST = "harness.examples.broken:pointer_before_upload"


def tiny(target: str | None = None) -> Enumerator:
    (loaded,) = load_text(TINY, file="tiny.yaml")
    scenario = loaded.scenario
    if target is not None:
        scenario = scenario.model_copy(update={"target": TargetSpec(python=target)})
    return Enumerator(scenario)


def index_of(steps: list[StepStart], op: str, key: str, start: int = 0) -> int:
    return next(i for i, s in enumerate(steps) if i >= start and s.op == op and s.key == key)


@pytest.fixture(scope="module")
def reference_steps() -> tuple[Enumerator, list[StepStart]]:
    enumerator = tiny()
    first, steps = enumerator.first_run()
    assert first.status in ("passed", "unverified"), first.to_json()
    return enumerator, steps


def test_the_steps_of_a_run_in_the_order_they_started(
    reference_steps: tuple[Enumerator, list[StepStart]],
) -> None:
    _, steps = reference_steps
    assert [s.ordinal for s in steps] == list(range(1, len(steps) + 1))
    assert [s.t for s in steps] == sorted(s.t for s in steps)
    ops = [s.op for s in steps]
    # Recovery first: the epoch in Redis, then the manifest in S3.
    assert ops[:2] == ["redis.read", "s3.get_object"]
    assert steps[1].key == "checkpoints/job/manifest.json"
    # The checkpoint: written, fsynced and renamed locally, then uploaded, then the manifest
    # in S3, then the pointer in Redis.
    ckpt = "checkpoints/job/0000000002-e000001-0001.ckpt"
    write = index_of(steps, "local.write", ckpt + ".tmp")
    fsync = index_of(steps, "local.fsync", ckpt + ".tmp")
    rename = index_of(steps, "local.rename", ckpt)
    fsync_dir = index_of(steps, "local.fsync_dir", ckpt)
    upload = index_of(steps, "s3.put_object", ckpt)
    manifest = index_of(steps, "s3.put_object", "checkpoints/job/manifest.json", upload)
    pointer = index_of(steps, "redis.write", "spot-harness:job:epoch", manifest)
    assert write < fsync < rename < fsync_dir < upload < manifest < pointer
    assert {s.key for s in steps if s.op == "s3.put_object"} >= {
        "outputs/job/part-00000",
        "outputs/job/part-00001",
    }
    assert {s.instance for s in steps} == {steps[0].instance}


def test_the_reference_survives_a_crash_at_every_step(
    reference_steps: tuple[Enumerator, list[StepStart]],
) -> None:
    enumerator, steps = reference_steps
    rows = enumerator.crash_all(steps, ("process", "host"))
    assert len(rows) == len(steps)
    for row in rows:
        assert [v.lose for v in row.verdicts] == ["process", "host"]
        for verdict in row.verdicts:
            assert verdict.reached, (row.step, verdict.lose)
            assert verdict.status == "passed", (row.step, verdict.lose, verdict.problem)
            killed = [e for e in verdict.result.history if e.kind == "instance.killed"]
            assert killed[0].data["reason"] == "crash"
            crashed = [e for e in verdict.result.history if e.data.get("error") == "crash"]
            assert [(e.data["op"], e.data["key"]) for e in crashed] == [(row.step.op, row.step.key)]
    # A host loss before a directory fsync is judged on a disk that lost unsynced data.
    lost = [
        e for row in rows for e in row.verdicts[1].result.history if e.kind == "local.unsynced_lost"
    ]
    assert lost


def test_a_pointer_moved_before_its_upload_is_caught_at_the_local_manifest_sync() -> None:
    enumerator = tiny(POINTER_FIRST)
    _, steps = enumerator.first_run()
    # The crash before the directory fsync of the first local manifest: the checkpoint was
    # never reported durable, so the replacement uploads it again, pointer first.
    expected = index_of(steps, "local.fsync_dir", "checkpoints/job/manifest.json")
    window = steps[expected - 4 : expected + 1]
    rows = enumerator.crash_all(window, ("process",))
    failing = [row for row in rows if not row.ok]
    assert [row.step.ordinal for row in failing] == [steps[expected].ordinal]
    (verdict,) = failing[0].verdicts
    assert verdict.broken == ("durable",)
    (durable,) = verdict.result.broken_checks
    assert "metadata moved to checkpoint" in durable.result.violations[0].message


def test_crash_points_judge_the_invariants_not_what_a_crash_breaks_by_itself() -> None:
    (loaded,) = load_paths([Path("scenarios/aws/terminate_mid_job.yaml")])[0]
    names = [c.name for c in judged(loaded.scenario).expect]
    assert "saved_before_deadline" not in names and "lost_work" not in names
    assert "detects_notice" not in names
    for name in ("exactly_once", "resume_correct", "durable", "no_leaked_uploads", "completes"):
        assert names.count(name) == 1
    assert "reference_layout" in names


def test_a_crash_by_ordinal_is_a_valid_scenario_entry() -> None:
    (loaded,) = load_text(TINY, file="tiny.yaml")
    crashed = with_crash(loaded.scenario, 7, "host")
    (entry,) = crashed.timeline
    assert entry.at == 0 and entry.crash is not None
    assert (entry.crash.ordinal, entry.crash.at, entry.crash.lose) == (7, None, "host")


@pytest.mark.parametrize(
    ("crash", "where", "message"),
    [
        ("{ordinal: 3, at: s3.put_object}", "9:12", "exactly one of `at`, `ordinal`"),
        ("{ordinal: 3, nth: 2}", "9:12", "drop it with `ordinal`"),
        ("{ordinal: 0}", "9:22", "`ordinal`: input should be greater than or equal to 1"),
    ],
)
def test_a_wrong_crash_entry_is_refused(crash: str, where: str, message: str) -> None:
    text = TINY + f"timeline:\n  - at: 0s\n    crash: {crash}\n"
    with pytest.raises(ScenarioError, match=rf"bad\.yaml:{where}: ") as caught:
        load_text(text, file="bad.yaml")
    assert message in str(caught.value)


def test_an_ordinal_crash_counts_from_the_start_so_it_fires_at_0s() -> None:
    text = TINY + "timeline:\n  - at: 5s\n    crash: {ordinal: 3}\n"
    with pytest.raises(ScenarioError, match="trigger it `at: 0s`"):
        load_text(text, file="bad.yaml")


# -- the command -----------------------------------------------------------------------------


@pytest.fixture
def tiny_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def test_the_command_prints_the_table_and_writes_json(
    tiny_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "crashes.json"
    code = main(["crash-points", str(tiny_file), "--steps", "2-4", "--json", str(out), "-q"])
    output = capsys.readouterr().out
    assert code == 0, output
    lines = output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("step"))
    assert lines[header].split() == [
        *("step", "time", "instance", "operation", "key", "process", "host", "broken"),
    ]
    rows = [line.split() for line in lines[header + 1 : header + 4]]
    assert [row[0] for row in rows] == ["2", "3", "4"]
    assert [row[3] for row in rows] == ["s3.get_object", "redis.write", "s3.put_object"]
    assert all(row[5:7] == ["passed", "passed"] for row in rows)
    assert " steps, 6 crash runs: 6 passed, 0 failed" in output
    document = json.loads(out.read_text())
    assert [p["step"] for p in document["crash_points"]] == [2, 3, 4]
    assert len(document["steps"]) > 3
    assert {c["status"] for p in document["crash_points"] for c in p["crashes"]} == {"passed"}
    assert main(["crash-points", str(tiny_file), "--json", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


def test_a_failing_crash_exits_1_and_is_written_as_a_replayable_scenario(
    tiny_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "failures"
    folder.mkdir()
    enumerator = tiny(POINTER_FIRST)
    _, steps = enumerator.first_run()
    step = steps[index_of(steps, "local.fsync_dir", "checkpoints/job/manifest.json")].ordinal
    args = ["crash-points", str(tiny_file), "--target", POINTER_FIRST, "--steps", str(step)]
    args += ["--lose", "process", "--write-failures", str(folder), "-q"]
    assert main(args) == 1
    output = capsys.readouterr().out
    assert "failed" in output and "durable" in output
    (written,) = folder.iterdir()
    assert written.name.startswith(f"tiny-crash-{step}-process-")
    text = written.read_text()
    assert text.startswith(f"# Replay: harness run {written} --seed 5\n")
    # The file replays: the same crash breaks the same check.
    assert main(["run", str(written), "-q"]) == 1
    assert "durable" in capsys.readouterr().out
    # A second time, a new name: the first file is left as it was.
    assert main(args) == 1
    assert len(list(folder.iterdir())) == 2
    assert written.read_text() == text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "5-2"], "A <= B"),
        (["--steps", "x"], "expected A-B"),
        (["--target", "nope"], "unknown target"),
    ],
)
def test_bad_options_are_refused(
    tiny_file: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["crash-points", str(tiny_file), *args]) == 2
    assert message in capsys.readouterr().err


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crash-points", "--help"]) == 0
    assert "harness crash-points library:aws/terminate_mid_job" in capsys.readouterr().out


def test_steps_and_limit_choose_which_steps_crash() -> None:
    steps = [StepStart(n, float(n), "i-1", "redis.read", None) for n in range(1, 11)]
    assert parse_span("3-5") == (3, 5) and parse_span("7") == (7, 7)
    assert [s.ordinal for s in select_steps(steps, parse_span("3-5"), None)] == [3, 4, 5]
    assert [s.ordinal for s in select_steps(steps, parse_span("8-"), None)] == [8, 9, 10]
    assert [s.ordinal for s in select_steps(steps, parse_span("2-9"), 2)] == [2, 3]
    assert [s.ordinal for s in select_steps(steps, None, 3)] == [1, 2, 3]
    assert parse_span(None) is None


def test_a_process_target_refuses_an_ordinal_crash() -> None:
    text = TINY.replace("target: reference", "target: {command: [sh, job.sh]}")
    (loaded,) = load_text(text + "timeline:\n  - at: 0s\n    crash: {ordinal: 3}\n")
    (problem,) = process_problems(loaded.scenario, max_real_time=600.0)
    assert problem.startswith("timeline[0] (crash): `crash: {ordinal: N}` numbers the steps")
