"""However a target ends (sys.exit, an exception, Ctrl-C of its own, doing nothing), the
incarnation ends like a process with an exit code, the run goes on, and the verdict is judged:
never a traceback and a pass."""

from __future__ import annotations

import pytest

from harness.history import Kind
from tests.sim.conftest import kinds
from tests.sim.test_observe import run_target


@pytest.mark.parametrize(
    ("how", "code", "error"),
    [
        ("0", 0, "SystemExit: 0"),
        ("3", 3, "SystemExit: 3"),
        ("raise", 1, "RuntimeError: the handler fell over"),
        ("interrupt", 130, "KeyboardInterrupt"),
    ],
)
def test_an_incarnation_ends_with_an_exit_code_and_the_job_is_judged(
    how: str, code: int, error: str
) -> None:
    result = run_target("exits_with", job={"exit": how}, env={"max_instances": 3})
    exits = kinds(result, Kind.INSTANCE_EXITED)
    assert [(e.data["code"], e.data["error"]) for e in exits] == [(code, error)] * 3
    assert kinds(result, "run.gave_up")
    assert result.status == "failed"
    (completes,) = result.checks
    assert "never completed" in completes.result.violations[0].message


def test_a_target_that_does_nothing_fails_the_default_checks() -> None:
    result = run_target("does_nothing", env={"max_instances": 2}, expect=None)
    by_name = {c.result.name: c.result for c in result.checks}
    assert by_name["completes"].status == "failed"
    assert by_name["durable"].status == "unverified"
    assert by_name["durable"].reason == "no write to S3, Redis or the local disk was seen"
    assert by_name["exactly_once"].status == "unverified"
    assert result.status == "failed" and not result.ok


def test_durable_reported_before_the_upload_is_caught_from_the_harness_s_own_records() -> None:
    result = run_target("claims_durable_first", expect=["durable"])
    (durable,) = result.checks
    assert durable.result.status == "failed"
    (violation,) = durable.result.violations
    assert "reported durable at t=0s before any write of state/latest.json" in violation.message
    assert [e.kind for e in violation.events] == [Kind.CHECKPOINT_DURABLE, Kind.STORAGE_OP]
    assert "s3.ops" in durable.result.evidence


def test_a_factory_that_exits_is_a_clear_error_not_a_silent_exit() -> None:
    from harness.sim.targets import TargetError, load_python_target

    with pytest.raises(TargetError, match="zero-argument factory, which raised SystemExit"):
        load_python_target("sys:exit")
