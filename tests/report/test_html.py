"""The HTML report: self-contained, failed runs first, checks with evidence, a timeline that
shows what happened where, and the violation at the events it cites."""

from __future__ import annotations

import copy
import re
from typing import Any

from harness.report.figures import run_figures
from harness.report.html import render_report


def sections(page: str) -> list[tuple[str, str]]:
    return re.findall(r'<section class="run (\w+)" id="run-(\d+)">', page)


def test_the_page_is_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page
    assert not re.search(r'\b(src|href)="(?!#)', page)  # no fetched resource, only anchors
    assert not re.search(r"url\((?!#)", page)
    assert "@import" not in page


def test_failed_runs_come_first_in_summary_and_sections(page: str) -> None:
    # the good scenario ran first, yet the failed one is listed first everywhere
    assert [status for status, _ in sections(page)] == ["failed", "passed"]
    summary = page.split('<table class="summary">')[1].split("</table>")[0]
    rows = re.findall(r'<tr class="(\w+)">', summary)
    assert rows == ["failed", "passed"]
    for header in ("lost work", "detection latency", "margin before deadline", "simulated", "wall"):
        assert f"<th>{header}</th>" in summary
    assert "no save before the deadline" in summary  # the broken run's margin
    assert "✗ saved_before_deadline" in summary and "✓ exactly_once" in summary


def test_each_run_has_checks_timeline_text_and_replay(page: str, document: dict[str, Any]) -> None:
    failed = page.split('<section class="run failed"')[1].split("</section>")[0]
    assert '<span class="badge failed">failed</span> broke' in failed
    assert "no checkpoint was made durable on S3 between the notice and the deadline" in failed
    assert failed.count('<svg xmlns="http://www.w3.org/2000/svg" class="timeline"') == 1
    assert "<details open><summary>text timeline</summary>" in failed
    assert "check saved_before_deadline broke" in failed  # the text renderer's words
    assert re.search(r"replay: <code>harness run \S+broken.yaml --seed 3</code>", failed)
    passed = page.split('<section class="run passed"')[1].split("</section>")[0]
    assert "<details><summary>text timeline</summary>" in passed  # folded when it passed


def test_the_timeline_draws_lanes_notices_faults_checkpoints_and_the_violation(
    page: str, document: dict[str, Any]
) -> None:
    failed = page.split('<section class="run failed"')[1].split("</section>")[0]
    svg = failed.split('class="timeline"')[1].split("</svg>")[0]
    record = next(r for r in document["runs"] if r["status"] == "failed")
    assert run_figures(record).instances == 2
    assert svg.count('font-weight="bold">#') == 2  # one lane per instance
    assert "<title>notice notice-0001 (spot-interruption) at 4m</title>" in svg
    assert "<title>deadline of notice notice-0001 at 6m</title>" in svg
    assert "<title>fault s3.latency from 1m to 1m30s</title>" in svg
    assert "durable on s3 after" in svg and "durable on local after" in svg
    assert "killed at 6m" in svg and "output committed at" in svg
    # one ring per cited event, each saying which check and what broke
    rings = re.findall(r'<g class="violation">.*?<title>(.*?)</title></g>', svg)
    assert len(rings) == 4
    assert all(r.startswith("saved_before_deadline: notice notice-0001 (terminate)") for r in rings)
    assert [r.rsplit("(#", 1)[1].split()[1].rstrip(")") for r in rings] == [
        "checkpoint.durable",
        "notice.issued",
        "job.item_done",
        "notice.deadline",
    ]


def test_figures_of_the_runs(document: dict[str, Any]) -> None:
    by_status = {r["status"]: run_figures(r) for r in document["runs"]}
    bad, good = by_status["failed"], by_status["passed"]
    assert bad.interruptions == 1 and good.interruptions == 1
    (miss,) = bad.margins
    assert miss.seconds is None  # nothing durable on S3 between notice and deadline
    (saved,) = good.margins
    assert saved.seconds is not None and 0 < saved.seconds < 120
    assert bad.lost_work[0] > 100  # resumed from position 120 after doing 238 items
    assert good.lost_work[0] < bad.lost_work[0]
    assert good.detection and all(d <= 10 for d in good.detection)


def test_an_old_journal_without_status_or_evidence_still_renders(document: dict[str, Any]) -> None:
    old = copy.deepcopy(document)
    for run in old["runs"]:
        for check in run["checks"]:
            for key in ("status", "evidence", "reason"):
                check.pop(key)
    html = render_report(old)
    assert [status for status, _ in sections(html)] == ["failed", "passed"]
    assert "not recorded" in html


def test_evidence_names_carry_their_meaning() -> None:
    record = {
        "name": "x",
        "status": "unverified",
        "checks": [
            {"check": "fenced", "status": "unverified", "reason": "no write", "evidence": []},
            {"check": "durable", "status": "passed", "evidence": ["s3.ops"], "summary": "ok"},
        ],
        "history": [],
    }
    html = render_report({"runs": [record]})
    assert '<abbr title="S3 requests made through the client' in html
    assert '<span class="badge unverified">unverified</span> unverified' in html
    assert "no write" in html
