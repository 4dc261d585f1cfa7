"""The journal behind `harness run --journal`: whole after every run, never foreign files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.report.journal import FORMAT, Journal, JournalError


def read(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def test_journal_is_rewritten_whole_after_each_run(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    journal = Journal(path, {"command": "run"})
    assert read(path)["runs"] == [] and read(path)["finished"] is False
    journal.add({"name": "a", "status": "passed"})
    assert read(path)["summary"] == {"runs": 1, "passed": 1}
    journal.add({"name": "b", "status": "failed"})
    assert [r["name"] for r in read(path)["runs"]] == ["a", "b"]
    assert read(path)["finished"] is False
    journal.finish()
    assert read(path)["finished"] is True and read(path)["format"] == FORMAT
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.json"]


def test_an_earlier_journal_may_be_replaced(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    Journal(path).add({"name": "old", "status": "passed"})
    Journal(path)
    assert read(path)["runs"] == []


@pytest.mark.parametrize(
    ("content", "why"),
    [('{"mine": 1}', "not a harness journal"), ("plain text", "not a harness journal")],
)
def test_foreign_files_are_never_overwritten(tmp_path: Path, content: str, why: str) -> None:
    path = tmp_path / "notes.json"
    path.write_text(content)
    with pytest.raises(JournalError, match=why):
        Journal(path)
    assert path.read_text() == content


def test_bad_journal_locations_are_explained(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="is a directory"):
        Journal(tmp_path)
    with pytest.raises(JournalError, match="does not exist"):
        Journal(tmp_path / "missing" / "journal.json")
