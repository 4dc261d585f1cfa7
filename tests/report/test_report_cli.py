"""`harness report` and `harness run --report`: where the page goes, and what is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from tests.report.conftest import write_scenarios


def test_report_defaults_to_the_journal_name(tmp_path: Path, journal: Path) -> None:
    copy = tmp_path / "nightly.json"
    shutil.copy(journal, copy)
    assert main(["report", str(copy)]) == 0
    page = (tmp_path / "nightly.html").read_text()
    assert page.count('<section class="run ') == 2


def test_report_replaces_an_earlier_report_only(
    tmp_path: Path, journal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.html"
    assert main(["report", str(journal), "-o", str(out), "--title", "first"]) == 0
    assert main(["report", str(journal), "-o", str(out), "--title", "second"]) == 0
    assert "replaced the earlier report" in capsys.readouterr().out
    assert "<h1>second</h1>" in out.read_text()
    mine = tmp_path / "notes.html"
    mine.write_text("<html>my notes</html>")
    assert main(["report", str(journal), "-o", str(mine)]) == 2
    assert "is not a harness report; refusing to overwrite it" in capsys.readouterr().err
    assert mine.read_text() == "<html>my notes</html>"


def test_report_merges_journals(tmp_path: Path, journal: Path) -> None:
    second = tmp_path / "second.json"
    shutil.copy(journal, second)
    out = tmp_path / "both.html"
    assert main(["report", str(journal), str(second), "-o", str(out)]) == 0
    assert out.read_text().count('<section class="run ') == 4


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist; write one with `harness run ... --journal"),
        ('{"runs": [', ":1:11: not JSON"),
        ('{"format": "other/1", "runs": []}', "is not a harness journal"),
    ],
)
def test_report_refuses_what_is_not_a_journal(
    tmp_path: Path, content: str | None, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "j.json"
    if content is not None:
        path.write_text(content)
    assert main(["report", str(path), "-o", str(tmp_path / "r.html")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_report_never_writes_over_its_own_journal(
    tmp_path: Path, journal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(journal), "-o", str(journal)]) == 2
    assert "is one of the journals" in capsys.readouterr().err
    assert json.loads(journal.read_text())["runs"]


def test_run_refuses_a_foreign_report_path_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = write_scenarios(tmp_path / "scenarios")
    mine = tmp_path / "mine.html"
    mine.write_text("keep me")
    code = main(["run", str(paths[0]), "--report", str(mine), "--journal", str(tmp_path / "j")])
    assert code == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert mine.read_text() == "keep me"
    assert not (tmp_path / "j").exists()  # nothing ran
