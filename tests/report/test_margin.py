"""`harness margin`: bisection over seeds for where saved_before_deadline starts failing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness.cli import main
from harness.report.margin import (
    MarginResult,
    SeedBoundary,
    _bisect,
    knob_for,
    nearest_rank,
    search,
    verdict_lines,
)
from harness.scenario.loader import load_file
from harness.scenario.model import Scenario
from harness.sim.runner import run_scenario

REPO = Path(__file__).resolve().parents[2]
GCP = REPO / "scenarios" / "gcp" / "preemption.yaml"
IMDS = REPO / "scenarios" / "aws" / "imds_server_errors.yaml"


def scenario(path: Path) -> Scenario:
    return load_file(path)[0].scenario


def test_the_lead_goes_to_every_notice_that_ends_an_instance() -> None:
    story = scenario(GCP)
    changed = knob_for("lead", story).apply(story, 7.0)
    notices = [e.notice for e in changed.timeline if e.notice is not None]
    assert notices and all(n.lead == 7.0 for n in notices)
    assert story.timeline[0].notice is not None and story.timeline[0].notice.lead is None


def test_bisection_finds_the_boundary_within_the_tolerance() -> None:
    knob = knob_for("lead", scenario(GCP))
    tried: list[float] = []

    def probe(seed: int, value: float) -> bool:
        tried.append(value)
        return value >= 42.3

    found = _bisect(knob, 0, probe)
    assert found.holds_at is not None and 42.3 <= found.holds_at <= 42.3 + knob.tolerance
    assert tried[:2] == [knob.high, knob.low]
    # the next seed starts from it: two runs confirm the same boundary
    tried.clear()
    assert _bisect(knob, 1, probe, hint=found.holds_at).holds_at == found.holds_at
    assert len(tried) == 2
    # a seed whose boundary moved is still bisected to it
    moved = _bisect(knob, 2, lambda seed, value: value >= 80.0, hint=found.holds_at)
    assert moved.holds_at is not None and 80.0 <= moved.holds_at <= 81.0
    assert _bisect(knob, 3, lambda seed, value: False).holds_at is None


def test_percentile_and_verdict_per_cloud() -> None:
    knob = knob_for("lead", scenario(GCP))
    result = MarginResult(knob, 90.0, [SeedBoundary(s, 10.0 + s) for s in range(10)])
    assert result.required == 18.0 == nearest_rank([10.0 + s for s in range(10)], 90)
    result = MarginResult(knob, 99.0, [SeedBoundary(0, 47.0), SeedBoundary(1, 12.0)])
    lines = verdict_lines(result)
    assert lines[0] == (
        "needs 47s of notice at p99 over 2 seeds: safe on AWS (2m), not on GCP (30s), "
        "not on Azure (30s), not on Kubernetes (30s)"
    )
    assert lines[1].split() == [
        "AWS",
        "2m",
        "the",
        "spot",
        "interruption",
        "notice:",
        "1m13s",
        "to",
        "spare",
    ]
    assert lines[2].endswith("17s short")
    never = MarginResult(knob, 99.0, [SeedBoundary(4, None)])
    assert never.required is None
    assert "fails even with 10m of notice (lead) (seeds 4)" in verdict_lines(never)[0]


def test_a_real_search_brackets_the_boundary_it_reports() -> None:
    story = scenario(GCP)
    # a narrower range than the default keeps the test short
    knob = dataclasses.replace(knob_for("lead", story), high=40.0, tolerance=2.0)
    result = search(story, knob, [0, 1])
    required = result.required
    assert required is not None and 1.0 < required < 30.0
    judged = [p for p in result.probes if p.seed == 0]
    assert any(p.held and p.value == required for p in judged)
    assert any(not p.held and required - knob.tolerance <= p.value < required for p in judged)
    # and the boundary is real: a run just short of it loses the save
    short = run_scenario(knob.apply(story, required - knob.tolerance), seed=0)
    assert (
        next(c for c in short.checks if c.spec.name == "saved_before_deadline").result.status
        == "failed"
    )


def test_margin_command_prints_the_verdict_and_writes_the_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "margin.html"
    args = ["--seeds", "2", "--high", "40s", "-q", "--report", str(out)]
    assert main(["margin", str(GCP), *args]) == 0
    text = capsys.readouterr().out
    assert text.startswith("needs ") and "of notice at p99 over 2 seeds: safe on AWS (2m)" in text
    assert "Kubernetes" in text and "runs" in text
    page = out.read_text()
    assert "saved_before_deadline against notice (lead), 2 seeds" in page
    assert "GCP/Azure/Kubernetes 30s" in page and "AWS 2m" in page


def test_margin_refuses_what_it_cannot_vary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["margin", str(GCP), "--vary", "imds-outage", "-q"]) == 2
    assert "has no imds fault to lengthen" in capsys.readouterr().err
    calm = tmp_path / "calm.yaml"
    calm.write_text("description: nothing happens\n")
    assert main(["margin", str(calm), "-q"]) == 2
    assert "has no notice that ends an instance" in capsys.readouterr().err
    assert main(["margin", str(tmp_path / "missing.yaml"), "-q"]) == 2
    assert main(["margin", str(GCP), "--low", "2m", "--high", "1m", "-q"]) == 2
    assert "the lead range must go up: --low 2m is not below --high 1m" in capsys.readouterr().err
    assert main(["margin", str(GCP), "--vary", "bandwidth", "--high", "fast", "-q"]) == 2
    assert "bad bound for bandwidth" in capsys.readouterr().err


def test_an_imds_outage_is_lengthened() -> None:
    story = scenario(IMDS)
    longer = knob_for("imds-outage", story).apply(story, 300.0)
    (fault,) = [e.imds for e in longer.timeline if e.imds is not None]
    assert fault.for_ == 300.0
