"""One renderer: the text of a failure is the same from a run and from its journal record."""

from __future__ import annotations

import copy
from typing import Any

from harness.report.render import check_lines, check_status, render_record


def broken(document: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in document["runs"] if r["status"] == "failed")


def test_the_journal_record_renders_the_failure_the_cli_printed(document: dict[str, Any]) -> None:
    text = render_record(broken(document))
    lines = text.splitlines()
    assert lines[0].startswith("FAILED: The upload is never awaited")
    assert lines[1] == "check saved_before_deadline broke: 1 interruption(s) with work to save"
    assert lines[2].startswith("  evidence: ")
    # the events the violation cites are marked, in history order
    marked = [line for line in lines if line.startswith("  > ")]
    kinds = [line.split()[3] for line in marked]
    assert kinds == ["checkpoint.durable", "notice.issued", "job.item_done", "notice.deadline"]
    assert lines[-1].startswith("replay: harness run ") and lines[-1].endswith("--seed 3")


def test_evidence_and_reason_are_shown_per_check() -> None:
    failed = {
        "check": "durable",
        "status": "failed",
        "evidence": ["s3.ops", "storage.snapshot"],
        "summary": "2 durable report(s)",
        "violations": [
            {"message": "ckpt-2 is torn", "events": [{"seq": 9, "t": 61.5, "kind": "x"}]}
        ],
    }
    assert check_lines(failed) == [
        "check durable broke: 2 durable report(s)",
        "  evidence: s3.ops, storage.snapshot",
        "  - ckpt-2 is torn",
        "    events: #9 x at 0:01:01.500",
    ]
    unverified = {"check": "fenced", "status": "unverified", "reason": "no write was seen"}
    assert check_lines(unverified) == [
        "check fenced unverified: no write was seen",
        "  evidence: not recorded",
    ]


def test_a_journal_from_before_check_status_still_renders(document: dict[str, Any]) -> None:
    old = copy.deepcopy(broken(document))
    for check in old["checks"]:
        for key in ("status", "evidence", "reason", "as_expected"):
            check.pop(key, None)
    for key in ("cloud", "job"):
        old.pop(key)
    assert [check_status(c) for c in old["checks"]] == ["failed", "passed"]
    text = render_record(old)
    assert "check saved_before_deadline broke" in text
    assert "exactly_once" not in text  # it passed: only the broken check is told
