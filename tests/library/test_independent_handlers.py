"""Handlers written without the reference runtime (``harness/examples/handlers``): each known-bad
one is caught by the check its scenario names, with the events that prove it, and the careful
one passes the same scenario."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.checks import CheckSpec
from harness.examples.handlers import KNOWN_BAD
from harness.scenario.loader import load_file
from harness.scenario.model import Scenario, TargetSpec
from harness.sim.runner import RunResult, run_scenario

ROOT = Path(__file__).resolve().parents[2]
KNOWN_BAD_DIR = ROOT / "scenarios" / "known_bad"
CAREFUL = "harness.examples.handlers.careful:target"

#: handler -> (a phrase of the violation, event kinds it must cite)
EVIDENCE = {
    "report_before_put": ("before any write of", {"checkpoint.durable", "storage.op"}),
    "imdsv1_poller": ("no checkpoint was made durable", {"notice.issued", "notice.deadline"}),
    "thread_upload": ("kept working after notice", {"notice.issued", "job.item_done"}),
    "pointer_first": ("names s3 object", {"storage.op"}),
    "save_in_place": ("resumed at position 0", {"job.resumed", "checkpoint.durable"}),
    "exit_without_await": ("no checkpoint was made durable", {"notice.issued"}),
}


def scenario_of(name: str) -> Scenario:
    (loaded,) = load_file(KNOWN_BAD_DIR / f"{name}.yaml")
    return loaded.scenario


def failures(result: RunResult) -> dict[str, list[str]]:
    return {
        c.spec.name: [v.message for v in c.result.violations]
        for c in result.checks
        if not c.result.passed
    }


def test_every_handler_has_a_scenario_and_evidence() -> None:
    assert set(EVIDENCE) == set(KNOWN_BAD)
    for name in KNOWN_BAD:
        scenario = scenario_of(name)
        assert scenario.target.python == f"harness.examples.handlers.{name}:target"
        assert KNOWN_BAD[name] in {c.name for c in scenario.known_bad}


@pytest.mark.parametrize("name", sorted(KNOWN_BAD))
def test_the_named_check_catches_the_handler_with_evidence(name: str) -> None:
    scenario = scenario_of(name)
    result = run_scenario(scenario)
    check = KNOWN_BAD[name]
    broken = {c.spec.name: c.result for c in result.checks if not c.result.passed}
    assert check in broken, f"{name} slipped through {check}: {failures(result)}"
    assert set(broken) <= {c.name for c in scenario.known_bad}, failures(result)
    phrase, kinds = EVIDENCE[name]
    proof = [v for v in broken[check].violations if phrase in v.message]
    assert proof, [v.message for v in broken[check].violations]
    cited = {e.kind for v in proof for e in v.events}
    assert kinds <= cited, f"{name} cites {cited}"
    assert result.status == "xfailed"


@pytest.mark.parametrize("name", sorted(KNOWN_BAD))
def test_the_careful_handler_passes_the_same_scenario(name: str) -> None:
    scenario = scenario_of(name)
    cleared = tuple(CheckSpec(name=c.name, params=c.params) for c in scenario.expect)
    careful = scenario.model_copy(update={"target": TargetSpec(python=CAREFUL), "expect": cleared})
    result = run_scenario(careful)
    assert failures(result) == {}
    assert result.status == "passed"


def test_the_threaded_emergency_upload_is_seen_by_the_harness() -> None:
    result = run_scenario(scenario_of("thread_upload"))
    history = list(result.history)
    (notice,) = [e for e in history if e.kind == "notice.issued"]
    (deadline,) = [e for e in history if e.kind == "notice.deadline"]
    emergency = [
        e
        for e in history
        if e.kind == "checkpoint.started" and str(e.data["reason"]).startswith("notice")
    ]
    assert len(emergency) == 1
    key = emergency[0].data["checkpoint_id"]
    puts = [
        e
        for e in history
        if e.kind == "storage.op" and e.data["op"] == "s3.put_object" and e.data["key"] == key
    ]
    # asyncio.to_thread ran put_object in virtual time, between the notice and the deadline
    assert [p.data["ok"] for p in puts] == [True]
    assert notice.seq < puts[0].seq < deadline.seq
    worked_on = [e for e in history if e.kind == "job.item_done" and puts[0].seq < e.seq]
    assert worked_on and worked_on[0].instance == notice.instance


def test_the_local_file_was_torn_when_the_process_died() -> None:
    result = run_scenario(scenario_of("save_in_place"))
    history = list(result.history)
    (killed,) = [e for e in history if e.kind == "instance.killed"]
    at_kill = [e for e in history if e.kind == "local.snapshot" and e.seq < killed.seq][-1]
    reported = {e.data["checksum"] for e in history if e.kind == "checkpoint.durable"}
    torn = at_kill.data["files"]["state.json"]
    assert torn not in reported  # what the disk held at the kill is no checkpoint at all
    started = [e for e in history if e.kind == "checkpoint.started" and e.seq < killed.seq]
    assert len(started) == 2 and started[-1].data["position"] == 240
