"""Restore-side verification under the corruption fault: the damage keeps the content parsable,
so only a digest check finds it; ``which`` chooses the objects it hits."""

from __future__ import annotations

from pathlib import Path

from harness.history import Kind
from harness.scenario.loader import load_file
from harness.scenario.model import S3Fault, Scenario, TargetSpec
from harness.sim.runner import RunResult, run_scenario

STORY = (
    Path(__file__).resolve().parents[2] / "scenarios/storage/s3_corrupted_newest_checkpoint.yaml"
)


def corrupted(which: str | int, target: TargetSpec | None = None) -> RunResult:
    """Checkpoints at 1..4 min are in S3 (240 newest) when the host dies at 4m30s."""
    (loaded,) = load_file(STORY)
    scenario: Scenario = loaded.scenario
    entries = list(scenario.timeline)
    entries[1] = entries[1].model_copy(
        update={"s3": S3Fault(corrupt="checkpoints/*.ckpt", which=which)}
    )
    update: dict[str, object] = {"timeline": tuple(entries)}
    if target is not None:
        update["target"] = target
    return run_scenario(scenario.model_copy(update=update))


def recovery(result: RunResult) -> tuple[list[str], int]:
    second = [e for e in result.history if e.kind == Kind.INSTANCE_STARTED][1].instance
    rejected = [
        str(e.data["reason"])
        for e in result.history
        if e.kind == Kind.CHECKPOINT_REJECTED and e.instance == second
    ]
    resumed = next(e for e in result.history if e.kind == Kind.RESUMED and e.instance == second)
    return rejected, int(resumed.data["position"])


def test_the_reference_rejects_the_rotten_newest_by_its_digest_and_falls_back() -> None:
    result = corrupted("newest")
    assert result.status == "passed"
    rejected, position = recovery(result)
    assert rejected == ["0000000240-e000001-0004: checksum mismatch"]
    assert position == 180


def test_a_rotten_older_checkpoint_leaves_the_newest_to_resume_from() -> None:
    result = corrupted("previous")
    assert result.status == "passed"
    fault = next(e for e in result.history if e.kind == Kind.FAULT_STARTED)
    assert fault.data["params"]["keys"] == ["checkpoints/job/0000000180-e000001-0003.ckpt"]
    assert recovery(result) == ([], 240)


def test_with_every_checkpoint_rotten_the_reference_starts_over_and_says_why() -> None:
    result = corrupted("all")
    failed = {c.spec.name for c in result.checks if c.result.status != "passed"}
    assert failed == {"lost_work"}  # all 4m30s of work are gone with the checkpoints
    rejected, position = recovery(result)
    assert position == 0 and rejected and all(r.endswith("checksum mismatch") for r in rejected)


def test_a_restore_that_skips_the_digest_is_caught_by_resume_correct() -> None:
    result = corrupted("newest", TargetSpec(python="harness.examples.broken:restore_unverified"))
    assert recovery(result) == ([], 240)  # the rotten state was taken as it came
    (resume,) = [c.result for c in result.checks if c.spec.name == "resume_correct"]
    assert resume.status == "failed"
    messages = [v.message for v in resume.violations]
    assert "resumed at position 240, beyond the newest valid durable checkpoint" in messages[0]
    assert any("but the golden state there is" in m for m in messages[1:])
