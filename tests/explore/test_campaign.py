"""Campaigns: profiles, shards (one seed each), the journal of explored runs, the figures
(--stats), and shards spread over pytest-xdist workers merged into one journal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.errors import InputError
from harness.explore import explore
from harness.explore.campaign import DATABASE, PROFILES, Shard, plan
from harness.report.journal import load_journal

OFF_BY_ONE = "harness.examples.broken:off_by_one_resume"


def test_a_shard_is_k_of_n_and_explores_its_own_seed() -> None:
    assert Shard.parse("2/4") == Shard(2, 4)
    assert [Shard(k, 4).seed(10) for k in range(4)] == [10, 11, 12, 13]
    assert Shard(0, 1).seed(None) is None, "unsharded: the derandomized search"
    for bad, reason in [("4/4", "K must be in 0..N-1"), ("x", "expected K/N"), ("0/0", "N")]:
        with pytest.raises(InputError, match=reason):
            Shard.parse(bad)


def test_a_shard_writes_its_runs_and_figures_to_a_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "shard.json"
    args = ["explore", "-q", "-n", "3", "--seed", "4", "--shard", "1/2", "--stats"]
    assert main([*args, "--journal", str(journal), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    document = load_journal(journal)
    assert document["finished"] and document["shard"] == "1/2" and document["seed"] == 4
    stats = document["explore"]
    assert stats["runs"] == len(document["runs"]) == 3
    assert [run["name"] for run in document["runs"]] == [
        f"explore shard 1/2 run {n}" for n in (1, 2, 3)
    ]
    assert all(run["history"] == [] and run["status"] == "passed" for run in document["runs"])
    assert f"3 runs, {stats['entries']} timeline entries, {stats['notices']} notices" in out
    assert "saved_before_deadline" in out and "detects_notice" in out and "lost_work" in out


def test_the_failing_run_is_journaled_with_its_history_and_replay(tmp_path: Path) -> None:
    args = ["explore", "-q", "-n", "4", "--seed", "3", "--target", OFF_BY_ONE, "--cloud", "aws"]
    args += ["--max-entries", "1", "--max-shrinks", "3", "--journal", str(tmp_path / "j.json")]
    assert main([*args, "--out", str(tmp_path / "out")]) == 1
    failing = load_journal(tmp_path / "j.json")["runs"][-1]
    assert failing["status"] == "failed" and failing["history"]
    assert failing["replay"].startswith("harness run ") and Path(failing["file"]).exists()


def test_dev_and_nightly_keep_a_database_unless_seeded() -> None:
    assert plan(PROFILES["dev"], Shard(1, 2), None) == (None, DATABASE)
    assert plan(PROFILES["nightly"], Shard(1, 2), 5) == (6, None)
    assert plan(PROFILES["ci"], Shard(1, 2), None) == (1, None)
    assert plan(PROFILES["ci"], Shard(), None) == (None, None), "derandomized"


def test_a_failure_kept_in_the_database_is_replayed_first(tmp_path: Path) -> None:
    """A random search (Hypothesis keeps no database for a seeded one): sixty schedules with
    one entry each all but surely include a restart, which this target gets wrong (the search
    stops at the first)."""
    common: dict[str, Any] = {
        "target": {"python": OFF_BY_ONE},
        "clouds": ("aws",),
        "max_entries": 1,
    }
    database = tmp_path / "db"
    first = explore(examples=60, out=tmp_path, database=database, max_shrinks=2, **common)
    assert first.failure is not None and any(database.rglob("*"))
    again = explore(examples=1, out=tmp_path, database=database, max_shrinks=0, **common)
    assert again.failure is not None and again.failure.broken == first.failure.broken
    assert again.examples == 1


def test_ci_keeps_no_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["explore", "-q", "-n", "1", "--profile", "ci", "--cloud", "aws"]) == 0
    assert not (tmp_path / ".harness").exists()


def test_cli_refuses_a_bad_shard(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", "--shard", "3/3"]) == 2
    assert "K must be in 0..N-1" in capsys.readouterr().err


def test_shards_on_xdist_workers_merge_into_one_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    journal = tmp_path / "campaign.json"
    args = ["explore", "--workers", "2", "-n", "2", "--seed", "7", "--cloud", "aws", "--stats"]
    assert main([*args, "--journal", str(journal)]) == 0
    document = load_journal(journal)
    # Coverage of the runtime, recorded in each shard for --stats, merged into the union.
    assert "harness/runtime): " in capsys.readouterr().out.partition("target coverage (")[2]
    files = document["explore"]["coverage"]["files"]
    assert sum(len(f["arcs"]) for f in files.values()) > 0
    names = sorted(run["name"] for run in document["runs"])
    assert names == [f"explore shard {k}/2 run {n}" for k in (0, 1) for n in (1, 2)]
    assert document["explore"]["runs"] == 4 and document["shards"] == 2
    assert document["finished"]
    json.dumps(document)  # one document, whole
